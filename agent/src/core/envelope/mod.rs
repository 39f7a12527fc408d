//! Syslog envelopes: RFC 5424 (strict, with structured data), RFC 3164 and its real-world
//! variants (no PRI in files, missing host, ISO timestamps), and lines with no envelope.
//!
//! A record whose envelope breaks its RFC is still read as far as it goes: the parts that
//! parsed are kept and [`Envelope::error`] says what was wrong.

mod rfc3164;
mod rfc5424;

use super::time::{Instant, TimeContext};

/// Which envelope a record had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`.
    Rfc3164,
    /// RFC 3164 without PRI, as syslog daemons write files.
    File,
    /// No syslog envelope: the whole line is the message.
    Plain,
    /// A systemd journal entry (`journalctl --output=json`).
    Journal,
}

impl Format {
    /// The name used in `metadata.log_format`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rfc5424 => "rfc5424",
            Self::Rfc3164 => "rfc3164",
            Self::File => "file",
            Self::Plain => "plain",
            Self::Journal => "journald",
        }
    }
}

/// One SD-ELEMENT: its id and parameters, escapes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    /// SD-ID.
    pub id: String,
    /// PARAM-NAME, PARAM-VALUE pairs in order.
    pub params: Vec<(String, String)>,
}

/// A parsed envelope borrowing from the line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope<'a> {
    /// Which envelope (`None` only while parsing).
    pub format: Option<Format>,
    /// PRI value (facility * 8 + severity).
    pub pri: Option<u8>,
    /// RFC 5424 VERSION.
    pub version: Option<u16>,
    /// The timestamp text as written.
    pub timestamp: Option<&'a str>,
    /// The resolved timestamp.
    pub time: Option<Instant>,
    /// HOSTNAME.
    pub hostname: Option<&'a str>,
    /// TAG / APP-NAME.
    pub app: Option<&'a str>,
    /// PID / PROCID.
    pub procid: Option<&'a str>,
    /// MSGID.
    pub msgid: Option<&'a str>,
    /// STRUCTURED-DATA.
    pub sd: Vec<SdElement>,
    /// MSG (may be empty).
    pub msg: &'a str,
    /// What broke the RFC, if anything.
    pub error: Option<String>,
    /// Whether the record is known to come from the kernel, or known not to (the journal's
    /// `_TRANSPORT`, which no process can set); `None`: only the facility can tell.
    pub from_kernel: Option<bool>,
}

impl Envelope<'_> {
    /// Facility (PRI / 8).
    pub fn facility(&self) -> Option<u8> {
        self.pri.map(|p| p >> 3)
    }

    /// Whether a record tagged `kernel` may be the kernel's: only the kernel logs on
    /// facility 0 (kern), and a user's `logger -t kernel` is user.notice (syslog(3) turns
    /// facility 0 into the default), so what it says about segfaults, firewall verdicts or
    /// AppArmor denials is made up. A file line without PRI cannot tell.
    pub fn kernel_may_be(&self) -> bool {
        self.from_kernel
            .unwrap_or_else(|| self.facility().is_none_or(|f| f == 0))
    }

    /// Severity (PRI % 8).
    pub fn severity(&self) -> Option<u8> {
        self.pri.map(|p| p & 7)
    }
}

/// Syslog severity names, by number.
pub const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Splits the envelope off a line. Never fails: a line without one is [`Format::Plain`].
pub fn parse<'a>(line: &'a str, ctx: &TimeContext) -> Envelope<'a> {
    let b = line.as_bytes();
    if b.first() == Some(&b'<') {
        if let Some((pri, rest)) = parse_pri(b) {
            // "<PRI>1 " is RFC 5424 (a 1-3 digit version, a space, then a timestamp or
            // `-`); anything else after PRI is read as RFC 3164: `<13>42 drops on eth0` or
            // Cisco's `<189>52: *Mar  1 …` start with a number that is no version.
            let version = rest
                .iter()
                .take(4)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if (1..=3).contains(&version)
                && rest.get(version) == Some(&b' ')
                && rest
                    .get(version + 1)
                    .is_some_and(|&c| c.is_ascii_digit() || c == b'-')
                && !rfc3164::starts_with_timestamp(rest)
            {
                return rfc5424::parse(line, pri, b.len() - rest.len(), ctx);
            }
            let mut env = rfc3164::parse(&line[b.len() - rest.len()..], ctx, Format::Rfc3164);
            env.pri = Some(pri);
            return env;
        }
        // A '<' that is no PRI: an RFC 5424/3164 sender error, but the line is data.
        let mut env = rfc3164::parse(line, ctx, Format::File);
        if env.format == Some(Format::Plain) {
            env.error = Some("line starts with '<' but has no valid PRI".into());
        }
        return env;
    }
    rfc3164::parse(line, ctx, Format::File)
}

/// `<PRI>`: 1 to 3 digits, 0 to 191, no leading zero. Returns the value and the rest.
fn parse_pri(b: &[u8]) -> Option<(u8, &[u8])> {
    let end = b.iter().take(5).position(|&c| c == b'>')?;
    let digits = &b[1..end];
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    let v: u32 = digits.iter().fold(0, |a, &c| a * 10 + u32::from(c - b'0'));
    if v > 191 {
        return None;
    }
    Some((v as u8, &b[end + 1..]))
}

#[cfg(test)]
mod tests;
