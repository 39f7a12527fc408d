//! A running `vedette-aggregator serve` on a fresh state dir (init done), its QUIC port
//! learned from its start line, and the CLI around it (tokens, revocation).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{Scratch, aggregator_bin, agent_bin};

/// How long to wait for the aggregator to start or stop.
const DEADLINE: Duration = Duration::from_secs(30);

/// An aggregator process and its state dir.
pub(crate) struct RunningAggregator {
    child: Option<Child>,
    /// State dir (CA, keys, events.db).
    pub(crate) state: PathBuf,
    /// Its config.
    pub(crate) config: PathBuf,
    /// The QUIC address it listens on.
    pub(crate) addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

fn check(out: Output, what: &str) -> String {
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
        let state = scratch.path(name);
        aggregator_cli(&["init", "--state-dir", state.to_str().expect("UTF-8 path")]);
        let config = scratch.write(
            &format!("{name}.toml"),
            format!(
                "[aggregator]\nstate_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n",
                state.display()
            )
            .as_bytes(),
        );
        Self::serve(state, config, None)
    }

    /// `serve` on an existing config; `addr` pins the port (a restart keeps it).
    fn serve(state: PathBuf, config: PathBuf, addr: Option<SocketAddr>) -> Self {
        if let Some(a) = addr {
            let text = std::fs::read_to_string(&config).expect("config");
            let text = text.replace("127.0.0.1:0", &a.to_string());
            std::fs::write(&config, text).expect("config");
        }
        let mut child = Command::new(aggregator_bin())
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

    /// The SQLite file.
    pub(crate) fn db(&self) -> PathBuf {
        self.state.join("events.db")
    }

    /// SIGKILL, then `serve` again on the same port and state.
    pub(crate) fn kill9_and_restart(mut self) -> Self {
        let mut c = self.child.take().expect("running");
        let _ = c.kill();
        let _ = c.wait();
        let (state, config, addr) = (self.state.clone(), self.config.clone(), self.addr);
        Self::serve(state, config, Some(addr))
    }

    /// SIGTERM and wait.
    pub(crate) fn stop(mut self) -> (ExitStatus, String) {
        let c = self.child.as_mut().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let st = c.wait().expect("wait");
        self.child = None;
        (st, self.log())
    }
}

impl Drop for RunningAggregator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `vedette-agent enroll --server S --token T --state-dir DIR`.
pub(crate) fn enroll(state_dir: &Path, server: &str, token: &str) -> Output {
    Command::new(agent_bin())
        .args(["enroll", "--server", server, "--token", token, "--state-dir"])
        .arg(state_dir)
        .output()
        .expect("run vedette-agent enroll")
}

/// Enrolls and returns the agent id, failing the test if refused.
pub(crate) fn enroll_ok(state_dir: &Path, server: &str, token: &str) -> String {
    let out = check(enroll(state_dir, server, token), "vedette-agent enroll");
    let json = std::fs::read_to_string(state_dir.join("identity/agent.json"))
        .unwrap_or_else(|e| panic!("no identity after enrolling ({out}): {e}"));
    let v: serde_json::Value = serde_json::from_str(&json).expect("agent.json");
    v["agent_id"].as_str().expect("agent_id").to_owned()
}
