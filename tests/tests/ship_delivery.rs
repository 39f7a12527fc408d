//! Delivery through faults, with the real binaries over loopback QUIC: every one of a known
//! set of distinct events ends up in SQLite exactly once.

use std::time::Duration;

use super::support::Scratch;
use super::support::agent::RunningAgent;
use super::support::aggregator::{
    Netns, RunningAggregator, Stored, agent_id_in, enrolled_agent, line_numbers,
};

/// Long enough for a debug build on a loaded 2-core machine to ship a few hundred
/// thousand events; returns as soon as they are there.
const DEADLINE: Duration = Duration::from_secs(120);

fn assert_exactly_once(stored: &Stored, n: usize) {
    let events = stored.events();
    let seen = line_numbers(&events);
    let missing: Vec<u64> = (0..n as u64)
        .filter(|i| !seen.contains_key(i))
        .take(10)
        .collect();
    let twice: Vec<(&u64, &usize)> = seen.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(missing.is_empty(), "missing lines (first 10): {missing:?}");
    assert!(twice.is_empty(), "lines stored twice: {twice:?}");
    assert_eq!(events.len(), n, "events stored");
}

#[test]
fn kill_9_of_the_agent_mid_stream_loses_and_repeats_nothing() {
    // Peers: Filebeat and Vector re-send what was in flight after a crash and the store
    // keeps both copies; here the deterministic uid makes the second one a no-op.
    const N: usize = 100_000;
    let scratch = Scratch::new("ship-kill-agent");
    let agg = RunningAggregator::start(&scratch, "agg");
    let (_, cfg) = enrolled_agent(&scratch, &agg, N, "");
    let stored = Stored::open(&agg.db());
    let agent = RunningAgent::spawn(cfg.clone(), scratch.path("unused.ndjson"));
    let have = stored.wait_count(N as u64 / 5, DEADLINE);
    assert!(have >= N as u64 / 5, "only {have} events arrived");
    let (_, log) = agent.kill9();
    let at_kill = stored.count();
    assert!(
        at_kill < N as u64,
        "the kill came too late to test anything: {at_kill}"
    );
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    let have = stored.wait_count(N as u64, DEADLINE);
    let (status, log2) = agent.stop();
    assert!(status.success(), "{log}\n---\n{log2}");
    assert_eq!(have, N as u64, "{log}\n---\n{log2}");
    assert_exactly_once(&stored, N);
    // The second run re-read what was in flight: the aggregator saw it and kept one copy.
    let dup = stored.int("SELECT sum(duplicates) FROM batches");
    eprintln!("killed at {at_kill} stored; {dup} re-sent events dropped as duplicates");
    // Tenant from the certificate on every event.
    assert!(
        stored
            .events()
            .iter()
            .all(|e| e["metadata"]["tenant_uid"] == "default")
    );
}

#[test]
fn kill_9_and_restart_of_the_aggregator_loses_and_repeats_nothing() {
    // Peers: Fluent Bit and Vector acknowledge on receipt, before their sink commits, and
    // lose what the receiver held when it dies. Acks here follow the SQLite commit.
    const N: usize = 100_000;
    let scratch = Scratch::new("ship-kill-agg");
    let agg = RunningAggregator::start(&scratch, "agg");
    let (_, cfg) = enrolled_agent(&scratch, &agg, N, "");
    let db = agg.db();
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    let have = Stored::open(&db).wait_count(N as u64 / 5, DEADLINE);
    assert!(have >= N as u64 / 5, "only {have} events arrived");
    let agg = agg.kill9_and_restart();
    let stored = Stored::open(&db);
    let have = stored.wait_count(N as u64, DEADLINE);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(have, N as u64, "{log}");
    assert_exactly_once(&stored, N);
    assert!(log.contains("shipped:"), "{log}");
    drop(agg);
}

#[test]
fn a_network_cut_longer_than_the_idle_timeout_loses_and_repeats_nothing() {
    // Peers: agents that treat a dead connection as "sent" (Wazuh's UDP mode, Fluent Bit
    // with retries exhausted) lose what was in flight. Here the spool keeps every batch
    // until its ack, across as many reconnects as the cut takes.
    //
    // The cut is real dropped packets (nftables in a throw-away network namespace), held
    // 3 s against a 400 ms idle timeout: the same situation as a 30 s cut against the
    // default 30 s... minus the wait.
    const N: usize = 60_000;
    let ns = Netns::new("cut");
    let scratch = Scratch::new("ship-cut");
    let agg = RunningAggregator::start_in(&scratch, "agg", Some(&ns.name));
    let (_, cfg) = enrolled_agent(&scratch, &agg, N, "idle_timeout_ms = 400\n");
    let stored = Stored::open(&agg.db());
    let mut agent = RunningAgent::spawn_in(cfg, scratch.path("unused.ndjson"), Some(&ns.name));
    let have = stored.wait_count(N as u64 / 10, DEADLINE);
    assert!(have >= N as u64 / 10, "only {have} events arrived");
    let port = agg.addr.port().to_string();
    ns.nft(&["add", "table", "inet", "vcut"]);
    ns.nft(&[
        "add",
        "chain",
        "inet",
        "vcut",
        "input",
        "{ type filter hook input priority 0; policy accept; }",
    ]);
    ns.nft(&[
        "add", "rule", "inet", "vcut", "input", "udp", "dport", &port, "drop",
    ]);
    ns.nft(&[
        "add", "rule", "inet", "vcut", "input", "udp", "sport", &port, "drop",
    ]);
    // The agent notices: its connection times out and reconnects fail while the cut holds.
    agent.wait_log("shipping to");
    // A commit of what arrived just before the cut may still be finishing: settle first.
    std::thread::sleep(Duration::from_secs(1));
    let during = stored.count();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stored.count(), during, "events arrived through the cut");
    ns.nft(&["delete", "table", "inet", "vcut"]);
    let have = stored.wait_count(N as u64, DEADLINE);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(have, N as u64, "{log}");
    assert_exactly_once(&stored, N);
    eprintln!("{during} events stored when the cut began; all {N} after it");
}

/// An agent whose `localhost` resolves as `hosts` says (a hosts file bind-mounted in a
/// private mount namespace: the host's own is untouched), enrolled with `agg` as
/// `localhost:PORT` and set to ship `n` distinct lines with `extra` output settings: its
/// state dir, its config, and the command that runs it so.
fn agent_behind_hosts(
    scratch: &Scratch,
    agg: &RunningAggregator,
    hosts: &[u8],
    n: usize,
    extra: &str,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    impl Fn() -> std::process::Command,
) {
    use super::support::agent_bin;
    use super::support::aggregator::{check, distinct_lines, ship_config};
    let hosts = scratch.write("hosts", hosts);
    let with_hosts = move || {
        let mut c = std::process::Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#)
            .arg("sh")
            .arg(&hosts)
            .arg(agent_bin());
        c
    };
    let server = format!("localhost:{}", agg.addr.port());
    let dir = scratch.path("agent");
    check(
        with_hosts()
            .args(["enroll", "--server", &server, "--token"])
            .arg(agg.token("default", "1h"))
            .arg("--state-dir")
            .arg(&dir)
            .output()
            .expect("enroll"),
        "vedette-agent enroll",
    );
    std::fs::create_dir_all(scratch.path("logs")).unwrap();
    scratch.write("logs/app.log", distinct_lines(n, "app").as_bytes());
    let cfg = scratch.write(
        "agent.toml",
        ship_config(
            &dir,
            &scratch.path("logs/*.log").display().to_string(),
            extra,
        )
        .as_bytes(),
    );
    (dir, cfg, with_hosts)
}

#[test]
fn an_aggregator_name_whose_first_address_does_not_answer_is_reached_at_the_next() {
    // The agent dialled only the first address its server's name resolved to: with a name
    // that resolves to IPv6 and IPv4 (or to several aggregators) and the first one not
    // answering, it never connected, and its spool filled. It also resolved on the thread
    // the syslog listeners share. Here `localhost` resolves to ::1 first (a hosts file
    // bind-mounted in a private mount namespace: the host's own is untouched), and the
    // aggregator listens on 127.0.0.1 only.
    const N: usize = 2_000;
    let scratch = Scratch::new("ship-addrs");
    let agg = RunningAggregator::start(&scratch, "agg");
    let hosts = b"127.0.0.1 localhost\n::1 localhost\n";
    let resolved = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/hosts && getent ahosts localhost"#)
        .arg("sh")
        .arg(scratch.write("hosts-check", hosts))
        .output()
        .expect("unshare(1) (util-linux)");
    let resolved = String::from_utf8_lossy(&resolved.stdout);
    assert!(resolved.starts_with("::1"), "::1 is not first:\n{resolved}");
    let (_, cfg, with_hosts) =
        agent_behind_hosts(&scratch, &agg, hosts, N, "idle_timeout_ms = 1000\n");
    let agent = RunningAgent::spawn_cmd(with_hosts(), cfg, scratch.path("unused.ndjson"));
    let stored = Stored::open(&agg.db());
    let have = stored.wait_count(N as u64, Duration::from_secs(60));
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(have, N as u64, "{log}");
    assert_exactly_once(&stored, N);
}

#[test]
fn a_host_restored_from_a_snapshot_loses_nothing_written_after_the_restore() {
    // A virtual machine restored from a snapshot: its disk (the logs, the agent's spool and
    // checkpoints) goes back, the aggregator keeps what it stored since. The agent then
    // numbered its batches as before (same boot, same epoch) and read new lines at the
    // offsets the lost ones had: the batches were acknowledged as replays and the events
    // dropped as duplicates of the old lines (same source, same position), all of it
    // silently.
    const N: usize = 3_000;
    /// Lines `from..to` of the file, tagged (tags of one length give the same offsets).
    fn lines(from: usize, to: usize, tag: &str) -> String {
        (from..to)
            .map(|i| {
                format!("2026-11-27T10:01:00.{i:06}Z host1 {tag}[7]: distinct line {i} of x\n")
            })
            .collect()
    }
    let append = |path: &std::path::Path, text: &str| {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("append");
    };
    let cp = |from: &std::path::Path, to: &std::path::Path| {
        let _ignored = std::fs::remove_dir_all(to);
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .expect("cp(1)");
        assert!(st.success());
    };
    let scratch = Scratch::new("ship-snapshot");
    let agg = RunningAggregator::start(&scratch, "agg");
    let (dir, cfg) = enrolled_agent(&scratch, &agg, N, "");
    let log = scratch.path("logs/app.log");
    let stored = Stored::open(&agg.db());
    let run_until = |n: usize| {
        let agent = RunningAgent::spawn(cfg.clone(), scratch.path("unused.ndjson"));
        let have = stored.wait_count(n as u64, DEADLINE);
        let (status, out) = agent.stop();
        assert!(status.success(), "{out}");
        assert_eq!(have, n as u64, "{out}");
        out
    };
    run_until(N);

    // The snapshot.
    cp(&dir, &scratch.path("snap-agent"));
    std::fs::copy(&log, scratch.path("snap-app.log")).unwrap();
    // Life after it: lines tagged "pre", shipped and stored.
    append(&log, &lines(N, 2 * N, "pre"));
    run_until(2 * N);

    // The restore, then other lines where the "pre" ones were.
    cp(&scratch.path("snap-agent"), &dir);
    std::fs::copy(scratch.path("snap-app.log"), &log).unwrap();
    append(&log, &lines(N, 2 * N, "new"));
    let out = run_until(3 * N);

    let events = stored.events();
    let tagged = |tag: &str| {
        let mine: Vec<serde_json::Value> = events
            .iter()
            .filter(|e| {
                e["raw_data"]
                    .as_str()
                    .is_some_and(|r| r.contains(&format!(" {tag}[7]: ")))
            })
            .cloned()
            .collect();
        line_numbers(&mine)
    };
    for tag in ["pre", "new"] {
        let seen = tagged(tag);
        assert_eq!(seen.len(), N, "{tag} lines stored\n{out}");
        assert!(seen.values().all(|&c| c == 1), "{tag} lines stored twice");
    }
    assert_eq!(line_numbers(&events).len(), 2 * N);
    assert_eq!(events.len(), 3 * N);
}

/// A server with the aggregator's own certificate that takes connections, streams and
/// QUIC's keep-alives but answers nothing after its first `welcomes_from` connections;
/// from that one on it welcomes and swallows the batches. Counts connections and batch
/// streams.
struct MuteAggregator {
    addr: std::net::SocketAddr,
    connections: std::sync::Arc<std::sync::atomic::AtomicU32>,
    batches: std::sync::Arc<std::sync::atomic::AtomicU32>,
    _rt: tokio::runtime::Runtime,
}

impl MuteAggregator {
    fn start(agg: &RunningAggregator, agent_id: &str, welcomes_from: u32) -> Self {
        Self::start_on(agg, agent_id, welcomes_from, "127.0.0.1:0")
    }

    fn start_on(agg: &RunningAggregator, agent_id: &str, welcomes_from: u32, bind: &str) -> Self {
        Self::start_with(agg, agent_id, welcomes_from, bind, None)
    }

    /// With `answer_every`, batches are answered (as stored) one at a time, each this
    /// long after the one before: a slow aggregator that works.
    fn start_with(
        agg: &RunningAggregator,
        agent_id: &str,
        welcomes_from: u32,
        bind: &str,
        answer_every: Option<Duration>,
    ) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
        use vedette_aggregator::io::state::StatePaths;
        let paths = StatePaths::new(&agg.state_dir());
        let (chain, key) = paths.server_pem().unwrap();
        let ca = paths.authority().unwrap();
        let cfg = vedette_aggregator::io::tls::server_config(&chain, &key, ca.cert_pem()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let endpoint = rt
            .block_on(async { quinn::Endpoint::server(cfg, bind.parse().unwrap()) })
            .unwrap();
        let addr = endpoint.local_addr().unwrap();
        let (connections, batches) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let (c, b, agent_id) = (connections.clone(), batches.clone(), agent_id.to_owned());
        rt.spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let n = c.fetch_add(1, SeqCst) + 1;
                let (b, agent_id) = (b.clone(), agent_id.clone());
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    let Ok((mut send, _recv)) = conn.accept_bi().await else {
                        return;
                    };
                    if n >= welcomes_from {
                        let welcome = serde_json::json!({"type": "welcome", "agent_id": agent_id,
                            "tenant": "default", "version": "mute"});
                        let body = serde_json::to_vec(&welcome).unwrap();
                        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
                        frame.extend_from_slice(&body);
                        let _ignored = send.write_all(&frame).await;
                    }
                    // Batch streams are taken and read; never answered, or answered one
                    // at a time.
                    let one_at_a_time = Arc::new(tokio::sync::Mutex::new(()));
                    while let Ok((mut send, mut r)) = conn.accept_bi().await {
                        let (b, one_at_a_time) = (b.clone(), one_at_a_time.clone());
                        tokio::spawn(async move {
                            let Ok(body) = r.read_to_end(64 << 20).await else {
                                return;
                            };
                            let Some(every) = answer_every else {
                                b.fetch_add(1, SeqCst);
                                std::future::pending::<()>().await;
                                return;
                            };
                            use vedette_schemas::wire;
                            let (head, _) = wire::split_frame(&body[1..]).unwrap().unwrap();
                            let h: wire::BatchHeader = wire::decode_frame(head).unwrap();
                            let _turn = one_at_a_time.lock().await;
                            tokio::time::sleep(every).await;
                            let ack = wire::Ack {
                                epoch: h.epoch,
                                seq: h.seq,
                                outcome: wire::AckOutcome::Stored {
                                    stored: u64::from(h.events),
                                    duplicates: 0,
                                    reused: false,
                                },
                            };
                            let mut frame = Vec::new();
                            wire::encode_frame(&ack, &mut frame);
                            let _ignored = send.write_all(&frame).await;
                            let _ignored = send.finish();
                            b.fetch_add(1, SeqCst);
                        });
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            batches,
            _rt: rt,
        }
    }

    fn counts(&self) -> (u32, u32) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.connections.load(SeqCst), self.batches.load(SeqCst))
    }
}

#[test]
fn an_aggregator_that_answers_nothing_is_given_up_and_its_batches_go_to_the_next() {
    // QUIC keep-alives held the connection up while an aggregator that stopped working (its
    // store stuck on a disk) answered nothing: no welcome, then no ack, and nothing timed
    // out, so the agent waited on that connection for ever. Now each wait ends after
    // `answer_timeout_ms` and the connection is made again; nothing is lost.
    const N: usize = 2_000;
    let scratch = Scratch::new("ship-mute");
    let agg = RunningAggregator::start(&scratch, "agg");
    let (dir, _) = enrolled_agent(&scratch, &agg, N, "");
    let mute = MuteAggregator::start(&agg, &agent_id_in(&dir), 2);
    let cfg = scratch.write(
        "agent-mute.toml",
        super::support::aggregator::ship_config(
            &dir,
            &scratch.path("logs/*.log").display().to_string(),
            &format!("server = \"{}\"\nanswer_timeout_ms = 400\n", mute.addr),
        )
        .as_bytes(),
    );
    let mut agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    agent.wait_log("no welcome in 400 ms");
    agent.wait_log("no batch acknowledged in 400 ms");
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let (connections, batches) = mute.counts();
    assert!(
        connections >= 2 && batches >= 1,
        "{connections} connections, {batches} batches: {log}"
    );

    // The real aggregator then gets every event, once.
    let cfg = scratch.path("agent.toml");
    let stored = Stored::open(&agg.db());
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    let have = stored.wait_count(N as u64, DEADLINE);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(have, N as u64, "{log}");
    assert_exactly_once(&stored, N);
}

#[test]
fn a_name_whose_first_address_takes_connections_but_answers_nothing_is_left_for_the_next() {
    // The agent dialled a name's addresses from the first every time: one that completes
    // the handshake but does not work (a wedged aggregator) was the one it reached, for
    // ever, while the name's next address served. After a failed session it now starts
    // from the next address. `localhost` resolves to ::1 first here (a private hosts
    // file, as above); the mute server takes ::1, the aggregator 127.0.0.1, same port.
    const N: usize = 2_000;
    let scratch = Scratch::new("ship-mute-first");
    let agg = RunningAggregator::start(&scratch, "agg");
    let (dir, cfg, with_hosts) = agent_behind_hosts(
        &scratch,
        &agg,
        b"::1 localhost\n127.0.0.1 localhost\n",
        N,
        "answer_timeout_ms = 400\n",
    );
    let mute = MuteAggregator::start_on(
        &agg,
        &agent_id_in(&dir),
        u32::MAX,
        &format!("[::1]:{}", agg.addr.port()),
    );
    let agent = RunningAgent::spawn_cmd(with_hosts(), cfg, scratch.path("unused.ndjson"));
    let stored = Stored::open(&agg.db());
    let have = stored.wait_count(N as u64, Duration::from_secs(60));
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(
        mute.counts().0 >= 1,
        "the mute server was never dialled: {log}"
    );
    assert!(log.contains("no welcome in 400 ms"), "{log}");
    assert_eq!(have, N as u64, "{log}");
    assert_exactly_once(&stored, N);
}

#[test]
fn a_slow_aggregator_that_answers_one_batch_at_a_time_is_not_given_up() {
    // The answer timeout is about progress, not each batch's own wait: with a window of 8
    // batches answered one at a time, the last is answered long after it was sent, and a
    // per-batch limit gave up a slow link or a slow aggregator that works, for good (every
    // session ended the same way and nothing was ever acknowledged).
    const N: usize = 3_000;
    let scratch = Scratch::new("ship-slow");
    let agg = RunningAggregator::start(&scratch, "agg");
    let (dir, _) = enrolled_agent(&scratch, &agg, N, "");
    let slow = MuteAggregator::start_with(
        &agg,
        &agent_id_in(&dir),
        1,
        "127.0.0.1:0",
        Some(Duration::from_millis(250)),
    );
    let cfg = scratch.write(
        "agent-slow.toml",
        super::support::aggregator::ship_config(
            &dir,
            &scratch.path("logs/*.log").display().to_string(),
            &format!(
                "server = \"{}\"\nanswer_timeout_ms = 1000\nbatch_max_kb = 16\nspool_max_mb = 1\n",
                slow.addr
            ),
        )
        .as_bytes(),
    );
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    // 16 KiB batches of a ~280 KB file: more than a window's worth, each answered 250 ms
    // after the one before, so the last of a window waits 2 s against a 1 s limit.
    for _ in 0..1_200 {
        if slow.counts().1 >= 12 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let (connections, answered) = slow.counts();
    assert!(answered >= 12, "{answered} batches answered: {log}");
    assert_eq!(connections, 1, "the session was given up: {log}");
    assert!(!log.contains("no answer"), "{log}");
}

#[test]
fn a_batch_the_aggregator_cannot_store_is_sent_again_alone_and_holds_nothing_else_up() {
    // One batch the aggregator's store failed on (reset, not refused) ended the agent's
    // whole session: the other batches in flight were dropped and sent again, the
    // connection made again, with a backoff growing every time the bad batch came round,
    // so everything behind it crawled. Now only that batch waits, on the same connection.
    const N: usize = 5_000;
    let scratch = Scratch::new("ship-poison");
    let agg = RunningAggregator::start(&scratch, "agg");
    // The store refuses any chunk holding an event of 10:00:00.002 (lines 2000-2999, and
    // the batches at their edges), every time, until the trigger goes.
    let poison_ms = "2026-11-27T10:00:00.002Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let db = rusqlite::Connection::open(agg.db()).unwrap();
    db.execute_batch(&format!(
        "CREATE TRIGGER poison BEFORE INSERT ON chunks \
         WHEN NEW.first_time <= {poison_ms} AND NEW.last_time >= {poison_ms} \
         BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;"
    ))
    .unwrap();
    let (_, cfg) = enrolled_agent(&scratch, &agg, N, "batch_max_kb = 16\nspool_max_mb = 1\n");
    let stored = Stored::open(&agg.db());
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    // Everything but the refused batches arrives meanwhile (16 KiB batches hold ~200
    // lines: those within 1,000 lines of the poisoned millisecond may share its batches).
    let outside = |seen: &std::collections::BTreeMap<u64, usize>| {
        (0..N as u64)
            .filter(|i| !(1_000..4_000).contains(i))
            .all(|i| seen.contains_key(&i))
    };
    let mut arrived = false;
    for _ in 0..1_200 {
        if outside(&line_numbers(&stored.events())) {
            arrived = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(arrived, "the batches behind the refused one did not arrive");
    assert!(stored.count() < N as u64, "nothing was refused");
    db.execute_batch("DROP TRIGGER poison").unwrap();
    let have = stored.wait_count(N as u64, DEADLINE);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(have, N as u64, "{log}");
    assert_exactly_once(&stored, N);
    assert!(log.contains("sent again in"), "{log}");
    assert!(log.contains("1 connections (0 failed)"), "{log}");
    assert!(
        log.lines()
            .filter(|l| l.contains("shipping to"))
            .all(|l| l.contains("not stored")),
        "{log}"
    );
}

#[test]
fn an_aggregator_that_stores_nothing_is_left_after_the_answer_timeout() {
    // Resets are answers but not progress: an aggregator whose store fails every batch
    // (a full or read-only disk) resets them all, and an agent that counted each reset as
    // progress stayed on it for ever, never trying the name's other addresses.
    const N: usize = 1_000;
    let scratch = Scratch::new("ship-stores-nothing");
    let agg = RunningAggregator::start(&scratch, "agg");
    let db = rusqlite::Connection::open(agg.db()).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_all BEFORE INSERT ON chunks \
         BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;",
    )
    .unwrap();
    let (_, cfg) = enrolled_agent(&scratch, &agg, N, "answer_timeout_ms = 1000\n");
    let mut agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    agent.wait_log("not stored");
    agent.wait_log_among("no batch acknowledged in 1000 ms", 200);
    db.execute_batch("DROP TRIGGER refuse_all").unwrap();
    let stored = Stored::open(&agg.db());
    let have = stored.wait_count(N as u64, DEADLINE);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(have, N as u64, "{log}");
    assert_exactly_once(&stored, N);
}
