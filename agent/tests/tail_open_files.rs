//! The file tails against the open-file limit. Alone in its test binary: it lowers the
//! process's limit, which every test thread of a binary shares.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use vedette_agent::core::tail::{Notice, ReadFrom};
use vedette_agent::io::tail::{TailConfig, Tailer};

fn append(p: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .and_then(|mut f| f.write_all(bytes))
        .expect("append");
}

fn poll(t: &mut Tailer, now: i64) -> Vec<String> {
    let mut v = Vec::new();
    t.poll(now, &mut |l| {
        v.push(String::from_utf8_lossy(l.bytes).into_owned())
    })
    .expect("poll");
    v
}

fn notices(t: &mut Tailer) -> Vec<Notice> {
    std::iter::from_fn(|| t.poll_notice()).collect()
}

/// Opens files until the process has no descriptor left.
fn exhaust() -> Vec<File> {
    let mut held = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        held.push(f);
    }
    held
}

/// A pattern over more files than the open-file limit allows (per-container or per-vhost
/// logs): the tails take their share and report the rest, and the process keeps the
/// descriptors its other inputs need (a listener that cannot accept goes blind in
/// silence). A directory that cannot be listed meanwhile is not read as empty: the files
/// held under it are neither let go nor read again from their start once it can be (Fluent
/// Bit's and Filebeat's scanners read a failed scan as "no files").
#[test]
fn the_tails_keep_to_their_share_of_open_files_and_a_failed_listing_lets_nothing_go() {
    let dir = std::env::temp_dir().join(format!("vedette-tail-fds-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("clean");
    }
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).expect("dir");
    let name = |i: usize| -> PathBuf { logs.join(format!("{i:03}.log")) };
    for i in 0..400 {
        append(&name(i), format!("line of {i}\n").as_bytes());
    }
    let before = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(600),
            maximum: before.maximum,
        },
    )
    .expect("lower the limit");

    let mut t = Tailer::new(TailConfig {
        read_from: ReadFrom::Start,
        checkpoint_path: Some(dir.join("checkpoints")),
        max_bytes_per_poll: u64::MAX,
        ..TailConfig::new(vec![format!("{}/*.log", logs.display())])
    })
    .expect("tailer");
    // A share of 600 less 512 would be 88; at least half the limit is the tails'.
    let first = poll(&mut t, 0);
    assert_eq!(first.len(), 300, "the tails' share: half of 600");
    let refused: Vec<_> = notices(&mut t)
        .into_iter()
        .filter_map(|n| match n {
            Notice::Unreadable { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 100);
    assert!(
        refused[0].contains("share of the open-file limit"),
        "{}",
        refused[0]
    );
    // What is left is the process's: a listener could still accept 200 connections.
    let spare: Vec<File> = (0..200)
        .map(|_| File::open("/dev/null").expect("a descriptor left for the other inputs"))
        .collect();
    drop(spare);
    t.commit_all_emitted();

    // No descriptor left at all: the directory cannot be listed this round.
    let hog = exhaust();
    assert!(poll(&mut t, 10).is_empty());
    let during = notices(&mut t);
    drop(hog);
    assert!(
        during.iter().any(|n| matches!(n,
            Notice::Unreadable { path, error } if *path == logs && error.contains("open files"))),
        "the directory is reported"
    );
    let gone = during
        .iter()
        .filter(|n| matches!(n, Notice::Gone { .. }))
        .count();
    assert_eq!(
        gone, 0,
        "files let go while their directory could not be listed"
    );
    // Listed again: only what is new is read, the held files are not read again whole.
    append(&name(0), b"new line of 0\n");
    let after = poll(&mut t, 20);
    assert!(after.contains(&"new line of 0".to_owned()), "{after:?}");
    assert!(!after.contains(&"line of 0".to_owned()), "{after:?}");
    assert!(!after.contains(&"line of 1".to_owned()), "{after:?}");

    setrlimit(Resource::Nofile, before).expect("restore the limit");
    fs::remove_dir_all(&dir).expect("clean");
}
