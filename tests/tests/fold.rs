//! `normalize --fold` (edge dedup) over loghub's OpenSSH log: fewer events out, and not one
//! lost: summing `count` (1 where absent) over the folded output gives, per class, exactly
//! the events of the unfolded output. The folded output is valid OCSF.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::json::get;
use crate::support::{self, Scratch};

fn per_class(events: &[Value]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for ev in events {
        let class = get(ev, "class_name")
            .and_then(Value::as_str)
            .expect("class_name");
        let n = get(ev, "count").and_then(Value::as_u64).unwrap_or(1);
        *m.entry(class.to_owned()).or_insert(0) += n;
    }
    m
}

#[test]
fn folding_loses_no_event_and_reduces_the_openssh_log() {
    let log = support::corpus("loghub/OpenSSH/OpenSSH_2k.log");
    let plain = support::normalize(&[&log]);
    let folded = support::normalize_with(&["--fold"], &[&log]);
    assert_eq!(
        per_class(&folded),
        per_class(&plain),
        "sum of counts per class"
    );
    let ratio = plain.len() as f64 / folded.len() as f64;
    eprintln!(
        "fold, 10 s window: {} events in, {} out, reduction {ratio:.2}x",
        plain.len(),
        folded.len()
    );
    assert!(
        ratio > 1.2,
        "loghub's OpenSSH log repeats a lot: {ratio:.2}x"
    );
    // Summaries carry count, start_time and end_time (sshd's "PAM N more authentication
    // failures" events carry a count of their own, without times).
    let summaries: Vec<&Value> = folded
        .iter()
        .filter(|e| get(e, "start_time").is_some())
        .collect();
    assert!(!summaries.is_empty());
    for ev in summaries {
        let (s, e) = (
            get(ev, "start_time")
                .and_then(Value::as_i64)
                .expect("start_time"),
            get(ev, "end_time")
                .and_then(Value::as_i64)
                .expect("end_time"),
        );
        assert!(get(ev, "count").and_then(Value::as_u64).is_some(), "{ev}");
        assert!(s <= e && e - s < 10_000, "a window is 10 s: {ev}");
    }
    // Every uid still unique: a summary is its first repeat, not a copy of the first sighting.
    let mut uids: Vec<&str> = folded
        .iter()
        .filter_map(|e| get(e, "metadata.uid").and_then(Value::as_str))
        .collect();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), folded.len());

    let scratch = Scratch::new("fold-validate");
    let text: String = folded.iter().map(|e| format!("{e}\n")).collect();
    let path = scratch.write("folded.ndjson", text.as_bytes());
    let problems = crate::ocsf_validate::validate(&path, folded.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
