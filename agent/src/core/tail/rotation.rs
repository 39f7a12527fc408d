//! Which names in a directory are rotations of a log: `app.log.1` (a number after a dot),
//! `app.log-20261129`, `app.log.2026-11-29`, `app.log_1732900000` (a date or an epoch
//! after `.`, `-` or `_`), as logrotate names them (numbered, or `dateext`). `worker-1` is
//! not a rotation of `worker` (another log), nor is a compressed one (`app.log.2.gz`): its
//! lines were read while it was live, and it cannot be tailed anyway.
//!
//! The shell asks this when a followed file leaves its patterns: a log rotated twice
//! between two looks (or while the agent was stopped) leaves a middle file that no
//! pattern matches and that was never seen live (see `io::tail`).

/// Whether `suffix` (what follows the separator) names a date or an epoch: at least eight
/// digits, or `YYYY-MM-DD` / `YYYY.MM.DD` / `YYYY_MM_DD`, then anything of digits and
/// separators (a time).
fn is_date(suffix: &[u8]) -> bool {
    let lead = suffix.iter().take_while(|b| b.is_ascii_digit()).count();
    let dashed = |sep: u8| {
        suffix.len() >= 10
            && suffix[..4].iter().all(u8::is_ascii_digit)
            && suffix[4] == sep
            && suffix[5..7].iter().all(u8::is_ascii_digit)
            && suffix[7] == sep
            && suffix[8..10].iter().all(u8::is_ascii_digit)
    };
    lead >= 8 || dashed(b'-') || dashed(b'.') || dashed(b'_')
}

/// The names `name` is a rotation of, longest first: every prefix followed by `.` and a
/// number, or by `.`, `-` or `_` and a date (see `is_date`); the suffix is digits and
/// separators.
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
        let suffix = &name[i + 1..];
        let numbered =
            name[i] == b'.' && !suffix.is_empty() && suffix.iter().all(u8::is_ascii_digit);
        let cut = i > 0 && is_sep(name[i]) && (numbered || is_date(suffix));
        cut.then(|| &name[..i])
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
        assert_eq!(bases("app.log_1732900000"), ["app.log"]);
        assert_eq!(bases("app.log.2026-11-29"), ["app.log"]);
        assert_eq!(bases("app.log-2026-11-29"), ["app.log"]);
        assert_eq!(bases("app.log-2026112903"), ["app.log"]);
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
        // Another log, not a rotation: a number after `-` or `_`.
        assert!(!is_rotation_of(b"worker-1", b"worker"));
        assert!(!is_rotation_of(b"app.log_1", b"app.log"));
        assert!(!is_rotation_of(b"web-2026", b"web"));
    }
}
