//! Linux audit: raw auditd records (`[node=N ]type=T msg=audit(SEC.MS:SERIAL): k=v …`, also
//! forwarded through syslog) and laurel's JSON lines, joined per event id into one event.
//!
//! An event is complete at its `EOE` record; at a record of a later event id once the gap
//! exceeds a small reorder window (auditd interleaves the records of neighbouring events,
//! see auparse's test3.log) or the later record is more than the timeout younger; after
//! the timeout in the caller's clock ([`Joiner::expire`]); or at end of input. Records the
//! kernel never joins (user-space `USER_*`, `CRED_*`, `ADD_*` …) complete at once.

use serde_json::{Map, Value};
use vedette_schemas::ocsf::{
    Actor, Class, Endpoint, Event, File, Process, Service, Session, Status, User,
};

use super::{Parsed, UNKNOWN_USER, auth, code, set_class};
use crate::core::normalize::Record as Input;
use crate::core::text::basename;

/// Serials further apart than this are not interleaved: the older event is complete.
const REORDER_WINDOW: u64 = 16;
/// At most this many events wait for records; past it the oldest is completed.
const MAX_OPEN: usize = 1024;

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
    fn get(&self, k: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a message (after any syslog envelope, program `app`) is an audit record.
pub fn is_audit_record(app: &str, msg: &str) -> bool {
    let m = msg.strip_prefix("audit: ").unwrap_or(msg);
    (m.starts_with("type=") || m.starts_with("node="))
        && m.contains("audit(")
        && (app.is_empty()
            || matches!(
                app,
                "audit" | "auditd" | "audispd" | "audisp-syslog" | "kernel" | "audit-forwarder"
            )
            || m.starts_with("node=")
            || m.starts_with("type="))
}

fn audit_type_name(t: &str) -> &str {
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

fn decode_hex(v: &str) -> String {
    let bytes: Vec<u8> = (0..v.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&v[i..i + 2], 16).ok())
        .map(|c| if c == 0 { b' ' } else { c })
        .collect();
    String::from_utf8_lossy(&bytes).trim_end().to_owned()
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
    let open = rest.find("audit(").ok_or("audit: no audit(TIME:SERIAL)")?;
    let close = rest[open..]
        .find("):")
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
    let mut f = Vec::new();
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

/// Types that user space writes as one self-contained record.
fn standalone(t: &str) -> bool {
    t.starts_with("USER_")
        || t.starts_with("CRED_")
        || t.starts_with("ADD_")
        || t.starts_with("DEL_")
        || t.starts_with("DAEMON_")
        || t.starts_with("SERVICE_")
        || t.starts_with("SYSTEM_")
        || t.starts_with("ACCT_")
        || t.starts_with("GRP_")
        || t.starts_with("ANOM_LOGIN")
        || matches!(t, "USYS_CONFIG" | "CHGRP_ID" | "CHUSER_ID")
}

#[derive(Debug)]
struct Open {
    source: String,
    node: Option<String>,
    serial: u64,
    time_ms: i64,
    last_seen: i64,
    base: Box<Event>,
    raw: Vec<String>,
    records: Vec<AuditRecord>,
}

/// Joins records into events. See the module docs for when an event is complete.
#[derive(Debug)]
pub struct Joiner {
    timeout_ms: i64,
    open: Vec<Open>,
}

impl Joiner {
    /// A joiner that completes events `timeout_ms` after their last record.
    pub fn new(timeout_ms: i64) -> Self {
        Self {
            timeout_ms,
            open: Vec::new(),
        }
    }

    /// When the oldest open event times out.
    pub fn poll_timeout(&self) -> Option<i64> {
        self.open
            .iter()
            .map(|o| o.last_seen + self.timeout_ms)
            .min()
    }

    /// Completes the events whose timeout passed.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Box<Event>> {
        let t = self.timeout_ms;
        self.take_where(|o| o.last_seen + t <= now_ms)
    }

    /// Completes every open event, oldest first.
    pub fn drain(&mut self) -> Vec<Box<Event>> {
        self.take_where(|_| true)
    }

    fn take_where(&mut self, mut pred: impl FnMut(&Open) -> bool) -> Vec<Box<Event>> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.open.len() {
            if pred(&self.open[i]) {
                done.push(build(self.open.remove(i)));
            } else {
                i += 1;
            }
        }
        done
    }

    /// Takes one record (`msg`, already without syslog envelope) with the Base Event its line
    /// became; returns the events this completes.
    pub(crate) fn handle_record(
        &mut self,
        rec: &Input<'_>,
        msg: &str,
        base: Box<Event>,
    ) -> Vec<Box<Event>> {
        let raw = base.raw_data.as_deref().unwrap_or_default().to_owned();
        let r = match parse_record(msg) {
            Ok(r) => r,
            Err(why) => {
                let mut ev = base;
                code(&mut ev, "auditd", "auditd.malformed");
                ev.note_parse_error(why);
                return vec![ev];
            }
        };
        let source = rec.src.id.clone();
        let node = r.node.clone();
        let (serial, time_ms) = (r.serial, r.time_ms);
        let pos = self
            .open
            .iter()
            .position(|o| o.serial == serial && o.node == node && o.source == source);
        let mut done = Vec::new();
        if r.rtype == "EOE" {
            match pos {
                Some(p) => done.push(build(self.open.remove(p))),
                None => {
                    // An end marker for an event already completed (or never seen): say so.
                    let mut ev = base;
                    code(&mut ev, "auditd", "auditd.eoe_without_event");
                    done.push(ev);
                }
            }
            return done;
        }
        match pos {
            Some(p) => {
                let o = &mut self.open[p];
                o.records.push(r);
                o.raw.push(raw);
                o.last_seen = rec.now_ms;
            }
            None => {
                let alone = standalone(&r.rtype);
                let o = Open {
                    source: source.clone(),
                    node: node.clone(),
                    serial,
                    time_ms,
                    last_seen: rec.now_ms,
                    base,
                    raw: vec![raw],
                    records: vec![r],
                };
                if alone {
                    done.push(build(o));
                } else {
                    self.open.push(o);
                }
            }
        }
        let t = self.timeout_ms;
        let due = |o: &Open| {
            o.source == source
                && o.node == node
                && (o.serial + REORDER_WINDOW < serial || o.time_ms + t < time_ms)
        };
        // Events open in arrival order, so the oldest is first: when it is not due, none of
        // the same source usually is, and the scan is skipped.
        if self.open.first().is_some_and(due) || self.open.len() > 2 * REORDER_WINDOW as usize {
            done.extend(self.take_where(due));
        }
        while self.open.len() > MAX_OPEN {
            done.push(build(self.open.remove(0)));
        }
        done
    }
}

/// Parses a laurel JSON line (one whole event) into records; `None` when it is not laurel.
pub fn laurel_records(v: &Value) -> Option<Vec<AuditRecord>> {
    let obj = v.as_object()?;
    let id = obj.get("ID")?.as_str()?;
    let (time_text, serial) = id.split_once(':')?;
    let serial: u64 = serial.parse().ok()?;
    let (sec, frac) = time_text.split_once('.').unwrap_or((time_text, "0"));
    let time_ms = epoch_ms(sec.parse().ok()?, millis(frac))?;
    let node = obj.get("NODE").and_then(Value::as_str).map(str::to_owned);
    let mut out = Vec::new();
    for (rtype, body) in obj {
        if rtype == "ID" || rtype == "NODE" {
            continue;
        }
        let bodies: Vec<&Value> = match body {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for b in bodies {
            let Some(map) = b.as_object() else { continue };
            let mut fields = Vec::new();
            for (k, val) in map {
                match (k.as_str(), val) {
                    ("ARGV", Value::Array(args)) if rtype == "EXECVE" || rtype == "PROCTITLE" => {
                        for (i, a) in args.iter().enumerate() {
                            fields.push((format!("a{i}"), scalar(a)));
                        }
                        if rtype == "PROCTITLE" {
                            let t: Vec<String> = args.iter().map(scalar).collect();
                            fields.push(("proctitle".into(), t.join(" ")));
                        }
                    }
                    ("PPID", Value::Object(p)) => {
                        for (pk, pv) in p {
                            fields.push((format!("parent_{pk}"), scalar(pv)));
                        }
                    }
                    (_, Value::Object(_) | Value::Array(_)) => {
                        fields.push((k.clone(), val.to_string()));
                    }
                    _ => fields.push((k.clone(), scalar(val))),
                }
            }
            out.push(AuditRecord {
                node: node.clone(),
                rtype: rtype.clone(),
                time_ms,
                time_text: time_text.to_owned(),
                serial,
                fields,
            });
        }
    }
    Some(out)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Builds the event of a laurel line (the line's Base Event refined).
pub(crate) fn laurel_event(records: Vec<AuditRecord>, base: Event) -> Event {
    let first = records.first().map_or(0, |r| r.serial);
    let time = records.first().map_or(base.time, |r| r.time_ms);
    let mut ev = build(Open {
        source: String::new(),
        node: records.first().and_then(|r| r.node.clone()),
        serial: first,
        time_ms: time,
        last_seen: 0,
        raw: vec![base.raw_data.as_deref().unwrap_or_default().to_owned()],
        base: Box::new(base),
        records,
    });
    ev.metadata.log_name = Some("laurel".into());
    *ev
}

fn num(v: Option<&str>) -> Option<i64> {
    let v = v?;
    v.parse().ok().or_else(|| {
        v.strip_prefix("0x")
            .and_then(|h| i64::from_str_radix(h, 16).ok())
    })
}

/// An id that means "unset" (auid 4294967295 / -1).
fn unset(v: Option<i64>) -> Option<i64> {
    v.filter(|&x| x != 4_294_967_295 && x != -1)
}

fn user_of(uid: Option<&str>, name: Option<&str>) -> Option<User> {
    let name =
        name.filter(|n| !n.is_empty() && *n != "?" && *n != "unset" && !n.starts_with("unknown("));
    let uid = uid.filter(|u| *u != "4294967295" && *u != "-1");
    (uid.is_some() || name.is_some()).then(|| User {
        uid: uid.map(|s| s.to_owned().into()),
        name: name.map(|s| s.to_owned().into()),
        ..User::default()
    })
}

const EXECVE_X86_64: &str = "59";

fn syscall_name(r: &AuditRecord) -> Option<String> {
    if let Some(n) = r.get("SYSCALL") {
        return Some(n.to_owned());
    }
    let nr = r.get("syscall")?;
    let x86_64 = matches!(r.get("arch"), Some("c000003e" | "0xc000003e") | None);
    if !x86_64 {
        return None;
    }
    Some(
        match nr {
            "2" => "open",
            "257" => "openat",
            "85" => "creat",
            "87" => "unlink",
            "263" => "unlinkat",
            "84" => "rmdir",
            "82" => "rename",
            "264" => "renameat",
            "316" => "renameat2",
            "90" => "chmod",
            "91" => "fchmod",
            "268" => "fchmodat",
            "92" => "chown",
            "260" => "fchownat",
            "83" => "mkdir",
            "258" => "mkdirat",
            "76" => "truncate",
            "188" => "setxattr",
            "86" => "link",
            "88" => "symlink",
            "59" => "execve",
            "322" => "execveat",
            _ => return None,
        }
        .to_owned(),
    )
}

fn file_activity(syscall: &str) -> u8 {
    match syscall {
        "creat" | "mkdir" | "mkdirat" | "link" | "symlink" => 1,
        "unlink" | "unlinkat" | "rmdir" => 4,
        "rename" | "renameat" | "renameat2" => 5,
        "chmod" | "fchmod" | "fchmodat" | "chown" | "fchownat" | "setxattr" => 6,
        "truncate" => 3,
        "open" | "openat" => 14,
        _ => 99,
    }
}

fn build(o: Open) -> Box<Event> {
    let Open {
        node,
        serial,
        base,
        raw,
        records,
        time_ms,
        ..
    } = o;
    let mut ev = base;
    ev.time = time_ms;
    ev.timezone_offset = Some(0);
    ev.metadata.original_time = records.first().map(|r| r.time_text.clone().into());
    ev.raw_data = Some(raw.join("\n").into());
    if ev.metadata.log_name.as_deref() != Some("laurel") {
        ev.metadata.log_name = Some("auditd".into());
    }
    if let Some(n) = &node
        && let Some(d) = ev.device.as_mut()
    {
        d.hostname = Some(n.clone().into());
        d.ip = crate::core::text::is_ip(n).then(|| n.clone().into());
    }
    // Everything, typed or not, stays under unmapped.auditd.
    let mut audit = Map::new();
    audit.insert("serial".into(), Value::from(serial));
    if let Some(n) = &node {
        audit.insert("node".into(), Value::from(n.clone()));
    }
    audit.insert(
        "records".into(),
        Value::Array(
            records
                .iter()
                .map(|r| Value::from(r.rtype.clone()))
                .collect(),
        ),
    );
    for r in &records {
        let m: Map<String, Value> = r
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        match audit.get_mut(&r.rtype) {
            Some(Value::Array(a)) => a.push(Value::Object(m)),
            Some(existing) => {
                let prev = existing.take();
                *existing = Value::Array(vec![prev, Value::Object(m)]);
            }
            None => {
                audit.insert(r.rtype.clone(), Value::Object(m));
            }
        }
    }
    let find = |t: &str| records.iter().find(|r| r.rtype == t);
    let syscall = find("SYSCALL");
    if let Some(sc) = syscall {
        if let Some(n) = syscall_name(sc) {
            audit.insert("syscall".into(), Value::from(n));
        }
        if let Some(k) = sc.get("key").filter(|k| *k != "(null)" && !k.is_empty()) {
            audit.insert("key".into(), Value::from(k));
        }
    }
    ev.unmapped_mut()
        .other
        .insert("auditd".into(), Value::Object(audit));
    let log_name = if ev.metadata.log_name.as_deref() == Some("laurel") {
        "laurel"
    } else {
        "auditd"
    };
    code(
        &mut ev,
        log_name,
        format!(
            "auditd.{}",
            records
                .first()
                .map_or("unknown".to_owned(), |r| r.rtype.to_ascii_lowercase())
        ),
    );

    let execve = find("EXECVE");
    let sc_name = syscall.and_then(syscall_name);
    let is_exec = execve.is_some()
        || syscall.and_then(|s| s.get("syscall")) == Some(EXECVE_X86_64)
        || sc_name.as_deref() == Some("execve");
    let status = match syscall.and_then(|s| s.get("success")) {
        Some("yes") => Status::Success,
        Some("no") => Status::Failure,
        _ => Status::Unknown,
    };
    if let (Some(sc), true) = (syscall, is_exec) {
        set_class(&mut ev, Class::ProcessActivity, 1, status);
        code(&mut ev, "auditd", "auditd.execve");
        let mut p = process_of(sc);
        if let Some(ex) = execve {
            let argc = num(ex.get("argc")).unwrap_or(0).max(0) as usize;
            let mut args = Vec::with_capacity(argc);
            for i in 0..argc.max(1) {
                let key = format!("a{i}");
                if let Some(a) = ex.get(&key) {
                    args.push(a.to_owned());
                } else {
                    // Long arguments come in pieces: a1_len=N a1[0]=… a1[1]=…
                    let mut joined = String::new();
                    let mut k = 0;
                    while let Some(part) = ex.get(&format!("a{i}[{k}]")) {
                        joined.push_str(part);
                        k += 1;
                    }
                    if k > 0 {
                        args.push(joined);
                    } else if i < argc {
                        ev.note_parse_error(format!("auditd: EXECVE argument a{i} missing"));
                    }
                }
            }
            if !args.is_empty() {
                p.cmd_line = Some(args.join(" ").into());
            }
        } else if let Some(t) = find("PROCTITLE").and_then(|r| r.get("proctitle")) {
            p.cmd_line = Some(t.to_owned().into());
        }
        if let Some(cwd) = find("CWD").and_then(|r| r.get("cwd")) {
            p.working_directory = Some(cwd.to_owned().into());
        }
        let actor = Actor {
            user: user_of(
                unset(num(sc.get("auid"))).map(|a| a.to_string()).as_deref(),
                sc.get("AUID"),
            ),
            process: p.parent_process.clone(),
            ..Actor::default()
        };
        ev.actor = Some(actor)
            .filter(|a| a.user.is_some() || a.process.is_some())
            .or_else(|| {
                Some(Actor {
                    user: p.user.clone(),
                    ..Actor::default()
                })
            });
        ev.process = Some(Box::new(p));
        return ev;
    }
    if let Some(sc) = syscall {
        let paths: Vec<&AuditRecord> = records.iter().filter(|r| r.rtype == "PATH").collect();
        let target = paths
            .iter()
            .find(|r| matches!(r.get("nametype"), Some("DELETE" | "CREATE" | "NORMAL")))
            .or(paths.first());
        if let Some(path) = target
            .and_then(|r| r.get("name"))
            .filter(|n| *n != "(null)")
        {
            let activity = sc_name.as_deref().map_or(99, file_activity);
            set_class(&mut ev, Class::FileActivity, activity, status);
            code(
                &mut ev,
                "auditd",
                format!("auditd.{}", sc_name.as_deref().unwrap_or("file")),
            );
            let cwd = find("CWD").and_then(|r| r.get("cwd"));
            let full = if path.starts_with('/') || cwd.is_none() {
                path.to_owned()
            } else {
                format!("{}/{}", cwd.unwrap_or("").trim_end_matches('/'), path)
            };
            let is_dir = target
                .and_then(|r| r.get("mode"))
                .is_some_and(|m| m.trim_start_matches("0o").starts_with("04"));
            ev.file = Some(Box::new(File {
                // `/` alone has no last component: the name is the path.
                name: Some(
                    Some(basename(&full))
                        .filter(|n| !n.is_empty())
                        .unwrap_or(&full)
                        .to_owned()
                        .into(),
                ),
                path: Some(full.into()),
                type_id: Some(if is_dir { 2 } else { 1 }),
                r#type: Some(if is_dir { "Folder" } else { "Regular File" }.into()),
                uid: target
                    .and_then(|r| r.get("inode"))
                    .map(|s| s.to_owned().into()),
                ..File::default()
            }));
            let p = process_of(sc);
            ev.actor = Some(Actor {
                user: user_of(
                    unset(num(sc.get("auid"))).map(|a| a.to_string()).as_deref(),
                    sc.get("AUID"),
                )
                .or_else(|| p.user.clone()),
                process: Some(Box::new(p)),
                ..Actor::default()
            });
            return ev;
        }
        // A syscall without a path: the process that made it is still worth having.
        let p = process_of(sc);
        ev.actor = Some(Actor {
            user: p.user.clone(),
            process: Some(Box::new(p)),
            ..Actor::default()
        });
        return ev;
    }
    let Some(first) = records.first() else {
        return ev;
    };
    let res = first.get("res").map(|r| r.to_ascii_lowercase());
    let st = match res.as_deref() {
        Some("success" | "yes" | "1") => Status::Success,
        Some("failed" | "no" | "0" | "fail") => Status::Failure,
        _ => Status::Unknown,
    };
    let acct = first
        .get("acct")
        .or_else(|| first.get("id"))
        .filter(|a| !a.is_empty() && *a != "?");
    match first.rtype.as_str() {
        "USER_AUTH" | "USER_LOGIN" | "USER_LOGOUT" | "USER_ERR" | "USER_START" | "USER_END" => {
            let activity = if matches!(first.rtype.as_str(), "USER_LOGOUT" | "USER_END") {
                2
            } else {
                1
            };
            let svc = first
                .get("exe")
                .map(basename)
                .unwrap_or("auditd")
                .to_owned();
            auth(&mut ev, activity, st, &svc, acct);
            if ev.user.as_ref().and_then(|u| u.name.as_deref()) == Some(UNKNOWN_USER)
                && let Some(u) = user_of(first.get("id").or_else(|| first.get("uid")), None)
            {
                ev.user = Some(u);
            }
            code(
                &mut ev,
                "auditd",
                format!("auditd.{}", first.rtype.to_ascii_lowercase()),
            );
            ev.service = Some(Service {
                name: Some(svc.into()),
            });
            if let Some(addr) = first.get("addr").filter(|a| crate::core::text::is_ip(a)) {
                ev.src_endpoint = Some(Endpoint::ip(addr, None));
                ev.is_remote = Some(true);
            } else if let Some(h) = first.get("hostname").filter(|h| !h.is_empty() && *h != "?") {
                ev.src_endpoint = Some(Endpoint {
                    hostname: Some(h.to_owned().into()),
                    ..Endpoint::default()
                });
            }
            if let Some(op) = first.get("op") {
                ev.status_detail = Some(op.to_owned().into());
            }
            if let Some(t) = first.get("terminal") {
                ev.unmapped_set("auditd", "terminal", t.to_owned());
            }
        }
        "ADD_USER" | "DEL_USER" | "USER_CHAUTHTOK" | "ACCT_LOCK" | "ACCT_UNLOCK" | "USER_MGMT" => {
            if let Some(a) = acct {
                let activity = match first.rtype.as_str() {
                    "ADD_USER" => 1,
                    "DEL_USER" => 6,
                    "USER_CHAUTHTOK" => 3,
                    "ACCT_LOCK" => 9,
                    "ACCT_UNLOCK" => 12,
                    _ => 99,
                };
                set_class(&mut ev, Class::AccountChange, activity, st);
                ev.user = Some(User::named(a));
                if let Some(u) = user_of(first.get("uid"), first.get("UID")) {
                    ev.actor = Some(Actor {
                        user: Some(u),
                        ..Actor::default()
                    });
                }
                if let Some(op) = first.get("op") {
                    ev.status_detail = Some(op.to_owned().into());
                }
            }
        }
        _ => {
            if st != Status::Unknown {
                ev.header.status = Some(st);
            }
        }
    }
    ev
}

fn process_of(sc: &AuditRecord) -> Process {
    let comm = sc.get("comm").filter(|c| *c != "(null)");
    let exe = sc.get("exe").filter(|c| *c != "(null)");
    let parent = num(sc.get("ppid")).map(|ppid| {
        Box::new(Process {
            pid: Some(ppid),
            name: sc.get("parent_comm").map(|s| s.to_owned().into()),
            file: sc.get("parent_exe").map(|e| File {
                name: Some(basename(e).to_owned().into()),
                path: Some(e.to_owned().into()),
                type_id: Some(1),
                r#type: Some("Regular File".into()),
                ..File::default()
            }),
            ..Process::default()
        })
    });
    let tty = sc.get("tty").filter(|t| *t != "(none)");
    let ses = sc.get("ses").filter(|s| *s != "4294967295");
    Process {
        pid: num(sc.get("pid")),
        name: comm.map(|s| s.to_owned().into()),
        file: exe.map(|e| File {
            name: Some(basename(e).to_owned().into()),
            path: Some(e.to_owned().into()),
            type_id: Some(1),
            r#type: Some("Regular File".into()),
            ..File::default()
        }),
        user: user_of(sc.get("uid"), sc.get("UID")),
        parent_process: parent,
        auid: num(sc.get("auid")),
        euid: num(sc.get("euid")),
        egid: num(sc.get("egid")),
        session: (tty.is_some() || ses.is_some()).then(|| Session {
            uid: ses.map(|s| s.to_owned().into()),
            terminal: tty.map(|s| s.to_owned().into()),
            ..Session::default()
        }),
        ..Process::default()
    }
}

/// Used by the normalizer when a laurel line arrives.
pub(crate) fn parse_laurel(v: &Value, ev: &mut Event) -> Parsed {
    match laurel_records(v) {
        Some(records) if !records.is_empty() => {
            let base = std::mem::replace(ev, Event::new(Class::Base, 0, 0, Default::default()));
            *ev = laurel_event(records, base);
            Parsed::Yes
        }
        _ => Parsed::No,
    }
}

/// The milliseconds of a fraction of a second written as digits (`394` → 394, `5` → 500).
fn millis(frac: &str) -> i64 {
    frac.chars()
        .chain(std::iter::repeat('0'))
        .take(3)
        .try_fold(0i64, |a, c| c.to_digit(10).map(|d| a * 10 + i64::from(d)))
        .unwrap_or(0)
}

/// `sec` seconds and `ms` milliseconds since the epoch, in ms; `None` past i64 (a forged or
/// corrupt stamp must not wrap around into a plausible time).
fn epoch_ms(sec: i64, ms: i64) -> Option<i64> {
    sec.checked_mul(1000)?.checked_add(ms)
}
