//! Path patterns: `*`, `?` and `[...]` classes within a path component, no `**`.
//!
//! Written here instead of depending on the `glob` crate: log patterns need only this, the
//! matcher is 60 lines, and the crate's errors would be one more type to wrap. As in shells,
//! a wildcard never matches a leading `.` (so the checkpoint's hidden temp file beside the
//! logs is never tailed).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

fn has_wildcard(s: &[u8]) -> bool {
    s.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Whether `pattern` is usable: non-empty, and every `[` has its `]`.
pub(super) fn validate(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("empty pattern".into());
    }
    for c in Path::new(pattern).components() {
        let b = c.as_os_str().as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'[' {
                match class_end(b, i) {
                    Some(e) => i = e,
                    None => return Err(format!("unclosed '[' in {:?}", c.as_os_str())),
                }
            }
            i += 1;
        }
    }
    Ok(())
}

/// Index of the `]` closing the class opened at `open` (a `]` right after `[` or `[!` is
/// a member, as in shells).
fn class_end(p: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if matches!(p.get(i), Some(b'!' | b'^')) {
        i += 1;
    }
    if p.get(i) == Some(&b']') {
        i += 1;
    }
    p[i.min(p.len())..]
        .iter()
        .position(|&b| b == b']')
        .map(|e| i + e)
}

fn class_matches(class: &[u8], c: u8) -> bool {
    let (neg, class) = match class.first() {
        Some(b'!' | b'^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut i = 0;
    let mut hit = false;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == b'-' {
            hit |= (class[i]..=class[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= class[i] == c;
            i += 1;
        }
    }
    hit != neg
}

/// Whether file name `name` matches component pattern `p`.
pub(super) fn matches(p: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && p.first() != Some(&b'.') {
        return false;
    }
    // Iterative matching with one backtrack point: the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < name.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(pi + 1),
            Some(b'[') => class_end(p, pi)
                .filter(|&e| class_matches(&p[pi + 1..e], name[ni]))
                .map(|e| e + 1),
            Some(&c) => (c == name[ni]).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

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
    // Literal components were appended without looking: keep what exists.
    bases.retain(|b| !b.as_os_str().is_empty() && b.exists());
    bases.sort();
    bases
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches(b"*.log", b"auth.log"));
        assert!(!matches(b"*.log", b"auth.log.1"));
        assert!(matches(b"auth.log*", b"auth.log"));
        assert!(matches(b"auth.log*", b"auth.log.1"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"x[0-9]", b"x7"));
        assert!(!matches(b"x[!0-9]", b"x7"));
        assert!(matches(b"x[]]", b"x]"));
        assert!(matches(b"*a*b", b"xxaxxab"));
        assert!(!matches(b"*", b".hidden"));
        assert!(matches(b".*", b".hidden"));
        assert!(validate("/var/log/[a").is_err());
        assert!(validate("").is_err());
        assert!(validate("/var/log/[!]]x*").is_ok());
    }

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
