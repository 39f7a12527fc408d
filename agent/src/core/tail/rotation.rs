//! Which names in a directory are rotations of a log: `app.log.1`, `app.log-20261129`,
//! `app.log.2026-11-29` are `app.log` with a number or a date after a separator, as
//! logrotate names them (numbered, or `dateext`). A compressed one (`app.log.2.gz`) is
//! not: its lines were read while it was live, and it cannot be tailed anyway.
//!
//! The shell asks this when a followed file leaves its patterns: a log rotated twice
//! between two looks (or while the agent was stopped) leaves a middle file that no
//! pattern matches and that was never seen live (see `io::tail`).

/// The names `name` is a rotation of, longest first: every prefix that a separator
/// (`.`, `-`, `_`) and a suffix of digits and separators starting with a digit follow.
/// `app.log.2026-11-29` is a rotation of `app.log` and of `app.log.2026`.
pub fn rotated_from(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    let is_sep = |b: u8| matches!(b, b'.' | b'-' | b'_');
    // The suffix is the longest tail of digits and separators; a cut may sit at any
    // separator inside it that a digit follows.
    let tail = name
        .iter()
        .rev()
        .take_while(|&&b| b.is_ascii_digit() || is_sep(b))
        .count();
    let from = name.len() - tail;
    (from..name.len()).rev().filter_map(move |i| {
        let digit_next = name.get(i + 1).is_some_and(u8::is_ascii_digit);
        (i > 0 && is_sep(name[i]) && digit_next).then(|| &name[..i])
    })
}

/// Whether `name` is a rotation of `base`.
pub fn is_rotation_of(name: &[u8], base: &[u8]) -> bool {
    rotated_from(name).any(|b| b == base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bases(name: &str) -> Vec<&str> {
        rotated_from(name.as_bytes())
            .map(|b| std::str::from_utf8(b).expect("utf-8"))
            .collect()
    }

    #[test]
    fn numbered_and_dated_rotations_name_their_log() {
        assert_eq!(bases("app.log.1"), ["app.log"]);
        assert_eq!(bases("app.log.12"), ["app.log"]);
        assert_eq!(bases("app.log-20261129"), ["app.log"]);
        assert_eq!(bases("app.log_1"), ["app.log"]);
        assert_eq!(
            bases("app.log.2026-11-29"),
            ["app.log.2026-11", "app.log.2026", "app.log"]
        );
        assert!(is_rotation_of(b"auth.log.1", b"auth.log"));
        assert!(is_rotation_of(b"syslog.7", b"syslog"));
    }

    #[test]
    fn other_names_are_not_rotations() {
        for name in [
            "app.log",
            "app.log.1.gz",
            "app.log.bak",
            "app.log.",
            "app.logger",
            "app.log.old1",
            "1",
            ".1",
            "app.log..",
        ] {
            assert!(bases(name).iter().all(|b| *b != "app.log"), "{name}");
        }
        // A separator with no digit after it is no cut; one at the very start names nothing.
        assert!(bases("-1").is_empty());
        assert!(!is_rotation_of(b"id_rsa", b"app.log"));
        assert!(!is_rotation_of(b"app.log.1", b"app"));
        assert!(!is_rotation_of(b"other.log.1", b"app.log"));
    }
}
