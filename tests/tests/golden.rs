//! Golden files: the repository's own samples (`samples/`) normalized with a fixed `--now`,
//! `--tz` and config must give exactly the committed OCSF in `tests/data/golden/`, byte for
//! byte, on every run. `VEDETTE_BLESS=1` rewrites the golden files after a deliberate change
//! (review the diff: it is the change's effect on every sample event).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::{self, workspace_dir};

/// The sample inputs, as paths relative to the workspace (so `metadata.log_source` and the
/// uids derived from it do not depend on where the repository is checked out).
fn samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace_dir().join("samples"))
        .expect("samples/ exists")
        .map(|e| e.expect("readable samples/ entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("log" | "jsonl")
            )
        })
        .map(|p| Path::new("samples").join(p.file_name().expect("a file name")))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the sample logs in samples/, found {files:?}"
    );
    files
}

fn normalize_sample(rel: &Path) -> String {
    let out = support::normalize_command(&["--config", "samples/vedette-agent.toml"], &[rel])
        .current_dir(workspace_dir())
        .stderr(Stdio::piped())
        .output()
        .expect("run vedette-agent");
    assert!(
        out.status.success(),
        "normalize {rel:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn samples_match_their_golden_files() {
    let bless = std::env::var_os("VEDETTE_BLESS").is_some();
    let mut problems = Vec::new();
    for rel in samples() {
        let got = normalize_sample(&rel);
        // Determinism: a second run over the same file gives the same bytes (uids included).
        assert_eq!(got, normalize_sample(&rel), "{rel:?}: two runs differ");
        let name = format!(
            "{}.ocsf.ndjson",
            rel.file_name().unwrap_or_default().to_string_lossy()
        );
        let golden = workspace_dir().join("tests/data/golden").join(&name);
        if bless {
            std::fs::create_dir_all(golden.parent().expect("a parent")).expect("mkdir golden");
            std::fs::write(&golden, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with VEDETTE_BLESS=1 to create it)",
                golden.display()
            )
        });
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            if g != w {
                problems.push(format!("{name} line {}:\n  want {w}\n  got  {g}", i + 1));
            }
        }
        if got.lines().count() != want.lines().count() {
            problems.push(format!(
                "{name}: {} events, golden has {}",
                got.lines().count(),
                want.lines().count()
            ));
        }
    }
    support::assert_no_problems("golden samples", &problems, 10);
}
