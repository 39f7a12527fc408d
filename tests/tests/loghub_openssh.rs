//! sshd and pam lines of loghub's OpenSSH_2k against loghub's own parse of them.
//!
//! loghub's `_structured.csv` splits every line into header fields and a template id
//! (E1..E27). `tests/data/loghub-openssh-categories.csv` says how Vedette must read each
//! template (docs/ocsf-mapping.md, sshd and pam tables); the user, address, port and count
//! are cut out of loghub's `Content` with the template itself.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde_json::Value;

use crate::support::check::Problems;
use crate::support::{self, csv, json, time};

/// `(class_uid, Some((activity_id, status_id)))` of an event code.
type Classification = (u64, Option<(u64, u64)>);

/// Class, activity and status each sshd/pam `event_code` has in docs/ocsf-mapping.md.
const CONTRACT: &[(&str, Classification)] = &[
    ("sshd.accepted", (3002, Some((1, 1)))),
    ("sshd.failed", (3002, Some((1, 2)))),
    ("sshd.invalid_user", (3002, Some((1, 2)))),
    ("sshd.max_auth_attempts", (3002, Some((1, 2)))),
    ("sshd.root_refused", (3002, Some((1, 2)))),
    ("sshd.not_allowed", (3002, Some((1, 2)))),
    ("sshd.preauth_disconnect", (3002, Some((1, 2)))),
    ("sshd.disconnect", (3002, Some((2, 1)))),
    ("pam.auth_failure", (3002, Some((1, 2)))),
    ("pam.more_failures", (3002, Some((1, 2)))),
    ("pam.session_opened", (3002, Some((1, 1)))),
    ("pam.session_closed", (3002, Some((2, 1)))),
    ("pam.check_pass_unknown", (3002, Some((1, 2)))),
    ("sshd.no_identification", (4001, Some((4, 2)))),
    ("sshd.reverse_mapping_failed", (4001, Some((1, 1)))),
    ("sshd.other", (0, None)),
];

/// The categories whose counts must match loghub's, and their status (1 Success, 2 Failure).
const CATEGORIES: &[(&str, u64)] = &[
    ("accepted", 1),
    ("failed", 2),
    ("invalid_user", 2),
    ("pam_failure", 2),
];

/// One row of the categories table.
struct Reading {
    category: String,
    event_code: String,
    user: String,
    src: String,
    port: String,
    count: String,
    method: String,
}

#[test]
fn openssh_2k_authentication_lines() {
    let log = support::corpus("loghub/OpenSSH/OpenSSH_2k.log");
    let structured = csv::read_records(&support::corpus(
        "loghub/OpenSSH/OpenSSH_2k.log_structured.csv",
    ));
    let templates = csv::read_records(&support::corpus(
        "loghub/OpenSSH/OpenSSH_2k.log_templates.csv",
    ));
    let readings = read_table(&templates);
    let raw_lines = support::read_lines(&log);

    let emitted = support::normalize(&[&log]);
    let events = support::by_sequence(&emitted);
    let now_ms = time::parse_rfc3339(support::NOW)
        .expect("NOW is RFC 3339")
        .ms;

    let mut problems = Vec::new();
    let mut expected_count: BTreeMap<&str, usize> = BTreeMap::new();
    let mut passing: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &structured {
        let line_id: u64 = row["LineId"].parse().expect("numeric LineId");
        let reading = &readings[&row["EventId"]];
        let raw = &raw_lines[line_id as usize - 1];
        // loghub trims the trailing blanks some lines have; the line is the truth.
        assert!(
            raw.trim_end().ends_with(&row["Content"]),
            "loghub row {line_id} does not match line {line_id} of the log"
        );
        *expected_count.entry(&reading.category).or_default() += 1;

        let caps = match_template(&row["EventTemplate"], &row["Content"]).unwrap_or_else(|| {
            panic!("loghub row {line_id}: Content does not fit its own template")
        });
        let evs = events.get(&line_id).map(Vec::as_slice).unwrap_or_default();
        let line_problems = match evs {
            [ev] => {
                // The MSG as written: loghub's Content plus the blanks it trimmed.
                let msg = &raw[raw.trim_end().len() - row["Content"].len()..];
                check_line(ev, row, msg, reading, &caps, now_ms)
            }
            _ => vec![format!("{} events (want exactly 1)", evs.len())],
        };
        if line_problems.is_empty() {
            *passing.entry(&reading.category).or_default() += 1;
        } else {
            problems.push(format!(
                "line {line_id} ({}, {}): {}\n      {}",
                row["EventId"],
                reading.event_code,
                support::clip(raw, 140),
                line_problems.join("\n      ")
            ));
        }
    }

    problems.extend(compare_counts(
        &emitted,
        &readings,
        &expected_count,
        &passing,
    ));
    support::assert_no_problems("loghub OpenSSH_2k", &problems, 25);
}

/// The categories table, checked against loghub's template list and the contract.
fn read_table(templates: &[HashMap<String, String>]) -> HashMap<String, Reading> {
    let rows = csv::read_records(&support::data_file("loghub-openssh-categories.csv"));
    let mut table = HashMap::new();
    let mut category_of_code: HashMap<String, String> = HashMap::new();
    for r in rows {
        let reading = Reading {
            category: r["category"].clone(),
            event_code: r["event_code"].clone(),
            user: r["user"].clone(),
            src: r["src"].clone(),
            port: r["port"].clone(),
            count: r["count"].clone(),
            method: r["method"].clone(),
        };
        assert!(
            reading.category == "none" || CATEGORIES.iter().any(|(c, _)| *c == reading.category),
            "{}: unknown category {}",
            r["EventId"],
            reading.category
        );
        assert!(
            contract(&reading.event_code).is_some(),
            "{}: {} is not in the contract",
            r["EventId"],
            reading.event_code
        );
        // Counting our events by event_code needs one category per code.
        let prev = category_of_code.insert(reading.event_code.clone(), reading.category.clone());
        assert!(
            prev.is_none() || prev.as_ref() == Some(&reading.category),
            "{} is in two categories",
            reading.event_code
        );
        table.insert(r["EventId"].clone(), reading);
    }
    let mut ids: Vec<&String> = templates.iter().map(|t| &t["EventId"]).collect();
    ids.sort();
    let mut ours: Vec<&String> = table.keys().collect();
    ours.sort();
    assert_eq!(
        ids, ours,
        "loghub-openssh-categories.csv must list exactly loghub's templates"
    );
    table
}

fn contract(code: &str) -> Option<Classification> {
    CONTRACT
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, classification)| *classification)
}

/// Everything wrong with the event of one loghub line.
fn check_line(
    ev: &Value,
    row: &HashMap<String, String>,
    msg: &str,
    reading: &Reading,
    caps: &[String],
    now_ms: i64,
) -> Vec<String> {
    let mut p = Problems::default();

    // loghub's header split is an oracle for the envelope.
    p.eq_text(ev, "device.hostname", &row["Component"]);
    p.eq_text(ev, "actor.process.pid", &row["Pid"]);
    p.eq_text(ev, "metadata.log_provider", "sshd");
    p.eq_text(ev, "message", msg);
    p.eq_text(
        ev,
        "metadata.original_time",
        &format!("{} {:>2} {}", row["Date"], row["Day"], row["Time"]),
    );

    let (class, activity_status) =
        contract(&reading.event_code).expect("checked when reading the table");
    p.eq_text(ev, "metadata.event_code", &reading.event_code);
    p.eq_text(
        ev,
        "metadata.log_name",
        reading.event_code.split('.').next().unwrap_or_default(),
    );
    p.eq_text(ev, "class_uid", &class.to_string());
    if let Some((activity, status)) = activity_status {
        p.eq_text(ev, "activity_id", &activity.to_string());
        p.eq_text(ev, "status_id", &status.to_string());
    }
    if let Some((_, status)) = CATEGORIES.iter().find(|(c, _)| *c == reading.category) {
        p.eq_text(ev, "class_uid", "3002");
        p.eq_text(ev, "status_id", &status.to_string());
    }
    if class == 3002 {
        p.eq_text(ev, "service.name", "sshd");
        p.eq_text(ev, "logon_type_id", "10");
        p.eq_text(ev, "is_remote", "true");
    }

    let user = resolve(&reading.user, caps);
    if !user.is_empty() {
        p.eq_text(ev, "user.name", &user);
        if user == "(unknown)" {
            p.eq_text(ev, "user.type_id", "0");
        }
    }
    // An address or host name has no blanks; loghub's templates leave the one before a
    // double-spaced "  user=" in the capture.
    let src = resolve(&reading.src, caps).trim().to_owned();
    match (class, src.is_empty()) {
        (3002, true) => {
            for path in ["src_endpoint.ip", "src_endpoint.hostname"] {
                if json::get(ev, path).is_some() {
                    p.push(format!(
                        "{path}: the line names no client, got {}",
                        json::show_at(ev, path)
                    ));
                }
            }
        }
        (3002, false) => match src.parse::<IpAddr>() {
            Ok(_) => p.eq_text(ev, "src_endpoint.ip", &src),
            Err(_) => {
                // pam's rhost= may be a host name, which is no ip_t.
                p.eq_text(ev, "src_endpoint.hostname", &src);
                if json::get(ev, "src_endpoint.ip").is_some() {
                    p.push(format!(
                        "src_endpoint.ip: {src} is a host name, got {}",
                        json::show_at(ev, "src_endpoint.ip")
                    ));
                }
            }
        },
        (_, false) => {
            let observed = json::get(ev, "observables")
                .and_then(Value::as_array)
                .is_some_and(|obs| {
                    obs.iter()
                        .any(|o| json::text_at(o, "value").as_deref() == Some(&*src))
                });
            if !observed {
                p.push(format!(
                    "observables: want {src} among them, got {}",
                    json::show_at(ev, "observables")
                ));
            }
        }
        _ => {}
    }
    let port = resolve(&reading.port, caps);
    if let Some(port) = port.split_whitespace().next() {
        p.eq_text(ev, "src_endpoint.port", port);
    }
    let count = resolve(&reading.count, caps);
    if !count.is_empty() {
        p.eq_text(ev, "count", &count);
    }
    if !reading.method.is_empty() {
        p.eq_text(ev, "auth_protocol", &reading.method);
        p.eq_text(ev, "auth_protocol_id", "99");
    }

    // RFC 3164 time of the line, in the year inferred from --now (loghub's lines are December).
    match json::get(ev, "time").and_then(Value::as_i64) {
        Some(ms) => {
            let month = time::month_number(&row["Date"]).expect("loghub month");
            let day: i64 = row["Day"].parse().expect("loghub day");
            let hms: Vec<i64> = row["Time"]
                .split(':')
                .map(|x| x.parse().expect("loghub time"))
                .collect();
            let want = (
                time::infer_year(now_ms, month, day),
                month,
                day,
                hms[0],
                hms[1],
                hms[2],
            );
            if time::civil(ms, 0) != want {
                p.push(format!(
                    "time: want {want:?} (UTC), got {:?}",
                    time::civil(ms, 0)
                ));
            }
        }
        None => p.push(format!("time: got {}", json::show_at(ev, "time"))),
    }
    p.into_vec()
}

/// `$N` → the N-th capture; anything else is a literal.
fn resolve(spec: &str, caps: &[String]) -> String {
    match spec.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => caps
            .get(n - 1)
            .cloned()
            .unwrap_or_else(|| panic!("template has no ${n}")),
        None => spec.to_owned(),
    }
}

/// Counts our events per category (by their event_code) against loghub's, printing the
/// table; returns the differences.
fn compare_counts(
    events: &[Value],
    readings: &HashMap<String, Reading>,
    expected: &BTreeMap<&str, usize>,
    passing: &BTreeMap<&str, usize>,
) -> Vec<String> {
    let category_of: HashMap<&str, &str> = readings
        .values()
        .map(|r| (r.event_code.as_str(), r.category.as_str()))
        .collect();
    let mut ours: BTreeMap<&str, usize> = BTreeMap::new();
    for ev in events {
        let code = json::get(ev, "metadata.event_code")
            .and_then(Value::as_str)
            .unwrap_or("");
        *ours
            .entry(category_of.get(code).copied().unwrap_or("none"))
            .or_default() += 1;
    }
    eprintln!(
        "\n{:<14} {:>8} {:>8} {:>13}",
        "category", "loghub", "vedette", "lines passing"
    );
    let mut problems = Vec::new();
    for (cat, want) in expected {
        let got = ours.get(cat).copied().unwrap_or(0);
        let ok = passing.get(cat).copied().unwrap_or(0);
        eprintln!("{cat:<14} {want:>8} {got:>8} {ok:>13}");
        if *cat != "none" && got != *want {
            problems.push(format!(
                "category {cat}: loghub has {want} lines, Vedette classified {got} events"
            ));
        }
    }
    problems
}

/// Captures of a loghub template (`<*>` = any text, shortest first) on `s`.
fn match_template(template: &str, s: &str) -> Option<Vec<String>> {
    fn go(parts: &[&str], s: &str, caps: &mut Vec<String>) -> bool {
        let Some(rest) = s.strip_prefix(parts[0]) else {
            return false;
        };
        if parts.len() == 1 {
            return rest.is_empty();
        }
        for i in (0..=rest.len()).filter(|i| rest.is_char_boundary(*i)) {
            caps.push(rest[..i].to_owned());
            if go(&parts[1..], &rest[i..], caps) {
                return true;
            }
            caps.pop();
        }
        false
    }
    let parts: Vec<&str> = template.split("<*>").collect();
    let mut caps = Vec::new();
    go(&parts, s, &mut caps).then_some(caps)
}

#[test]
fn templates_capture_their_wildcards() {
    assert_eq!(
        match_template(
            "Invalid user <*> from <*>",
            "Invalid user  0101 from 5.188.10.180"
        ),
        Some(vec![" 0101".to_owned(), "5.188.10.180".to_owned()])
    );
    assert_eq!(
        match_template("a <*>]", "a 42 ssh2]"),
        Some(vec!["42 ssh2".to_owned()])
    );
    assert_eq!(match_template("x <*> y", "x 1 z"), None);
}
