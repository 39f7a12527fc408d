//! Comparing one CrowdSec expectation with our event, by the table's compare mode.
//! CrowdSec writes everything as text; where we deliberately type or shape a value
//! differently (numbers, timestamps, MAC pairs, URLs) the comparison is semantic.

use std::net::IpAddr;

use serde_json::Value;

use crate::support::{json, syscalls, time};

pub(super) const MODES: &[&str] = &[
    "str",
    "nil_ok",
    "ci",
    "ip",
    "hex",
    "basename",
    "path_query",
    "http_version",
    "time",
    "clf_time",
    "epoch",
    "mac_src",
    "nf_action",
    "cef_severity",
    "contains",
    "syscall",
];

/// CrowdSec's ways of writing "none".
const NIL: &[&str] = &["-", "", "(none)", "(null)", "unset", "4294967295"];

/// What CrowdSec expects of a field.
pub(super) enum Want {
    Text(String),
    /// `basename(x) == v`
    Basename(String),
    /// `x[4:] == v` (a timestamp without its year)
    FromFifth(String),
}

impl Want {
    pub(super) fn text(&self) -> &str {
        match self {
            Self::Text(s) | Self::Basename(s) | Self::FromFifth(s) => s,
        }
    }
}

/// `Ok` when the event agrees; `Err` says what it holds instead.
pub(super) fn compare(
    ev: &Value,
    ocsf: &str,
    mode: &str,
    field_name: &str,
    want: &Want,
) -> Result<(), String> {
    let places: Vec<String> = ocsf
        .split('|')
        .map(|p| p.replace("{key}", field_name))
        .collect();
    let w = want.text();
    let ok = match mode {
        "path_query" => places
            .iter()
            .any(|p| path_query(ev, p).as_deref() == Some(w)),
        "time" | "clf_time" | "epoch" => return compare_time(ev, mode, want),
        "contains" => places.iter().any(|p| {
            json::get(ev, p)
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| json::text(v).as_deref() == Some(w)))
        }),
        _ => {
            let got: Vec<String> = places.iter().flat_map(|p| texts(ev, p)).collect();
            match mode {
                "nil_ok" => got.iter().any(|g| g == w) || (got.is_empty() && NIL.contains(&w)),
                "ci" => got.iter().any(|g| g.eq_ignore_ascii_case(w)),
                "ip" => w.parse::<IpAddr>().is_ok_and(|want| {
                    got.iter()
                        .filter_map(|g| g.parse::<IpAddr>().ok())
                        .any(|g| g.to_canonical() == want.to_canonical())
                }),
                "hex" => {
                    let want = parse_hex(w);
                    want.is_some() && got.iter().any(|g| parse_hex(g) == want)
                }
                "basename" => got.iter().any(|g| g.rsplit(['/', '\\']).next() == Some(w)),
                "http_version" => got
                    .iter()
                    .any(|g| g.strip_prefix("HTTP/").unwrap_or(g) == w),
                "mac_src" => {
                    mac_src(w).is_some_and(|m| got.iter().any(|g| g.eq_ignore_ascii_case(&m)))
                }
                "nf_action" => {
                    nf_action(w).is_some_and(|id| got.iter().any(|g| *g == id.to_string()))
                }
                "cef_severity" => {
                    cef_severity(w).is_some_and(|id| got.iter().any(|g| *g == id.to_string()))
                }
                "syscall" => got.iter().any(|g| syscalls::same_syscall(w, g)),
                _ => got.iter().any(|g| g == w), // str
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(places
            .iter()
            .map(|p| format!("{p}={}", show(ev, p)))
            .collect::<Vec<_>>()
            .join(", "))
    }
}

/// The texts at a place; `observables[]` = the value of every observable.
fn texts(ev: &Value, place: &str) -> Vec<String> {
    if place == "observables[]" {
        return json::get(ev, "observables")
            .and_then(Value::as_array)
            .map(|obs| {
                obs.iter()
                    .filter_map(|o| json::text_at(o, "value"))
                    .collect()
            })
            .unwrap_or_default();
    }
    json::text_at(ev, place).into_iter().collect()
}

fn show(ev: &Value, place: &str) -> String {
    if place == "observables[]" {
        format!("{:?}", texts(ev, place))
    } else {
        json::show_at(ev, place)
    }
}

/// `path` or `path?query` of an OCSF url object.
fn path_query(ev: &Value, url: &str) -> Option<String> {
    let path = json::text_at(ev, &format!("{url}.path"))?;
    Some(match json::text_at(ev, &format!("{url}.query_string")) {
        Some(q) => format!("{path}?{q}"),
        None => path,
    })
}

fn compare_time(ev: &Value, mode: &str, want: &Want) -> Result<(), String> {
    let got = json::get(ev, "time").and_then(Value::as_i64);
    let offset = json::get(ev, "timezone_offset").and_then(Value::as_i64);
    let shown = || {
        format!(
            "time={}, timezone_offset={}",
            json::show_at(ev, "time"),
            json::show_at(ev, "timezone_offset")
        )
    };
    let ok = match (mode, want) {
        ("time", Want::FromFifth(w)) => {
            got.is_some_and(|ms| time::utc_seconds_text(ms).get(4..) == Some(w.as_str()))
        }
        ("time", w) => time::parse_rfc3339(w.text()).is_some_and(|ts| got == Some(ts.ms)),
        // Access lines carry CLF times; the same parser's error lines Apache's zone-less form.
        ("clf_time", w) => time::parse_clf(w.text())
            .or_else(|| time::parse_apache_error_utc(w.text()))
            .is_some_and(|ts| got == Some(ts.ms) && offset == Some(ts.offset_min)),
        ("epoch", w) => time::parse_epoch(w.text()).is_some_and(|ms| got == Some(ms)),
        _ => false,
    };
    if ok { Ok(()) } else { Err(shown()) }
}

/// A number written in hex, with or without `0x` (`0x00`, `C0`), or an integer field.
fn parse_hex(s: &str) -> Option<u64> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(digits, 16).ok()
}

/// The source MAC of iptables' `MAC=dst(6):src(6):ethertype(2)`.
fn mac_src(mac: &str) -> Option<String> {
    let octets: Vec<&str> = mac.split(':').collect();
    (octets.len() == 14).then(|| octets[6..12].join(":"))
}

/// `action_id` of a netfilter action word (docs/ocsf-mapping.md, netfilter).
fn nf_action(word: &str) -> Option<u8> {
    let w = word.to_ascii_uppercase();
    if ["DROP", "REJECT", "BLOCK", "DENY"]
        .iter()
        .any(|k| w.contains(k))
    {
        Some(2)
    } else if ["ACCEPT", "ALLOW"].iter().any(|k| w.contains(k)) {
        Some(1)
    } else {
        None
    }
}

/// OCSF `severity_id` of a CEF severity 0-10 (ArcSight's bands).
fn cef_severity(s: &str) -> Option<u8> {
    match s.parse::<u8>().ok()? {
        0..=3 => Some(2),
        4..=6 => Some(3),
        7..=8 => Some(4),
        9..=10 => Some(5),
        _ => None,
    }
}

#[test]
fn semantic_comparisons() {
    assert_eq!(
        mac_src("00:08:a2:0c:1f:12:00:c8:8b:e2:d6:87:08:00").as_deref(),
        Some("00:c8:8b:e2:d6:87")
    );
    assert_eq!(parse_hex("0x10"), parse_hex("10"));
    assert_eq!(nf_action("PVEFW-reject"), Some(2));
    assert_eq!(cef_severity("7"), Some(4));
    let ev: Value = serde_json::json!({
        "http_request": {"url": {"path": "/a", "query_string": "b=1"}},
        "src_endpoint": {"ip": "::ffff:192.168.1.1"},
        "observables": [{"name": "src_endpoint.ip", "type_id": 2, "value": "10.0.0.1"}],
        "time": 1_591_603_483_000_i64,
        "timezone_offset": 0
    });
    let t = |s: &str| Want::Text(s.to_owned());
    assert!(compare(&ev, "http_request.url", "path_query", "", &t("/a?b=1")).is_ok());
    assert!(compare(&ev, "src_endpoint.ip", "ip", "", &t("192.168.1.1")).is_ok());
    assert!(compare(&ev, "user.name|observables[]", "ip", "", &t("10.0.0.1")).is_ok());
    assert!(compare(&ev, "actor.user.name", "nil_ok", "", &t("-")).is_ok());
    assert!(compare(&ev, "actor.user.name", "str", "", &t("-")).is_err());
    assert!(compare(&ev, "time", "time", "", &t("2020-06-08T08:04:43Z")).is_ok());
    assert!(
        compare(
            &ev,
            "time",
            "time",
            "",
            &Want::FromFifth("-06-08T08:04:43Z".to_owned())
        )
        .is_ok()
    );
    assert!(
        compare(
            &ev,
            "time",
            "clf_time",
            "",
            &t("08/Jun/2020:08:04:43 +0000")
        )
        .is_ok()
    );
}
