//! Raw auditd records against auparse, the Linux audit project's own parser.
//!
//! `auparse_test.ref` is the expected output of upstream's `auparse_test.c`: its file walks
//! (tests 4, 5 and 11) list every event of `test.log`, `test2.log` and `test4.log` with
//! its records, their line numbers, the event time and serial, and every field raw. Our
//! event for a record group (the one whose `metadata.sequence` is the group's first line)
//! must agree on the fields docs/ocsf-mapping.md maps. `test3.log` (node= prefixed,
//! interleaved events) checks the grouping alone, derived from the file itself.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::ocsf_validate::audit_event_id;
use crate::support::check::Problems;
use crate::support::{self, json, syscalls, time};

/// auditd fields and their place in a Process Activity (1007) event (docs/ocsf-mapping.md).
const PROCESS_ACTIVITY: &[(&str, &str)] = &[
    ("pid", "process.pid"),
    ("ppid", "process.parent_process.pid"),
    ("ppid", "actor.process.pid"),
    ("uid", "process.user.uid"),
    ("auid", "process.auid"),
    ("auid", "actor.user.uid"),
    ("euid", "process.euid"),
    ("egid", "process.egid"),
    ("exe", "process.file.path"),
    ("comm", "process.name"),
    ("cwd", "process.working_directory"),
    ("ses", "process.session.uid"),
    ("tty", "process.session.terminal"),
    ("syscall", "unmapped.auditd.syscall"),
    ("key", "unmapped.auditd.key"),
];

/// File System Activity (1001): the contract places only `file.*`; the acting process must
/// still be somewhere, so either its OCSF place or `unmapped.auditd` is accepted.
const FILE_ACTIVITY: &[(&str, &str)] = &[
    ("pid", "actor.process.pid|unmapped.auditd.pid"),
    ("comm", "actor.process.name|unmapped.auditd.comm"),
    ("exe", "actor.process.file.path|unmapped.auditd.exe"),
    ("uid", "actor.user.uid|unmapped.auditd.uid"),
    ("syscall", "unmapped.auditd.syscall"),
    ("key", "unmapped.auditd.key"),
];

/// Fields auparse makes up (from AVC's `{ read write }` text) rather than reads.
const SYNTHETIC: &[&str] = &["seresult", "seperms"];

/// Values that mean "none": the agent may keep them or leave the field out.
const NIL: &[&str] = &["(none)", "(null)", "?", "4294967295", "unset"];

/// `(node, "time:serial")` of a raw record.
type AuditId = (String, String);

struct RefRecord {
    line: u64,
    rtype: String,
    fields: Vec<(String, String)>,
}

struct RefEvent {
    file: String,
    time_ms: i64,
    serial: String,
    records: Vec<RefRecord>,
}

#[test]
fn events_agree_with_auparse() {
    let reference = read_reference();
    let mut problems = Vec::new();
    for (file, ref_events) in &reference {
        let path = support::corpus(&format!("auditd/audit-userspace/{file}"));
        let emitted = support::normalize(&[&path]);
        let mut ours = support::by_sequence(&emitted);
        let mut checked = 0;
        for re in ref_events {
            let first = re.records[0].line;
            let evs = ours.remove(&first).unwrap_or_default();
            let found = match evs[..] {
                [ev] => check_event(ev, re),
                _ => vec![format!("{} events (want exactly 1)", evs.len())],
            };
            checked += 1;
            if !found.is_empty() {
                problems.push(format!(
                    "{file} event {} (lines {:?}, {}):\n      {}",
                    re.serial,
                    re.records.iter().map(|r| r.line).collect::<Vec<_>>(),
                    record_types(re).join(","),
                    found.join("\n      ")
                ));
            }
        }
        for (seq, evs) in &ours {
            problems.push(format!(
                "{file}: {} event(s) at metadata.sequence {seq}, which starts no auparse event",
                evs.len()
            ));
        }
        eprintln!(
            "{file}: {checked} auparse events, {} events from Vedette",
            emitted.len()
        );
    }
    support::assert_no_problems("auditd vs auparse", &problems, 20);
}

#[test]
fn interleaved_events_group_by_node_and_serial() {
    let path = support::corpus("auditd/audit-userspace/test3.log");
    let lines = support::read_lines(&path);
    // (node, "time:serial") → line numbers and record types, in file order.
    let mut groups: Vec<(AuditId, Vec<(u64, String)>)> = Vec::new();
    for (i, line) in lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let id = audit_event_id(line)
            .unwrap_or_else(|| panic!("test3.log line {} is no audit record", i + 1));
        let rtype = record_type(line).expect("a type= field");
        match groups.iter_mut().find(|(g, _)| *g == id) {
            Some((_, members)) => members.push((i as u64 + 1, rtype)),
            None => groups.push((id, vec![(i as u64 + 1, rtype)])),
        }
    }

    let emitted = support::normalize(&[&path]);
    let mut ours = support::by_sequence(&emitted);
    let mut problems = Vec::new();
    for ((node, id), members) in &groups {
        let (stamp, serial) = id.split_once(':').expect("time:serial");
        let first = members[0].0;
        let evs = ours.remove(&first).unwrap_or_default();
        let [ev] = evs[..] else {
            problems.push(format!(
                "event {serial} (lines {members:?}): {} events at line {first}, want 1",
                evs.len()
            ));
            continue;
        };
        let mut p = Problems::default();
        p.eq_text(ev, "unmapped.auditd.serial", serial);
        p.eq_text(ev, "unmapped.auditd.node", node);
        p.eq_text(
            ev,
            "time",
            &time::parse_epoch(stamp).expect("epoch").to_string(),
        );
        let types: Vec<&str> = members.iter().map(|(_, t)| t.as_str()).collect();
        check_records(&mut p, ev, &types);
        if !p.is_empty() {
            problems.push(format!(
                "event {serial} (lines {:?}):\n      {}",
                members,
                p.into_vec().join("\n      ")
            ));
        }
    }
    for (seq, evs) in &ours {
        problems.push(format!("{} event(s) at line {seq}, which starts no event (records must join by node and serial)", evs.len()));
    }
    eprintln!(
        "test3.log: {} events expected, {} emitted",
        groups.len(),
        emitted.len()
    );
    support::assert_no_problems("test3.log grouping", &problems, 20);
}

/// The file walks of `auparse_test.ref`, per file, without repeats (test 5 walks test.log
/// again after test2.log).
fn read_reference() -> BTreeMap<String, Vec<RefEvent>> {
    let path = support::corpus("auditd/audit-userspace/auparse_test.ref");
    let text = fs::read_to_string(&path).expect("readable auparse_test.ref");
    let mut test = 0;
    let mut events: Vec<RefEvent> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Starting Test ") {
            test = rest
                .split(',')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            continue;
        }
        // Tests 4, 5 and 11 walk files; the others walk in-code buffers or search.
        if ![4, 5, 11].contains(&test) {
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("event ") && trimmed.ends_with(" records") {
            events.push(RefEvent {
                file: String::new(),
                time_ms: 0,
                serial: String::new(),
                records: Vec::new(),
            });
        } else if let Some(rest) = trimmed.strip_prefix("record ") {
            let rtype = rest
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(t, _)| t.to_owned());
            let ev = events.last_mut().expect("a record inside an event");
            ev.records.push(RefRecord {
                line: 0,
                rtype: rtype.expect("record type"),
                fields: Vec::new(),
            });
        } else if let Some(rest) = trimmed.strip_prefix("line=") {
            let (n, file) = rest.split_once(" file=").expect("line=N file=F");
            let ev = events.last_mut().expect("an event");
            ev.file = Path::new(file)
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            ev.records.last_mut().expect("a record").line = n.parse().expect("line number");
        } else if let Some(rest) = trimmed.strip_prefix("event time: ") {
            let id = rest.split(',').next().expect("time:serial");
            let (stamp, serial) = id.split_once(':').expect("time:serial");
            let ev = events.last_mut().expect("an event");
            ev.time_ms = time::parse_epoch(stamp).expect("epoch time");
            ev.serial = serial.to_owned();
        } else if line.starts_with("        ") {
            let (k, v) = trimmed.split_once('=').expect("field=value");
            if k != "type" {
                let rec = events
                    .last_mut()
                    .and_then(|e| e.records.last_mut())
                    .expect("a record");
                rec.fields.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    let mut by_file: BTreeMap<String, Vec<RefEvent>> = BTreeMap::new();
    for ev in events {
        let list = by_file.entry(ev.file.clone()).or_default();
        if !list.iter().any(|e| e.records[0].line == ev.records[0].line) {
            list.push(ev);
        }
    }
    let files: Vec<&String> = by_file.keys().collect();
    assert_eq!(
        files,
        ["test.log", "test2.log", "test4.log"],
        "file walks found in auparse_test.ref"
    );
    by_file
}

fn record_types(re: &RefEvent) -> Vec<&str> {
    re.records.iter().map(|r| r.rtype.as_str()).collect()
}

/// `TYPE` of a raw record line.
fn record_type(line: &str) -> Option<String> {
    let rest = &line[line.find("type=")? + 5..];
    Some(rest.split_whitespace().next()?.to_owned())
}

fn check_records(p: &mut Problems, ev: &Value, types: &[&str]) {
    let got: Option<Vec<String>> = json::get(ev, "unmapped.auditd.records")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(json::text).collect());
    p.check(got.as_deref().is_some_and(|g| g == types), || {
        format!(
            "unmapped.auditd.records: want {types:?}, got {}",
            json::show_at(ev, "unmapped.auditd.records")
        )
    });
}

/// The class docs/ocsf-mapping.md gives a record group.
fn expected_class(types: &[&str]) -> u64 {
    let has = |t: &str| types.contains(&t);
    if has("SYSCALL") && has("EXECVE") {
        1007
    } else if has("SYSCALL") && has("PATH") {
        1001
    } else if [
        "USER_AUTH",
        "USER_LOGIN",
        "USER_START",
        "USER_END",
        "USER_ACCT",
        "CRED_ACQ",
        "CRED_REFR",
        "CRED_DISP",
    ]
    .iter()
    .any(|t| has(t))
    {
        3002
    } else {
        0
    }
}

/// Everything on which our event disagrees with auparse's reading of the group.
fn check_event(ev: &Value, re: &RefEvent) -> Vec<String> {
    let mut p = Problems::default();
    let types = record_types(re);
    p.eq_text(ev, "unmapped.auditd.serial", &re.serial);
    p.eq_text(ev, "time", &re.time_ms.to_string());
    check_records(&mut p, ev, &types);
    let class = expected_class(&types);
    p.eq_text(ev, "class_uid", &class.to_string());

    // The first value of each field across the group's records, quotes removed.
    let mut first: HashMap<&str, String> = HashMap::new();
    for rec in &re.records {
        for (k, v) in &rec.fields {
            first.entry(k.as_str()).or_insert_with(|| unquote(v));
        }
    }
    match class {
        1007 => {
            check_mapped(&mut p, ev, PROCESS_ACTIVITY, &first);
            let argv = execve_argv(re);
            p.eq_text(ev, "process.cmd_line", &argv.join(" "));
        }
        1001 => {
            check_mapped(&mut p, ev, FILE_ACTIVITY, &first);
            check_file(&mut p, ev, re, &first);
        }
        _ => check_all_unmapped(&mut p, ev, re),
    }
    p.into_vec()
}

/// Each mapped field that auparse lists must be at (one of) its `|`-separated places.
fn check_mapped(
    p: &mut Problems,
    ev: &Value,
    table: &[(&str, &str)],
    fields: &HashMap<&str, String>,
) {
    for (field, places) in table {
        let Some(want) = fields.get(field) else {
            continue;
        };
        let got: Vec<String> = places
            .split('|')
            .filter_map(|path| json::text_at(ev, path))
            .collect();
        let ok = got.iter().any(|g| same_value(field, want, g))
            || (NIL.contains(&want.as_str()) && got.is_empty());
        p.check(ok, || {
            format!(
                "{field}={want}: want it at {places}, got {}",
                show_places(ev, places)
            )
        });
    }
}

/// The PATH record's name: `file.name` is its last component; `file.path` the name as
/// written or resolved against CWD (auditd writes names relative to the process' cwd).
fn check_file(p: &mut Problems, ev: &Value, re: &RefEvent, fields: &HashMap<&str, String>) {
    let Some(path_rec) = re.records.iter().find(|r| r.rtype == "PATH") else {
        return;
    };
    let Some(name) = path_rec
        .fields
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| unquote(v))
    else {
        return;
    };
    let base = name.rsplit('/').next().unwrap_or(&name).to_owned();
    p.eq_text(ev, "file.name", &base);
    let mut accepted = vec![name.clone()];
    if let Some(cwd) = fields.get("cwd").filter(|_| !name.starts_with('/')) {
        accepted.push(format!("{}/{name}", cwd.trim_end_matches('/')));
    }
    let got = json::text_at(ev, "file.path");
    p.check(got.as_ref().is_some_and(|g| accepted.contains(g)), || {
        format!(
            "file.path: want one of {accepted:?}, got {}",
            json::show_at(ev, "file.path")
        )
    });
}

/// A Base Event keeps every field under `unmapped.auditd`: flat (`unmapped.auditd.pid`,
/// where records that disagree leave any of their values) or per record type
/// (`unmapped.auditd.SYSCALL.pid`, an array when the type repeats). The contract allows
/// both readings.
fn check_all_unmapped(p: &mut Problems, ev: &Value, re: &RefEvent) {
    let mut flat: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for rec in &re.records {
        for (k, v) in &rec.fields {
            flat.entry(k.as_str()).or_default().push(unquote(v));
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for rec in &re.records {
        let occurrence = *seen
            .entry(rec.rtype.as_str())
            .and_modify(|n| *n += 1)
            .or_insert(0);
        for (k, v) in &rec.fields {
            if SYNTHETIC.contains(&k.as_str()) {
                continue;
            }
            let want = unquote(v);
            let nested = record_field(ev, &rec.rtype, occurrence, k);
            let flat_got = json::text_at(ev, &format!("unmapped.auditd.{k}"));
            let nested_ok = nested.as_deref().is_some_and(|g| same_value(k, &want, g));
            let flat_ok = flat_got
                .as_deref()
                .is_some_and(|g| flat[k.as_str()].iter().any(|w| same_value(k, w, g)));
            let left_out = nested.is_none() && flat_got.is_none() && NIL.contains(&want.as_str());
            let ok = nested_ok || flat_ok || left_out;
            p.check(ok, || {
                format!(
                    "{} {k}={want}: want it at unmapped.auditd.{}.{k} or unmapped.auditd.{k}, got {} / {}",
                    rec.rtype,
                    rec.rtype,
                    nested.as_deref().unwrap_or("absent"),
                    flat_got.as_deref().unwrap_or("absent")
                )
            });
        }
    }
}

/// Field `k` of the `occurrence`-th record of type `rtype` in the per-type layout.
fn record_field(ev: &Value, rtype: &str, occurrence: usize, k: &str) -> Option<String> {
    match json::get(ev, &format!("unmapped.auditd.{rtype}"))? {
        Value::Array(records) => records.get(occurrence).and_then(|r| json::text_at(r, k)),
        record => (occurrence == 0)
            .then(|| json::text_at(record, k))
            .flatten(),
    }
}

/// EXECVE's a0..a(argc-1), decoded (auditd hex-encodes arguments with special characters).
fn execve_argv(re: &RefEvent) -> Vec<String> {
    let Some(rec) = re.records.iter().find(|r| r.rtype == "EXECVE") else {
        return Vec::new();
    };
    let get = |k: &str| {
        rec.fields
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.as_str())
    };
    let argc: usize = get("argc")
        .and_then(|n| n.parse().ok())
        .expect("EXECVE argc");
    (0..argc)
        .map(|i| {
            get(&format!("a{i}"))
                .map(decode_arg)
                .unwrap_or_else(|| panic!("EXECVE a{i} missing"))
        })
        .collect()
}

fn decode_arg(v: &str) -> String {
    if v.starts_with('"') {
        return unquote(v);
    }
    let bytes: Option<Vec<u8>> = (0..v.len())
        .step_by(2)
        .map(|i| v.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    match bytes {
        Some(b) if v.len().is_multiple_of(2) => String::from_utf8_lossy(&b).into_owned(),
        _ => v.to_owned(),
    }
}

/// auparse's raw value and ours agree (a syscall may be named instead of numbered).
fn same_value(field: &str, want: &str, got: &str) -> bool {
    if field == "syscall" {
        syscalls::same_syscall(want, got)
    } else {
        want == got
    }
}

fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
        .to_owned()
}

fn show_places(ev: &Value, places: &str) -> String {
    places
        .split('|')
        .map(|path| format!("{path}={}", json::show_at(ev, path)))
        .collect::<Vec<_>>()
        .join(", ")
}
