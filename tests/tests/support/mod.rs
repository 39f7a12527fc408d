//! What every test needs: the agent binary, a way to run `normalize`, the corpus and
//! scratch files, and small readers (CSV, JSON paths, timestamps).

pub(crate) mod agent;
pub(crate) mod aggregator;
pub(crate) mod check;
pub(crate) mod csv;
pub(crate) mod json;
pub(crate) mod syscalls;
pub(crate) mod time;

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// The reference time given to `--now`: RFC 3164 timestamps carry no year, so every run
/// infers years against the same instant and the tests do not depend on the wall clock.
pub(crate) const NOW: &str = "2026-11-27T00:00:00Z";

/// The zone given to `--tz` for timestamps that carry none.
pub(crate) const TZ: &str = "UTC";

/// `/work/main` (the workspace root): the parent of this crate.
pub(crate) fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

/// The shared folder beside the repository (`../shared`), read-only.
pub(crate) fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// A path under `../shared/corpus`; a missing file is a test failure, never a skip.
pub(crate) fn corpus(rel: &str) -> PathBuf {
    let p = shared_dir().join("corpus").join(rel);
    assert!(
        p.exists(),
        "corpus file missing: {} (the tests need ../shared beside the repo)",
        p.display()
    );
    p
}

/// A data table of this crate (`tests/data/<name>`).
pub(crate) fn data_file(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name);
    assert!(p.is_file(), "test data table missing: {}", p.display());
    p
}

/// The `vedette-agent` binary: `$VEDETTE_AGENT_BIN` if set, else the workspace's debug
/// build, built once per test process so the tests work on a fresh clone.
pub(crate) fn agent_bin() -> &'static Path {
    // A failed build is remembered as an error so every test reports it instead of
    // rebuilding.
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(|| find_or_build("vedette-agent", "VEDETTE_AGENT_BIN")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// The `vedette-aggregator` binary, like [`agent_bin`] (`$VEDETTE_AGGREGATOR_BIN`).
pub(crate) fn aggregator_bin() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(|| find_or_build("vedette-aggregator", "VEDETTE_AGGREGATOR_BIN")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn find_or_build(name: &str, var: &str) -> Result<PathBuf, String> {
    if let Some(p) = env::var_os(var) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{var}={} is not a file", p.display()))
        };
    }
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "-p", name, "--bin", name])
        .current_dir(workspace_dir());
    // `cargo test` gives this process the variables of a package being built; build
    // scripts (ring's) rerun when they change, so a child cargo that inherits them rebuilds
    // the TLS stack, and the next plain build rebuilds it back.
    for (k, _) in env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_")
            || matches!(
                &*k,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            )
        {
            cmd.env_remove(&*k);
        }
    }
    let out = cmd.output().map_err(|e| {
        format!(
            "cannot run {} to build {name}: {e}",
            cargo.to_string_lossy()
        )
    })?;
    if !out.status.success() {
        return Err(format!(
            "`cargo build -p {name} --bin {name}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"));
    let bin = target
        .join("debug")
        .join(format!("{name}{}", env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("built {name} but {} does not exist", bin.display()))
    }
}

/// Runs `vedette-agent normalize --now NOW --tz UTC FILE...` and parses its NDJSON.
/// A non-zero exit or a line that is not a JSON object fails the calling test. The agent's
/// stderr summary is echoed (visible with `--nocapture`).
pub(crate) fn normalize(files: &[&Path]) -> Vec<Value> {
    normalize_with(&[], files)
}

/// [`normalize`] with extra options before the files (e.g. `--framing octet`).
pub(crate) fn normalize_with(options: &[&str], files: &[&Path]) -> Vec<Value> {
    let out = normalize_command(options, files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", agent_bin().display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "vedette-agent normalize {:?} exited with {}; stderr:\n{}",
        files,
        out.status,
        tail(&stderr, 40)
    );
    eprintln!("{}", clip(stderr.lines().next().unwrap_or_default(), 200));
    let stdout = String::from_utf8(out.stdout).expect("normalize must print UTF-8");
    parse_ndjson(&stdout)
}

/// The `normalize` command line, for callers that redirect its output themselves.
pub(crate) fn normalize_command(options: &[&str], files: &[&Path]) -> Command {
    let mut cmd = Command::new(agent_bin());
    cmd.args(["normalize", "--now", NOW, "--tz", TZ])
        .args(options)
        .args(files)
        .stdin(Stdio::null());
    cmd
}

/// Parses NDJSON, failing on any line that is not a JSON object.
pub(crate) fn parse_ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("output line {} is not JSON ({e}): {}", i + 1, clip(l, 300))
            });
            assert!(
                v.is_object(),
                "output line {} is not a JSON object: {}",
                i + 1,
                clip(l, 300)
            );
            v
        })
        .collect()
}

/// Events keyed by `metadata.sequence` (the 1-based line number in their source).
pub(crate) fn by_sequence(events: &[Value]) -> BTreeMap<u64, Vec<&Value>> {
    let mut map: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for ev in events {
        let seq = json::get(ev, "metadata.sequence")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| {
                panic!(
                    "event without a numeric metadata.sequence: {}",
                    clip(&ev.to_string(), 300)
                )
            });
        map.entry(seq).or_default().push(ev);
    }
    map
}

/// A scratch directory under the system temp dir, unique per test, removed when the test
/// passes and kept (and printed) when it fails so the inputs can be inspected.
pub(crate) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = env::temp_dir().join(format!("vedette-e2e-{}-{n}-{name}", std::process::id()));
        // A leftover from a crashed run with the same pid is stale.
        let _ignored = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Self { dir }
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Writes `bytes` to `file` in the scratch dir and returns its path.
    pub(crate) fn write(&self, file: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(file);
        fs::write(&p, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("scratch files kept in {}", self.dir.display());
        } else {
            let _ignored = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Reads a corpus file as text lines (lossily: some corpora are not UTF-8), without the
/// line terminators. Gzip files are decompressed.
pub(crate) fn read_lines(path: &Path) -> Vec<String> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("cannot gunzip {}: {e}", path.display()));
        out
    } else {
        bytes
    };
    let mut lines: Vec<String> = String::from_utf8_lossy(&bytes)
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
        .collect();
    // The terminator of the last line does not start another line.
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// At most `n` characters of `s`, marked when cut.
pub(crate) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// The last `n` lines of `s`.
pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Fails the test with the first `limit` problems (`VEDETTE_E2E_SHOW=N` shows N), after a
/// one-line summary.
pub(crate) fn assert_no_problems(what: &str, problems: &[String], limit: usize) {
    if problems.is_empty() {
        return;
    }
    let limit = env::var("VEDETTE_E2E_SHOW")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(limit);
    let shown: Vec<&str> = problems.iter().take(limit).map(String::as_str).collect();
    panic!(
        "{what}: {} problem(s); the first {}:\n  - {}",
        problems.len(),
        shown.len(),
        shown.join("\n  - ")
    );
}
