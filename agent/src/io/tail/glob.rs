//! Expanding path patterns ([`crate::core::tail::pattern`]) against the file system.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::core::tail::links::SymlinkRule;
pub(super) use crate::core::tail::pattern::{excludes, validate};
use crate::core::tail::pattern::{has_wildcard, matches};

/// Paths matching `pattern` that exist now, sorted. Missing directories match nothing:
/// logs appear and disappear. One that exists but cannot be read (permissions, the
/// open-file limit) matches nothing either and goes to `unreadable` with the error, so
/// the caller can tell "no files" from "could not look". A directory a wildcard matched
/// that is a symbolic link `rule` does not follow is left out and goes to `not_followed`
/// with why (the file at the end of a path is judged when it is opened).
pub(super) fn expand(
    pattern: &str,
    rule: SymlinkRule,
    not_followed: &mut Vec<(PathBuf, String)>,
    unreadable: &mut Vec<(PathBuf, std::io::Error)>,
) -> Vec<PathBuf> {
    let components: Vec<Component<'_>> = Path::new(pattern).components().collect();
    let mut bases = vec![PathBuf::new()];
    for (i, c) in components.iter().enumerate() {
        let last = i + 1 == components.len();
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
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) => {
                    use std::io::ErrorKind::{NotADirectory, NotFound};
                    if !matches!(e.kind(), NotFound | NotADirectory) {
                        unreadable.push((dir.to_path_buf(), e));
                    }
                    continue;
                }
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if !matches(part.as_bytes(), name.as_bytes()) {
                    continue;
                }
                let path = b.join(OsStr::from_bytes(name.as_bytes()));
                if !last
                    && e.file_type().is_ok_and(|t| t.is_symlink())
                    && let Some(why) = dir_link_refusal(&path, rule)
                {
                    not_followed.push((path, why));
                    continue;
                }
                next.push(path);
            }
        }
        bases = next;
    }
    // Literal components were appended without looking: keep what exists, dangling links
    // included (the tail reports a matching path it cannot open).
    bases.retain(|b| {
        if b.as_os_str().is_empty() {
            return false;
        }
        match std::fs::symlink_metadata(b) {
            Ok(_) => true,
            Err(e) => {
                use std::io::ErrorKind::{NotADirectory, NotFound};
                // A directory on the way that cannot be searched is not a missing file.
                if !matches!(e.kind(), NotFound | NotADirectory) {
                    let dir = b.parent().unwrap_or(b).to_path_buf();
                    unreadable.push((dir, e));
                }
                false
            }
        }
    });
    bases.sort();
    bases
}

/// Why the directory link `path` is not followed, if it is not: its owner against the
/// owner of the directory it leads to (one hop; a chain ends where the kernel takes it).
fn dir_link_refusal(path: &Path, rule: SymlinkRule) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let link = std::fs::symlink_metadata(path).ok()?;
    // A dangling or unreadable link leads nowhere: nothing to refuse, nothing matches.
    let target = std::fs::metadata(path).ok()?;
    rule.refusal(&[link.uid()], target.uid())
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn expand_all(pattern: &str) -> Vec<PathBuf> {
        let (mut refused, mut unreadable) = (Vec::new(), Vec::new());
        let found = expand(pattern, SymlinkRule::Owner, &mut refused, &mut unreadable);
        assert!(refused.is_empty(), "{refused:?}");
        assert!(unreadable.is_empty(), "{unreadable:?}");
        found
    }

    #[test]
    fn expands_against_the_filesystem() -> io::Result<()> {
        let d = std::env::temp_dir().join(format!("vedette-glob-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub"))?;
        for f in ["a.log", "b.log", "c.txt", ".hidden.log", "sub/d.log"] {
            std::fs::write(d.join(f), b"x")?;
        }
        let pat = |p: &str| format!("{}/{p}", d.display());
        assert_eq!(
            expand_all(&pat("*.log")),
            [d.join("a.log"), d.join("b.log")]
        );
        assert_eq!(expand_all(&pat("*/d.log")), [d.join("sub/d.log")]);
        assert_eq!(expand_all(&pat("c.txt")), [d.join("c.txt")]);
        assert!(expand_all(&pat("nope/*.log")).is_empty());
        std::fs::remove_dir_all(&d)
    }

    /// `/var/log/app/*/*.log` with `app` writable by its user: a link `evil -> /root` in it
    /// would put root's `*.log` files in the match.
    #[test]
    fn a_wildcard_directory_that_is_someone_elses_link_is_not_entered() -> io::Result<()> {
        let d = std::env::temp_dir().join(format!("vedette-glob-links-{}", std::process::id()));
        std::fs::create_dir_all(d.join("private"))?;
        std::fs::create_dir_all(d.join("app/mine"))?;
        std::fs::write(d.join("private/root.log"), b"x")?;
        std::fs::write(d.join("app/mine/own.log"), b"x")?;
        std::os::unix::fs::symlink(d.join("private"), d.join("app/evil"))?;
        std::os::unix::fs::lchown(d.join("app/evil"), Some(65534), Some(65534))?;
        std::os::unix::fs::symlink(d.join("private"), d.join("app/roots"))?;
        let pattern = format!("{}/app/*/*.log", d.display());
        let mut refused = Vec::new();
        let found = expand(&pattern, SymlinkRule::Owner, &mut refused, &mut Vec::new());
        assert_eq!(
            found,
            [d.join("app/mine/own.log"), d.join("app/roots/root.log")]
        );
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, d.join("app/evil"));
        assert!(refused[0].1.contains("uid 65534"), "{}", refused[0].1);
        refused.clear();
        let found = expand(&pattern, SymlinkRule::Any, &mut refused, &mut Vec::new());
        assert_eq!(found.len(), 3);
        assert!(refused.is_empty());
        std::fs::remove_dir_all(&d)
    }
}
