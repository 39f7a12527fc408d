//! `vedette-agent run` tailing real files: the moments where peers lose or repeat lines
//! (rotation, copytruncate, truncation, late and tiny files, restarts, kill -9), each a test
//! against the real binary.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::support::Scratch;
use crate::support::agent::RunningAgent;
use crate::support::json::get;

fn config(scratch: &Scratch, poll_ms: u32) -> String {
    format!(
        r#"[agent]
hostname = "tailhost"
timezone = "UTC"
state_dir = "{}"
poll_interval_ms = {poll_ms}
[[input.file]]
paths = ["{}/*.log"]
read_from = "start"
[output]
type = "file"
path = "{}"
"#,
        scratch.path("state").display(),
        scratch.path("logs").display(),
        scratch.path("events.ndjson").display()
    )
}

fn line(tag: &str) -> String {
    format!("Jan 15 10:00:00 web-1 app[7]: {tag}\n")
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// The tag each event carries (the message after `app[7]: `), with its uid.
fn tags(evs: &[Value]) -> Vec<(String, String)> {
    evs.iter()
        .map(|e| {
            let msg = get(e, "message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let uid = get(e, "metadata.uid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            (msg.to_owned(), uid.to_owned())
        })
        .collect()
}

fn count(evs: &[Value], tag: &str) -> usize {
    tags(evs).iter().filter(|(m, _)| m == tag).count()
}

#[test]
fn rotation_truncation_late_tiny_and_stopped_files() {
    let scratch = Scratch::new("live-files");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    // Filebeat does not read files under 1 KiB (its fingerprint needs 1 KiB): this one is
    // 45 bytes.
    fs::write(logs.join("small.log"), line("tiny")).expect("write");
    append(&logs.join("app.log"), &(line("app-1") + &line("app-2")));
    append(&logs.join("auth.log"), &line("auth-1"));
    append(
        &logs.join("trunc.log"),
        &(line("t-1") + &line("t-2") + &line("t-3")),
    );
    let cfg = scratch.write("agent.toml", config(&scratch, 10).as_bytes());
    let out = scratch.path("events.ndjson");
    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    agent.wait_events(7);

    // A file created after start (Wazuh and Fluent Bit need a rescan interval to notice;
    // here it is read from its first byte).
    append(&logs.join("late.log"), &(line("late-1") + &line("late-2")));
    agent.wait_events(9);

    // copytruncate (logrotate's mode for apps that never reopen): Vector, Filebeat and the
    // OpenTelemetry collector repeat or lose lines here. The copy leaves the pattern.
    fs::copy(logs.join("app.log"), logs.join("app.log.1")).expect("copy");
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(logs.join("app.log"))
        .expect("truncate");
    append(&logs.join("app.log"), &line("app-after-truncate"));
    agent.wait_events(10);

    // Truncated in place and rewritten shorter.
    fs::write(logs.join("trunc.log"), line("t-new")).expect("rewrite");
    agent.wait_events(11);

    // A 1 MiB line: cut at 64 KiB and flagged, never dropped; the next line is intact.
    let big = format!("Jan 15 10:00:00 web-1 app[7]: {}\n", "x".repeat(1 << 20));
    append(&logs.join("big.log"), &(big.clone() + &line("after-big")));
    let evs = agent.wait_events(13);
    let cut = evs
        .iter()
        .find(|e| get(e, "metadata.is_truncated") == Some(&Value::Bool(true)))
        .expect("the 1 MiB line's event");
    assert_eq!(
        get(cut, "metadata.untruncated_size").and_then(Value::as_u64),
        Some(big.len() as u64 - 1)
    );
    assert_eq!(
        get(cut, "raw_data").and_then(Value::as_str).map(str::len),
        Some(64 * 1024)
    );

    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    // While the agent is stopped (Wazuh skips lines written then): lines are appended, and
    // auth.log rotates by rename with an unread line left in it (Fluent Bit abandons a
    // rotated file with unread bytes). The rotated name is outside the pattern.
    append(&logs.join("small.log"), &line("while-stopped"));
    append(&logs.join("auth.log"), &line("auth-unread-at-rotation"));
    fs::rename(logs.join("auth.log"), logs.join("auth.log.1")).expect("rotate");
    append(&logs.join("auth.log"), &line("auth-new-file"));

    let mut agent = RunningAgent::spawn(cfg, out);
    let evs = agent.wait_events(16);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    let expected = [
        "tiny",
        "app-1",
        "app-2",
        "auth-1",
        "t-1",
        "t-2",
        "t-3",
        "late-1",
        "late-2",
        "app-after-truncate",
        "t-new",
        "after-big",
        "while-stopped",
        "auth-unread-at-rotation",
        "auth-new-file",
    ];
    for tag in expected {
        assert_eq!(
            count(&evs, tag),
            1,
            "{tag:?} must be read exactly once; log:\n{log}"
        );
    }
    assert_eq!(
        evs.len(),
        expected.len() + 1,
        "no other event (the +1 is the big line)"
    );
    let uids: BTreeSet<String> = tags(&evs).into_iter().map(|(_, u)| u).collect();
    assert_eq!(uids.len(), evs.len(), "uids are unique");
}

/// logrotate's `compress` leaves `auth.log.2.gz` beside the log, and a pattern like
/// `auth.log*` matches it: peers tail its compressed bytes as lines of garbage unless told
/// to exclude it (Filebeat's `exclude_files`, Vector's `exclude`, Fluent Bit's
/// `Exclude_Path`, each set by hand). Here a compressed file is known by its head and not
/// tailed, with one notice, whether it is there at start or appears later; `exclude`
/// leaves out files by name or by path.
#[test]
fn compressed_archives_and_excluded_files_are_not_tailed() {
    let scratch = Scratch::new("tail-archives");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    // An archive of a few hundred lines: its compressed bytes hold newlines, as a real
    // one's do, so tailing it would make events of them.
    let gzip = |tag: &str| {
        let text: String = (0..500u64)
            .map(|i| line(&format!("{tag}-{i} {}", i * 7919 % 10007)))
            .collect();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).expect("gzip");
        let gz = e.finish().expect("gzip");
        assert!(gz.contains(&b'\n'), "the archive's bytes hold a newline");
        gz
    };
    append(&logs.join("auth.log"), &line("live-1"));
    append(&logs.join("auth.log.1"), &line("rotated-1"));
    fs::write(logs.join("auth.log.2.gz"), gzip("archived-2")).expect("write");
    append(&logs.join("auth.log.bak"), &line("excluded-by-name"));
    fs::create_dir_all(logs.join("old")).expect("old dir");
    append(&logs.join("old/auth.log"), &line("excluded-by-path"));
    let cfg = format!(
        r#"[agent]
hostname = "tailhost"
timezone = "UTC"
state_dir = "{state}"
poll_interval_ms = 10
[[input.file]]
paths = ["{logs}/auth.log*", "{logs}/*/auth.log"]
exclude = ["*.bak", "{logs}/old/*"]
read_from = "start"
[output]
type = "file"
path = "{out}"
"#,
        state = scratch.path("state").display(),
        logs = logs.display(),
        out = scratch.path("events.ndjson").display()
    );
    let cfg = scratch.write("agent.toml", cfg.as_bytes());
    let mut agent = RunningAgent::spawn(cfg, scratch.path("events.ndjson"));
    agent.wait_events(2);
    // An archive made while the agent runs (the next rotation), then two live lines, the
    // second once the first is out: the round that reads the second listed the files
    // after the archive was there (the rounds run one after another).
    fs::write(logs.join("auth.log.3.gz"), gzip("archived-3")).expect("write");
    append(&logs.join("auth.log"), &line("live-2"));
    agent.wait_events(3);
    append(&logs.join("auth.log"), &line("live-3"));
    agent.wait_events(4);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    let evs: Vec<Value> = fs::read_to_string(scratch.path("events.ndjson"))
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event per line"))
        .collect();
    let mut got: Vec<String> = tags(&evs).into_iter().map(|(m, _)| m).collect();
    got.sort();
    assert_eq!(
        got,
        ["live-1", "live-2", "live-3", "rotated-1"],
        "log:\n{log}"
    );
    for archive in ["auth.log.2.gz", "auth.log.3.gz"] {
        let said = log
            .lines()
            .filter(|l| l.contains(archive) && l.contains("is gzip-compressed"))
            .count();
        assert_eq!(said, 1, "{archive} is reported once; log:\n{log}");
    }
}

/// logrotate's `copytruncate` where the pattern also matches the copy (`app.log*`, the
/// usual way to keep rotated files in scope): the OpenTelemetry collector, Vector and
/// Filebeat read the copy as a new file and repeat every line in it, under new ids a
/// store cannot deduplicate. Here the copy is known by its head: what had been read from
/// the original is not read again, and the line written just before the truncation, which
/// only the copy still has, is read from it.
#[test]
fn copytruncate_with_the_copy_in_the_pattern_repeats_nothing() {
    let scratch = Scratch::new("tail-copytruncate");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    let log = logs.join("app.log");
    // Over 1 KiB, as a log that rotates is: its head fingerprint is full length.
    let before: Vec<String> = (0..40).map(|i| format!("before-{i:02}")).collect();
    append(&log, &before.iter().map(|t| line(t)).collect::<String>());
    let cfg = format!(
        r#"[agent]
hostname = "tailhost"
timezone = "UTC"
state_dir = "{state}"
poll_interval_ms = 10
[[input.file]]
paths = ["{logs}/app.log*"]
read_from = "start"
[output]
type = "file"
path = "{out}"
"#,
        state = scratch.path("state").display(),
        logs = logs.display(),
        out = scratch.path("events.ndjson").display()
    );
    let cfg = scratch.write("agent.toml", cfg.as_bytes());
    let mut agent = RunningAgent::spawn(cfg, scratch.path("events.ndjson"));
    agent.wait_events(before.len());
    // copytruncate: the writer's last line lands, the copy is made, the original is cut.
    append(&log, &line("just-before-truncation"));
    fs::copy(&log, logs.join("app.log.1")).expect("copy");
    OpenOptions::new()
        .write(true)
        .open(&log)
        .and_then(|f| f.set_len(0))
        .expect("truncate");
    append(&log, &line("after-1"));
    agent.wait_events(before.len() + 2);
    append(&log, &line("after-2"));
    agent.wait_events(before.len() + 3);
    let (status, log_text) = agent.stop();
    assert!(status.success(), "{log_text}");
    let evs: Vec<Value> = fs::read_to_string(scratch.path("events.ndjson"))
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event per line"))
        .collect();
    for tag in
        before
            .iter()
            .map(String::as_str)
            .chain(["just-before-truncation", "after-1", "after-2"])
    {
        assert_eq!(
            count(&evs, tag),
            1,
            "{tag:?} exactly once; log:\n{log_text}"
        );
    }
    assert_eq!(evs.len(), before.len() + 3, "log:\n{log_text}");
    assert!(log_text.contains("is a copy of"), "{log_text}");
}

/// A pattern over many files (per-container or per-vhost logs) holds them all open: under
/// the usual soft limit of open files (1024; 64 here, with 300 files) the opens past it
/// failed. The agent raises its soft limit to the hard one, as Go programs do, and says so.
#[test]
fn many_files_are_read_past_a_low_soft_limit_of_open_files() {
    let scratch = Scratch::new("tail-many");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    const FILES: usize = 300;
    for i in 0..FILES {
        append(
            &logs.join(format!("app-{i:03}.log")),
            &line(&format!("file-{i}")),
        );
    }
    let cfg = scratch.write("agent.toml", config(&scratch, 10).as_bytes());
    let out = scratch.path("events.ndjson");
    let mut agent = RunningAgent::spawn_with_nofile(cfg, out, 64, 4096);
    agent.wait_log("soft limit raised from 64 to 4096");
    let evs = agent.wait_events(FILES);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    for i in 0..FILES {
        assert_eq!(
            count(&evs, &format!("file-{i}")),
            1,
            "file {i}; log:\n{log}"
        );
    }
    assert!(!log.contains("cannot read"), "{log}");
}

/// The kill -9 test: a 200,000-line file, the agent killed mid-stream (no flush, no
/// checkpoint on the way out), then restarted. Peers lose the lines in their buffers
/// (Fluent Bit without a DB, Filebeat's in-memory queue) or repeat everything since a
/// stale offset. Here every line is present; the only repeats are the lines after the last
/// checkpoint, i.e. what was in flight; and a repeated line has the same uid both times.
#[test]
fn kill_9_mid_stream_loses_nothing_and_repeats_only_in_flight_lines() {
    const LINES: usize = 200_000;
    let scratch = Scratch::new("live-kill9");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    let mut text = String::with_capacity(LINES * 60);
    for i in 0..LINES {
        text.push_str(&format!("Jan 15 10:00:00 web-1 app[7]: n={i:06}\n"));
    }
    fs::write(logs.join("big.log"), &text).expect("write");
    let cfg = scratch.write("agent.toml", config(&scratch, 10).as_bytes());
    let out = scratch.path("events.ndjson");

    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    // About 5 % of the output (each event is ~1 KB): mid-stream.
    agent.wait_output_bytes(10_000_000);
    let (_status, _log) = agent.kill9();
    let first = fs::read_to_string(&out).expect("output");
    // The line being written at the kill may be cut: it was not acknowledged either.
    let first_whole = &first[..first.rfind('\n').map_or(0, |i| i + 1)];
    let first_run = crate::support::parse_ndjson(first_whole);
    assert!(
        first_run.len() < LINES,
        "the kill came too late to test anything"
    );
    let committed = checkpoint_offset(&scratch.path("state"));

    let mut agent = RunningAgent::spawn(cfg, out.clone());
    // Wait for the restart to read to the end: every line present.
    let mut evs = agent.wait_events(LINES);
    loop {
        let seen: BTreeSet<&str> = evs
            .iter()
            .filter_map(|e| get(e, "message").and_then(Value::as_str))
            .collect();
        if seen.len() == LINES {
            break;
        }
        evs = agent.wait_events(evs.len() + 1);
    }
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    // Per line: the uids it was written with, and how often.
    let mut by_line: BTreeMap<String, (BTreeSet<String>, usize, u64)> = BTreeMap::new();
    for e in &evs {
        let msg = get(e, "message").and_then(Value::as_str).expect("message");
        let uid = get(e, "metadata.uid").and_then(Value::as_str).expect("uid");
        let off = get(e, "metadata.sequence")
            .and_then(Value::as_u64)
            .expect("offset");
        let entry = by_line.entry(msg.to_owned()).or_default();
        entry.0.insert(uid.to_owned());
        entry.1 += 1;
        entry.2 = off;
    }
    assert_eq!(by_line.len(), LINES, "every line is present");
    let repeated: BTreeSet<u64> = by_line
        .values()
        .filter(|(_, n, _)| *n > 1)
        .map(|(_, _, off)| *off)
        .collect();
    for (msg, (uids, n, _)) in &by_line {
        assert!(*n <= 2, "{msg} written {n} times");
        assert_eq!(
            uids.len(),
            1,
            "{msg} was written with different uids: {uids:?}"
        );
    }
    // The repeats are exactly the first run's lines at or after the committed offset: what
    // was written but not yet acknowledged when the agent died.
    let in_flight: BTreeSet<u64> = first_run
        .iter()
        .filter_map(|e| get(e, "metadata.sequence").and_then(Value::as_u64))
        .filter(|off| *off >= committed)
        .collect();
    assert_eq!(
        repeated, in_flight,
        "repeats must be the in-flight lines only"
    );
    // At most MAX_IN_FLIGHT (2) batches of BATCH_LINES (1024) lines are unacknowledged at
    // any time (agent/src/io/files.rs).
    assert!(
        repeated.len() <= 2 * 1024,
        "{} lines repeated",
        repeated.len()
    );
    eprintln!(
        "kill -9 after {} of {LINES} events; checkpoint at byte {committed}; {} lines repeated",
        first_run.len(),
        repeated.len()
    );
}

/// The committed offset of the one tailed file, from the checkpoint file in `state` (a
/// file's later record, appended as it moves on, replaces its earlier ones).
fn checkpoint_offset(state: &Path) -> u64 {
    let mut offsets = BTreeMap::new();
    for e in fs::read_dir(state).expect("state dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("files-") && name.ends_with(".checkpoint") {
            let text = fs::read_to_string(e.path()).expect("checkpoint");
            for l in text.lines().skip(1) {
                let v: Value = serde_json::from_str(l).expect("checkpoint line");
                let file = (v["dev"].as_u64(), v["ino"].as_u64());
                offsets.insert(file, v["offset"].as_u64().expect("offset"));
            }
        }
    }
    assert_eq!(offsets.len(), 1, "one file tracked: {offsets:?}");
    offsets.into_values().next().expect("one")
}

/// A file read from its end on the agent's first start had no checkpoint until a line of
/// it was acknowledged: killed before that (a crash, the OOM killer, kill -9 moments after
/// install), the agent started again from the new end, and what was written meanwhile was
/// never read. Wazuh's logcollector loses lines written while it is down the same way.
#[test]
fn a_file_read_from_its_end_keeps_its_place_from_the_first_scan() {
    let scratch = Scratch::new("live-end-first");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    append(&logs.join("app.log"), &line("before-start"));
    let text = config(&scratch, 10).replace("read_from = \"start\"", "read_from = \"end\"");
    let cfg = scratch.write("agent.toml", text.as_bytes());
    let out = scratch.path("events.ndjson");
    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    agent.wait_log("app.log from byte");
    let (_status, _log) = agent.kill9();
    append(&logs.join("app.log"), &line("while-down"));
    let mut agent = RunningAgent::spawn(cfg, out);
    // "resuming … at byte 45 (checkpoint)"; without one, "reading … from byte 90".
    agent.wait_log("app.log");
    append(&logs.join("app.log"), &line("after-restart"));
    let evs = agent.wait_events(2);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(count(&evs, "before-start"), 0, "read from the end");
    assert_eq!(count(&evs, "while-down"), 1, "{log}");
    assert_eq!(count(&evs, "after-restart"), 1, "{log}");
    assert_eq!(evs.len(), 2);
}

/// An input's checkpoint file is named after its paths: a path added to it (or an input
/// split in two) made a new one, so the input started afresh, at each file's end (what the
/// old input had not read, here what was written while the agent was down, was lost) or,
/// from the start, reading everything again. It now resumes each file where the agent's
/// other inputs' checkpoints left it, and a file no checkpoint names starts as a new one.
#[test]
fn an_input_whose_paths_change_resumes_where_the_old_one_left_each_file() {
    let scratch = Scratch::new("live-paths-change");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    append(&logs.join("app.log"), &line("before-start"));
    append(&logs.join("other.txt"), &line("other-before"));
    let text = config(&scratch, 10).replace("read_from = \"start\"", "read_from = \"end\"");
    let cfg = scratch.write("agent.toml", text.as_bytes());
    let out = scratch.path("events.ndjson");
    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    agent.wait_log("app.log from byte");
    append(&logs.join("app.log"), &line("read-first"));
    agent.wait_events(1);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    append(&logs.join("app.log"), &line("while-down"));
    // The same input with a second path.
    let pattern = format!("\"{}/*.log\"", logs.display());
    let text = text.replace(
        &pattern,
        &format!("{pattern}, \"{}/*.txt\"", logs.display()),
    );
    let cfg = scratch.write("agent.toml", text.as_bytes());
    let mut agent = RunningAgent::spawn(cfg, out);
    agent.wait_log("resuming 1 file(s) where");
    agent.wait_log("other.txt from byte");
    append(&logs.join("app.log"), &line("after-restart"));
    append(&logs.join("other.txt"), &line("other-after"));
    let evs = agent.wait_events(4);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(count(&evs, "before-start"), 0, "read from the end");
    assert_eq!(count(&evs, "read-first"), 1, "{log}");
    assert_eq!(count(&evs, "while-down"), 1, "{log}");
    assert_eq!(count(&evs, "after-restart"), 1, "{log}");
    assert_eq!(
        count(&evs, "other-before"),
        0,
        "a newly covered file starts at its end"
    );
    assert_eq!(count(&evs, "other-after"), 1, "{log}");
    assert_eq!(evs.len(), 4);
    // The uids of the old input's lines are kept: a re-read line is a repeat downstream.
    let uid = |t: &str| {
        tags(&evs)
            .into_iter()
            .find(|(m, _)| m == t)
            .map(|(_, u)| u)
            .unwrap()
    };
    assert_eq!(uid("while-down")[..16], uid("read-first")[..16]);
}

/// Repeats folded by the edge stage, then a graceful stop (SIGTERM, a restart by systemd):
/// the summary is written at the stop, and the checkpoint then passes the repeats it
/// counts. It used to stay at the first repeat, so the next start read the repeats again
/// into a second summary: a brute force counted twice at every restart.
#[test]
fn a_stop_while_repeats_are_folded_counts_each_repeat_once() {
    let scratch = Scratch::new("live-fold-stop");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    let text = config(&scratch, 10) + "[dedup]\nwindow_seconds = 3600\n";
    let cfg = scratch.write("agent.toml", text.as_bytes());
    let out = scratch.path("events.ndjson");
    let failure = "Jan 15 10:00:00 web-1 sshd[42]: Failed password for root from 203.0.113.9 port 50000 ssh2\n";
    append(&logs.join("auth.log"), &failure.repeat(5));
    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    agent.wait_events(1);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    // Started again, and stopped once it read what it had to.
    append(&logs.join("auth.log"), &line("after-restart"));
    let mut agent = RunningAgent::spawn(cfg, out.clone());
    agent.wait_events(3);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let evs: Vec<Value> = crate::support::parse_ndjson(&fs::read_to_string(&out).expect("output"));
    let failures: u64 = evs
        .iter()
        .filter(|e| get(e, "class_uid") == Some(&Value::from(3002)))
        .map(|e| get(e, "count").and_then(Value::as_u64).unwrap_or(1))
        .sum();
    assert_eq!(failures, 5, "each failure counted once:\n{evs:#?}\n{log}");
    assert_eq!(count(&evs, "after-restart"), 1);
}

/// A file rotated while the agent was stopped is looked for by its inode beside its last
/// path; but an inode is reused at once on ext4, and a file that took the number (an
/// `id_rsa` created where the old log was deleted) was opened although it matches no
/// pattern, found not to hold the log's content, and read whole from its start. Only the
/// rotated log itself, recognised by its head, is read there. (The test gives the
/// checkpoint the other file's inode, as a reuse would.)
#[test]
fn a_file_that_took_a_checkpointed_inode_is_not_read() {
    let scratch = Scratch::new("live-inode-reuse");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).unwrap();
    append(&logs.join("a.log"), &line("a-1"));
    let cfg = scratch.write("agent.toml", config(&scratch, 20).as_bytes());
    let out = scratch.path("events.ndjson");
    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    agent.wait_events(1);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    fs::remove_file(logs.join("a.log")).unwrap();
    let secret = logs.join("id_rsa");
    fs::write(&secret, "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n").unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&secret).unwrap());
    let state = scratch.path("state");
    for e in fs::read_dir(&state).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("files-") && name.ends_with(".checkpoint") {
            let text = fs::read_to_string(e.path()).unwrap();
            let mut lines = text.lines();
            let mut new = format!("{}\n", lines.next().unwrap());
            for l in lines {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v["ino"] = Value::from(ino);
                new.push_str(&format!("{v}\n"));
            }
            fs::write(e.path(), new).unwrap();
        }
    }
    append(&logs.join("b.log"), &line("b-1"));
    let mut agent = RunningAgent::spawn(cfg, out.clone());
    agent.wait_events(2);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let text = fs::read_to_string(&out).unwrap();
    assert!(!text.contains("PRIVATE KEY"), "{text}\n{log}");
}

/// A line longer than a round's read budget (1 MiB) completes no line for several rounds:
/// those rounds go on at once instead of each waiting the poll interval (an 8 MiB line
/// took eight intervals; a sparse file's hole, one per MiB). The interval here is the
/// longest allowed, a minute, so only rounds that do not wait finish within the deadline.
#[test]
fn a_line_longer_than_a_round_is_read_without_waiting_between_rounds() {
    let scratch = Scratch::new("live-long-line");
    let logs = scratch.path("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    let big = format!("Jan 15 10:00:00 web-1 app[7]: {}\n", "x".repeat(8 << 20));
    append(&logs.join("big.log"), &(big.clone() + &line("after-big")));
    let cfg = scratch.write("agent.toml", config(&scratch, 60_000).as_bytes());
    let mut agent = RunningAgent::spawn(cfg, scratch.path("events.ndjson"));
    let evs = agent.wait_events(2);
    assert_eq!(
        get(&evs[0], "metadata.untruncated_size").and_then(Value::as_u64),
        Some(big.len() as u64 - 1)
    );
    assert_eq!(count(&evs, "after-big"), 1);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
}
