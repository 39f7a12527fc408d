//! A running `vedette-aggregator serve` on a fresh state dir (init done), its QUIC port
//! learned from its start line, and the CLI around it (tokens, revocation).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{Scratch, agent_bin, aggregator_bin};

/// How long to wait for the aggregator to start or stop.
const DEADLINE: Duration = Duration::from_secs(30);

/// An aggregator process and its state dir.
pub(crate) struct RunningAggregator {
    child: Option<Child>,
    netns: Option<String>,
    /// State dir (CA, keys, events.db).
    pub(crate) state: PathBuf,
    /// Its config.
    pub(crate) config: PathBuf,
    /// The QUIC address it listens on.
    pub(crate) addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

pub(crate) fn check(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs the aggregator CLI with `args`; returns its stdout, failing the test on an error.
pub(crate) fn aggregator_cli(args: &[&str]) -> String {
    let out = Command::new(aggregator_bin())
        .args(args)
        .output()
        .expect("run vedette-aggregator");
    check(out, &format!("vedette-aggregator {}", args.join(" ")))
}

impl RunningAggregator {
    /// `init` in `scratch/<name>`, then `serve` on an ephemeral loopback port.
    pub(crate) fn start(scratch: &Scratch, name: &str) -> Self {
        Self::start_in(scratch, name, None)
    }

    /// Like [`Self::start`], inside network namespace `netns` when given.
    pub(crate) fn start_in(scratch: &Scratch, name: &str, netns: Option<&str>) -> Self {
        Self::start_with(scratch, name, netns, "")
    }

    /// Like [`Self::start_in`], with `extra` lines in `[aggregator]`.
    pub(crate) fn start_with(
        scratch: &Scratch,
        name: &str,
        netns: Option<&str>,
        extra: &str,
    ) -> Self {
        let state = scratch.path(name);
        aggregator_cli(&["init", "--state-dir", state.to_str().expect("UTF-8 path")]);
        let config = scratch.write(
            &format!("{name}.toml"),
            format!(
                "[aggregator]\nstate_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n{extra}",
                state.display()
            )
            .as_bytes(),
        );
        Self::serve(state, config, None, netns)
    }

    /// `serve` on an existing config; `addr` pins the port (a restart keeps it).
    fn serve(
        state: PathBuf,
        config: PathBuf,
        addr: Option<SocketAddr>,
        netns: Option<&str>,
    ) -> Self {
        if let Some(a) = addr {
            let text = std::fs::read_to_string(&config).expect("config");
            let text = text.replace("127.0.0.1:0", &a.to_string());
            std::fs::write(&config, text).expect("config");
        }
        let mut child = in_netns(aggregator_bin(), netns)
            .args(["serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vedette-aggregator serve");
        let (tx, rx) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut me = Self {
            child: Some(child),
            netns: netns.map(str::to_owned),
            state,
            config,
            addr: "0.0.0.0:0".parse().expect("addr"),
            lines: rx,
            log: Vec::new(),
        };
        let line = me.wait_log("listening on ");
        me.addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        me
    }

    /// Waits for a log line (stdout or stderr) containing `needle`.
    pub(crate) fn wait_log(&mut self, needle: &str) -> String {
        if let Some(l) = self.log.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        loop {
            match self.lines.recv_timeout(DEADLINE) {
                Ok(l) => {
                    self.log.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "waited {DEADLINE:?} for {needle:?} from the aggregator; log:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Log so far.
    pub(crate) fn log(&mut self) -> String {
        while let Ok(l) = self.lines.try_recv() {
            self.log.push(l);
        }
        self.log.join("\n")
    }

    /// The QUIC address as `HOST:PORT`.
    pub(crate) fn server(&self) -> String {
        self.addr.to_string()
    }

    /// A fresh one-time token for `tenant`.
    pub(crate) fn token(&self, tenant: &str, ttl: &str) -> String {
        aggregator_cli(&[
            "enroll-token",
            "create",
            "--state-dir",
            self.state.to_str().expect("UTF-8"),
            "--tenant",
            tenant,
            "--ttl",
            ttl,
        ])
        .trim()
        .to_owned()
    }

    /// `agents revoke ID`.
    pub(crate) fn revoke(&self, id: &str) {
        aggregator_cli(&[
            "agents",
            "revoke",
            "--state-dir",
            self.state.to_str().expect("UTF-8"),
            id,
        ]);
    }

    /// The state dir.
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.state.clone()
    }

    /// The SQLite file.
    pub(crate) fn db(&self) -> PathBuf {
        self.state.join("events.db")
    }

    /// SIGKILL, then `serve` again on the same port and state.
    pub(crate) fn kill9_and_restart(mut self) -> Self {
        let mut c = self.child.take().expect("running");
        let _ignored = c.kill();
        let _ignored = c.wait();
        let (state, config, addr) = (self.state.clone(), self.config.clone(), self.addr);
        Self::serve(state, config, Some(addr), self.netns.as_deref())
    }

    /// SIGTERM and wait; [`Self::resume`] serves again on the same port and state.
    pub(crate) fn pause(&mut self) {
        let c = self.child.as_mut().expect("running");
        let _ignored = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let st = c.wait().expect("wait");
        assert!(st.success(), "aggregator exit {st}:\n{}", self.log());
        self.child = None;
    }

    /// Serves again after [`Self::pause`].
    pub(crate) fn resume(&mut self) {
        let next = Self::serve(
            self.state.clone(),
            self.config.clone(),
            Some(self.addr),
            self.netns.as_deref(),
        );
        *self = next;
    }
}

impl Drop for RunningAggregator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ignored = c.kill();
            let _ignored = c.wait();
        }
    }
}

/// `bin`, run inside network namespace `netns` when given (`ip netns exec` execs it, so
/// the child's pid is the program's own).
pub(crate) fn in_netns(bin: &Path, netns: Option<&str>) -> Command {
    match netns {
        None => Command::new(bin),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
    }
}

/// `vedette-agent enroll --server S --token T --state-dir DIR`.
pub(crate) fn enroll(state_dir: &Path, server: &str, token: &str) -> Output {
    enroll_in(state_dir, server, token, None)
}

/// [`enroll`] inside network namespace `netns` when given.
pub(crate) fn enroll_in(
    state_dir: &Path,
    server: &str,
    token: &str,
    netns: Option<&str>,
) -> Output {
    in_netns(agent_bin(), netns)
        .args([
            "enroll",
            "--server",
            server,
            "--token",
            token,
            "--state-dir",
        ])
        .arg(state_dir)
        .output()
        .expect("run vedette-agent enroll")
}

/// Enrolls and returns the agent id, failing the test if refused.
pub(crate) fn enroll_ok(state_dir: &Path, server: &str, token: &str) -> String {
    enroll_ok_in(state_dir, server, token, None)
}

/// [`enroll_ok`] inside network namespace `netns` when given.
pub(crate) fn enroll_ok_in(
    state_dir: &Path,
    server: &str,
    token: &str,
    netns: Option<&str>,
) -> String {
    let out = check(
        enroll_in(state_dir, server, token, netns),
        "vedette-agent enroll",
    );
    assert!(
        state_dir.join("identity/agent.json").is_file(),
        "no identity after enrolling ({out})"
    );
    agent_id_in(state_dir)
}

/// The id of the agent enrolled in `state_dir` (its `identity/agent.json`).
pub(crate) fn agent_id_in(state_dir: &Path) -> String {
    let json = std::fs::read_to_string(state_dir.join("identity/agent.json"))
        .unwrap_or_else(|e| panic!("no identity in {}: {e}", state_dir.display()));
    let v: serde_json::Value = serde_json::from_str(&json).expect("agent.json");
    v["agent_id"].as_str().expect("agent_id").to_owned()
}

/// Reads what an aggregator stored, straight from its SQLite file (a second connection;
/// WAL lets it read while the server writes).
pub(crate) struct Stored {
    conn: rusqlite::Connection,
}

impl Stored {
    /// Opens `db` read-only.
    pub(crate) fn open(db: &Path) -> Self {
        let conn = rusqlite::Connection::open_with_flags(
            db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("open events.db");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        Self { conn }
    }

    /// Events stored.
    pub(crate) fn count(&self) -> u64 {
        self.conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .expect("count") as u64
    }

    /// Every stored event, decompressed from its chunk (each chunk read once).
    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        use vedette_aggregator::core::ingest::ChunkText;
        let mut st = self
            .conn
            .prepare("SELECT chunk, line FROM events ORDER BY id")
            .expect("prepare");
        let places: Vec<(i64, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let mut read = self
            .conn
            .prepare("SELECT raw_len, data FROM chunks WHERE id = ?1")
            .expect("prepare");
        let mut text: Option<(i64, ChunkText)> = None;
        let mut out = Vec::with_capacity(places.len());
        for (chunk, line) in places {
            if text.as_ref().is_none_or(|(c, _)| *c != chunk) {
                let (raw_len, data): (i64, Vec<u8>) = read
                    .query_row([chunk], |r| Ok((r.get(0)?, r.get(1)?)))
                    .expect("chunk");
                text = Some((
                    chunk,
                    ChunkText::open(&data, raw_len as u64).expect("chunk"),
                ));
            }
            let (_, t) = text.as_ref().expect("just read");
            out.push(t.line(line as usize).expect("doc"));
        }
        out
    }

    /// One integer from `sql`.
    pub(crate) fn int(&self, sql: &str) -> i64 {
        self.conn
            .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .expect(sql)
            .unwrap_or(0)
    }

    /// Waits (polling the file, with a deadline) until `n` events are stored.
    pub(crate) fn wait_count(&self, n: u64, deadline: Duration) -> u64 {
        const STEP: Duration = Duration::from_millis(20);
        let mut have = 0;
        for _ in 0..deadline.as_millis() / STEP.as_millis() {
            have = self.count();
            if have >= n {
                return have;
            }
            std::thread::sleep(STEP);
        }
        have
    }
}

/// A file of `n` distinct syslog lines (each its own event; no two alike, so dedup could
/// not fold them even if it were on).
pub(crate) fn distinct_lines(n: usize, tag: &str) -> String {
    let mut s = String::with_capacity(n * 90);
    for i in 0..n {
        s.push_str(&format!(
            "2026-11-27T10:00:{:02}.{:06}Z host1 {tag}[{}]: distinct line {i} of {n}\n",
            (i / 1_000_000) % 60,
            i % 1_000_000,
            1000 + i % 50_000
        ));
    }
    s
}

/// The agent config for shipping `files` to `server`, with quick intervals for tests.
pub(crate) fn ship_config(state_dir: &Path, files: &str, extra_output: &str) -> String {
    format!(
        "[agent]\nstate_dir = \"{}\"\npoll_interval_ms = 20\n\n[dedup]\nenabled = false\n\n[[input.file]]\npaths = [\"{files}\"]\nread_from = \"start\"\n\n[output]\ntype = \"aggregator\"\nbatch_linger_ms = 20\nheartbeat_ms = 100\nbackoff_min_ms = 20\nbackoff_max_ms = 300\n{extra_output}\n",
        state_dir.display()
    )
}

/// The `n` in "distinct line n of …" of every stored event, checking each appears once.
pub(crate) fn line_numbers(events: &[serde_json::Value]) -> std::collections::BTreeMap<u64, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for e in events {
        let raw = e["raw_data"].as_str().unwrap_or_default();
        if let Some(rest) = raw.split("distinct line ").nth(1)
            && let Some(n) = rest.split(' ').next().and_then(|n| n.parse().ok())
        {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// A throw-away network namespace with loopback up, deleted on drop. Needs root and
/// iproute2 (`.ci/run` installs it); the host's own network and firewall are never touched.
pub(crate) struct Netns {
    /// Its name.
    pub(crate) name: String,
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// Creates `vdt-<tag>-<pid>`.
    pub(crate) fn new(tag: &str) -> Self {
        let name = format!("vdt-{tag}-{}", std::process::id());
        let _ignored = Command::new("ip").args(["netns", "del", &name]).output();
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        run_ok(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        Self { name }
    }

    /// Runs `nft` with `args` inside the namespace.
    pub(crate) fn nft(&self, args: &[&str]) {
        run_ok(
            Command::new("ip")
                .args(["netns", "exec", &self.name, "nft"])
                .args(args),
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ignored = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// An agent enrolled with `agg` (state in `scratch/agent`), a file `logs/app.log` of `n`
/// distinct lines, and the agent's config shipping it (`extra` output settings); returns
/// the state dir and the config.
pub(crate) fn enrolled_agent(
    scratch: &Scratch,
    agg: &RunningAggregator,
    n: usize,
    extra: &str,
) -> (PathBuf, PathBuf) {
    let dir = scratch.path("agent");
    enroll_ok_in(
        &dir,
        &agg.server(),
        &agg.token("default", "1h"),
        agg.netns.as_deref(),
    );
    std::fs::create_dir_all(scratch.path("logs")).expect("logs dir");
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
    (dir, cfg)
}

/// A QUIC client config for `agg` on `alpn`: trusts its CA, presents `client_cert` (chain
/// PEM, key PEM) or none, and keeps its connections alive (as a hostile client would, so
/// the server's idle timeout never ends them).
pub(crate) fn quic_client(
    agg: &RunningAggregator,
    client_cert: Option<(String, String)>,
    alpn: &[u8],
) -> quinn::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;

    let ca_pem = std::fs::read_to_string(agg.state.join("ca.pem")).expect("the CA");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("a PEM certificate")).expect("a CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots);
    let mut tls = match client_cert {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(chain.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("a certificate chain"),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("a key"),
            )
            .expect("a client certificate"),
    };
    tls.alpn_protocols = vec![alpn.to_vec()];
    let mut cfg = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("a QUIC TLS config"),
    ));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_millis(200)));
    cfg.transport_config(Arc::new(transport));
    cfg
}
