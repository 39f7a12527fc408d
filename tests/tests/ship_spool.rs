//! The agent's disk spool under stress, with the real binaries: full on a small tmpfs
//! (block: nothing lost; drop-oldest: losses counted exactly and located), and damaged by
//! hand (the agent starts and loses exactly the damaged records, reported); the
//! aggregator's own disk full (nothing acknowledged, nothing lost once space is freed);
//! and the agent's identity on a full disk at renewal time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::support::Scratch;
use super::support::agent::RunningAgent;
use super::support::agent_bin;
use super::support::aggregator::{
    RunningAggregator, Stored, distinct_lines, enrolled_agent, line_numbers,
};

const DEADLINE: Duration = Duration::from_secs(120);

/// A tmpfs of `kib` KiB mounted at `at` for the test's life (needs root, as CI is).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, kib: u64) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount(8)");
        assert!(
            st.success(),
            "mounting a tmpfs at {} failed (root needed)",
            at.display()
        );
        Self(at.to_owned())
    }

    fn used(&self) -> u64 {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ignored = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Waits until the spool has stopped growing near its limit: it is full, and the agent is
/// either blocked (block) or dropping (drop-oldest).
fn wait_full(fs: &Tmpfs, near: u64) {
    const STEP: Duration = Duration::from_millis(20);
    for _ in 0..DEADLINE.as_millis() / STEP.as_millis() {
        if fs.used() >= near {
            return;
        }
        std::thread::sleep(STEP);
    }
    panic!("the spool never filled: {} bytes", fs.used());
}

/// A file of `n` distinct lines, an enrolled agent whose aggregator is then paused, and
/// the agent's config with `extra` output settings.
fn setup(scratch: &Scratch, n: usize, extra: &str) -> (RunningAggregator, PathBuf, PathBuf) {
    let mut agg = RunningAggregator::start(scratch, "agg");
    let (dir, cfg) = enrolled_agent(
        scratch,
        &agg,
        n,
        &format!("batch_max_kb = 64\ndrain_ms = 0\n{extra}"),
    );
    agg.pause();
    (agg, dir, cfg)
}

#[test]
fn a_full_spool_with_the_block_policy_pauses_the_tail_and_loses_nothing() {
    // Peers: Vector's disk buffer and Fluent Bit's filesystem storage stop reading or
    // refuse to start when the disk fills; here the tail waits and catches up.
    const N: usize = 40_000;
    let scratch = Scratch::new("spool-block");
    let (mut agg, dir, cfg) = setup(&scratch, N, "spool_full = \"block\"\n");
    let fs = Tmpfs::mount(&dir.join("spool"), 256);
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    wait_full(&fs, 160 << 10);
    agg.resume();
    let stored = Stored::open(&agg.db());
    let have = stored.wait_count(N as u64, DEADLINE);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(have, N as u64, "{log}");
    let seen = line_numbers(&stored.events());
    assert_eq!(seen.len(), N);
    assert!(seen.values().all(|&c| c == 1));
    assert!(log.contains("0 dropped (0 events) when full"), "{log}");
    drop(fs);
}

#[test]
fn sigterm_while_blocked_on_a_full_spool_stops_cleanly_and_the_restart_loses_nothing() {
    // An operator stops the agent (a package upgrade, a reboot) while the aggregator is
    // away and the spool full: the lines not yet spooled stay unread in the checkpoint, so
    // the stop is clean and the next start delivers them.
    const N: usize = 40_000;
    let scratch = Scratch::new("spool-block-term");
    let (mut agg, dir, cfg) = setup(&scratch, N, "spool_full = \"block\"\n");
    let fs = Tmpfs::mount(&dir.join("spool"), 256);
    let agent = RunningAgent::spawn(cfg.clone(), scratch.path("unused.ndjson"));
    wait_full(&fs, 160 << 10);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    // What the spool could not take is said, when there was any: a stop gives up only the
    // appends that wait for space, so the last batches may all have fitted.
    assert!(
        !log.contains("stopped with the spool full")
            || log.contains("read again at the next start"),
        "{log}"
    );
    agg.resume();
    let agent = RunningAgent::spawn(cfg, scratch.path("unused2.ndjson"));
    let stored = Stored::open(&agg.db());
    let have = stored.wait_count(N as u64, DEADLINE);
    let (status, log2) = agent.stop();
    assert!(status.success(), "{log2}");
    assert_eq!(have, N as u64, "{log}\n---\n{log2}");
    let seen = line_numbers(&stored.events());
    assert_eq!(seen.len(), N);
    assert!(seen.values().all(|&c| c == 1));
    drop(fs);
}

#[test]
fn sigterm_after_a_sighup_while_blocked_on_a_full_spool_still_stops() {
    // A SIGHUP (a logrotate postrotate) while the spool was full left the control task
    // waiting to hand the stage its new config, no longer listening for SIGTERM: the stop
    // hung until the supervisor's SIGKILL.
    const N: usize = 40_000;
    let scratch = Scratch::new("spool-block-hup");
    let (_agg, dir, cfg) = setup(&scratch, N, "spool_full = \"block\"\n");
    let fs = Tmpfs::mount(&dir.join("spool"), 256);
    let mut agent = RunningAgent::spawn(cfg.clone(), scratch.path("unused.ndjson"));
    wait_full(&fs, 160 << 10);
    // The file input changed: the reload stops it, and its stop waits on the stage.
    let text = std::fs::read_to_string(&cfg).unwrap();
    agent.rewrite_config(&text.replace("read_from = \"start\"", "read_from = \"end\""));
    agent.signal("HUP");
    // Time for the reload to start and block (nothing says so); were the TERM first, the
    // test would pass on the old code too, never fail on the new.
    std::thread::sleep(Duration::from_millis(300));
    agent.signal("TERM");
    let Some((status, log)) = agent.exited_within(Duration::from_secs(20)) else {
        let (_status, log) = agent.kill9();
        panic!("SIGTERM ignored after a SIGHUP:\n{log}");
    };
    assert!(status.success(), "{log}");
    drop(fs);
}

#[test]
fn a_full_spool_with_drop_oldest_counts_every_lost_event_and_the_gaps_say_where() {
    const N: usize = 40_000;
    let scratch = Scratch::new("spool-drop");
    let (mut agg, dir, cfg) = setup(&scratch, N, "spool_full = \"drop_oldest\"\n");
    let fs = Tmpfs::mount(&dir.join("spool"), 256);
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    // Drop-oldest never blocks: the whole file goes through the spool, the oldest batches
    // out of it.
    wait_checkpoint_at_end(&dir, &scratch.path("logs/app.log"));
    wait_full(&fs, 128 << 10);
    agg.resume();
    // The agent's heartbeats carry its drop counter to the aggregator: wait until what is
    // stored and what was dropped account for every line.
    let stored = Stored::open(&agg.db());
    let accounted = || stored.count() as i64 + stored.int("SELECT max(dropped_events) FROM agents");
    const STEP: Duration = Duration::from_millis(20);
    for _ in 0..DEADLINE.as_millis() / STEP.as_millis() {
        if accounted() >= N as i64 {
            break;
        }
        std::thread::sleep(STEP);
    }
    let reported = stored.int("SELECT max(dropped_events) FROM agents") as u64;
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    // The summary line counts what the spool dropped.
    let line = log
        .lines()
        .find(|l| l.contains("when full"))
        .unwrap_or_else(|| panic!("no spool summary in:\n{log}"));
    let dropped_events: u64 = line
        .split(" dropped (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no dropped count in {line:?}"));
    assert!(dropped_events > 0, "nothing was dropped: {line}");
    assert_eq!(
        reported, dropped_events,
        "the heartbeat's count and the agent's differ"
    );
    let have = stored.count();
    assert_eq!(
        have + dropped_events,
        N as u64,
        "stored {have} + dropped {dropped_events}\n{log}"
    );
    let seen = line_numbers(&stored.events());
    assert!(seen.values().all(|&c| c == 1));
    // Every missing line lies in a gap the aggregator reports for the file.
    let gaps = super::support::aggregator::aggregator_cli(&[
        "gaps",
        "--state-dir",
        agg.state.to_str().unwrap(),
    ]);
    let ranges: Vec<(u64, u64)> = gaps
        .lines()
        .filter(|l| l.contains("app.log") && l.contains("byte ["))
        .filter_map(|l| {
            let r = l.split("byte [").nth(1)?.split(')').next()?;
            let (a, b) = r.split_once(", ")?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    // The aggregator was away from the start, so what drop-oldest lost is the head of the
    // file: before the first range it committed, where its gaps (holes between committed
    // ranges) cannot see. A missing line is located by that first range's start or by a
    // reported gap. (Not the converse: a source batch's watermark rides in the spool batch
    // where its first events went, so events that spilled into the next, stored, batch
    // may lie before the first committed range.)
    let head = stored
        .int("SELECT min(first) FROM watermarks WHERE source LIKE '%app.log' AND unit = 'byte'")
        as u64;
    assert!(
        !ranges.is_empty() || head > 0,
        "no gaps reported and nothing lost at the head:\n{gaps}"
    );
    let text = distinct_lines(N, "app");
    let mut offset = 0u64;
    for (i, line) in text.lines().enumerate() {
        if !seen.contains_key(&(i as u64)) {
            assert!(
                offset < head || ranges.iter().any(|&(a, b)| a <= offset && offset < b),
                "line {i} at byte {offset} is missing but after the first committed range \
                 ({head}) and in no reported gap:\n{gaps}"
            );
        }
        offset += line.len() as u64 + 1;
    }
    drop(fs);
}

#[test]
fn a_spool_damaged_by_hand_still_starts_and_loses_exactly_the_damaged_records() {
    // Peer: Vector's disk buffer, damaged by a hard reset, made the agent loop or refuse
    // to start (vectordotdev/vector#11766 and kin). Here it starts, and says what it lost.
    use vedette_agent::core::batcher::decode;
    use vedette_agent::core::spool::scan;

    const N: usize = 20_000;
    let scratch = Scratch::new("spool-damage");
    let (mut agg, dir, cfg) = setup(&scratch, N, "");
    // Everything into the spool while the aggregator is away, then a clean stop.
    let mut agent = RunningAgent::spawn(cfg.clone(), scratch.path("unused.ndjson"));
    agent.wait_log("reading");
    wait_checkpoint_at_end(&dir, &scratch.path("logs/app.log"));
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let spool = dir.join("spool");
    let segs: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&spool)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        v.sort();
        v
    };
    let seg = segs.last().expect("a segment").clone();
    let bytes = std::fs::read(&seg).unwrap();
    let s = scan(&bytes);
    assert!(s.damaged.is_empty() && s.torn_tail.is_none());
    assert!(
        s.records.len() >= 3,
        "want 3 records in {}, have {}",
        seg.display(),
        s.records.len()
    );
    // Flip one byte in the middle of the second record; cut the last one short.
    let (mid, last) = (&s.records[1], &s.records[s.records.len() - 1]);
    let lost_lines = |r: &vedette_agent::core::spool::Record| -> Vec<u64> {
        let (_, ndjson) =
            decode(&bytes[r.payload().start as usize..r.payload().end as usize]).unwrap();
        let events: Vec<serde_json::Value> = String::from_utf8(ndjson)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        line_numbers(&events).into_keys().collect()
    };
    let mut lost: Vec<u64> = lost_lines(mid);
    lost.extend(lost_lines(last));
    let mut damaged = bytes.clone();
    damaged[(mid.offset + mid.len / 2) as usize] ^= 0x40;
    damaged.truncate((last.offset + last.len / 2) as usize);
    std::fs::write(&seg, &damaged).unwrap();

    // `spool verify` finds both and says so (exit 1), without touching anything.
    let out = Command::new(agent_bin())
        .args(["spool", "verify", "--state-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("damaged") || report.contains("torn"),
        "{report}"
    );
    assert_eq!(
        std::fs::read(&seg).unwrap(),
        damaged,
        "verify changed the file"
    );

    agg.resume();
    let mut agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    let opened = agent.wait_log("damage skipped");
    assert!(opened.contains("damage skipped: 1 records"), "{opened}");
    assert!(!opened.contains("torn tail cut: 0 bytes"), "{opened}");
    let stored = Stored::open(&agg.db());
    let want = N as u64 - lost.len() as u64;
    let have = stored.wait_count(want, DEADLINE);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(have, want, "{log}");
    let seen = line_numbers(&stored.events());
    let missing: Vec<u64> = (0..N as u64).filter(|i| !seen.contains_key(i)).collect();
    lost.sort_unstable();
    assert_eq!(missing, lost, "lost exactly the damaged records' events");
    eprintln!(
        "{} events lost with 2 damaged records; {have} stored",
        lost.len()
    );
}

#[test]
fn batches_spooled_before_a_reboot_are_delivered_after_it() {
    // A host reboots while the aggregator is away: the spool takes a new epoch for new
    // batches, and the ones spooled before keep theirs. An agent that checked acks
    // against the new epoch refused every ack of an old batch, reconnected, resent it,
    // and shipped nothing more, for good.
    const N: usize = 6_000;
    const M: usize = 4_000;
    let scratch = Scratch::new("spool-reboot");
    let (mut agg, dir, cfg) = setup(&scratch, N, "");
    let all = distinct_lines(N + M, "app");
    let cut = all.match_indices('\n').nth(N - 1).unwrap().0 + 1;
    scratch.write("logs/app.log", &all.as_bytes()[..cut]);
    let mut agent = RunningAgent::spawn(cfg.clone(), scratch.path("unused.ndjson"));
    agent.wait_log("reading");
    wait_checkpoint_at_end(&dir, &scratch.path("logs/app.log"));
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    // The reboot: the state file says the spool last ran in another boot.
    let state = dir.join("spool/state");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains("\nboot "), "no boot recorded:\n{text}");
    let rebooted: String = text
        .lines()
        .map(|l| {
            if l.starts_with("boot ") {
                "boot 00000000-0000-0000-0000-000000000000\n".to_owned()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&state, rebooted).unwrap();
    // And lines written after it, for batches of the new epoch.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(scratch.path("logs/app.log"))
            .unwrap();
        f.write_all(&all.as_bytes()[cut..]).unwrap();
    }

    agg.resume();
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    let stored = Stored::open(&agg.db());
    let have = stored.wait_count((N + M) as u64, DEADLINE);
    let (status, log2) = agent.stop();
    assert!(status.success(), "{log2}");
    assert_eq!(have, (N + M) as u64, "{log}\n---\n{log2}");
    let seen = line_numbers(&stored.events());
    assert_eq!(seen.len(), N + M);
    assert!(seen.values().all(|&c| c == 1));
    let after = std::fs::read_to_string(&state).unwrap();
    assert!(
        after.contains("earlier "),
        "the spool took no new epoch:\n{after}"
    );
}

/// Waits until the agent's checkpoint for `file` says it read to the end.
fn wait_checkpoint_at_end(state: &Path, file: &Path) {
    let len = std::fs::metadata(file).unwrap().len().to_string();
    const STEP: Duration = Duration::from_millis(20);
    for _ in 0..DEADLINE.as_millis() / STEP.as_millis() {
        let done = std::fs::read_dir(state)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("checkpoint"))
            .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(&len)));
        if done {
            return;
        }
        std::thread::sleep(STEP);
    }
    panic!(
        "the agent never checkpointed {} at its end ({len})",
        file.display()
    );
}

/// The aggregator's disk fills (its events outgrew the volume): SQLite refuses the commit,
/// the aggregator says so and acknowledges nothing, the agent keeps the batches in its
/// spool and resends them; once space is freed every event is stored, exactly once, and
/// neither process had to be restarted.
#[test]
fn the_aggregators_disk_full_loses_nothing_once_space_is_freed() {
    const N: usize = 40_000;
    let scratch = Scratch::new("agg-disk-full");
    let fs = Tmpfs::mount(&scratch.path("agg"), 24 << 10);
    let mut agg = RunningAggregator::start(&scratch, "agg");
    // Leave ~1 MiB: the first few thousand events fit, the rest do not.
    let filler = scratch.path("agg/filler");
    let free = free_bytes(&scratch.path("agg"));
    std::fs::write(&filler, vec![0u8; (free - (1 << 20)) as usize]).expect("filler");
    let (dir, cfg) = enrolled_agent(
        &scratch,
        &agg,
        N,
        "batch_max_kb = 64\ndrain_ms = 0\nspool_full = \"block\"\n",
    );
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    agg.wait_log("database or disk is full");
    let stored = Stored::open(&agg.db());
    let before = stored.count();
    assert!(before < N as u64, "the disk never filled: {before} stored");
    std::fs::remove_file(&filler).expect("free the space");
    let have = stored.wait_count(N as u64, DEADLINE);
    let (status, log) = agent.stop();
    let agg_log = agg.log();
    assert!(status.success(), "{log}");
    assert_eq!(have, N as u64, "{log}\n---\n{agg_log}");
    let seen = line_numbers(&stored.events());
    assert_eq!(seen.len(), N);
    assert!(seen.values().all(|&c| c == 1), "an event stored twice");
    drop(dir);
    drop(fs);
}

/// Bytes free on the file system holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df's available bytes")
}

#[test]
fn a_renewal_the_full_disk_could_not_save_is_asked_for_again() {
    // The certificate renewed by the aggregator could not be written (a full disk): the
    // error ended the control stream's task without a word, the connection shipped on
    // without heartbeats or renewal, and once the certificate expired under it the next
    // connection was refused for good. Now the current certificate stays in use and the
    // renewal is asked for again; the session also ends (and reconnects) if its control
    // stream does.
    use super::support::aggregator::enroll_ok;
    let scratch = Scratch::new("spool-renew-full");
    // A one-minute lifetime is in its last third at once: the first heartbeat asks.
    let agg = RunningAggregator::start_with(&scratch, "agg", None, "cert_lifetime = \"1m\"\n");
    let dir = scratch.path("agent");
    enroll_ok(&dir, &agg.server(), &agg.token("default", "1h"));
    let identity = dir.join("identity");
    let kept = scratch.path("identity-kept");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&identity)
        .arg(&kept)
        .status()
        .unwrap();
    assert!(st.success());
    let fs = Tmpfs::mount(&identity, 64);
    let st = Command::new("sh")
        .arg("-c")
        .arg(r#"cp -a "$1"/. "$2"/"#)
        .arg("sh")
        .arg(&kept)
        .arg(&identity)
        .status()
        .unwrap();
    assert!(st.success());
    let first = std::fs::read_to_string(identity.join("agent.pem")).unwrap();
    // Fill what is left of it.
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(identity.join("filler")).unwrap();
        while filler.write_all(&[0u8; 4096]).is_ok() {}
        let _ignored = filler.sync_all();
    }
    std::fs::create_dir_all(scratch.path("logs")).unwrap();
    scratch.write("logs/app.log", distinct_lines(100, "app").as_bytes());
    let cfg = scratch.write(
        "agent.toml",
        super::support::aggregator::ship_config(
            &dir,
            &scratch.path("logs/*.log").display().to_string(),
            "",
        )
        .as_bytes(),
    );
    let mut agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    agent.wait_log("saving the renewed certificate failed");
    let stored = Stored::open(&agg.db());
    assert_eq!(stored.wait_count(100, DEADLINE), 100);
    // Space again: the next request is saved.
    std::fs::remove_file(identity.join("filler")).unwrap();
    agent.wait_log("certificate renewed");
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let second = std::fs::read_to_string(identity.join("agent.pem")).unwrap();
    assert_ne!(first, second, "{log}");
    drop(fs);
}

#[test]
fn an_agent_whose_output_fails_exits_with_the_error_instead_of_running_on_idle() {
    // The stage stopped on a write error (here the output's filesystem full), the inputs
    // stopped with it, and the process ran on, reading nothing, until someone sent it a
    // SIGTERM (with the aggregator as output, its heartbeats kept saying it was well).
    // Now it exits non-zero with the reason, for its supervisor to restart it.
    let scratch = Scratch::new("output-fails");
    let out_dir = scratch.path("out");
    let _fs = Tmpfs::mount(&out_dir, 64);
    std::fs::create_dir_all(scratch.path("logs")).unwrap();
    scratch.write("logs/app.log", distinct_lines(2_000, "app").as_bytes());
    let out = out_dir.join("events.ndjson");
    let cfg = scratch.write(
        "agent.toml",
        format!(
            "[agent]\nstate_dir = \"{}\"\n[[input.file]]\npaths = [\"{}\"]\nread_from = \"start\"\n[output]\ntype = \"file\"\npath = \"{}\"\n",
            scratch.path("state").display(),
            scratch.path("logs/*.log").display(),
            out.display()
        )
        .as_bytes(),
    );
    let mut agent = RunningAgent::spawn(cfg, out);
    let Some((status, log)) = agent.exited_within(Duration::from_secs(30)) else {
        let (_status, log) = agent.stop();
        panic!("still running with its output failing:\n{log}");
    };
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("the stage stopped; stopping the inputs"),
        "{log}"
    );
    assert!(log.contains("No space left on device"), "{log}");
}
