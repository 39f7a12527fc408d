//! The direct JSON writer gives exactly serde_json's bytes for every event the corpus
//! produces (so switching serializers can never change what downstream stores see).

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use vedette_agent::core::time::TimeContext;
use vedette_agent::core::{NormalizeConfig, Normalizer, Source, output};

fn logs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            logs(&p, out);
        } else if p.extension().is_some_and(|x| x == "log") {
            out.push(p);
        }
    }
}

#[test]
fn direct_writer_matches_serde_json_on_the_corpus() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let mut files = Vec::new();
    logs(&corpus, &mut files);
    assert!(files.len() > 40, "corpus not found at {}", corpus.display());
    let mut n = Normalizer::new(NormalizeConfig::default());
    let mut checked = 0;
    for f in files {
        let src = Source {
            uid_key: None,
            id: f.display().to_string(),
            time: TimeContext::new("2026-11-27T00:00:00Z".parse().unwrap(), TimeZone::UTC),
            syslog: false,
            sender_name: None,
        };
        let data = std::fs::read(&f).expect("read corpus file");
        for (i, line) in data.split(|&c| c == b'\n').enumerate() {
            n.handle_line(&src, i as u64 + 1, line, 0);
        }
        n.finish();
        while let Some(ev) = n.poll_event() {
            let mut ours = Vec::new();
            output::write_json_line(&ev, &mut ours);
            let mut theirs = serde_json::to_vec(&ev).expect("serde_json");
            theirs.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{}",
                f.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 8000, "only {checked} events checked");
}
