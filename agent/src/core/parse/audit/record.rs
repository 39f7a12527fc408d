//! One raw auditd record: `[node=N ]type=T msg=audit(SEC.MS:SERIAL): k=v …`, its values
//! unquoted and hex-decoded where auditd encodes them.

use crate::core::text::Needle;

/// One audit record, values unquoted and hex-decoded where auditd encodes them.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// `node=`, when present.
    pub node: Option<String>,
    /// `type=` (name, or the number when only that was logged).
    pub rtype: String,
    /// Event time, ms since the epoch.
    pub time_ms: i64,
    /// The `SEC.MS` text.
    pub time_text: String,
    /// Event serial.
    pub serial: u64,
    /// Fields in order; `msg='…'` sub-fields of user-space records are flattened in.
    pub fields: Vec<(String, String)>,
}

impl AuditRecord {
    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

pub(super) fn audit_type_name(t: &str) -> &str {
    // Kernel messages through syslog carry the number.
    match t {
        "1300" => "SYSCALL",
        "1302" => "PATH",
        "1307" => "CWD",
        "1309" => "EXECVE",
        "1327" => "PROCTITLE",
        "1100" => "USER_AUTH",
        "1101" => "USER_ACCT",
        "1112" => "USER_LOGIN",
        "1113" => "USER_LOGOUT",
        "1006" => "LOGIN",
        "1320" => "EOE",
        "1400" => "AVC",
        "1306" => "SOCKADDR",
        _ => t,
    }
}

/// Splits a record body into fields; `msg='…'` is flattened.
fn fields(body: &str, execve: bool, out: &mut Vec<(String, String)>) {
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == 0x1d) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            // A word without `=` (`avc:  denied  { read }`): keep it positionally.
            if i > ks {
                out.push((format!("_{}", out.len()), body[ks..i].to_owned()));
            }
            continue;
        }
        // Old user-space records wrap the tail in parentheses:
        // `msg='PAM: accounting acct=root : exe="/usr/sbin/crond" (hostname=?, addr=?, terminal=cron res=success)'`.
        let key = body[ks..i].trim_start_matches('(');
        i += 1;
        let (val, next) = match b.get(i) {
            // A user-space record's `msg='…'` holds fields whose values auditd does not
            // encode for a `'` (a cwd `/tmp/it's`, an account `adm'in`): it ends at its last
            // `'`, before the enriched fields' 0x1d separator, not at its first.
            Some(b'\'') if key == "msg" => {
                let limit = memchr::memchr(0x1d, &b[i + 1..]).map_or(b.len(), |p| i + 1 + p);
                let end = memchr::memrchr(b'\'', &b[i + 1..limit]).map_or(limit, |p| i + 1 + p);
                (&body[i + 1..end], (end + 1).min(b.len()))
            }
            Some(&q @ (b'"' | b'\'')) => {
                let end = memchr::memchr(q, &b[i + 1..]).map_or(b.len(), |p| i + 1 + p);
                (&body[i + 1..end], (end + 1).min(b.len()))
            }
            Some(b'{') => {
                let end = memchr::memchr(b'}', &b[i..]).map_or(b.len(), |p| i + p + 1);
                (&body[i..end], end)
            }
            _ => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b' ' || c == 0x1d)
                    .map_or(b.len(), |p| i + p);
                let v = body[i..end].trim_end_matches(',');
                // `res=success)` closes the old parenthesized tail; `(null)` is a value.
                let v = if v.contains('(') {
                    v
                } else {
                    v.strip_suffix(')').unwrap_or(v)
                };
                (v, end)
            }
        };
        let quoted = matches!(b.get(i), Some(b'"'));
        if key == "msg" && matches!(b.get(i), Some(b'\'')) {
            fields(val, execve, out);
        } else if execve && key.ends_with(']') {
            // A piece of a long argument (`a1[0]=…`): kept as written, its quotes too, to
            // be joined with the others first; hex is decoded once, whole, since a
            // character may be split between pieces.
            out.push((
                key.to_owned(),
                if quoted {
                    format!("\"{val}\"")
                } else {
                    val.to_owned()
                },
            ));
        } else if !quoted && is_hex_encoded(key, val, execve) {
            out.push((key.to_owned(), decode_hex(val)));
        } else {
            out.push((key.to_owned(), val.to_owned()));
        }
        i = next;
    }
}

/// auditd hex-encodes a string field (unquoted) when it holds spaces, quotes or control
/// characters; numbers like `arch=c000003e` are never string fields.
fn is_hex_encoded(key: &str, v: &str, execve: bool) -> bool {
    let stringy = matches!(
        key,
        "proctitle" | "name" | "cwd" | "comm" | "exe" | "cmd" | "data" | "acct" | "path"
    ) || (execve
        && key.starts_with('a')
        && key[1..]
            .split('[')
            .next()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())));
    stringy
        && v.len() >= 2
        && v.len().is_multiple_of(2)
        && v.bytes().all(|c| c.is_ascii_hexdigit())
        && v != "(null)"
}

/// Decodes auditd's hex. NULs separate a proctitle's arguments: they become spaces, and
/// the trailing ones go; every other byte is kept, trailing blanks too (`/tmp/sshd ` is
/// not `/tmp/sshd`).
pub(super) fn decode_hex(v: &str) -> String {
    let mut bytes: Vec<u8> = (0..v.len() & !1)
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&v[i..i + 2], 16).ok())
        .collect();
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    for c in &mut bytes {
        if *c == 0 {
            *c = b' ';
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Parses one raw record (without syslog envelope).
pub fn parse_record(line: &str) -> Result<AuditRecord, String> {
    let mut s = line.strip_prefix("audit: ").unwrap_or(line).trim_start();
    let mut node = None;
    if let Some(rest) = s.strip_prefix("node=") {
        let (n, r) = rest.split_once(' ').ok_or("audit: nothing after node=")?;
        node = Some(n.to_owned());
        s = r.trim_start();
    }
    let rest = s.strip_prefix("type=").ok_or("audit: no type=")?;
    let (rtype, rest) = rest.split_once(' ').ok_or("audit: nothing after type=")?;
    static OPEN: Needle = Needle::new("audit(");
    static CLOSE: Needle = Needle::new("):");
    let open = OPEN.find(rest).ok_or("audit: no audit(TIME:SERIAL)")?;
    let close = CLOSE
        .find(&rest[open..])
        .map(|p| open + p)
        .ok_or("audit: unterminated audit(")?;
    let stamp = &rest[open + 6..close];
    let (time_text, serial) = stamp.split_once(':').ok_or("audit: no serial in audit()")?;
    let serial: u64 = serial
        .parse()
        .map_err(|_| format!("audit: bad serial {serial:?}"))?;
    let (sec, frac) = time_text.split_once('.').unwrap_or((time_text, "0"));
    let sec: i64 = sec
        .parse()
        .map_err(|_| format!("audit: bad time {time_text:?}"))?;
    let ms: i64 = millis(frac);
    // Records hold a dozen to a few dozen fields: one allocation, not a doubling series.
    let mut f = Vec::with_capacity(32);
    let rtype = audit_type_name(rtype);
    fields(&rest[close + 2..], rtype == "EXECVE", &mut f);
    Ok(AuditRecord {
        node,
        rtype: rtype.to_owned(),
        time_ms: epoch_ms(sec, ms)
            .ok_or_else(|| format!("audit: time {time_text:?} out of range"))?,
        time_text: time_text.to_owned(),
        serial,
        fields: f,
    })
}

/// The milliseconds of a fraction of a second written as digits (`394` → 394, `5` → 500).
pub(super) fn millis(frac: &str) -> i64 {
    frac.chars()
        .chain(std::iter::repeat('0'))
        .take(3)
        .try_fold(0i64, |a, c| c.to_digit(10).map(|d| a * 10 + i64::from(d)))
        .unwrap_or(0)
}

/// `sec` seconds and `ms` milliseconds since the epoch, in ms; `None` past i64 (a forged or
/// corrupt stamp must not wrap around into a plausible time).
pub(super) fn epoch_ms(sec: i64, ms: i64) -> Option<i64> {
    sec.checked_mul(1000)?.checked_add(ms)
}
