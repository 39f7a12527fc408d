//! Expanding path patterns ([`crate::core::tail::pattern`]) against the file system.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

pub(super) use crate::core::tail::pattern::{excludes, validate};
use crate::core::tail::pattern::{has_wildcard, matches};

/// Paths matching `pattern` that exist now, sorted. Unreadable or missing directories
/// match nothing: logs appear and disappear.
pub(super) fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut bases = vec![PathBuf::new()];
    for c in Path::new(pattern).components() {
        let part = c.as_os_str();
        if !matches!(c, Component::Normal(_)) || !has_wildcard(part.as_bytes()) {
            for b in &mut bases {
                b.push(part);
            }
            continue;
        }
        let mut next = Vec::new();
        for b in &bases {
            let dir = if b.as_os_str().is_empty() {
                Path::new(".")
            } else {
                b
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if matches(part.as_bytes(), name.as_bytes()) {
                    next.push(b.join(OsStr::from_bytes(name.as_bytes())));
                }
            }
        }
        bases = next;
    }
    // Literal components were appended without looking: keep what exists, dangling links
    // included (the tail reports a matching path it cannot open).
    bases.retain(|b| !b.as_os_str().is_empty() && std::fs::symlink_metadata(b).is_ok());
    bases.sort();
    bases
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn expands_against_the_filesystem() -> io::Result<()> {
        let d = std::env::temp_dir().join(format!("vedette-glob-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub"))?;
        for f in ["a.log", "b.log", "c.txt", ".hidden.log", "sub/d.log"] {
            std::fs::write(d.join(f), b"x")?;
        }
        let pat = |p: &str| format!("{}/{p}", d.display());
        assert_eq!(expand(&pat("*.log")), [d.join("a.log"), d.join("b.log")]);
        assert_eq!(expand(&pat("*/d.log")), [d.join("sub/d.log")]);
        assert_eq!(expand(&pat("c.txt")), [d.join("c.txt")]);
        assert!(expand(&pat("nope/*.log")).is_empty());
        std::fs::remove_dir_all(&d)
    }
}
