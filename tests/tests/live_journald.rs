//! The journald input over a real journal file: `systemd-journal-remote` turns export
//! format into a journal file, `journalctl --file` reads it, as the agent does on a host.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::Scratch;
use crate::support::agent::RunningAgent;
use crate::support::json::get;

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// One entry in journal export format.
fn entry(n: u64, ident: &str, pid: u32, msg: &str) -> String {
    format!(
        "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
         _HOSTNAME=web-1\nSYSLOG_IDENTIFIER={ident}\n_PID={pid}\n_COMM={ident}\n_EXE=/usr/sbin/{ident}\n\
         _UID=0\nPRIORITY=5\nSYSLOG_FACILITY=10\n_TRANSPORT=syslog\nMESSAGE={msg}\n\n",
        1_736_935_200_000_000 + n * 1_000_000,
        1_000_000 + n
    )
}

/// Appends entries to the journal file (creating it).
fn journal_append(journal: &Path, export: &str) {
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(journal)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{JOURNAL_REMOTE} is needed (apt install systemd-journal-remote): {e}")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(export.as_bytes())
        .expect("write export");
    let out = child.wait_with_output().expect("journal-remote");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes the agent's config (its state under `scratch`, the `sections` given, one
/// journal input of the `input` lines, output to `out`) and returns its path.
fn agent_config(scratch: &Scratch, sections: &str, input: &str, out: &Path) -> PathBuf {
    scratch.write(
        "agent.toml",
        format!(
            "[agent]\nstate_dir = \"{}\"\n{sections}[[input.journald]]\n{input}\n[output]\ntype = \"file\"\npath = \"{}\"\n",
            scratch.path("state").display(),
            out.display()
        )
        .as_bytes(),
    )
}

fn msg(ev: &Value) -> &str {
    get(ev, "message")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Wazuh reads the journal only from "now" and loses what was logged while it was down;
/// here the cursor is checkpointed like a file offset: entries logged while the agent is
/// stopped are read after the restart, none twice, and the journal's own fields feed the
/// same parsers as syslog lines do.
#[test]
fn journal_entries_are_parsed_and_resumed_from_the_cursor() {
    let scratch = Scratch::new("live-journald");
    let journal = scratch.path("host.journal");
    journal_append(
        &journal,
        &[
            entry(
                0,
                "sshd",
                123,
                "Failed password for root from 203.0.113.9 port 50000 ssh2",
            ),
            entry(
                1,
                "sudo",
                456,
                "  bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/id",
            ),
            entry(2, "cron", 789, "(root) CMD (run-parts /etc/cron.hourly)"),
        ]
        .concat(),
    );
    let out = scratch.path("events.ndjson");
    let cfg = agent_config(
        &scratch,
        "",
        &format!(
            "args = [\"--file\", \"{}\"]\nread_from = \"start\"",
            journal.display()
        ),
        &out,
    );
    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    agent.wait_events(3);
    // Followed: an entry logged while the agent runs.
    journal_append(
        &journal,
        &entry(
            3,
            "sshd",
            124,
            "Accepted publickey for alice from 198.51.100.7 port 40000 ssh2: ED25519 SHA256:x",
        ),
    );
    agent.wait_events(4);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    journal_append(
        &journal,
        &entry(
            4,
            "sshd",
            125,
            "Invalid user oracle from 192.0.2.77 port 2222",
        ),
    );
    let mut agent = RunningAgent::spawn(cfg, out);
    let evs = agent.wait_events(5);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(
        evs.len(),
        5,
        "each entry once: {:#?}",
        evs.iter().map(msg).collect::<Vec<_>>()
    );

    let failed = evs
        .iter()
        .find(|e| msg(e).starts_with("Failed password"))
        .expect("sshd entry");
    assert_eq!(
        get(failed, "class_name").and_then(Value::as_str),
        Some("Authentication")
    );
    assert_eq!(
        get(failed, "src_endpoint.ip").and_then(Value::as_str),
        Some("203.0.113.9")
    );
    assert_eq!(
        get(failed, "device.hostname").and_then(Value::as_str),
        Some("web-1")
    );
    assert_eq!(
        get(failed, "metadata.log_format").and_then(Value::as_str),
        Some("journald")
    );
    assert_eq!(
        get(failed, "metadata.log_level").and_then(Value::as_str),
        Some("notice")
    );
    assert_eq!(
        get(failed, "actor.process.pid").and_then(Value::as_i64),
        Some(123)
    );
    assert_eq!(
        get(failed, "unmapped.journald.exe").and_then(Value::as_str),
        Some("/usr/sbin/sshd")
    );
    assert_eq!(
        get(failed, "time").and_then(Value::as_i64),
        Some(1_736_935_200_000)
    );
    let sudo = evs
        .iter()
        .find(|e| msg(e).contains("COMMAND=/usr/bin/id"))
        .expect("sudo entry");
    assert_eq!(
        get(sudo, "class_name").and_then(Value::as_str),
        Some("Process Activity")
    );
    let invalid = evs
        .iter()
        .find(|e| msg(e).starts_with("Invalid user"))
        .expect("after restart");
    assert_eq!(
        get(invalid, "user.name").and_then(Value::as_str),
        Some("oracle")
    );
    let mut uids: Vec<&str> = evs
        .iter()
        .filter_map(|e| get(e, "metadata.uid").and_then(Value::as_str))
        .collect();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), 5);
}

/// fluent-plugin-systemd looped for ever on a cursor `sd_journal_seek_cursor` refused (an
/// empty position file), and so did we: `journalctl` exits at once on a cursor it cannot
/// seek to, and was started again with the same cursor. Now the agent starts from when the
/// cursor was saved (the file's time, or the cursor's own `t=`), reads on (what it reads
/// again keeps its uids), and a new cursor replaces the bad one.
#[test]
fn a_cursor_journalctl_refuses_is_replaced_by_the_time_it_was_saved() {
    let scratch = Scratch::new("live-journald-bad-cursor");
    let journal = scratch.path("host.journal");
    journal_append(
        &journal,
        &[
            entry(0, "cron", 1, "(root) CMD (one)"),
            entry(1, "cron", 2, "(root) CMD (two)"),
        ]
        .concat(),
    );
    let state = scratch.path("state");
    let out = scratch.path("events.ndjson");
    let cfg = agent_config(
        &scratch,
        "",
        &format!(
            "args = [\"--file\", \"{}\"]\nread_from = \"start\"",
            journal.display()
        ),
        &out,
    );
    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    let first = agent.wait_events(2);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    // The cursor file, damaged, as if saved a minute before the entries.
    let cursor_file = std::fs::read_dir(&state)
        .expect("state")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "cursor"))
        .unwrap_or_else(|| panic!("no cursor file in {}: {log}", state.display()));
    std::fs::write(&cursor_file, "s=not-a-cursor").expect("damage");
    let minute_before = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_736_935_140);
    std::fs::File::options()
        .write(true)
        .open(&cursor_file)
        .and_then(|f| f.set_modified(minute_before))
        .expect("mtime");

    let mut agent = RunningAgent::spawn(cfg, out);
    agent.wait_log("journalctl refused the saved cursor");
    agent.wait_events(4);
    journal_append(&journal, &entry(2, "cron", 3, "(root) CMD (three)"));
    let evs = agent.wait_events(5);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("from @1736935139"), "{log}");
    assert_eq!(evs.len(), 5, "2, the 2 read again, and the new one: {log}");
    let uid = |e: &Value| {
        get(e, "metadata.uid")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let again: Vec<_> = evs[2..4].iter().map(uid).collect();
    assert_eq!(
        again,
        first.iter().map(uid).collect::<Vec<_>>(),
        "read again with the same uids"
    );
    assert_eq!(msg(&evs[4]), "(root) CMD (three)");
    let cursor = std::fs::read_to_string(&cursor_file).expect("cursor");
    assert_ne!(
        cursor, "s=not-a-cursor",
        "a new cursor replaced the bad one"
    );
}

/// `journalctl --output=json` replaces every field over 4096 bytes by null unless given
/// `--all`: a long message (a stack trace, a long command line) arrived empty. And with
/// `--all` a field is as large as what was logged (a core dump kept in the journal), so
/// a line is read up to a cap, the rest skipped, and the event says it was cut.
#[test]
fn long_journal_messages_arrive_whole_or_cut_and_flagged_never_empty() {
    let scratch = Scratch::new("live-journald-long");
    let journal = scratch.path("host.journal");
    let long = "a".repeat(5_000);
    let longer = "b".repeat(100_000);
    let mut huge = entry(2, "app", 3, "small message beside a huge field");
    huge.insert_str(0, &format!("COREDUMP={}\n", "x".repeat(3_000_000)));
    journal_append(
        &journal,
        &[
            entry(0, "app", 1, &long),
            entry(1, "app", 2, &longer),
            huge,
            entry(3, "app", 4, "after"),
        ]
        .concat(),
    );
    let out = scratch.path("events.ndjson");
    let cfg = agent_config(
        &scratch,
        "",
        &format!(
            "args = [\"--file\", \"{}\"]\nread_from = \"start\"",
            journal.display()
        ),
        &out,
    );
    let mut agent = RunningAgent::spawn(cfg, out);
    let evs = agent.wait_events(4);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(evs.len(), 4, "{log}");
    let by_pid = |pid: i64| {
        evs.iter()
            .find(|e| get(e, "actor.process.pid").and_then(Value::as_i64) == Some(pid))
            .or_else(|| {
                // The cut entry is not parsed: found by its raw text.
                (pid == 3).then(|| {
                    evs.iter()
                        .find(|e| {
                            get(e, "metadata.untruncated_size")
                                .and_then(Value::as_u64)
                                .is_some_and(|n| n > 3_000_000)
                        })
                        .expect("the entry cut at the reader's cap")
                })
            })
            .unwrap_or_else(|| panic!("no event of pid {pid}"))
    };
    let truncated = |e: &Value| get(e, "metadata.is_truncated").and_then(Value::as_bool);

    // Over 4096 bytes, under the cap: whole.
    let e = by_pid(1);
    assert_eq!(msg(e), long);
    assert_eq!(truncated(e), None);

    // Over max_line_bytes (64 KiB): the message cut there, the event flagged.
    let e = by_pid(2);
    assert_eq!(msg(e).len(), 64 * 1024);
    assert!(longer.starts_with(msg(e)));
    assert_eq!(truncated(e), Some(true));
    assert!(get(e, "metadata.untruncated_size").and_then(Value::as_u64) > Some(100_000));
    assert!(get(e, "raw_data").and_then(Value::as_str).unwrap().len() <= 64 * 1024);

    // Over the reader's cap (1 MiB): kept as raw data, cut, with the reason.
    let e = by_pid(3);
    assert_eq!(truncated(e), Some(true));
    let why = get(e, "unmapped.vedette.parse_error")
        .map(Value::to_string)
        .unwrap_or_default();
    assert!(why.contains("over the reader's cap"), "{e}");

    // And the entry after it is read, each with its own uid.
    assert_eq!(msg(by_pid(4)), "after");
    let mut uids: Vec<&str> = evs
        .iter()
        .filter_map(|e| get(e, "metadata.uid").and_then(Value::as_str))
        .collect();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), 4);
}

/// The journal's cursor was checkpointed at the end of every batch the stage wrote, past
/// entries whose events it still held (repeats folded inside a dedup window, an auditd
/// event waiting for its end): a crash then lost them, and the restart read on after
/// them. File tails stopped at the earliest held position; now the journal does too.
#[test]
fn a_crash_loses_no_repeat_held_in_a_dedup_window() {
    let scratch = Scratch::new("live-journald-held");
    let journal = scratch.path("host.journal");
    let failed = "Failed password for root from 203.0.113.9 port 50000 ssh2";
    let mut export = String::new();
    for n in 0..5 {
        export.push_str(&entry(n, "sshd", 123, failed));
    }
    for n in 5..8 {
        export.push_str(&entry(n, "cron", 77, &format!("(root) CMD (job {n})")));
    }
    journal_append(&journal, &export);
    crash_with_repeats_held(&scratch, &[&journal], &journal, failed);
}

/// Runs an agent with a long dedup window over the journal `files` holding five repeats of
/// `failed` and then three other entries, logs one more to `append_to`, kills it (-9) and
/// starts it again: every failure must then be accounted for, as an event or in a
/// summary's count.
fn crash_with_repeats_held(scratch: &Scratch, files: &[&Path], append_to: &Path, failed: &str) {
    let out = scratch.path("events.ndjson");
    let args: Vec<String> = files
        .iter()
        .flat_map(|f| ["\"--file\"".to_owned(), format!("\"{}\"", f.display())])
        .collect();
    let cfg = agent_config(
        scratch,
        "[dedup]\nwindow_seconds = 600\n",
        &format!("args = [{}]\nread_from = \"start\"", args.join(", ")),
        &out,
    );
    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    // The first failure and the three cron lines; four repeats held in the window.
    agent.wait_events(4);
    // One more entry: reading it, the reader has taken the acknowledgements before it.
    journal_append(append_to, &entry(8, "cron", 77, "(root) CMD (job 8)"));
    agent.wait_events(5);
    let (_status, _log) = agent.kill9();

    let mut agent = RunningAgent::spawn(cfg, out.clone());
    agent.wait_events(6);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let text = std::fs::read_to_string(&out).unwrap();
    let failures: u64 = crate::support::parse_ndjson(&text)
        .iter()
        .filter(|e| msg(e) == failed)
        .map(|e| get(e, "count").and_then(Value::as_u64).unwrap_or(1))
        .sum();
    assert!(failures >= 5, "{failures} of 5 failures in:\n{text}\n{log}");
}

/// Entries of two journal files (two sequence-number ids, as `journalctl --file a
/// --file b`, `--merge` or a host's user journals give) in one read: the first file's
/// repeats held in a dedup window, the second's entries written. The one cursor was moved
/// to the end of the second file's batch, past the held entries, and a crash lost them.
#[test]
fn a_crash_loses_no_repeat_held_for_another_journal_file() {
    let scratch = Scratch::new("live-journald-held-two");
    let (a, b) = (scratch.path("a.journal"), scratch.path("b.journal"));
    let failed = "Failed password for root from 203.0.113.9 port 50000 ssh2";
    let export: String = (0..5).map(|n| entry(n, "sshd", 123, failed)).collect();
    journal_append(&a, &export);
    let export: String = (5..8)
        .map(|n| entry(n, "cron", 77, &format!("(root) CMD (job {n})")))
        .collect();
    journal_append(&b, &export);
    crash_with_repeats_held(&scratch, &[&a, &b], &b, failed);
}

/// A cursor move held back by a dedup window was taken by the reader only when the next
/// entry came: on a quiet journal the saved cursor stayed before the held repeats for as
/// long as nothing was logged, and a crash meanwhile read them again (repeated lines,
/// the fault Wazuh's and Filebeat's users report after restarts). Now it is saved once
/// the window ends, with no new entry. Entries read while the window held the cursor back
/// count too: the move goes to the last of them, not to the first batch's end.
#[test]
fn a_cursor_held_back_by_a_dedup_window_is_saved_once_the_window_ends_on_a_quiet_journal() {
    let scratch = Scratch::new("live-journald-quiet");
    let journal = scratch.path("host.journal");
    let failed = "Failed password for root from 203.0.113.9 port 50000 ssh2";
    let export: String = (0..3).map(|n| entry(n, "sshd", 123, failed)).collect();
    journal_append(&journal, &export);
    let state = scratch.path("state");
    let events = scratch.path("events.ndjson");
    let cfg = agent_config(
        &scratch,
        "[dedup]\nwindow_seconds = 5\n",
        &format!(
            "args = [\"--file\", \"{}\"]\nread_from = \"start\"",
            journal.display()
        ),
        &events,
    );
    let mut agent = RunningAgent::spawn(cfg, events.clone());
    agent.wait_events(1);
    // A second batch while the window (5 s from the first failure: time enough on a busy
    // machine) holds the cursor.
    let export: String = (3..5)
        .map(|n| entry(n, "cron", 77, &format!("(root) CMD (job {n})")))
        .collect();
    journal_append(&journal, &export);
    // The cron lines, then the summary of the two repeats once the window ends.
    let evs = agent.wait_events(4);
    let summary = evs
        .iter()
        .position(|e| get(e, "count").and_then(Value::as_u64) == Some(2));
    assert_eq!(
        summary,
        Some(3),
        "the cron lines came while the window was open: {evs:?}"
    );
    // The cursor of the last entry, as journalctl names it.
    let out = Command::new("journalctl")
        .args(["--file"])
        .arg(&journal)
        .args(["--output=json", "--no-pager"])
        .output()
        .expect("journalctl");
    let text = String::from_utf8(out.stdout).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().expect("five entries")).unwrap();
    let last_cursor = last["__CURSOR"].as_str().unwrap().to_owned();
    let mut saved = String::new();
    for _ in 0..200 {
        saved = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "cursor"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        if saved.trim() == last_cursor {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_status, log) = agent.kill9();
    let listing: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.trim(), last_cursor, "{log}\n{listing:?}");
}

/// A first start from the journal's end saved nothing until an entry was acknowledged,
/// so a quiet input (`-u sshd`, or a host with little to say) restarted before its first
/// entry started at the end again: what was logged while the agent was down was lost.
/// Now the first start saves the position of the last entry there is (filters applied),
/// and follows from it.
#[test]
fn a_first_start_from_the_end_keeps_its_place_before_any_entry() {
    let scratch = Scratch::new("live-journald-end");
    let journal = scratch.path("host.journal");
    journal_append(
        &journal,
        &[
            entry(0, "sshd", 1, "Invalid user old-1 from 192.0.2.1 port 1"),
            entry(1, "cron", 2, "(root) CMD (old)"),
        ]
        .concat(),
    );
    let state = scratch.path("state");
    let out = scratch.path("events.ndjson");
    let cfg = agent_config(
        &scratch,
        "",
        &format!(
            "args = [\"--file\", \"{}\", \"SYSLOG_IDENTIFIER=sshd\"]\nread_from = \"end\"",
            journal.display()
        ),
        &out,
    );
    let mut agent = RunningAgent::spawn(cfg.clone(), out.clone());
    agent.wait_log("reading the journal");
    // The position is saved by the reader as it starts.
    let saved = (0..1500).any(|_| {
        let found = std::fs::read_dir(&state).is_ok_and(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.path().extension().is_some_and(|x| x == "cursor"))
        });
        if !found {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        found
    });
    assert!(saved, "no cursor file in {}", state.display());
    let (status, log) = agent.kill9();
    assert!(!status.success(), "{log}");
    // Logged while the agent is down: one that matches the filter, one that does not.
    journal_append(
        &journal,
        &[
            entry(
                2,
                "sshd",
                3,
                "Invalid user while-down from 192.0.2.2 port 2",
            ),
            entry(3, "cron", 4, "(root) CMD (while down)"),
        ]
        .concat(),
    );
    let mut agent = RunningAgent::spawn(cfg, out);
    agent.wait_events(1);
    journal_append(
        &journal,
        &entry(4, "sshd", 5, "Invalid user after from 192.0.2.3 port 3"),
    );
    let evs = agent.wait_events(2);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let users: Vec<&str> = evs
        .iter()
        .filter_map(|e| get(e, "user.name").and_then(Value::as_str))
        .collect();
    assert_eq!(users, ["while-down", "after"], "{log}");
}

/// A field the entry holds more than once (a sender may log `MESSAGE` twice) is an array
/// of its values in journalctl's JSON: the entry failed to parse and became a raw event
/// with no host, program or message parser.
#[test]
fn an_entry_with_a_repeated_field_is_parsed() {
    let scratch = Scratch::new("live-journald-repeated");
    let journal = scratch.path("host.journal");
    let twice = entry(
        0,
        "sshd",
        7,
        "Failed password for root from 203.0.113.9 port 50000 ssh2",
    )
    .replacen("\n\n", "\nMESSAGE=again\n\n", 1);
    journal_append(&journal, &twice);
    let out = scratch.path("events.ndjson");
    let cfg = agent_config(
        &scratch,
        "",
        &format!(
            "args = [\"--file\", \"{}\"]\nread_from = \"start\"",
            journal.display()
        ),
        &out,
    );
    let mut agent = RunningAgent::spawn(cfg, out);
    let evs = agent.wait_events(1);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let raw = get(&evs[0], "raw_data")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(
        raw.contains(r#""MESSAGE":["#),
        "the journal held it twice: {raw}"
    );
    assert_eq!(
        get(&evs[0], "device.hostname").and_then(Value::as_str),
        Some("web-1"),
        "{}",
        evs[0]
    );
    assert_eq!(
        get(&evs[0], "class_name").and_then(Value::as_str),
        Some("Authentication"),
        "{}",
        evs[0]
    );
}

/// A journalctl that cannot run was retried every second for ever, the agent reporting
/// "reading the journal" and nothing wrong. Now the input does not start, and the error
/// names it.
#[test]
fn a_journalctl_that_cannot_run_is_an_error_at_start() {
    let scratch = Scratch::new("live-journald-missing");
    let out = scratch.path("events.ndjson");
    let cfg = agent_config(
        &scratch,
        "",
        &format!(
            "journalctl = \"{}\"",
            scratch.path("no-such-journalctl").display()
        ),
        &out,
    );
    let mut agent = RunningAgent::spawn(cfg, out);
    let (status, log) = agent
        .exited_within(std::time::Duration::from_secs(20))
        .expect("the agent refuses to start");
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("input.journald[0]") && log.contains("cannot run"),
        "{log}"
    );
}
