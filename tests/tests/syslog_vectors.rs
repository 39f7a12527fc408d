//! The syslog envelope (RFC 5424, RFC 3164) against go-syslog's test tables and the RFCs'
//! own examples (`../shared/corpus/syslog-vectors`).
//!
//! Each vector's input becomes one line of a scratch file; the event with that line's
//! `metadata.sequence` must carry every expected field at its place in
//! docs/ocsf-mapping.md. An input holding a line break cannot be a line: it is fed alone as
//! an RFC 6587 octet-counted frame (`--syslog --framing octet`). The one empty input is no
//! record at all; it is reported as skipped and never counted as passing.

use std::fs;
use std::net::IpAddr;

use serde_json::Value;

use crate::support::check::Problems;
use crate::support::{self, json, time};

#[test]
fn go_syslog_rfc5424() {
    run_vector_file("go-syslog-rfc5424.json");
}

#[test]
fn go_syslog_rfc5424_compliant_msg() {
    run_vector_file("go-syslog-rfc5424-compliant-msg.json");
}

#[test]
fn go_syslog_rfc3164() {
    run_vector_file("go-syslog-rfc3164.json");
}

#[test]
fn rfc_examples() {
    run_vector_file("rfc-examples.json");
}

/// A vector file without a test above would silently go unchecked.
#[test]
fn every_vector_file_has_a_test() {
    const TESTED: [&str; 4] = [
        "go-syslog-rfc3164.json",
        "go-syslog-rfc5424-compliant-msg.json",
        "go-syslog-rfc5424.json",
        "rfc-examples.json",
    ];
    let dir = support::corpus("syslog-vectors");
    let mut found: Vec<String> = fs::read_dir(&dir)
        .expect("syslog-vectors is a directory")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json"))
        .collect();
    found.sort();
    assert_eq!(
        found,
        TESTED,
        "vector files in {} and tests differ",
        dir.display()
    );
}

/// At most this many failing cases are printed.
const SHOWN_FAILURES: usize = 20;

/// `None`: the vector does not say; `Some(None)`: the field must be absent (null / `-`);
/// `Some(Some(v))`: the field must be `v`.
type Field<T> = Option<Option<T>>;

/// A syslog timestamp as the vectors give it.
enum Stamp {
    /// RFC 5424: a full instant. `text` is the timestamp as written, when known.
    Full { ts: time::Ts, text: Option<String> },
    /// RFC 3164: no year; month, day and wall-clock time only.
    NoYear {
        md_hms: [i64; 5],
        text: Option<String>,
    },
}

/// Which envelope a valid case has (`metadata.log_format`).
#[derive(Clone, Copy)]
enum Format {
    Rfc5424,
    Rfc3164,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Self::Rfc5424 => "rfc5424",
            Self::Rfc3164 => "rfc3164",
        }
    }
}

/// What a valid vector says the envelope holds.
struct Expected {
    format: Format,
    priority: Option<i64>,
    facility: Option<i64>,
    severity: Option<i64>,
    version: Field<i64>,
    timestamp: Field<Stamp>,
    hostname: Field<String>,
    app: Field<String>,
    procid: Field<String>,
    msgid: Field<String>,
    message: Field<String>,
    structured_data: Field<Value>,
}

struct Case {
    id: String,
    input: Vec<u8>,
    /// `Ok`: a valid message and its fields. `Err`: invalid, with the numbers the vector
    /// still gives (RFC 3164 example 4 keeps its PRI).
    expect: Result<Expected, Vec<(&'static str, i64)>>,
}

fn run_vector_file(name: &str) {
    let path = support::corpus(&format!("syslog-vectors/{name}"));
    let doc: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("readable vector file"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let raw_cases = doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no `cases` array"));
    let cases: Vec<Case> = raw_cases.iter().map(|c| read_case(name, c)).collect();
    let now_ms = time::parse_rfc3339(support::NOW)
        .expect("NOW is RFC 3339")
        .ms;
    let scratch = support::Scratch::new(&name.replace('.', "-"));

    // One line per input, as the agent reads log files. An input holding a line break
    // cannot be a line: it goes alone into a file of RFC 6587 octet-counted frames, read as
    // syslog off the wire. An empty input is no record either way.
    let (empty, cases): (Vec<Case>, Vec<Case>) =
        cases.into_iter().partition(|c| c.input.is_empty());
    let (lines, framed): (Vec<Case>, Vec<Case>) =
        cases.into_iter().partition(|c| !c.input.contains(&b'\n'));

    let mut file = Vec::new();
    for c in &lines {
        file.extend_from_slice(&c.input);
        file.push(b'\n');
    }
    let input = scratch.write("vectors.log", &file);
    let emitted = support::normalize(&[&input]);
    let mut events = support::by_sequence(&emitted);

    let mut failures = Vec::new();
    let mut fail = |case: &Case, problems: Vec<String>| {
        if !problems.is_empty() {
            failures.push(format!(
                "{} {:?}\n      {}",
                case.id,
                support::clip(&String::from_utf8_lossy(&case.input), 200),
                problems.join("\n      ")
            ));
        }
    };
    for (i, case) in lines.iter().enumerate() {
        let evs = events.remove(&(i as u64 + 1)).unwrap_or_default();
        fail(
            case,
            one_event(&evs, |ev| check_case(ev, case, Reading::File, now_ms)),
        );
    }
    for (i, case) in framed.iter().enumerate() {
        let mut frame = format!("{} ", case.input.len()).into_bytes();
        frame.extend_from_slice(&case.input);
        let input = scratch.write(&format!("framed-{i}.log"), &frame);
        let evs = support::normalize_with(&["--syslog", "--framing", "octet"], &[&input]);
        let evs: Vec<&Value> = evs.iter().collect();
        fail(
            case,
            one_event(&evs, |ev| check_case(ev, case, Reading::Wire, now_ms)),
        );
    }
    for (seq, evs) in &events {
        failures.push(format!(
            "{} event(s) at metadata.sequence {seq}, which is no input line",
            evs.len()
        ));
    }

    let run = lines.len() + framed.len();
    let skipped: Vec<&str> = empty.iter().map(|c| c.id.as_str()).collect();
    eprintln!(
        "{name}: {} passed, {} failed ({} as lines, {} as octet-counted frames: they hold a line \
         break), {} skipped as empty (not counted as passing){}",
        run.saturating_sub(failures.len()),
        failures.len(),
        lines.len(),
        framed.len(),
        skipped.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(": {}", skipped.join(", "))
        }
    );
    support::assert_no_problems(
        &format!("{name} ({run} cases run)"),
        &failures,
        SHOWN_FAILURES,
    );
}

/// The checks of the one event an input must yield.
fn one_event(evs: &[&Value], check: impl FnOnce(&Value) -> Vec<String>) -> Vec<String> {
    match evs {
        [ev] => check(ev),
        _ => vec![format!("{} events (want exactly 1)", evs.len())],
    }
}

/// How the agent was told to read the input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// A log file: a line without PRI is a plain record.
    File,
    /// Syslog off the wire (`--syslog`): a missing PRI breaks the RFC.
    Wire,
}

fn read_case(file: &str, c: &Value) -> Case {
    let id = c["id"].as_str().unwrap_or("?").to_owned();
    // Non-UTF-8 inputs are only exact in base64; the JSON string has U+FFFD instead.
    let input = match c.get("input_base64").and_then(Value::as_str) {
        Some(b64) => base64_decode(b64).unwrap_or_else(|| panic!("{file} {id}: bad input_base64")),
        None => c["input"]
            .as_str()
            .unwrap_or_else(|| panic!("{file} {id}: no input"))
            .as_bytes()
            .to_vec(),
    };
    let valid = c["valid"]
        .as_bool()
        .unwrap_or_else(|| panic!("{file} {id}: no `valid`"));
    let exp = &c["expected"];
    let expect = if file == "rfc-examples.json" {
        let format = match c["format"].as_str() {
            Some("rfc5424") => Format::Rfc5424,
            Some("rfc3164") => Format::Rfc3164,
            other => panic!("{file} {id}: unknown format {other:?}"),
        };
        if valid {
            Ok(read_rfc_example(format, exp, &id))
        } else {
            Err(partial_numbers(exp))
        }
    } else {
        let format = if file.contains("3164") {
            Format::Rfc3164
        } else {
            Format::Rfc5424
        };
        if valid {
            Ok(read_go_syslog(format, exp, &id))
        } else {
            Err(Vec::new())
        }
    };
    Case { id, input, expect }
}

/// go-syslog's `expected`: CamelCase keys, null for absent or NILVALUE, a 0000 year for
/// RFC 3164, the BOM kept inside `Message`.
fn read_go_syslog(format: Format, e: &Value, id: &str) -> Expected {
    let stamp = |v: &Value| {
        let s = v
            .as_str()
            .unwrap_or_else(|| panic!("{id}: Timestamp is not a string"));
        if s.starts_with("0000-") {
            Stamp::NoYear {
                md_hms: month_day_hms(s, id),
                text: None,
            }
        } else {
            let ts = time::parse_rfc3339(s).unwrap_or_else(|| panic!("{id}: bad Timestamp {s}"));
            Stamp::Full { ts, text: None }
        }
    };
    Expected {
        format,
        priority: e["Priority"].as_i64(),
        facility: e["Facility"].as_i64(),
        severity: e["Severity"].as_i64(),
        version: field(e, "Version", |v| v.as_i64()),
        timestamp: field(e, "Timestamp", |v| Some(stamp(v))),
        hostname: string_field(e, "Hostname"),
        app: string_field(e, "Appname"),
        procid: string_field(e, "ProcID"),
        msgid: string_field(e, "MsgID"),
        // The BOM marks MSG as UTF-8; it is not part of what the message says (RFC 5424
        // 6.4), so `message` is expected without it.
        message: field(e, "Message", |v| {
            v.as_str()
                .map(|s| s.strip_prefix('\u{feff}').unwrap_or(s).to_owned())
        }),
        structured_data: field(e, "StructuredData", |v| Some(v.clone())),
    }
}

/// The hand-written RFC examples: snake_case keys, timestamps as written, `msg` without BOM,
/// RFC 3164 `tag`/`pid`/`content`, or `msg` when the RFC names no TAG.
fn read_rfc_example(format: Format, e: &Value, id: &str) -> Expected {
    let stamp = |v: &Value| {
        let s = v
            .as_str()
            .unwrap_or_else(|| panic!("{id}: timestamp is not a string"));
        match format {
            Format::Rfc5424 => Stamp::Full {
                ts: time::parse_rfc3339(s).unwrap_or_else(|| panic!("{id}: bad timestamp {s}")),
                text: Some(s.to_owned()),
            },
            Format::Rfc3164 => Stamp::NoYear {
                md_hms: rfc3164_md_hms(s, id),
                text: Some(s.to_owned()),
            },
        }
    };
    let (app, procid, message) = match format {
        Format::Rfc5424 => (
            string_field(e, "app_name"),
            string_field(e, "procid"),
            string_field(e, "msg"),
        ),
        // Without a TAG the whole rest after HOSTNAME is the message and no program is named.
        Format::Rfc3164 if e.get("msg").is_some() => {
            (Some(None), Some(None), string_field(e, "msg"))
        }
        Format::Rfc3164 => (
            string_field(e, "tag"),
            string_field(e, "pid"),
            string_field(e, "content"),
        ),
    };
    Expected {
        format,
        priority: e["priority"].as_i64(),
        facility: e["facility"].as_i64(),
        severity: e["severity"].as_i64(),
        version: field(e, "version", |v| v.as_i64()),
        timestamp: field(e, "timestamp", |v| Some(stamp(v))),
        hostname: string_field(e, "hostname"),
        app,
        procid,
        msgid: string_field(e, "msgid"),
        message,
        structured_data: field(e, "structured_data", |v| Some(v.clone())),
    }
}

/// The envelope numbers an invalid RFC example still gives.
fn partial_numbers(e: &Value) -> Vec<(&'static str, i64)> {
    ["priority", "facility", "severity"]
        .into_iter()
        .filter_map(|k| e.get(k).and_then(Value::as_i64).map(|n| (k, n)))
        .collect()
}

fn field<T>(e: &Value, key: &str, read: impl Fn(&Value) -> Option<T>) -> Field<T> {
    match e.get(key) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(
            read(v).unwrap_or_else(|| panic!("unreadable `{key}`: {v}")),
        )),
    }
}

fn string_field(e: &Value, key: &str) -> Field<String> {
    field(e, key, |v| v.as_str().map(str::to_owned))
}

/// `[month, day, hour, minute, second]` of go-syslog's `0000-MM-DDTHH:MM:SSZ`.
fn month_day_hms(s: &str, id: &str) -> [i64; 5] {
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse().ok());
    match (n(5..7), n(8..10), n(11..13), n(14..16), n(17..19)) {
        (Some(mo), Some(d), Some(h), Some(mi), Some(sec)) => [mo, d, h, mi, sec],
        _ => panic!("{id}: bad RFC 3164 Timestamp {s}"),
    }
}

/// `[month, day, hour, minute, second]` of an RFC 3164 `Mmm dd hh:mm:ss`.
fn rfc3164_md_hms(s: &str, id: &str) -> [i64; 5] {
    let mut parts = s.split_whitespace();
    let parsed = (|| {
        let mo = time::month_number(parts.next()?)?;
        let d = parts.next()?.parse().ok()?;
        let hms: Vec<i64> = parts
            .next()?
            .split(':')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        Some([mo, d, *hms.first()?, *hms.get(1)?, *hms.get(2)?])
    })();
    parsed.unwrap_or_else(|| panic!("{id}: bad RFC 3164 timestamp {s}"))
}

/// Everything wrong with the one event of `case`.
fn check_case(ev: &Value, case: &Case, reading: Reading, now_ms: i64) -> Vec<String> {
    let mut p = Problems::default();
    let input = String::from_utf8_lossy(&case.input);
    p.eq_text(ev, "raw_data", &input);
    match &case.expect {
        Ok(exp) => check_valid(&mut p, ev, exp, &input, now_ms),
        // A line that does not even start a PRI has no envelope to break: it is a plain
        // record, whole line as message.
        Err(_) if reading == Reading::File && !case.input.starts_with(b"<") => {
            p.not_true(ev, "unmapped.vedette.invalid_envelope");
            p.eq_text(ev, "message", &input);
            p.eq_text(ev, "metadata.log_format", "plain");
        }
        Err(numbers) => {
            p.check(
                json::get(ev, "unmapped.vedette.invalid_envelope") == Some(&Value::Bool(true)),
                || {
                    format!(
                        "unmapped.vedette.invalid_envelope: want true, got {}",
                        json::show_at(ev, "unmapped.vedette.invalid_envelope")
                    )
                },
            );
            let error = json::get(ev, "unmapped.vedette.parse_error").and_then(Value::as_str);
            p.check(error.is_some_and(|e| !e.trim().is_empty()), || {
                format!(
                    "unmapped.vedette.parse_error: want a reason, got {}",
                    json::show_at(ev, "unmapped.vedette.parse_error")
                )
            });
            // What did parse is kept.
            for (name, n) in numbers {
                p.eq_text(ev, &format!("unmapped.syslog.{name}"), &n.to_string());
            }
        }
    }
    p.into_vec()
}

fn check_valid(p: &mut Problems, ev: &Value, e: &Expected, input: &str, now_ms: i64) {
    p.not_true(ev, "unmapped.vedette.invalid_envelope");
    p.eq_text(ev, "metadata.log_format", e.format.name());
    for (name, want) in [
        ("priority", e.priority),
        ("facility", e.facility),
        ("severity", e.severity),
    ] {
        if let Some(n) = want {
            p.eq_text(ev, &format!("unmapped.syslog.{name}"), &n.to_string());
        }
    }
    match e.version {
        Some(Some(v)) => p.eq_text(ev, "unmapped.syslog.version", &v.to_string()),
        Some(None) => p.absent(ev, "unmapped.syslog.version"),
        None => {}
    }
    if let Some(Some(stamp)) = &e.timestamp {
        check_stamp(p, ev, stamp, input, now_ms);
    }
    check_hostname(p, ev, &e.hostname);
    match &e.app {
        Some(Some(app)) => {
            p.eq_text(ev, "metadata.log_provider", app);
            // The contract names the program in actor.process; only a numeric PID makes
            // that mandatory (below), but if present it must be the program.
            if json::get(ev, "actor.process.name").is_some() {
                p.eq_text(ev, "actor.process.name", app);
            }
        }
        Some(None) => p.absent(ev, "metadata.log_provider"),
        None => {}
    }
    match &e.procid {
        Some(Some(id)) => {
            p.eq_text(ev, "unmapped.syslog.procid", id);
            if id.bytes().all(|b| b.is_ascii_digit()) && id.parse::<u32>().is_ok() {
                p.check(
                    json::get(ev, "actor.process.pid").and_then(Value::as_u64) == id.parse().ok(),
                    || {
                        format!(
                            "actor.process.pid: want {id} (a number), got {}",
                            json::show_at(ev, "actor.process.pid")
                        )
                    },
                );
            } else {
                p.absent(ev, "actor.process.pid");
            }
        }
        Some(None) => {
            p.absent(ev, "unmapped.syslog.procid");
            p.absent(ev, "actor.process.pid");
        }
        None => {}
    }
    match &e.msgid {
        Some(Some(id)) => p.eq_text(ev, "unmapped.syslog.msgid", id),
        Some(None) => p.absent(ev, "unmapped.syslog.msgid"),
        None => {}
    }
    match &e.message {
        Some(Some(m)) => p.eq_text(ev, "message", m),
        // No MSG: no message, or an empty one.
        Some(None) => p.check(
            json::text_at(ev, "message").unwrap_or_default().is_empty(),
            || format!("message: want none, got {}", json::show_at(ev, "message")),
        ),
        None => {}
    }
    match &e.structured_data {
        Some(Some(sd)) => p.check(
            json::get(ev, "unmapped.syslog.structured_data") == Some(sd),
            || {
                format!(
                    "unmapped.syslog.structured_data: want {}, got {}",
                    json::show(Some(sd)),
                    json::show_at(ev, "unmapped.syslog.structured_data")
                )
            },
        ),
        Some(None) => p.absent(ev, "unmapped.syslog.structured_data"),
        None => {}
    }
}

fn check_stamp(p: &mut Problems, ev: &Value, stamp: &Stamp, input: &str, now_ms: i64) {
    let time = json::get(ev, "time").and_then(Value::as_i64);
    let offset = json::get(ev, "timezone_offset").and_then(Value::as_i64);
    let text = match stamp {
        Stamp::Full { ts, text } => {
            p.check(time == Some(ts.ms), || {
                format!(
                    "time: want {} (ms), got {}",
                    ts.ms,
                    json::show_at(ev, "time")
                )
            });
            p.check(offset == Some(ts.offset_min), || {
                format!(
                    "timezone_offset: want {}, got {}",
                    ts.offset_min,
                    json::show_at(ev, "timezone_offset")
                )
            });
            text
        }
        Stamp::NoYear { md_hms, text } => {
            // --tz UTC applies to zone-less RFC 3164 timestamps.
            p.check(offset == Some(0), || {
                format!(
                    "timezone_offset: want 0 (--tz UTC), got {}",
                    json::show_at(ev, "timezone_offset")
                )
            });
            match time {
                Some(ms) => {
                    let (y, mo, d, h, mi, s) = time::civil(ms, 0);
                    p.check([mo, d, h, mi, s] == *md_hms, || {
                        format!("time: want {md_hms:?} (month, day, h, m, s), got {y}-{mo}-{d} {h}:{mi}:{s} from {ms}")
                    });
                    let year = time::infer_year(now_ms, md_hms[0], md_hms[1]);
                    p.check(y == year, || {
                        format!(
                            "time: year {y}, want {year} (inferred from --now {})",
                            support::NOW
                        )
                    });
                }
                None => p.push(format!(
                    "time: want a timestamp, got {}",
                    json::show_at(ev, "time")
                )),
            }
            text
        }
    };
    // The timestamp text exactly as written; the go-syslog tables only give it reformatted,
    // so there it must at least be a piece of the input.
    match text {
        Some(t) => p.eq_text(ev, "metadata.original_time", t),
        None => {
            let got = json::text_at(ev, "metadata.original_time").unwrap_or_default();
            p.check(!got.is_empty() && input.contains(&got), || {
                format!(
                    "metadata.original_time: want the timestamp as written, got {}",
                    json::show_at(ev, "metadata.original_time")
                )
            });
        }
    }
}

/// The envelope host is `device.hostname`, or `device.ip` when it is an address; a record
/// without one names the reporter's host.
fn check_hostname(p: &mut Problems, ev: &Value, want: &Field<String>) {
    match want {
        Some(Some(h)) => match h.parse::<IpAddr>() {
            Ok(ip) => {
                let got = json::text_at(ev, "device.ip").and_then(|s| s.parse::<IpAddr>().ok());
                p.check(got == Some(ip), || {
                    format!(
                        "device.ip: want {h}, got {}",
                        json::show_at(ev, "device.ip")
                    )
                });
                let name = json::text_at(ev, "device.hostname");
                p.check(name.is_none() || name.as_deref() == Some(h), || {
                    format!(
                        "device.hostname: want absent or {h}, got {}",
                        json::show_at(ev, "device.hostname")
                    )
                });
            }
            Err(_) => p.eq_text(ev, "device.hostname", h),
        },
        Some(None) => {
            let reporter = json::text_at(ev, "metadata.reporter.hostname");
            p.check(reporter.is_some() && json::text_at(ev, "device.hostname") == reporter, || {
                format!(
                    "device.hostname: want the reporter's host {} (the record names none), got {}",
                    json::show_at(ev, "metadata.reporter.hostname"),
                    json::show_at(ev, "device.hostname")
                )
            });
        }
        None => {}
    }
}

/// Standard base64 (with padding), as in the vector files.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes().filter(|b| *b != b'=') {
        let v = ALPHABET.iter().position(|a| *a == b)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[test]
fn base64_decodes_the_vectors_encoding() {
    assert_eq!(base64_decode("PDE+MSAt").as_deref(), Some(&b"<1>1 -"[..]));
    assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
    assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
    assert_eq!(base64_decode("*"), None);
}
