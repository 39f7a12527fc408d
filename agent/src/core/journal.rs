//! systemd journal entries as `journalctl --output=json` prints them: one JSON object per
//! line, every value a string, or an array of bytes when the value is not valid UTF-8 (or
//! holds control characters), or null when it is too large.
//!
//! The entry's syslog-like fields become an [`Envelope`], so journal messages go through
//! the same message parsers as syslog lines (sshd, sudo, pam … log to the journal on
//! current Debian and RHEL hosts).

use std::borrow::Cow;

use serde::Deserialize;

use super::envelope::{Envelope, Format};
use super::time::Instant;

/// A journal value: a string, bytes, several values, or absent.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Value<'a> {
    /// Valid UTF-8.
    #[serde(borrow)]
    Text(Cow<'a, str>),
    /// Anything else, as bytes.
    Bytes(Vec<u8>),
    /// A field the entry holds more than once (journalctl prints an array of its values:
    /// a sender may log `MESSAGE` twice). The first is read; the line keeps them all.
    #[serde(borrow)]
    Many(Vec<Self>),
    /// Too large to print (`journalctl --all` lifts that).
    Null,
}

impl Value<'_> {
    /// The value as text (bytes decoded lossily).
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Text(s) => Some(Cow::Borrowed(s)),
            Self::Bytes(b) => Some(String::from_utf8_lossy(b)),
            Self::Many(v) => v.first().and_then(Value::text),
            Self::Null => None,
        }
    }

    /// The value when it is text (the first, when there are several).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            Self::Bytes(b) => std::str::from_utf8(b).ok(),
            Self::Many(v) => v.first().and_then(Value::as_str),
            Self::Null => None,
        }
    }
}

/// [`Value::as_str`] of an optional field.
pub fn str_of<'v>(v: &'v Option<Value<'_>>) -> Option<&'v str> {
    v.as_ref().and_then(Value::as_str)
}

/// The fields of an entry that Vedette reads.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case, reason = "the journal's own field names")]
pub struct Entry<'a> {
    /// Where the entry is in the journal; resuming after it reads what follows.
    #[serde(borrow)]
    pub __CURSOR: Option<Value<'a>>,
    /// Microseconds since the epoch, when the journal received the entry.
    #[serde(borrow)]
    pub __REALTIME_TIMESTAMP: Option<Value<'a>>,
    /// The sender's time, when it passed one (µs since the epoch).
    #[serde(borrow)]
    pub _SOURCE_REALTIME_TIMESTAMP: Option<Value<'a>>,
    /// Host.
    #[serde(borrow)]
    pub _HOSTNAME: Option<Value<'a>>,
    /// The syslog tag (program).
    #[serde(borrow)]
    pub SYSLOG_IDENTIFIER: Option<Value<'a>>,
    /// The PID the sender claimed (syslog).
    #[serde(borrow)]
    pub SYSLOG_PID: Option<Value<'a>>,
    /// The sender's PID as the kernel saw it (trusted).
    #[serde(borrow)]
    pub _PID: Option<Value<'a>>,
    /// The sender's command name (trusted).
    #[serde(borrow)]
    pub _COMM: Option<Value<'a>>,
    /// The sender's executable (trusted).
    #[serde(borrow)]
    pub _EXE: Option<Value<'a>>,
    /// The sender's user id (trusted).
    #[serde(borrow)]
    pub _UID: Option<Value<'a>>,
    /// The systemd unit (trusted).
    #[serde(borrow)]
    pub _SYSTEMD_UNIT: Option<Value<'a>>,
    /// How the entry reached the journal (`syslog`, `journal`, `stdout`, `kernel`, `audit`).
    #[serde(borrow)]
    pub _TRANSPORT: Option<Value<'a>>,
    /// The message.
    #[serde(borrow)]
    pub MESSAGE: Option<Value<'a>>,
    /// Syslog severity 0-7.
    #[serde(borrow)]
    pub PRIORITY: Option<Value<'a>>,
    /// Syslog facility.
    #[serde(borrow)]
    pub SYSLOG_FACILITY: Option<Value<'a>>,
}

/// Parses one `journalctl --output=json` line.
pub fn parse(line: &str) -> Result<Entry<'_>, String> {
    serde_json::from_str(line)
        .map_err(|e| format!("journal entry is not the JSON journalctl prints: {e}"))
}

/// The entry's position for uids and checkpoints, from its cursor: the journal file's
/// sequence-number id (`s=`) keys the source, the sequence number (`i=`) is the position.
/// Both survive a re-read after a crash, so a repeated entry keeps its uid.
pub fn position(cursor: &str) -> Option<(&str, u64)> {
    let mut seqnum_id = None;
    let mut seqnum = None;
    for part in cursor.split(';') {
        if let Some(s) = part.strip_prefix("s=") {
            seqnum_id = Some(s);
        } else if let Some(i) = part.strip_prefix("i=") {
            seqnum = u64::from_str_radix(i, 16).ok();
        }
    }
    Some((seqnum_id?, seqnum?))
}

/// Owned text of the fields the envelope borrows.
#[derive(Debug, Default)]
pub struct EnvelopeText {
    app: Option<String>,
    msg: String,
    timestamp: Option<String>,
}

impl EnvelopeText {
    /// Cuts the message to at most `max` bytes (on a character boundary); its length
    /// before, when it was longer.
    pub fn cut_message(&mut self, max: usize) -> Option<usize> {
        let len = self.msg.len();
        (len > max).then(|| {
            let at = self.msg.floor_char_boundary(max);
            self.msg.truncate(at);
            len
        })
    }
}

impl Entry<'_> {
    /// The text the envelope will borrow (identifier and message may be bytes).
    pub fn text(&self) -> EnvelopeText {
        EnvelopeText {
            app: self
                .SYSLOG_IDENTIFIER
                .as_ref()
                .or(self._COMM.as_ref())
                .and_then(Value::text)
                .map(Cow::into_owned),
            msg: self
                .MESSAGE
                .as_ref()
                .and_then(Value::text)
                .map(Cow::into_owned)
                .unwrap_or_default(),
            timestamp: str_of(&self._SOURCE_REALTIME_TIMESTAMP)
                .or(str_of(&self.__REALTIME_TIMESTAMP))
                .map(str::to_owned),
        }
    }

    /// The entry as a syslog envelope over `text` (from [`Entry::text`]).
    pub fn envelope<'t>(&'t self, text: &'t EnvelopeText) -> Envelope<'t> {
        let time = text
            .timestamp
            .as_deref()
            .and_then(|us| us.parse::<i64>().ok())
            .map(|us| Instant {
                ms: us.div_euclid(1000),
                offset_min: 0,
            });
        let severity = str_of(&self.PRIORITY).and_then(|p| p.parse::<u8>().ok());
        let facility = str_of(&self.SYSLOG_FACILITY)
            .and_then(|f| f.parse::<u8>().ok())
            // Entries logged through the journal API carry no facility: user-level.
            .or(severity.map(|_| 1));
        let pri = match (facility, severity) {
            (Some(f), Some(s)) if f < 24 && s < 8 => Some(f * 8 + s),
            _ => None,
        };
        let mut error = None;
        if time.is_none() {
            error = Some("journal entry without a usable timestamp".to_owned());
        }
        Envelope {
            format: Some(Format::Journal),
            pri,
            version: None,
            timestamp: text.timestamp.as_deref(),
            time,
            hostname: str_of(&self._HOSTNAME),
            app: text.app.as_deref(),
            procid: str_of(&self._PID).or(str_of(&self.SYSLOG_PID)),
            msgid: None,
            sd: Vec::new(),
            msg: &text.msg,
            error,
            // Only the kernel's transport is the kernel's: `SYSLOG_FACILITY=0` is a field
            // any process may send through the journal API or /dev/log.
            from_kernel: Some(str_of(&self._TRANSPORT) == Some("kernel")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"_EXE":"/usr/sbin/sshd","_HOSTNAME":"web-1","SYSLOG_IDENTIFIER":"sshd","__CURSOR":"s=034a6dcf4db44001aae914e020517a00;i=1a;b=0123;m=f4240;t=62bbbbd980800;x=74ef","PRIORITY":"5","_PID":"123","_COMM":"sshd","MESSAGE":"Failed password for root from 203.0.113.9 port 50000 ssh2","__REALTIME_TIMESTAMP":"1736935200123456","SYSLOG_FACILITY":"10"}"#;

    #[test]
    fn an_entry_becomes_an_envelope() {
        let e = parse(LINE).unwrap();
        let t = e.text();
        let env = e.envelope(&t);
        assert_eq!(env.app, Some("sshd"));
        assert_eq!(env.procid, Some("123"));
        assert_eq!(env.hostname, Some("web-1"));
        assert_eq!(env.pri, Some(10 * 8 + 5));
        assert_eq!(env.time.map(|t| t.ms), Some(1_736_935_200_123));
        assert!(env.msg.starts_with("Failed password"));
        assert_eq!(
            position(str_of(&e.__CURSOR).unwrap()),
            Some(("034a6dcf4db44001aae914e020517a00", 0x1a))
        );
    }

    #[test]
    fn byte_array_messages_are_decoded_and_null_is_empty() {
        let e = parse(r#"{"MESSAGE":[104,105,255],"SYSLOG_IDENTIFIER":null,"_COMM":"x","__REALTIME_TIMESTAMP":"1"}"#).unwrap();
        let t = e.text();
        let env = e.envelope(&t);
        assert_eq!(env.msg, "hi\u{fffd}");
        assert_eq!(env.app, Some("x"));
    }

    /// A field the entry holds twice is an array of its values in journalctl's JSON; the
    /// entry failed to parse and became a raw event without host, program or message.
    #[test]
    fn repeated_fields_are_read_by_their_first_value() {
        let e = parse(r#"{"MESSAGE":["Failed password for root from 203.0.113.9 port 1 ssh2","again"],"_HOSTNAME":["web-1","web-1"],"SYSLOG_IDENTIFIER":["sshd",[120]],"PRIORITY":"5","__REALTIME_TIMESTAMP":"1736935200123456"}"#).unwrap();
        let t = e.text();
        let env = e.envelope(&t);
        assert_eq!(
            env.msg,
            "Failed password for root from 203.0.113.9 port 1 ssh2"
        );
        assert_eq!(env.hostname, Some("web-1"));
        assert_eq!(env.app, Some("sshd"));
    }

    #[test]
    fn not_json_is_an_error_not_a_panic() {
        assert!(parse("-- cursor: s=1").is_err());
        assert!(parse(r#"{"MESSAGE":{}}"#).is_err());
    }
}
