//! RFC 3164 as it is found in the wild: `Mmm dd hh:mm:ss` (day space- or zero-padded, or a
//! single digit; optional fraction and year) or ISO 8601 timestamps, an optional HOSTNAME,
//! and a TAG with an optional `[PID]`.

use super::{Envelope, Format};
use crate::core::time::{Civil, TimeContext, digits, fraction, hms, month_from_abbrev, parse_iso};

/// Whether `b` starts with a `Mmm ` month name.
pub(super) fn starts_with_timestamp(b: &[u8]) -> bool {
    b.len() > 4 && b[3] == b' ' && month_from_abbrev(&b[..3]).is_some()
}

/// `Mmm dd hh:mm:ss[.fff][ YYYY]`: the time (its year 0 when absent), whether the year was
/// written, and the bytes consumed.
fn bsd_timestamp(b: &[u8]) -> Option<(Civil, bool, usize)> {
    if !starts_with_timestamp(b) {
        return None;
    }
    let mo = month_from_abbrev(&b[..3])?;
    let mut i = 4;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let dlen = b[i..]
        .iter()
        .take(3)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if dlen == 0 || dlen > 2 || b.get(i + dlen) != Some(&b' ') {
        return None;
    }
    let d = digits(&b[i..], dlen)? as u8;
    i += dlen + 1;
    // Some devices put the year before the time: `Mmm dd yyyy hh:mm:ss`.
    let mut year = None;
    if b.len() >= i + 5
        && b[i + 4] == b' '
        && let Some(y) = digits(&b[i..], 4)
    {
        year = Some(y as i16);
        i += 5;
    }
    let (h, mi, s) = hms(&b[i..])?;
    i += 8;
    let (ms, flen) = fraction(&b[i..]);
    i += flen;
    // A year after the time (`Mmm dd hh:mm:ss yyyy`), when it reads as one: a host named
    // `1234` is no year 1234.
    if year.is_none()
        && b.len() >= i + 5
        && b[i] == b' '
        && b.get(i + 5).is_none_or(|&c| c == b' ')
        && let Some(y) = digits(&b[i + 1..], 4).filter(|y| (1970..=2200).contains(y))
    {
        year = Some(y as i16);
        i += 5;
    }
    let civil = Civil::new(year.unwrap_or(0), mo, d, (h, mi, s), ms);
    Some((civil, year.is_some(), i))
}

fn is_tag_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/' | b'(' | b')' | b'@' | b'+')
}

/// Splits `TAG[PID]: ` or `TAG: ` off `s`; `None` when `s` does not start with one.
fn tag(s: &str) -> Option<(&str, Option<&str>, &str)> {
    let b = s.as_bytes();
    let n = b.iter().take(64).take_while(|&&c| is_tag_byte(c)).count();
    if n == 0 {
        return None;
    }
    let name = &s[..n];
    let (pid, after) = match b.get(n) {
        Some(b'[') => {
            let close = memchr::memchr(b']', &b[n..]).map(|p| p + n)?;
            (Some(&s[n + 1..close]), close + 1)
        }
        _ => (None, n),
    };
    match b.get(after) {
        Some(b':') => {
            let msg_start = if b.get(after + 1) == Some(&b' ') {
                after + 2
            } else {
                after + 1
            };
            Some((name, pid, &s[msg_start.min(s.len())..]))
        }
        // `TAG[PID] msg` without the colon still names the program.
        Some(b' ') if pid.is_some() => Some((name, pid, &s[after + 1..])),
        None if pid.is_some() => Some((name, pid, "")),
        _ => None,
    }
}

pub(super) fn parse<'a>(s: &'a str, ctx: &TimeContext, format: Format) -> Envelope<'a> {
    let mut env = Envelope {
        format: Some(format),
        ..Envelope::default()
    };
    let b = s.as_bytes();
    let rest_at = if let Some((civil, has_year, len)) = bsd_timestamp(b) {
        env.timestamp = Some(&s[..len]);
        env.time = if has_year {
            ctx.resolve_local(civil)
        } else {
            ctx.resolve_yearless(civil)
        };
        if env.time.is_none() {
            env.error = Some(format!("RFC 3164: impossible date {:?}", &s[..len]));
        }
        len
    } else if let Some((t, len)) = parse_iso(b, ctx) {
        env.timestamp = Some(&s[..len]);
        env.time = Some(t);
        len
    } else {
        // No timestamp: a file line without an envelope, or a syslog message that broke
        // RFC 3164 (which then is all CONTENT).
        env.msg = s;
        if format == Format::Rfc3164 {
            env.error = Some("RFC 3164: expecting a timestamp after PRI".into());
        } else {
            env.format = Some(Format::Plain);
        }
        return env;
    };
    let rest = match b.get(rest_at) {
        Some(b' ') => &s[rest_at + 1..],
        // Cisco ends its timestamp with a colon: `Jan 15 2026 10:00:00: %ASA-6-…`.
        Some(b':') if b.get(rest_at + 1) == Some(&b' ') => &s[rest_at + 2..],
        None => "",
        Some(_) => {
            env.error = Some("RFC 3164: expecting a space after the timestamp".into());
            &s[rest_at..]
        }
    };
    // Either `HOST TAG: msg`, `TAG: msg` (no host, as local daemons write), or `HOST msg`.
    // A first word that is an address is the host, though an IPv6 address (`fe80::1`) or
    // `IP:PORT` reads like a tag ended by its colon.
    let is_addr = |w: &str| {
        crate::core::text::is_ip(w)
            || w.rsplit_once(':').is_some_and(|(ip, port)| {
                crate::core::text::is_ip(ip) && port.parse::<u16>().is_ok()
            })
    };
    // Only a first word with a ':' can be both (an IPv4 address alone is no tag).
    let first_end = memchr::memchr(b' ', rest.as_bytes()).unwrap_or(rest.len());
    let first = &rest[..first_end];
    let address_first = memchr::memchr(b':', first.as_bytes()).is_some() && is_addr(first);
    let tagged = if address_first { None } else { tag(rest) };
    if let Some((app, pid, msg)) = tagged {
        env.app = Some(app);
        env.procid = pid;
        env.msg = msg;
        return env;
    }
    let (host, after) = match memchr::memchr(b' ', rest.as_bytes()) {
        Some(sp) => (&rest[..sp], &rest[sp + 1..]),
        None => (rest, ""),
    };
    // A first word ending in `:` that is no address is a tag with bytes a tag seldom has
    // (`my-app!![99]:`), not a host: what follows it is its message, never read for a
    // program of its own (`… my-app!![99]: sshd[1]: Accepted …` is my-app's, not sshd's).
    if host.ends_with(':') && !is_addr(host.trim_end_matches(':')) {
        let name = host.trim_end_matches(':');
        let (name, pid) = match name.split_once('[') {
            Some((n, p)) => (n, p.strip_suffix(']')),
            None => (name, None),
        };
        env.app = Some(name).filter(|n| !n.is_empty());
        env.procid = pid;
        env.msg = after;
        return env;
    }
    if !host.is_empty() {
        env.hostname = Some(host);
    }
    match tag(after) {
        Some((app, pid, msg)) => {
            env.app = Some(app);
            env.procid = pid;
            env.msg = msg;
        }
        None => env.msg = after,
    }
    env
}
