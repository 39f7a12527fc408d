//! A running `vedette-agent run`: started on a config written to a scratch dir, its output
//! file read as events arrive, stopped with SIGTERM (or killed) and its summary read.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{Scratch, agent_bin, parse_ndjson};

/// How long a test waits for the agent to do something it was asked to (start, write
/// events). A deadline for I/O, not a timer the test relies on: it returns as soon as the
/// awaited output is there.
const DEADLINE: Duration = Duration::from_secs(30);

/// An agent process.
pub(crate) struct RunningAgent {
    child: Option<Child>,
    /// The NDJSON output file.
    pub(crate) out: PathBuf,
    /// The config file.
    pub(crate) config: PathBuf,
    stderr: mpsc::Receiver<String>,
    log: Vec<String>,
    /// Listener addresses by scheme (`udp`, `tcp`, `tls`), from the agent's start log.
    pub(crate) listening: HashMap<String, Vec<SocketAddr>>,
}

impl RunningAgent {
    /// Starts `vedette-agent run` on `config` (TOML without `[output]`: the output is a
    /// file in `scratch`) and waits until its `listeners` listeners are up.
    pub(crate) fn start(scratch: &Scratch, config: &str, listeners: usize) -> Self {
        let out = scratch.path("events.ndjson");
        let cfg = scratch.write(
            "agent.toml",
            format!(
                "{config}\n[output]\ntype = \"file\"\npath = \"{}\"\n",
                out.display()
            )
            .as_bytes(),
        );
        let mut a = Self::spawn(cfg, out);
        a.wait_listening(listeners);
        a
    }

    /// Starts the agent on an existing config file writing to `out`.
    pub(crate) fn spawn(config: PathBuf, out: PathBuf) -> Self {
        Self::spawn_in(config, out, None)
    }

    /// [`Self::spawn`] inside network namespace `netns` when given.
    pub(crate) fn spawn_in(config: PathBuf, out: PathBuf, netns: Option<&str>) -> Self {
        Self::spawn_cmd(super::aggregator::in_netns(agent_bin(), netns), config, out)
    }

    /// [`Self::spawn`] with the open-file limits `soft` and `hard` (util-linux's `prlimit`,
    /// which execs the agent: the child is the agent itself).
    pub(crate) fn spawn_with_nofile(config: PathBuf, out: PathBuf, soft: u64, hard: u64) -> Self {
        let mut cmd = std::process::Command::new("prlimit");
        cmd.arg(format!("--nofile={soft}:{hard}"))
            .arg("--")
            .arg(agent_bin());
        Self::spawn_cmd(cmd, config, out)
    }

    pub(crate) fn spawn_cmd(mut cmd: std::process::Command, config: PathBuf, out: PathBuf) -> Self {
        let text = std::fs::read_to_string(&config).expect("the agent's config");
        std::fs::write(&config, with_test_state_dir(&text, &config)).expect("config");
        let mut child = cmd
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", agent_bin().display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child: Some(child),
            out,
            config,
            stderr: rx,
            log: Vec::new(),
            listening: HashMap::new(),
        }
    }

    /// The `[output]` section [`Self::start`] wrote, for a config rewritten before a reload.
    pub(crate) fn output_section(&self) -> String {
        format!(
            "[output]\ntype = \"file\"\npath = \"{}\"\n",
            self.out.display()
        )
    }

    /// Writes `text` as the agent's config, for a SIGHUP.
    pub(crate) fn rewrite_config(&self, text: &str) {
        std::fs::write(&self.config, with_test_state_dir(text, &self.config)).expect("config");
    }

    fn wait_listening(&mut self, n: usize) {
        while self.listening.values().map(Vec::len).sum::<usize>() < n {
            let line = self.next_log_line("a listener to start");
            if let Some(rest) = line.strip_prefix("vedette-agent: listening on ") {
                let (scheme, addr) = rest.split_once("://").expect("scheme://addr");
                let addr = addr.parse().expect("listener address");
                self.listening
                    .entry(scheme.to_owned())
                    .or_default()
                    .push(addr);
            }
        }
    }

    fn next_log_line(&mut self, waiting_for: &str) -> String {
        match self.stderr.recv_timeout(DEADLINE) {
            Ok(l) => {
                self.log.push(l.clone());
                l
            }
            Err(_) => {
                let status = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "waited {DEADLINE:?} for {waiting_for}; agent status {status:?}; log:\n{}",
                    self.log.join("\n")
                )
            }
        }
    }

    /// Waits until a log line contains `needle`.
    pub(crate) fn wait_log(&mut self, needle: &str) -> String {
        if let Some(l) = self.log.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        loop {
            let l = self.next_log_line(needle);
            if l.contains(needle) {
                return l;
            }
        }
    }

    /// [`Self::wait_log`], failing after `max_lines` new lines without `needle`: for a
    /// line a regression would replace by an endless stream of others (each of which
    /// would restart the deadline).
    pub(crate) fn wait_log_among(&mut self, needle: &str, max_lines: usize) -> String {
        if let Some(l) = self.log.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        for _ in 0..max_lines {
            let l = self.next_log_line(needle);
            if l.contains(needle) {
                return l;
            }
        }
        panic!(
            "{max_lines} lines without {needle:?}; log:\n{}",
            self.log.join("\n")
        )
    }

    /// The address of the only `scheme` listener.
    pub(crate) fn addr(&self, scheme: &str) -> SocketAddr {
        self.listening[scheme][0]
    }

    /// Events written so far.
    pub(crate) fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        // The last line may be half-written.
        let whole = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        parse_ndjson(whole)
    }

    /// Waits until at least `n` events are written, and returns them all.
    pub(crate) fn wait_events(&mut self, n: usize) -> Vec<Value> {
        const STEP: Duration = Duration::from_millis(10);
        for _ in 0..DEADLINE.as_millis() / STEP.as_millis() {
            // Count lines first: parsing a growing file on every step would slow the test
            // down to less than the agent's pace.
            let lines = std::fs::read(&self.out)
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0);
            if lines >= n {
                return self.events();
            }
            while let Ok(l) = self.stderr.try_recv() {
                self.log.push(l);
            }
            std::thread::sleep(STEP);
        }
        panic!(
            "waited {DEADLINE:?} for {n} events, have {}; log:\n{}",
            self.events().len(),
            self.log.join("\n")
        )
    }

    /// Waits until the output holds at least `bytes` bytes (cheap to watch: a stat).
    pub(crate) fn wait_output_bytes(&mut self, bytes: u64) {
        const STEP: Duration = Duration::from_millis(2);
        for _ in 0..DEADLINE.as_millis() / STEP.as_millis() {
            if std::fs::metadata(&self.out).map_or(0, |m| m.len()) >= bytes {
                return;
            }
            std::thread::sleep(STEP);
        }
        panic!(
            "waited {DEADLINE:?} for {bytes} bytes of output; log:\n{}",
            self.log.join("\n")
        )
    }

    /// Sends `signal` (e.g. `TERM`, `HUP`, `KILL`).
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let st = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill(1) is needed by the tests");
        assert!(st.success(), "kill -{signal} {pid} failed");
    }

    /// SIGTERM, then waits for the exit; returns the status and the whole log.
    pub(crate) fn stop(mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.wait_exit()
    }

    /// SIGKILL: the agent gets no chance to flush or checkpoint.
    pub(crate) fn kill9(mut self) -> (ExitStatus, String) {
        self.signal("KILL");
        self.wait_exit()
    }

    /// Waits up to `deadline` for the agent to exit on its own; `None` if it still runs.
    pub(crate) fn exited_within(&mut self, deadline: Duration) -> Option<(ExitStatus, String)> {
        let child = self.child.as_mut().expect("running");
        let step = Duration::from_millis(20);
        for _ in 0..deadline.as_millis() / step.as_millis() {
            if child.try_wait().expect("wait for the agent").is_some() {
                return Some(self.wait_exit());
            }
            std::thread::sleep(step);
        }
        None
    }

    fn wait_exit(&mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let status = child.wait().expect("wait for the agent");
        // The reader thread ends with the pipe.
        while let Ok(l) = self.stderr.recv_timeout(DEADLINE) {
            self.log.push(l);
        }
        (status, self.log.join("\n"))
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ignored = c.kill();
            let _ignored = c.wait();
        }
    }
}

/// `text` with `[agent] state_dir` beside `config` when it names none: the default
/// (`/var/lib/vedette-agent`, the redaction key, the first-seen baseline) is the host's,
/// which a test must not touch.
pub(crate) fn with_test_state_dir(text: &str, config: &Path) -> String {
    if text
        .lines()
        .any(|l| l.trim_start().starts_with("state_dir"))
    {
        return text.to_owned();
    }
    let dir = config.with_extension("state");
    let line = format!("state_dir = \"{}\"\n", dir.display());
    match text.find("[agent]\n") {
        Some(at) => {
            let after = at + "[agent]\n".len();
            format!("{}{line}{}", &text[..after], &text[after..])
        }
        None => format!("[agent]\n{line}{text}"),
    }
}
