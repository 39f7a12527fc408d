//! Path patterns: `*`, `?` and `[...]` classes within a path component, no `**`. The
//! matching is here, pure; the shell (`io::tail`) expands patterns against the file system.
//!
//! Written here instead of depending on the `glob` crate: log patterns need only this, the
//! matcher is 60 lines, and the crate's errors would be one more type to wrap. As in shells,
//! a wildcard never matches a leading `.` (so the checkpoint's hidden temp file beside the
//! logs is never tailed).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether a component holds a wildcard (`*`, `?` or a `[` class).
pub fn has_wildcard(s: &[u8]) -> bool {
    s.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Whether `pattern` is usable: non-empty, and every `[` has its `]`.
pub fn validate(pattern: &str) -> Result<(), String> {
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
pub fn matches(p: &[u8], name: &[u8]) -> bool {
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

/// Whether `pattern` (an input's `exclude`) excludes `path`: a pattern with a `/` is
/// matched against the whole path, component by component; one without, against the file
/// name alone, so `*.gz` excludes archives wherever the input's paths reach.
pub fn excludes(pattern: &str, path: &Path) -> bool {
    if !pattern.contains('/') {
        return path
            .file_name()
            .is_some_and(|n| matches(pattern.as_bytes(), n.as_bytes()));
    }
    let (mut pc, mut fc) = (Path::new(pattern).components(), path.components());
    loop {
        match (pc.next(), fc.next()) {
            (None, None) => return true,
            (Some(p), Some(f)) if matches(p.as_os_str().as_bytes(), f.as_os_str().as_bytes()) => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
    fn exclusions_by_name_or_by_whole_path() {
        let p = Path::new("/var/log/nginx/access.log.2.gz");
        assert!(excludes("*.gz", p));
        assert!(excludes("access.log.[0-9]*", p));
        assert!(!excludes("*.log", p));
        assert!(excludes("/var/log/nginx/*.gz", p));
        assert!(excludes("/var/log/*/access.log.2.gz", p));
        assert!(
            !excludes("/var/log/*.gz", p),
            "a whole-path pattern matches every component"
        );
        assert!(!excludes("/var/log/nginx", p));
        assert!(!excludes("*.gz", Path::new("/var/log/auth.log")));
    }
}
