//! RFC 5424, strictly: every field is checked against the ABNF, and the first violation is
//! reported with its byte offset. What parsed before it is kept.

use super::{Envelope, Format, SdElement};
use crate::core::time::{Instant, TimeContext, civil_to_epoch, digits, hms};

type Fail = (usize, &'static str);

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    /// A violation that does not stop parsing (an invalid escape in a PARAM-VALUE).
    soft: Option<Fail>,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        &self.s.as_bytes()[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn sp(&mut self, what: &'static str) -> Result<(), Fail> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            Ok(())
        } else {
            Err((self.pos, what))
        }
    }

    /// A header field: NILVALUE or 1..=max PRINTUSASCII.
    fn field(&mut self, max: usize, what: &'static str) -> Result<Option<&'a str>, Fail> {
        let b = self.bytes();
        let n = b.iter().take_while(|&&c| (33..=126).contains(&c)).count();
        if n == 0 || n > max {
            return Err((self.pos + n.min(max), what));
        }
        let v = &self.s[self.pos..self.pos + n];
        self.pos += n;
        Ok(if v == "-" { None } else { Some(v) })
    }
}

pub(super) fn parse<'a>(line: &'a str, pri: u8, start: usize, ctx: &TimeContext) -> Envelope<'a> {
    let mut env = Envelope {
        format: Some(Format::Rfc5424),
        pri: Some(pri),
        ..Envelope::default()
    };
    let mut c = Cursor {
        s: line,
        pos: start,
        soft: None,
    };
    let res = parse_rest(&mut c, &mut env, ctx).and_then(|()| c.soft.map_or(Ok(()), Err));
    if let Err((at, what)) = res {
        env.error = Some(format!("RFC 5424: {what} at byte {at}"));
        // Keep the unparsed remainder as the message, so nothing of the line is lost.
        if env.msg.is_empty() {
            env.msg = &line[start.max(at.min(line.len()))..];
        }
    }
    env
}

fn parse_rest<'a>(
    c: &mut Cursor<'a>,
    env: &mut Envelope<'a>,
    ctx: &TimeContext,
) -> Result<(), Fail> {
    const VERSION: &str = "expecting a version 1-999";
    let b = c.bytes();
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 3 || b[0] == b'0' {
        return Err((c.pos, VERSION));
    }
    env.version = Some(
        b[..n]
            .iter()
            .fold(0u16, |a, &d| a * 10 + u16::from(d - b'0')),
    );
    c.pos += n;
    c.sp(VERSION)?;

    let ts_start = c.pos;
    if c.peek() == Some(b'-') && matches!(c.s.as_bytes().get(c.pos + 1), Some(b' ') | None) {
        c.pos += 1;
    } else {
        match timestamp(c.bytes()) {
            Ok((t, len)) => {
                env.timestamp = Some(&c.s[ts_start..ts_start + len]);
                env.time = Some(t);
                c.pos += len;
            }
            // A timestamp the RFC does not allow but a sender meant (nine fraction
            // digits, a leap second): said, and the header after it is still read, so
            // the host, app and message are not lost with it (the event takes the time it
            // was received).
            Err(off)
                if c.bytes().first().is_some_and(u8::is_ascii_digit)
                    && let Some(sp) = memchr::memchr(b' ', c.bytes()) =>
            {
                c.soft
                    .get_or_insert((ts_start + off, "expecting an RFC 3339 timestamp"));
                env.timestamp = Some(&c.s[ts_start..ts_start + sp]);
                c.pos += sp;
            }
            Err(off) => return Err((ts_start + off, "expecting an RFC 3339 timestamp")),
        }
    }
    let _ = ctx;
    c.sp("expecting a space after the timestamp")?;
    env.hostname = c.field(255, "expecting a hostname (1-255 printable US-ASCII) or -")?;
    c.sp("expecting a space after the hostname")?;
    env.app = c.field(48, "expecting an app-name (1-48 printable US-ASCII) or -")?;
    c.sp("expecting a space after the app-name")?;
    env.procid = c.field(128, "expecting a procid (1-128 printable US-ASCII) or -")?;
    c.sp("expecting a space after the procid")?;
    env.msgid = c.field(32, "expecting a msgid (1-32 printable US-ASCII) or -")?;
    c.sp("expecting a space after the msgid")?;
    structured_data(c, env)?;
    match c.peek() {
        None => {}
        Some(b' ') => env.msg = &c.s[c.pos + 1..],
        Some(_) => return Err((c.pos, "expecting a space before the message")),
    }
    Ok(())
}

/// FULL-DATE "T" FULL-TIME with at most 6 fraction digits and an upper-case `Z` or
/// `±hh:mm` offset. Err carries the offset of the first bad byte.
fn timestamp(b: &[u8]) -> Result<(Instant, usize), usize> {
    let d2 = |i: usize| digits(b.get(i..).unwrap_or(&[]), 2).ok_or(i);
    let y = digits(b, 4).ok_or(0usize)? as i16;
    if b.get(4) != Some(&b'-') {
        return Err(4);
    }
    let mo = d2(5)? as u8;
    if b.get(7) != Some(&b'-') {
        return Err(7);
    }
    let d = d2(8)? as u8;
    if b.get(10) != Some(&b'T') {
        return Err(10);
    }
    let (h, mi, s) = hms(b.get(11..).unwrap_or(&[])).ok_or(11usize)?;
    let mut i = 19;
    let mut ms = 0u16;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 6 {
            return Err(i + 1 + n.min(6));
        }
        for k in 0..3 {
            ms = ms * 10
                + if k < n {
                    u16::from(b[i + 1 + k] - b'0')
                } else {
                    0
                };
        }
        i += 1 + n;
    }
    let base = civil_to_epoch(y, mo, d, h, mi, s)
        .filter(|_| s < 60)
        .ok_or(i)?;
    let off = match b.get(i) {
        Some(b'Z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = d2(i + 1)? as i32;
            if b.get(i + 3) != Some(&b':') {
                return Err(i + 3);
            }
            let om = d2(i + 4)? as i32;
            if oh > 23 || om > 59 {
                return Err(i + 1);
            }
            i += 6;
            (oh * 60 + om) * if sign == b'-' { -1 } else { 1 }
        }
        _ => return Err(i),
    };
    if !matches!(b.get(i), Some(b' ') | None) {
        return Err(i);
    }
    Ok((
        Instant {
            ms: (base - i64::from(off) * 60) * 1000 + i64::from(ms),
            offset_min: off,
        },
        i,
    ))
}

fn sd_name(c: &mut Cursor<'_>, what: &'static str) -> Result<String, Fail> {
    let b = c.bytes();
    let n = b
        .iter()
        .take_while(|&&ch| (33..=126).contains(&ch) && !matches!(ch, b'=' | b']' | b'"'))
        .count();
    if n == 0 || n > 32 {
        return Err((c.pos + n.min(32), what));
    }
    let v = c.s[c.pos..c.pos + n].to_owned();
    c.pos += n;
    Ok(v)
}

fn structured_data(c: &mut Cursor<'_>, env: &mut Envelope<'_>) -> Result<(), Fail> {
    const SD: &str = "expecting structured data ([id param=\"value\"]) or -";
    match c.peek() {
        Some(b'-') => {
            c.pos += 1;
            return Ok(());
        }
        Some(b'[') => {}
        _ => return Err((c.pos, SD)),
    }
    while c.peek() == Some(b'[') {
        c.pos += 1;
        let id = sd_name(
            c,
            "expecting an SD-ID (1-32 printable US-ASCII except = ] \" and space)",
        )?;
        if env.sd.iter().any(|e| e.id == id) {
            return Err((c.pos, "duplicate SD-ID"));
        }
        let mut params = Vec::new();
        loop {
            match c.peek() {
                Some(b']') => {
                    c.pos += 1;
                    break;
                }
                Some(b' ') => {
                    c.pos += 1;
                    let name = sd_name(c, "expecting a PARAM-NAME")?;
                    if c.peek() != Some(b'=') {
                        return Err((c.pos, "expecting = after PARAM-NAME"));
                    }
                    c.pos += 1;
                    if c.peek() != Some(b'"') {
                        return Err((c.pos, "expecting \" before PARAM-VALUE"));
                    }
                    c.pos += 1;
                    params.push((name, param_value(c)?));
                }
                _ => return Err((c.pos, "expecting ] or a space in an SD-ELEMENT")),
            }
        }
        env.sd.push(SdElement { id, params });
    }
    Ok(())
}

/// A PARAM-VALUE after its opening quote: `\"`, `\\` and `\]` are escapes; an unescaped
/// `]` is an error (RFC 5424 §6.3.3); any other backslash is kept as it is.
fn param_value(c: &mut Cursor<'_>) -> Result<String, Fail> {
    const ESC: &str = "expecting ], \" and \\ to be escaped within PARAM-VALUE";
    let b = c.s.as_bytes();
    let mut out = String::new();
    let mut run = c.pos;
    let mut i = c.pos;
    while i < b.len() {
        match b[i] {
            b'"' => {
                out.push_str(&c.s[run..i]);
                c.pos = i + 1;
                return Ok(out);
            }
            b']' => return Err((i, ESC)),
            b'\\' => match b.get(i + 1) {
                Some(&e @ (b'"' | b'\\' | b']')) => {
                    out.push_str(&c.s[run..i]);
                    out.push(e as char);
                    i += 2;
                    run = i;
                }
                _ => {
                    // RFC 5424 §6.3.3: kept as a literal backslash, but the sender broke the
                    // escaping rule, which the event says.
                    c.soft.get_or_insert((
                        i,
                        "invalid escape sequence in PARAM-VALUE (kept literally)",
                    ));
                    i += 1;
                }
            },
            _ => i += 1,
        }
    }
    Err((b.len(), "unterminated PARAM-VALUE"))
}
