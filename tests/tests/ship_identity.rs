//! Enrollment and the doors it opens and keeps shut, with the real binaries over loopback
//! QUIC and real certificates.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::support::Scratch;
use super::support::aggregator::{
    RunningAggregator, aggregator_cli, enroll, enroll_ok, quic_client,
};

#[test]
fn an_agent_enrolls_once_per_token_and_keeps_its_key_private() {
    let scratch = Scratch::new("ship-enroll");
    let agg = RunningAggregator::start(&scratch, "agg");
    let token = agg.token("blue", "1h");
    let dir = scratch.path("agent");
    let id = enroll_ok(&dir, &agg.server(), &token);
    assert!(id.starts_with("agt-"), "{id}");
    let key = std::fs::metadata(dir.join("identity/agent.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("identity/agent.json")).unwrap())
            .unwrap();
    assert_eq!(info["tenant"], "blue");

    // The same token again, from another host: refused, and no identity is written.
    let other = scratch.path("agent2");
    let out = enroll(&other, &agg.server(), &token);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already used"),
        "{err}"
    );
    assert!(!other.join("identity/agent.pem").exists());

    // A token whose CA pin is not this aggregator's: the agent refuses the server.
    let foreign = RunningAggregator::start(&scratch, "foreign");
    let foreign_token = foreign.token("blue", "1h");
    let out = enroll(&scratch.path("agent3"), &agg.server(), &foreign_token);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("connecting"), "{err}");
}

/// The token from a file (or standard input): on the command line it is readable by every
/// local user from /proc while enrollment runs, and stays in shell history.
#[test]
fn the_token_can_come_from_a_file_or_standard_input() {
    use std::io::Write;
    let scratch = Scratch::new("ship-enroll-token-file");
    let agg = RunningAggregator::start(&scratch, "agg");
    let file = scratch.write("token", format!("{}\n", agg.token("blue", "1h")).as_bytes());
    let dir = scratch.path("agent");
    let out = std::process::Command::new(super::support::agent_bin())
        .args(["enroll", "--server", &agg.server(), "--token-file"])
        .arg(&file)
        .arg("--state-dir")
        .arg(&dir)
        .output()
        .expect("vedette-agent enroll");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("identity/agent.pem").is_file());

    let dir = scratch.path("agent2");
    let mut child = std::process::Command::new(super::support::agent_bin())
        .args(["enroll", "--server", &agg.server(), "--token-file", "-"])
        .arg("--state-dir")
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("vedette-agent enroll");
    let token = agg.token("blue", "1h");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(token.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("identity/agent.pem").is_file());
}

#[test]
fn an_expired_token_is_refused() {
    use vedette_aggregator::identity::Token;
    use vedette_aggregator::identity::token::secret_hash;
    use vedette_aggregator::store::Registry;
    use vedette_aggregator::store::sqlite::{SqliteConfig, SqliteStore};

    let scratch = Scratch::new("ship-expired");
    let agg = RunningAggregator::start(&scratch, "agg");
    // Made expired directly in the store, instead of waiting for a TTL to pass.
    let ca = vedette_aggregator::identity::Authority::load(&agg.state).unwrap();
    let token = Token::generate(ca.fingerprint());
    let mut store = SqliteStore::open(agg.db(), SqliteConfig::default()).unwrap();
    store
        .create_token(&token.id, secret_hash(&token.secret), "default", 1_000, 0)
        .unwrap();
    drop(store);
    let dir = scratch.path("agent");
    let out = enroll(&dir, &agg.server(), &token.encode());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("expired"), "{err}");
    assert!(!dir.join("identity/agent.pem").exists());
}

/// A token that leaked is shut with `enroll-token revoke` (by id or whole) while the
/// aggregator runs: the next enrollment with it is refused and writes no identity. A used
/// token is not revocable (its agent is), and `enroll-token list` says each one's state.
#[test]
fn a_revoked_token_is_refused_and_the_list_says_what_became_of_each() {
    let scratch = Scratch::new("ship-token-revoke");
    let agg = RunningAggregator::start(&scratch, "agg");
    let state = agg.state_dir();
    let state = state.to_str().unwrap();
    let leaked = agg.token("blue", "1h");
    let spent = agg.token("red", "1h");
    let leaked_id = leaked.split('.').nth(1).unwrap().to_owned();
    let spent_id = spent.split('.').nth(1).unwrap().to_owned();

    let out = aggregator_cli(&["enroll-token", "revoke", "--state-dir", state, &leaked]);
    assert_eq!(out.trim(), format!("revoked token {leaked_id}"));
    let dir = scratch.path("agent");
    let out = enroll(&dir, &agg.server(), &leaked);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("revoked"), "{err}");
    assert!(!dir.join("identity/agent.pem").exists());

    let agent = enroll_ok(&scratch.path("agent2"), &agg.server(), &spent);
    let refused = std::process::Command::new(super::support::aggregator_bin())
        .args(["enroll-token", "revoke", "--state-dir", state, &spent_id])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains(&format!("already used by {agent}")),
        "{err}"
    );

    let list = aggregator_cli(&["enroll-token", "list", "--state-dir", state]);
    let line = |id: &str| {
        list.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not in {list}"))
            .to_owned()
    };
    let revoked = line(&leaked_id);
    assert!(
        revoked.contains("tenant=blue") && revoked.contains("\trevoked=20"),
        "{revoked}"
    );
    let used = line(&spent_id);
    assert!(
        used.contains("tenant=red") && used.contains(&format!("\tagent={agent}\t")),
        "{used}"
    );
    assert!(!list.contains("vdt1."), "no secret is listed: {list}");
}

/// The CLI's commands other than `init` and `serve` on a state dir with no store: a
/// mistyped `--state-dir` made an empty store there and answered "events: 0", "no gaps"
/// or a token no aggregator knows, all with success. And a token lives a year at most.
#[test]
fn the_cli_refuses_a_state_dir_without_a_store_tokens_beyond_a_year_and_unbounded_searches() {
    // `vedette-aggregator ARGS --state-dir DIR`: whether it failed, and what it said.
    let cli = |args: &[&str], dir: &std::path::Path| {
        let out = std::process::Command::new(super::support::aggregator_bin())
            .args(args)
            .arg("--state-dir")
            .arg(dir)
            .output()
            .unwrap();
        (
            !out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let scratch = Scratch::new("cli-no-store");
    let empty = scratch.path("not-a-state-dir");
    std::fs::create_dir_all(&empty).unwrap();
    for args in [&["stats"][..], &["gaps"], &["agents", "list"], &["events"]] {
        let (failed, err) = cli(args, &empty);
        assert!(failed && err.contains("no store at"), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "nothing made"
    );
    let agg = RunningAggregator::start(&scratch, "agg");
    let (failed, err) = cli(&["enroll-token", "create", "--ttl", "400d"], &agg.state);
    assert!(failed && err.contains("at most 366d"), "{err}");
    // A search holds its hits in memory before printing: bounded.
    let (failed, err) = cli(&["events", "--limit", "10001"], &agg.state);
    assert!(failed && err.contains("10001 is not in 1..=10000"), "{err}");
}

/// Connects to `agg` on the event ALPN with `client_cert` (chain PEM, key PEM) or none,
/// opens a batch stream and waits for the answer: `Ok(())` only if the server accepted the
/// connection and kept it open; otherwise the error text.
fn raw_connect(
    agg: &RunningAggregator,
    client_cert: Option<(String, String)>,
) -> Result<(), String> {
    let cfg = quic_client(agg, client_cert, b"vedette/1");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let conn = ep
            .connect_with(cfg, agg.addr, "localhost")
            .unwrap()
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        // A control stream with a hello: the server answers with a welcome if it accepts us.
        let mut buf = vec![1u8];
        let hello = serde_json::json!({"type": "hello", "version": "test", "hostname": "t", "host": {}, "epoch": 1});
        let body = serde_json::to_vec(&hello).unwrap();
        buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
        buf.extend_from_slice(&body);
        send.write_all(&buf).await.map_err(|e| e.to_string())?;
        let mut prefix = [0u8; 4];
        let r = tokio::time::timeout(Duration::from_secs(10), recv.read_exact(&mut prefix)).await;
        match r {
            Ok(Ok(())) => Ok(()),
            // The server's reason, when it closed the connection on purpose.
            Ok(Err(e)) => Err(match conn.close_reason() {
                Some(quinn::ConnectionError::ApplicationClosed(c)) => format!(
                    "closed with code {}: {}",
                    c.error_code,
                    String::from_utf8_lossy(&c.reason)
                ),
                Some(other) => other.to_string(),
                None => e.to_string(),
            }),
            Err(_) => Err("no answer".into()),
        }
    })
}

#[test]
fn the_event_channel_refuses_no_certificate_another_cas_certificate_and_a_revoked_agent() {
    let scratch = Scratch::new("ship-refuse");
    let mut agg = RunningAggregator::start(&scratch, "agg");

    // No certificate: TLS lets it through (enrollment needs that), the event ALPN does not.
    let e = raw_connect(&agg, None).unwrap_err();
    assert!(e.contains("no client certificate"), "{e}");

    // A certificate of another CA, with a subject that names a real-looking agent: refused
    // in the handshake.
    let other = vedette_aggregator::identity::Authority::create(1_790_000_000_000, 10).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let forged = other
        .sign_agent(
            &csr,
            "agt-0011223344556677",
            "default",
            1_790_000_000_000,
            10,
        )
        .unwrap();
    let e = raw_connect(&agg, Some((forged.cert_pem, key.serialize_pem()))).unwrap_err();
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    // A real agent, enrolled, then revoked: refused at its next connection.
    let dir = scratch.path("agent");
    let id = enroll_ok(&dir, &agg.server(), &agg.token("default", "1h"));
    let pem = |n: &str| std::fs::read_to_string(dir.join("identity").join(n)).unwrap();
    raw_connect(&agg, Some((pem("agent.pem"), pem("agent.key"))))
        .expect("an enrolled agent is welcome");
    agg.revoke(&id);
    let e = raw_connect(&agg, Some((pem("agent.pem"), pem("agent.key")))).unwrap_err();
    assert!(e.contains("revoked"), "{e}");
    // The server says why in its log (waited for: the line may trail the close).
    agg.wait_log(&format!("{id} is revoked"));

    // The database replaced (deleted, or restored from a backup older than the
    // revocation): the revoked agent is not let back in, nor is any agent the registry
    // does not know, though their certificates are the CA's.
    agg.pause();
    for f in ["events.db", "events.db-wal", "events.db-shm"] {
        let _ignored = std::fs::remove_file(agg.state.join(f));
    }
    agg.resume();
    let e = raw_connect(&agg, Some((pem("agent.pem"), pem("agent.key")))).unwrap_err();
    assert!(e.contains("not enrolled here"), "{e}");
    agg.wait_log(&format!("{id} is not enrolled here"));
    // Enrolling again lets it in.
    let again = scratch.path("agent-again");
    enroll_ok(&again, &agg.server(), &agg.token("default", "1h"));
    let pem = |n: &str| std::fs::read_to_string(again.join("identity").join(n)).unwrap();
    raw_connect(&agg, Some((pem("agent.pem"), pem("agent.key")))).expect("enrolled again");
}

#[test]
fn a_certificate_near_its_end_is_renewed_over_the_authenticated_channel_and_then_used() {
    use super::support::agent::RunningAgent;
    use super::support::aggregator::{Stored, distinct_lines, ship_config};

    // A one-minute lifetime (issued five minutes back-dated for clock skew) is in its last
    // third at once: the first heartbeat asks for a new one.
    let scratch = Scratch::new("ship-renew");
    let mut agg = RunningAggregator::start_with(&scratch, "agg", None, "cert_lifetime = \"1m\"\n");
    let dir = scratch.path("agent");
    let id = enroll_ok(&dir, &agg.server(), &agg.token("default", "1h"));
    let first = std::fs::read_to_string(dir.join("identity/agent.pem")).unwrap();
    let first_key = std::fs::read_to_string(dir.join("identity/agent.key")).unwrap();
    std::fs::create_dir_all(scratch.path("logs")).unwrap();
    let log_file = scratch.write("logs/app.log", distinct_lines(100, "app").as_bytes());
    let cfg = scratch.write(
        "agent.toml",
        ship_config(&dir, &scratch.path("logs/*.log").display().to_string(), "").as_bytes(),
    );
    let stored = Stored::open(&agg.db());
    let mut agent = RunningAgent::spawn(cfg.clone(), scratch.path("unused.ndjson"));
    agent.wait_log("certificate renewed");
    assert_eq!(stored.wait_count(100, Duration::from_secs(60)), 100);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let second = std::fs::read_to_string(dir.join("identity/agent.pem")).unwrap();
    assert_ne!(first, second, "the certificate file was not replaced");
    let key = std::fs::metadata(dir.join("identity/agent.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    // The new certificate is for the same agent id.
    let der = vedette_aggregator::identity::authority::cert_der_from_pem(&second).unwrap();
    let ident = vedette_aggregator::identity::cert_identity(&der).unwrap();
    assert_eq!(ident.agent_id, id);
    // And it works: a restarted agent connects with it and ships new lines.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_file)
            .unwrap();
        f.write_all(distinct_lines(50, "more").as_bytes()).unwrap();
    }
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    assert!(stored.wait_count(150, Duration::from_secs(60)) >= 150);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    // Once used, the new certificate is the registry's, and the one it replaced is
    // refused: a copy of the old key (stolen, or a restored backup) renewed itself for
    // ever, and kept its access after the agent itself had moved on.
    let listed = super::support::aggregator::aggregator_cli(&[
        "agents",
        "list",
        "--state-dir",
        agg.state.to_str().unwrap(),
    ]);
    assert!(
        listed.contains(&format!("cert_serial={}", ident.serial)),
        "{listed}"
    );
    let e = raw_connect(&agg, Some((first, first_key))).unwrap_err();
    assert!(
        e.contains("closed with code 9: certificate replaced by a renewal"),
        "{e}"
    );
    agg.wait_log(&format!("{id} presented a certificate a renewal replaced"));
}

/// Copies the aggregator's database files (`events.db` and its WAL files, those there are)
/// from the directory `from` to `to`, replacing what `to` had.
fn copy_database(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["events.db", "events.db-wal", "events.db-shm"] {
        let _absent = std::fs::remove_file(to.join(f));
        if from.join(f).exists() {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
}

/// The aggregator's database restored from a backup taken before an agent renewed its
/// certificate: the registry knows only the certificate the renewal replaced, and refused
/// the renewed one as a replaced copy, so every agent that renewed since the backup was
/// locked out until enrolled again by hand. The renewed certificate was signed after
/// everything the restored registry recorded: it is taken, and the old one stays refused.
#[test]
fn after_a_restore_from_a_backup_older_than_a_renewal_the_renewed_agent_ships() {
    use super::support::agent::RunningAgent;
    use super::support::aggregator::{Stored, distinct_lines, ship_config};

    // Two minutes (issued five back-dated) are in their last third at once: the first
    // heartbeat renews, and the first certificate outlives a slow run of the test.
    let scratch = Scratch::new("ship-restore");
    let mut agg = RunningAggregator::start_with(&scratch, "agg", None, "cert_lifetime = \"2m\"\n");
    let dir = scratch.path("agent");
    let id = enroll_ok(&dir, &agg.server(), &agg.token("default", "1h"));
    let first = std::fs::read_to_string(dir.join("identity/agent.pem")).unwrap();
    let first_key = std::fs::read_to_string(dir.join("identity/agent.key")).unwrap();
    agg.pause();
    // A certificate says when it was signed to the second: the renewal must fall in a
    // later second than the enrollment the backup recorded to be told apart from it (in
    // use, renewals come days after, in the last third of a lifetime).
    std::thread::sleep(Duration::from_millis(1_100));
    let backup = scratch.path("backup");
    copy_database(&agg.state, &backup);
    agg.resume();

    std::fs::create_dir_all(scratch.path("logs")).unwrap();
    let log_file = scratch.write("logs/app.log", distinct_lines(100, "app").as_bytes());
    let cfg = scratch.write(
        "agent.toml",
        ship_config(&dir, &scratch.path("logs/*.log").display().to_string(), "").as_bytes(),
    );
    let mut agent = RunningAgent::spawn(cfg.clone(), scratch.path("unused.ndjson"));
    agent.wait_log("certificate renewed");
    assert_eq!(
        Stored::open(&agg.db()).wait_count(100, Duration::from_secs(60)),
        100
    );
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let renewed = std::fs::read_to_string(dir.join("identity/agent.pem")).unwrap();
    assert_ne!(first, renewed, "the certificate file was not replaced");

    // The backup restored: its registry has the first certificate as the agent's.
    agg.pause();
    copy_database(&backup, &agg.state);
    agg.resume();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_file)
            .unwrap();
        f.write_all(distinct_lines(50, "more").as_bytes()).unwrap();
    }
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    // The restored database holds none of the first 100 (the agent's checkpoints say they
    // were delivered, to the database that was lost): the 50 written since arrive.
    // (Counted before reading the log: refused, the agent retries, and the aggregator's
    // log of refusals would never let a wait for a line time out.)
    assert_eq!(
        Stored::open(&agg.db()).wait_count(50, Duration::from_secs(30)),
        50
    );
    agg.wait_log(&format!(
        "{id} presented a certificate signed after every one its registry recorded"
    ));
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("replaced by a renewal"), "{log}");
    // The certificate the renewal replaced is still refused.
    let e = raw_connect(&agg, Some((first, first_key))).unwrap_err();
    assert!(
        e.contains("closed with code 9: certificate replaced by a renewal"),
        "{e}"
    );
}

/// The aggregator's own certificate (825 days from `init`) had no renewal: on the day it
/// expired every agent was refused. Here it expired while the aggregator was down; the
/// next start renews it from the CA for the same names, and an agent that pinned the CA
/// at enrollment connects and ships as before.
#[test]
fn an_expired_server_certificate_is_renewed_at_start_and_agents_connect() {
    use super::support::agent::RunningAgent;
    use super::support::aggregator::{Stored, distinct_lines, ship_config};
    use vedette_aggregator::identity::authority::cert_der_from_pem;
    use vedette_aggregator::identity::{Authority, ServerCertFacts};

    const DAY: i64 = 86_400_000;
    let scratch = Scratch::new("ship-server-renew");
    let agg = RunningAggregator::start(&scratch, "agg");
    let dir = scratch.path("agent");
    enroll_ok(&dir, &agg.server(), &agg.token("default", "1h"));
    // What the state dir holds 900 days on: a server certificate 75 days past its end.
    let state = agg.state.clone();
    let ca = Authority::load(&state).expect("the CA");
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
    // The aggregator reads the real clock, so the test dates against it too.
    let now = vedette_aggregator::io::clock::now_ms();
    let (old, old_key) = ca
        .issue_server(&names, now - 900 * DAY, 825)
        .expect("issue");
    std::fs::write(
        state.join("server.pem"),
        format!("{}{}", old.cert_pem, ca.cert_pem()),
    )
    .expect("server.pem");
    std::fs::write(state.join("server.key"), old_key).expect("server.key");
    let mut agg = agg.kill9_and_restart();
    agg.wait_log("renewed the server certificate");
    let chain = std::fs::read_to_string(state.join("server.pem")).expect("server.pem");
    let facts =
        ServerCertFacts::of(&cert_der_from_pem(&chain).expect("a certificate")).expect("facts");
    assert!(facts.not_after_ms > now + 800 * DAY, "{facts:?}");
    assert!(facts.names.iter().any(|n| n == "127.0.0.1"), "{facts:?}");

    std::fs::create_dir_all(scratch.path("logs")).expect("logs");
    scratch.write("logs/app.log", distinct_lines(100, "app").as_bytes());
    let cfg = scratch.write(
        "agent.toml",
        ship_config(&dir, &scratch.path("logs/*.log").display().to_string(), "").as_bytes(),
    );
    let stored = Stored::open(&agg.db());
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    assert_eq!(stored.wait_count(100, Duration::from_secs(60)), 100);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
}

/// The agent's state dir and spool hold copies of root-only logs (auth, audit with every
/// command's arguments), the aggregator's store every agent's events: under the usual
/// umask they were readable by every local user. They are their own user's alone now.
#[test]
fn the_agents_spool_and_the_aggregators_store_are_private() {
    use super::support::agent::RunningAgent;
    use super::support::aggregator::{Stored, distinct_lines, ship_config};

    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let scratch = Scratch::new("ship-private");
    let agg = RunningAggregator::start(&scratch, "agg");
    let dir = scratch.path("agent");
    enroll_ok(&dir, &agg.server(), &agg.token("default", "1h"));
    std::fs::create_dir_all(scratch.path("logs")).expect("logs");
    scratch.write("logs/app.log", distinct_lines(100, "app").as_bytes());
    let cfg = scratch.write(
        "agent.toml",
        ship_config(&dir, &scratch.path("logs/*.log").display().to_string(), "").as_bytes(),
    );
    let stored = Stored::open(&agg.db());
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    assert_eq!(stored.wait_count(100, Duration::from_secs(60)), 100);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("open to other users"), "{log}");
    assert_eq!(mode(&dir), 0o700, "the agent's state dir");
    assert_eq!(mode(&dir.join("spool")), 0o700, "the spool");
    let mut files = 0;
    for e in std::fs::read_dir(dir.join("spool")).expect("spool") {
        let p = e.expect("entry").path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        files += 1;
    }
    assert!(files > 0, "the spool holds its state at least");
    assert_eq!(mode(&agg.state), 0o700, "the aggregator's state dir");
    for f in ["events.db", "events.db-wal"] {
        assert_eq!(mode(&agg.state.join(f)), 0o600, "{f}");
    }
}

#[test]
fn an_agent_cannot_make_another_agents_events_vanish() {
    // Stored uids were one namespace per tenant, and a uid is the agent's claim: an agent
    // that sent another's uids first (compromised, or here simply reading the same file,
    // whose lines get the same uids on both) had that agent's events dropped as
    // duplicates. Each agent's uids are now its own.
    use super::support::agent::RunningAgent;
    use super::support::aggregator::{Stored, distinct_lines, line_numbers, ship_config};
    const N: usize = 1_000;
    let scratch = Scratch::new("ship-uid-scope");
    let agg = RunningAggregator::start(&scratch, "agg");
    std::fs::create_dir_all(scratch.path("logs")).unwrap();
    scratch.write("logs/app.log", distinct_lines(N, "app").as_bytes());
    let stored = Stored::open(&agg.db());
    let mut seen = Vec::new();
    for name in ["first", "second"] {
        let dir = scratch.path(name);
        enroll_ok(&dir, &agg.server(), &agg.token("default", "1h"));
        let cfg = scratch.write(
            &format!("{name}.toml"),
            ship_config(&dir, &scratch.path("logs/*.log").display().to_string(), "").as_bytes(),
        );
        let agent = RunningAgent::spawn(cfg, scratch.path(&format!("{name}.ndjson")));
        let want = N as u64 * (seen.len() as u64 + 1);
        let have = stored.wait_count(want, Duration::from_secs(60));
        let (status, log) = agent.stop();
        assert!(status.success(), "{log}");
        assert_eq!(have, want, "{name}: {log}");
        seen.push(name);
    }
    // Every line twice: once per agent.
    let lines = line_numbers(&stored.events());
    assert_eq!(lines.len(), N);
    assert!(lines.values().all(|&c| c == 2));
}
