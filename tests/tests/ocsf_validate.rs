//! Every event the agent emits for the whole corpus is valid OCSF 1.8.0, and no line is
//! dropped.
//!
//! The oracle is `../shared/tools/ocsf-validate`, a re-implementation of the OCSF server's
//! validator over the official 1.8.0 schema export.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, json};

/// How many lines of the validator's invalid-event blocks a failure shows.
const SHOWN_REPORT_LINES: usize = 80;

#[test]
fn corpus_is_valid_ocsf_and_nothing_is_dropped() {
    let mut files = Vec::new();
    collect_logs(&support::corpus(""), &mut files);
    files.sort();
    files.push(support::corpus(
        "http-access/elastic-examples-apache_logs.combined.log.gz",
    ));
    assert!(
        files.len() > 50,
        "expected the whole corpus, found only {} files",
        files.len()
    );

    let scratch = support::Scratch::new("ocsf-validate");
    let ndjson = scratch.path("events.ndjson");
    let run = normalize_to_file(&files, &ndjson);
    let text = fs::read_to_string(&ndjson).expect("normalize output must be UTF-8");
    let events = support::parse_ndjson(&text);

    let mut problems = per_file_stats(&files, &events);
    problems.extend(validate(&ndjson, events.len()));
    if !problems.is_empty() {
        eprintln!("normalize stderr (tail):\n{}", support::tail(&run, 20));
    }
    support::assert_no_problems("OCSF validation of the corpus", &problems, 30);
}

/// Every `*.log` under `dir`, recursively.
fn collect_logs(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        if path.is_dir() {
            collect_logs(&path, out);
        } else if path.extension().is_some_and(|e| e == "log") {
            out.push(path);
        }
    }
}

/// Runs `normalize` over `files` with stdout going straight to `out` (the corpus makes
/// tens of MB of JSON); returns stderr.
fn normalize_to_file(files: &[PathBuf], out: &Path) -> String {
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let stdout =
        File::create(out).unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));
    let output = support::normalize_command(&[], &refs)
        .stdout(stdout)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", support::agent_bin().display()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "vedette-agent normalize over the corpus exited with {}; stderr:\n{}",
        output.status,
        support::tail(&stderr, 40)
    );
    stderr
}

/// Prints lines / events / Base Event share per file (worst share first) and returns the
/// files that lost lines or events that name no input file.
fn per_file_stats(files: &[PathBuf], events: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_source: BTreeMap<String, (usize, usize)> = BTreeMap::new(); // (events, base)
    for ev in events {
        let Some(src) = json::text_at(ev, "metadata.log_source") else {
            problems.push(format!(
                "event without metadata.log_source: {}",
                json::show(Some(ev))
            ));
            continue;
        };
        let slot = by_source.entry(src).or_default();
        slot.0 += 1;
        if json::get(ev, "class_uid").and_then(Value::as_u64) == Some(0) {
            slot.1 += 1;
        }
    }

    let corpus_root = support::corpus("").to_string_lossy().into_owned();
    let mut rows = Vec::new();
    for file in files {
        let src = file.to_string_lossy().into_owned();
        let (n_events, n_base) = by_source.remove(&src).unwrap_or_default();
        let lines = support::read_lines(file);
        let non_empty = lines.iter().filter(|l| !l.trim().is_empty()).count();
        let min_events = minimum_events(&lines);
        let name = src
            .strip_prefix(&corpus_root)
            .unwrap_or(&src)
            .trim_start_matches('/')
            .to_owned();
        if n_events < min_events {
            problems.push(format!(
                "{name}: {n_events} events for {non_empty} non-empty lines (at least {min_events} expected: \
                 one per line, auditd records joined per event id)"
            ));
        }
        let share = if n_events == 0 {
            0.0
        } else {
            n_base as f64 / n_events as f64
        };
        rows.push((share, name, non_empty, n_events));
    }
    for src in by_source.keys() {
        problems.push(format!(
            "events name a log_source that was not an input: {src}"
        ));
    }

    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    eprintln!(
        "\n{:>7} {:>7} {:>6}  file (sorted by Base Event share)",
        "lines", "events", "base%"
    );
    for (share, name, lines, n_events) in &rows {
        eprintln!("{lines:>7} {n_events:>7} {:>5.1}%  {name}", share * 100.0);
    }
    problems
}

/// The fewest events a file may yield: one per non-empty line, except raw auditd records,
/// which the agent joins into one event per (node, event id).
fn minimum_events(lines: &[String]) -> usize {
    let mut plain = 0;
    let mut audit_ids = HashSet::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        match audit_event_id(line) {
            Some(id) => {
                audit_ids.insert(id);
            }
            None => plain += 1,
        }
    }
    plain + audit_ids.len()
}

/// `(node, "time:serial")` of a raw auditd record line (`[node=N ]type=T msg=audit(…):`).
pub(crate) fn audit_event_id(line: &str) -> Option<(String, String)> {
    let (node, rest) = match line.strip_prefix("node=") {
        Some(r) => {
            let (n, rest) = r.split_once(' ')?;
            (n.to_owned(), rest)
        }
        None => (String::new(), line),
    };
    let rest = rest.strip_prefix("type=")?;
    let (_, rest) = rest.split_once(" msg=audit(")?;
    let (id, _) = rest.split_once("):")?;
    Some((node, id.to_owned()))
}

/// Runs the validator and returns its complaints (none when all `expected` events are valid).
pub(crate) fn validate(ndjson: &Path, expected: usize) -> Vec<String> {
    let tool = support::shared_dir().join("tools/ocsf-validate");
    assert!(tool.is_file(), "OCSF validator missing: {}", tool.display());
    let out = Command::new(&tool)
        .args(["--schema-version", "1.8.0", "-q"])
        .arg(ndjson)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (needs python3): {e}", tool.display()));
    // The tool prints invalid events and its summary (always the last line) on stdout.
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = report
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_owned();
    eprintln!("ocsf-validate: {last}");

    let mut problems = Vec::new();
    let want = format!("{expected} valid, 0 invalid");
    if !out.status.success() || !last.starts_with(&want) {
        let blocks: Vec<&str> = report.lines().take(SHOWN_REPORT_LINES).collect();
        problems.push(format!(
            "ocsf-validate exited with {} and says `{last}` (want `{want} …`); first invalid events:\n{}\n{}",
            out.status,
            blocks.join("\n"),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    problems
}

#[test]
fn audit_event_ids_are_read_from_raw_records() {
    assert_eq!(
        audit_event_id("node=a.b type=SYSCALL msg=audit(1451781471.394:194435): arch=c000003e"),
        Some(("a.b".to_owned(), "1451781471.394:194435".to_owned()))
    );
    assert_eq!(
        audit_event_id("type=CWD msg=audit(1.2:3):  cwd=\"/\""),
        Some((String::new(), "1.2:3".to_owned()))
    );
    assert_eq!(audit_event_id("Jan  1 00:00:00 h sshd[1]: x"), None);
}
