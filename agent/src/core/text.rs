//! Small, allocation-free helpers for reading fields out of log messages.

use std::sync::OnceLock;

use memchr::memmem;

/// A substring searcher built once (memchr's `Finder`), for needles searched on every record.
#[derive(Debug)]
pub struct Needle {
    needle: &'static str,
    finder: OnceLock<memmem::Finder<'static>>,
    rfinder: OnceLock<memmem::FinderRev<'static>>,
}

impl Needle {
    /// A searcher for `needle`, built on first use.
    pub const fn new(needle: &'static str) -> Self {
        Self {
            needle,
            finder: OnceLock::new(),
            rfinder: OnceLock::new(),
        }
    }

    /// The first position of the needle in `hay`.
    pub fn find(&self, hay: &str) -> Option<usize> {
        self.finder
            .get_or_init(|| memmem::Finder::new(self.needle))
            .find(hay.as_bytes())
    }

    /// The last position of the needle in `hay`.
    pub fn rfind(&self, hay: &str) -> Option<usize> {
        self.rfinder
            .get_or_init(|| memmem::FinderRev::new(self.needle))
            .rfind(hay.as_bytes())
    }

    /// `hay.split_once(needle)`.
    pub fn split_once<'a>(&self, hay: &'a str) -> Option<(&'a str, &'a str)> {
        let p = self.find(hay)?;
        Some((&hay[..p], &hay[p + self.needle.len()..]))
    }

    /// `hay.rsplit_once(needle)`.
    pub fn rsplit_once<'a>(&self, hay: &'a str) -> Option<(&'a str, &'a str)> {
        let p = self.rfind(hay)?;
        Some((&hay[..p], &hay[p + self.needle.len()..]))
    }

    /// `hay.contains(needle)`.
    pub fn is_in(&self, hay: &str) -> bool {
        self.find(hay).is_some()
    }
}

/// The value of `key=` in a space-separated `k=v` message (the value ends at a space or
/// `;`); `None` when the key is absent, `Some("")` when it is empty.
pub fn kv<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let b = msg.as_bytes();
    let mut from = 0;
    while let Some(p) = memmem::find(&b[from..], key.as_bytes()) {
        let at = from + p;
        let end = at + key.len();
        let boundary = at == 0 || matches!(b[at - 1], b' ' | b';' | b'\'' | b',' | b'(');
        if boundary && b.get(end) == Some(&b'=') {
            let v = &msg[end + 1..];
            let stop = v.find([' ', ';', ',']).unwrap_or(v.len());
            return Some(&v[..stop]);
        }
        from = at + 1;
    }
    None
}

/// `s.split_once(c)` for an ASCII `c`, by a plain byte scan: for the short strings of a log
/// line cheaper than the char searcher's memchr.
pub fn split_once_ascii(s: &str, c: u8) -> Option<(&str, &str)> {
    debug_assert!(c.is_ascii());
    let p = s.bytes().position(|b| b == c)?;
    Some((&s[..p], &s[p + 1..]))
}

/// `s.split(' ')` by a plain byte scan: for the short words of a log line that is cheaper
/// than the char searcher's memchr per word.
pub fn split_spaces(s: &str) -> impl Iterator<Item = &str> {
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        match s.as_bytes()[from..].iter().position(|&c| c == b' ') {
            Some(p) => {
                start = Some(from + p + 1);
                Some(&s[from..from + p])
            }
            None => {
                start = None;
                Some(&s[from..])
            }
        }
    })
}

/// `s` without a trailing ` [preauth]` (and surrounding spaces).
pub fn strip_preauth(s: &str) -> (&str, bool) {
    let t = s.trim_end();
    match t.strip_suffix("[preauth]") {
        Some(x) => (x.trim_end(), true),
        None => (t, false),
    }
}

/// Whether `s` is an IPv4 or IPv6 address.
pub fn is_ip(s: &str) -> bool {
    // Only hex digits, `.` and `:` can make an address std parses: a host name is turned
    // away by its first other byte, before both parsers run.
    let b = s.as_bytes();
    b.iter().any(|&c| c == b'.' || c == b':')
        && b.iter()
            .all(|&c| c.is_ascii_hexdigit() || c == b'.' || c == b':')
        && s.parse::<std::net::IpAddr>().is_ok()
}

/// Splits `"IP port N"` (the tail of many sshd lines) into address and port.
pub fn ip_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim();
    static PORT: Needle = Needle::new(" port ");
    if let Some((ip, port)) = PORT.split_once(s) {
        let port = port.split([' ', ':']).next()?.parse().ok()?;
        return is_ip(ip).then_some((ip, Some(port)));
    }
    is_ip(s).then_some((s, None))
}

/// The last whitespace-separated word of `s` and what precedes it.
pub fn last_word(s: &str) -> (&str, &str) {
    let s = s.trim_end();
    match s.rfind(' ') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => ("", s),
    }
}

/// The basename of a path.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_respects_word_boundaries() {
        let m = "logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root";
        assert_eq!(kv(m, "uid"), Some("0"));
        assert_eq!(kv(m, "user"), Some("root"));
        assert_eq!(kv(m, "ruser"), Some(""));
        assert_eq!(kv(m, "rhost"), Some("1.2.3.4"));
        assert_eq!(kv(m, "nope"), None);
    }

    #[test]
    fn is_ip_is_std_parse() {
        for s in [
            "",
            "1.2.3.4",
            "10.0.0.256",
            "::1",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "[::1]",
            "cafe",
            "cafe::",
            "web-01",
            "host.example",
            "1.2.3",
            "1:2:3:4:5:6:7:8",
            " 1.2.3.4",
        ] {
            assert_eq!(is_ip(s), s.parse::<std::net::IpAddr>().is_ok(), "{s:?}");
        }
    }

    #[test]
    fn split_once_ascii_is_split_once() {
        for s in ["", " ", "a", "a b", " a  b ", "sshd(pam_unix)"] {
            for c in [b' ', b'('] {
                assert_eq!(split_once_ascii(s, c), s.split_once(char::from(c)), "{s:?}");
            }
        }
    }

    #[test]
    fn split_spaces_is_split_on_space() {
        for s in [
            "",
            " ",
            "a",
            "a b",
            " a  b ",
            "IN=eth0 OUT= MAC=00:11 SRC=1.2.3.4 SYN",
        ] {
            assert_eq!(
                split_spaces(s).collect::<Vec<_>>(),
                s.split(' ').collect::<Vec<_>>(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn ip_port_reads_the_tail() {
        assert_eq!(ip_port("10.0.0.1 port 22"), Some(("10.0.0.1", Some(22))));
        assert_eq!(ip_port("::1 port 22 ssh2"), Some(("::1", Some(22))));
        assert_eq!(ip_port("10.0.0.1"), Some(("10.0.0.1", None)));
        assert_eq!(ip_port("host.example port 22"), None);
    }
}
