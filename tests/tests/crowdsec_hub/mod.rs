//! CrowdSec hub parser tests (`../shared/corpus/crowdsec-hub/parsers/<test>/`) as an oracle
//! for the envelope and the service fields.
//!
//! Each test has a log file and CrowdSec's expectations per stage and parser, indexed by
//! non-empty line: `s00-raw` (the envelope), `s01-parse` (service fields), `s02-enrich`
//! (the parsed time). Our event for index `i` is the one whose `metadata.sequence` is the
//! line number of the i-th non-empty line. Every expected field must be placed by
//! `tests/data/crowdsec-fields.csv` (or explicitly not compared there, with a reason);
//! `tests/data/crowdsec-exclusions.csv` lists lines and fields outside the contract.

mod compare;
mod table;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{Map, Value};

use self::compare::Want;
use self::table::{Exclusions, Fields};
use crate::support::{self, json};

const STAGES: [&str; 3] = ["s00-raw", "s01-parse", "s02-enrich"];

/// Tests whose point is that CrowdSec's sshd parser must *not* match: our events for those
/// lines must not be authentication failures either.
const FALSE_POSITIVE_TESTS: &[&str] = &["sshd-logs-fp"];

#[test]
fn hub_parser_tests() {
    let fields = Fields::load();
    let exclusions = Exclusions::load();
    let dir = support::corpus("crowdsec-hub/parsers");
    let mut tests: Vec<String> = fs::read_dir(&dir)
        .expect("parsers is a directory")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    tests.sort();
    assert!(
        tests.len() >= 25,
        "expected CrowdSec's 25 hub tests, found {}",
        tests.len()
    );

    let mut problems = Vec::new();
    eprintln!(
        "\n{:<28} {:>5} {:>6} {:>8} {:>7} {:>8} {:>9}",
        "test", "lines", "events", "checked", "failed", "not cmp", "excluded"
    );
    for test in &tests {
        let mut t = TestRun::new(test, &dir.join(test));
        t.check_all(&fields, &exclusions);
        eprintln!(
            "{:<28} {:>5} {:>6} {:>8} {:>7} {:>8} {:>9}",
            test,
            t.lines.len(),
            t.n_events,
            t.checked,
            t.failed,
            t.not_compared,
            t.excluded
        );
        problems.extend(t.into_problems());
    }
    support::assert_no_problems("CrowdSec hub parser tests", &problems, 40);
}

/// One hub test: its lines, our events for them, CrowdSec's expectations and the tally.
struct TestRun {
    name: String,
    results: Map<String, Value>,
    /// Line numbers (1-based) of the non-empty lines: CrowdSec's index → our sequence.
    lines: Vec<u64>,
    events: BTreeMap<u64, Vec<Value>>,
    n_events: usize,
    checked: usize,
    failed: usize,
    not_compared: usize,
    excluded: usize,
    /// Mismatches per line (sequence); a line's problems are reported together.
    by_line: BTreeMap<u64, Vec<String>>,
    /// The text of each line, for the report.
    texts: BTreeMap<u64, String>,
    /// Problems with the test's own data (fields missing from the table).
    general: Vec<String>,
}

impl TestRun {
    fn new(name: &str, dir: &Path) -> Self {
        let doc: Value = serde_json::from_str(
            &fs::read_to_string(dir.join("expected.json")).expect("expected.json"),
        )
        .unwrap_or_else(|e| panic!("{name}/expected.json: {e}"));
        let log_files = doc["log_files"].as_object().expect("log_files");
        assert_eq!(log_files.len(), 1, "{name}: one log file per test");
        let (file, expected_lines) = log_files.iter().next().expect("one log file");
        let path = dir.join(file);
        let lines = support::read_lines(&path);
        // The log must be the lines CrowdSec's expectations were written for.
        let ours: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| !l.trim().is_empty())
            .collect();
        let theirs: Vec<&str> = expected_lines
            .as_array()
            .expect("lines")
            .iter()
            .filter_map(Value::as_str)
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            ours, theirs,
            "{name}: {file} differs from expected.json's log_files"
        );

        let emitted = support::normalize(&[&path]);
        let mut events: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        for (seq, evs) in support::by_sequence(&emitted) {
            events.insert(seq, evs.into_iter().cloned().collect());
        }
        Self {
            name: name.to_owned(),
            results: doc["parser_expected"]["results"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
            lines: lines
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, _)| i as u64 + 1)
                .collect(),
            texts: lines
                .iter()
                .enumerate()
                .map(|(i, l)| (i as u64 + 1, l.clone()))
                .collect(),
            n_events: emitted.len(),
            events,
            checked: 0,
            failed: 0,
            not_compared: 0,
            excluded: 0,
            by_line: BTreeMap::new(),
            general: Vec::new(),
        }
    }

    fn problem(&mut self, seq: u64, what: String) {
        let list = self.by_line.entry(seq).or_default();
        if !list.contains(&what) {
            list.push(what);
        }
    }

    /// One entry per line with problems, then the data problems.
    fn into_problems(self) -> Vec<String> {
        let mut out: Vec<String> = self
            .by_line
            .iter()
            .map(|(seq, what)| {
                let text = self.texts.get(seq).map_or("", String::as_str);
                format!(
                    "{} line {seq}: {}\n      {}",
                    self.name,
                    support::clip(text, 140),
                    what.join("\n      ")
                )
            })
            .collect();
        out.extend(self.general);
        out
    }

    /// The successful entries of a stage for CrowdSec index `i`, as (parser, Evt).
    /// (s00 and s01 index lines directly; s02 is mapped by [`Self::s02_lines`].)
    fn successes(&self, stage: &str, i: usize) -> Vec<(String, Value)> {
        let Some(parsers) = self.results.get(stage).and_then(Value::as_object) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (parser, items) in parsers {
            for (k, item) in items.as_object().into_iter().flatten() {
                let Ok(k) = k.parse::<usize>() else { continue };
                if k == i && item["Success"] == Value::Bool(true) {
                    out.push((parser.clone(), item["Evt"].clone()));
                }
            }
        }
        out
    }

    /// Which line each `s02-enrich` index is: s02 sees the lines some s01 parser accepted
    /// (all lines when the test has no s01 stage).
    fn s02_lines(&self) -> Vec<usize> {
        let s01 = self.results.get("s01-parse").and_then(Value::as_object);
        (0..self.lines.len())
            .filter(|&i| s01.is_none() || !self.successes("s01-parse", i).is_empty())
            .collect()
    }

    fn check_all(&mut self, fields: &Fields, exclusions: &Exclusions) {
        let s02_lines = self.s02_lines();
        for stage in STAGES {
            let Some(parsers) = self.results.get(stage).and_then(Value::as_object).cloned() else {
                continue;
            };
            for (parser, items) in &parsers {
                for (k, item) in items.as_object().into_iter().flatten() {
                    let Ok(idx) = k.parse::<usize>() else {
                        continue;
                    }; // "<len>"
                    let line_index = if stage == "s02-enrich" {
                        s02_lines.get(idx).copied()
                    } else {
                        Some(idx)
                    };
                    let line_index =
                        line_index
                            .filter(|i| *i < self.lines.len())
                            .unwrap_or_else(|| {
                                panic!(
                                    "{}: {stage} {parser} index {idx} is past the log",
                                    self.name
                                )
                            });
                    if item["Success"] != Value::Bool(true) {
                        if stage == "s01-parse"
                            && FALSE_POSITIVE_TESTS.contains(&self.name.as_str())
                        {
                            self.check_not_auth_failure(line_index);
                        }
                        continue;
                    }
                    self.check_entry(stage, parser, line_index, &item["Evt"], fields, exclusions);
                }
            }
        }
    }

    fn check_entry(
        &mut self,
        stage: &str,
        parser: &str,
        i: usize,
        evt: &Value,
        fields: &Fields,
        exclusions: &Exclusions,
    ) {
        let seq = self.lines[i];
        if stage == "s02-enrich" {
            self.assert_same_line(parser, i, evt);
            if !self.owns_time(i, fields) {
                self.not_compared += 1;
                return;
            }
        }
        // Fields a later stage repeats from an earlier one were checked there.
        let earlier: Vec<Value> = STAGES
            .iter()
            .take_while(|s| **s != stage)
            .flat_map(|s| self.successes(s, i))
            .map(|(_, e)| e)
            .collect();

        let mut leaves = Vec::new();
        flatten(evt, "", &mut leaves);
        for (field, want) in leaves {
            if field == "Whitelisted"
                || earlier
                    .iter()
                    .any(|e| leaf(e, &field).is_some_and(|w| w.text() == want.text()))
            {
                continue;
            }
            if exclusions.excludes(&self.name, stage, i, &field) {
                self.excluded += 1;
                continue;
            }
            let rows = fields.lookup(parser, &field);
            if rows.is_empty() {
                let what = format!(
                    "{} [{stage} {parser}] {field}: not in tests/data/crowdsec-fields.csv",
                    self.name
                );
                if !self.general.contains(&what) {
                    self.general.push(what);
                }
                continue;
            }
            for row in rows {
                if !row.compared() {
                    self.not_compared += 1;
                    continue;
                }
                self.checked += 1;
                let Some(ev) = self.event_for(seq) else {
                    self.failed += 1;
                    continue;
                };
                let name = field.rsplit('.').next().unwrap_or(&field);
                if let Err(got) = compare::compare(&ev, &row.ocsf, &row.compare, name, &want) {
                    self.failed += 1;
                    let what = format!(
                        "[{stage} {parser}] {field}={:?}: want at {} ({}), got {got}",
                        support::clip(want.text(), 100),
                        row.ocsf,
                        row.compare
                    );
                    self.problem(seq, what);
                }
            }
        }
    }

    /// Our one event for line `seq`; reports (once per line) when there is not exactly one.
    fn event_for(&mut self, seq: u64) -> Option<Value> {
        match self.events.get(&seq).map(Vec::as_slice) {
            Some([ev]) => Some(ev.clone()),
            other => {
                let n = other.map_or(0, <[Value]>::len);
                self.problem(seq, format!("{n} events (want exactly 1)"));
                None
            }
        }
    }

    /// The time CrowdSec parsed is ours to match where we own the format: the syslog
    /// envelope, or a service format of the contract.
    fn owns_time(&self, i: usize, fields: &Fields) -> bool {
        let s00 = self.successes("s00-raw", i);
        let s01 = self.successes("s01-parse", i);
        s00.iter().any(|(p, _)| p == "crowdsecurity/syslog-logs")
            || s01.iter().any(|(p, _)| !fields.parser_out_of_scope(p))
    }

    /// Guards the s02 index mapping: an s02 entry repeats its line's message as an earlier
    /// stage left it (s01 parsers may replace s00's).
    fn assert_same_line(&self, parser: &str, i: usize, evt: &Value) {
        let Some(msg) = json::get(evt, "Parsed.message") else {
            return;
        };
        let earlier: Vec<(String, Value)> = ["s00-raw", "s01-parse"]
            .iter()
            .flat_map(|s| self.successes(s, i))
            .collect();
        let ok = earlier
            .iter()
            .any(|(_, e)| json::get(e, "Parsed.message") == Some(msg));
        assert!(
            ok || earlier.is_empty(),
            "{}: s02 {parser} entry does not belong to line index {i}",
            self.name
        );
    }

    /// A line CrowdSec's sshd parser must not match is no authentication failure of ours.
    fn check_not_auth_failure(&mut self, i: usize) {
        let seq = self.lines[i];
        self.checked += 1;
        let Some(ev) = self.event_for(seq) else {
            self.failed += 1;
            return;
        };
        let class = json::text_at(&ev, "class_uid");
        let status = json::text_at(&ev, "status_id");
        if class.as_deref() == Some("3002") && status.as_deref() == Some("2") {
            self.failed += 1;
            let what = "CrowdSec's sshd parser must not match this line, but ours made it an \
                        authentication failure"
                .to_owned();
            self.problem(seq, what);
        }
    }
}

/// The leaves of an `Evt`, as (`Parsed.x`, want). `{"<basename>": v}` and `{"<[4:]>": v}`
/// are CrowdSec's function assertions, kept as such.
fn flatten(v: &Value, prefix: &str, out: &mut Vec<(String, Want)>) {
    let Some(obj) = v.as_object() else {
        if let Some(t) = json::text(v) {
            out.push((prefix.to_owned(), Want::Text(t)));
        }
        return;
    };
    for (k, child) in obj {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let special = child
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next());
        match special {
            Some((f, x)) if f == "<basename>" => {
                out.push((path, Want::Basename(json::text(x).unwrap_or_default())))
            }
            Some((f, x)) if f == "<[4:]>" => {
                out.push((path, Want::FromFifth(json::text(x).unwrap_or_default())))
            }
            _ => flatten(child, &path, out),
        }
    }
}

/// The want of one leaf of an `Evt`.
fn leaf(evt: &Value, field: &str) -> Option<Want> {
    let mut leaves = Vec::new();
    flatten(evt, "", &mut leaves);
    leaves.into_iter().find(|(f, _)| f == field).map(|(_, w)| w)
}
