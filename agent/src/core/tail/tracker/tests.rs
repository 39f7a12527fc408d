//! The tracker driven by an in-memory filesystem: inodes hold bytes, paths name inodes, and
//! an inode stays readable while the tracker has it open (as the kernel keeps it).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::*;
use crate::core::tail::checkpoint;

const DEV: u64 = 7;

#[derive(Default)]
struct Fs {
    inodes: HashMap<u64, Vec<u8>>,
    paths: BTreeMap<PathBuf, u64>,
    next_ino: u64,
}

impl Fs {
    fn create(&mut self, path: &str, bytes: &[u8]) -> u64 {
        self.next_ino += 1;
        self.create_with_ino(path, self.next_ino, bytes);
        self.next_ino
    }
    fn create_with_ino(&mut self, path: &str, ino: u64, bytes: &[u8]) {
        self.inodes.insert(ino, bytes.to_vec());
        self.paths.insert(path.into(), ino);
    }
    fn append(&mut self, path: &str, bytes: &[u8]) {
        let ino = self.paths[Path::new(path)];
        self.append_ino(ino, bytes);
    }
    fn append_ino(&mut self, ino: u64, bytes: &[u8]) {
        self.inodes
            .get_mut(&ino)
            .expect("inode")
            .extend_from_slice(bytes);
    }
    fn rename(&mut self, from: &str, to: &str) {
        let ino = self.paths.remove(Path::new(from)).expect("exists");
        self.paths.insert(to.into(), ino);
    }
    fn unlink(&mut self, path: &str) {
        self.paths.remove(Path::new(path));
    }
    fn truncate(&mut self, path: &str) {
        let ino = self.paths[Path::new(path)];
        self.inodes.get_mut(&ino).expect("inode").clear();
    }
}

/// One shell round: scan paths passing `matches`, then perform actions until none is left.
/// Returns the lines in order.
fn round(tr: &mut Tracker, fs: &Fs, now: i64, matches: &dyn Fn(&Path) -> bool) -> Vec<Line> {
    let obs = fs
        .paths
        .iter()
        .filter(|(p, _)| matches(p))
        .map(|(p, &ino)| {
            let bytes = &fs.inodes[&ino];
            let n = Fingerprint::head_len(bytes.len() as u64, tr.fingerprint_len(DEV, ino));
            FileObservation {
                path: p.clone(),
                dev: DEV,
                ino,
                size: bytes.len() as u64,
                head: Fingerprint::of(&bytes[..n as usize]),
                head_bytes: bytes[..n as usize].to_vec(),
            }
        })
        .collect();
    tr.handle_scan(now, obs);
    let mut out = Vec::new();
    while let Some(a) = tr.poll_action() {
        if let Action::Read {
            key,
            offset,
            max_len,
        } = a
        {
            let bytes = &fs.inodes[&key.ino];
            let from = (offset as usize).min(bytes.len());
            let to = (from + max_len).min(bytes.len());
            tr.handle_read(key, offset, &bytes[from..to])
                .expect("expected read");
        }
        while let Some(l) = tr.poll_line() {
            out.push(l);
        }
    }
    out
}

fn all(_: &Path) -> bool {
    true
}

fn only(name: &'static str) -> impl Fn(&Path) -> bool {
    move |p: &Path| p == Path::new(name)
}

fn text(lines: &[Line]) -> Vec<(String, u64, u64)> {
    lines
        .iter()
        .map(|l| {
            (
                String::from_utf8_lossy(&l.bytes).into_owned(),
                l.start,
                l.end,
            )
        })
        .collect()
}

fn t(s: &str, start: u64, end: u64) -> (String, u64, u64) {
    (s.into(), start, end)
}

fn cfg(read_from: ReadFrom) -> TrackerConfig {
    TrackerConfig {
        read_from,
        max_line_bytes: 1024,
        fingerprint_bytes: 16,
        read_chunk: 5,
        rotated_grace_ms: 0,
        copy_hold_ms: 0,
    }
}

fn notices(tr: &mut Tracker) -> Vec<Notice> {
    std::iter::from_fn(|| tr.poll_notice()).collect()
}

#[test]
fn a_ten_byte_file_is_read() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"123456789\n");
    let mut tr = Tracker::new(TrackerConfig {
        read_from: ReadFrom::Start,
        ..TrackerConfig::default()
    });
    let v = round(&mut tr, &fs, 0, &all);
    assert_eq!(text(&v), [t("123456789", 0, 10)]);
}

#[test]
fn empty_file_waits_then_a_one_byte_file_grows_without_reset() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"");
    let mut tr = Tracker::new(cfg(ReadFrom::End));
    assert!(round(&mut tr, &fs, 0, &all).is_empty());
    assert!(!tr.is_tracked(DEV, 1), "no identity yet");
    fs.append("/l/a.log", b"a");
    // Appeared after start (its first byte did): read from 0, partial line kept.
    assert!(round(&mut tr, &fs, 1, &all).is_empty());
    assert_eq!(tr.fingerprint_len(DEV, 1), 1);
    fs.append("/l/a.log", b"bc\nde");
    let v = round(&mut tr, &fs, 2, &all);
    assert_eq!(text(&v), [t("abc", 0, 4)]);
    // The fingerprint grew with the bytes read, up to `fingerprint_bytes`.
    assert_eq!(tr.fingerprint_len(DEV, 1), 6);
    fs.append("/l/a.log", b"f\n0123456789abcdef\n");
    let v2 = round(&mut tr, &fs, 3, &all);
    assert_eq!(text(&v2), [t("def", 4, 8), t("0123456789abcdef", 8, 25)]);
    assert_eq!(tr.fingerprint_len(DEV, 1), 16);
    assert_eq!(v[0].source_id, v2[0].source_id, "one identity throughout");
    let n = notices(&mut tr);
    assert!(
        !n.iter().any(|n| matches!(n, Notice::Truncated { .. })),
        "{n:?}"
    );
}

#[test]
fn read_from_end_skips_existing_content_but_not_late_files() {
    let mut fs = Fs::default();
    fs.create("/l/old.log", b"before start\n");
    let mut tr = Tracker::new(cfg(ReadFrom::End));
    assert!(round(&mut tr, &fs, 0, &all).is_empty());
    fs.append("/l/old.log", b"after\n");
    fs.create("/l/late.log", b"late 1\nlate 2\n");
    let v = round(&mut tr, &fs, 1, &all);
    assert_eq!(
        text(&v),
        [t("after", 13, 19), t("late 1", 0, 7), t("late 2", 7, 14)]
    );
}

#[test]
fn rename_rotation_drains_unread_bytes_of_the_old_file_first() {
    let mut fs = Fs::default();
    fs.create("/l/app.log", b"one\n");
    let mut tr = Tracker::new(TrackerConfig {
        rotated_grace_ms: 100,
        ..cfg(ReadFrom::Start)
    });
    let v = round(&mut tr, &fs, 0, &only("/l/app.log"));
    assert_eq!(text(&v), [t("one", 0, 4)]);
    let old_sid = v[0].source_id.clone();
    fs.append("/l/app.log", b"two\nthr");
    fs.rename("/l/app.log", "/l/app.log.1");
    fs.create("/l/app.log", b"new 1\n");
    let v = round(&mut tr, &fs, 10, &only("/l/app.log"));
    assert_eq!(text(&v), [t("two", 4, 8), t("new 1", 0, 6)]);
    assert_eq!(v[0].source_id, old_sid, "a rename keeps the identity");
    assert_ne!(v[1].source_id, old_sid);
    // The writer had not reopened yet: its last line lands in the old inode.
    fs.append_ino(1, b"ee\n");
    let v = round(&mut tr, &fs, 50, &only("/l/app.log"));
    assert_eq!(text(&v), [t("three", 8, 14)]);
    tr.commit_polled();
    // Within the grace period the old file stays open.
    assert!(tr.is_tracked(DEV, 1));
    assert!(round(&mut tr, &fs, 200, &only("/l/app.log")).is_empty());
    assert!(!tr.is_tracked(DEV, 1), "drained, committed, let go");
    // Only the new file's identity is followed now (the shell forgets the old one's
    // source with it).
    let followed: Vec<&str> = tr.source_ids().collect();
    assert_eq!(followed.len(), 1);
    assert_ne!(followed[0], &*old_sid);
    let n = notices(&mut tr);
    assert!(
        n.contains(&Notice::Closed {
            key: FileKey {
                dev: DEV,
                ino: 1,
                generation: 1
            },
            path: "/l/app.log".into(),
            offset: 14
        }),
        "{n:?}"
    );
}

#[test]
fn a_gone_file_is_not_closed_before_its_lines_are_committed_and_its_tail_is_flushed() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"x\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    round(&mut tr, &fs, 0, &all);
    fs.append("/l/a.log", b"partial");
    fs.unlink("/l/a.log");
    let v = round(&mut tr, &fs, 1, &all);
    // Deleted and idle: the unterminated last line is emitted as is.
    assert_eq!(text(&v), [t("partial", 2, 9)]);
    assert!(round(&mut tr, &fs, 2, &all).is_empty());
    assert!(tr.is_tracked(DEV, 1), "lines not committed yet");
    tr.commit(v[0].key, 5);
    assert!(tr.is_tracked(DEV, 1), "only part committed");
    tr.commit(v[0].key, 9);
    assert!(!tr.is_tracked(DEV, 1));
    let closes: Vec<_> = std::iter::from_fn(|| tr.poll_action()).collect();
    assert_eq!(closes, [Action::Close { key: v[0].key }]);
}

#[test]
fn rename_within_the_patterns_keeps_reading_the_same_file() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"1\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    round(&mut tr, &fs, 0, &all);
    fs.append("/l/a.log", b"2\n");
    fs.rename("/l/a.log", "/l/a.log.1");
    let v = round(&mut tr, &fs, 1, &all);
    assert_eq!(text(&v), [t("2", 2, 4)]);
    let n = notices(&mut tr);
    assert!(
        n.iter()
            .any(|n| matches!(n, Notice::Renamed { to, .. } if to == Path::new("/l/a.log.1")))
    );
    assert_eq!(tr.checkpoints()[0].path, "/l/a.log.1");
}

#[test]
fn copytruncate_restarts_at_zero_as_new_content() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"aaa\nbbb\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    let v1 = round(&mut tr, &fs, 0, &all);
    assert_eq!(text(&v1), [t("aaa", 0, 4), t("bbb", 4, 8)]);
    // Copy away (outside the patterns), truncate in place, the writer goes on.
    fs.create("/l/a.log.1", b"aaa\nbbb\n");
    fs.truncate("/l/a.log");
    fs.append("/l/a.log", b"ccc\n");
    let v2 = round(&mut tr, &fs, 1, &only("/l/a.log"));
    assert_eq!(text(&v2), [t("ccc", 0, 4)]);
    assert_ne!(
        v1[0].source_id, v2[0].source_id,
        "offset 0 again: uids must differ"
    );
    assert_ne!(v1[0].key, v2[0].key);
    assert!(
        notices(&mut tr)
            .iter()
            .any(|n| matches!(n, Notice::Truncated { read_to: 8, .. }))
    );
    // A late commit of the old content does not move the new one.
    tr.commit(v1[1].key, 8);
    assert_eq!(tr.checkpoints()[0].offset, 0);
}

/// logrotate's `copytruncate` with the copy inside the patterns (`app.log*`): the copy is
/// made and the original truncated between two scans. The copy starts as the original did,
/// so it is read only from where the original had been read to: the line the original had
/// not been read to yet is read once, from the copy; nothing is read twice.
#[test]
fn copytruncate_with_the_copy_matched_reads_only_the_unread_tail_of_the_copy() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"aaa\nbbb\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    let v1 = round(&mut tr, &fs, 0, &all);
    assert_eq!(text(&v1), [t("aaa", 0, 4), t("bbb", 4, 8)]);
    fs.append("/l/a.log", b"ccc\n");
    fs.create("/l/a.log.1", b"aaa\nbbb\nccc\n");
    fs.truncate("/l/a.log");
    fs.append("/l/a.log", b"ddd\n");
    let v2 = round(&mut tr, &fs, 1, &all);
    assert_eq!(text(&v2), [t("ddd", 0, 4), t("ccc", 8, 12)]);
    assert!(
        notices(&mut tr).iter().any(|n| matches!(n,
            Notice::Copy { path, of, offset: 8, .. } if path == Path::new("/l/a.log.1") && of == Path::new("/l/a.log"))),
    );
    // The copy goes on as a file of its own (nothing is written to it in practice).
    fs.append("/l/a.log.1", b"eee\n");
    assert_eq!(text(&round(&mut tr, &fs, 2, &all)), [t("eee", 12, 16)]);
}

/// The copy seen while it is being made, before the truncation (a large file's copy takes
/// a while): it is held, unread, while the original is still read; when the original is
/// truncated, the copy gives only what the original had not been read to.
#[test]
fn a_copy_seen_before_the_truncation_is_held_until_it() {
    let mut fs = Fs::default();
    // Longer than the fingerprint (16 bytes here): a full-length head to recognise.
    fs.create("/l/a.log", b"line-1\nline-2\nline-3\n");
    let mut tr = Tracker::new(TrackerConfig {
        copy_hold_ms: 1_000,
        ..cfg(ReadFrom::Start)
    });
    assert_eq!(round(&mut tr, &fs, 0, &all).len(), 3);
    fs.create("/l/a.log.1", b"line-1\nline-2\nline-3\n");
    assert!(round(&mut tr, &fs, 10, &all).is_empty(), "the copy is held");
    assert!(
        notices(&mut tr)
            .iter()
            .any(|n| matches!(n, Notice::CopyHeld { path, .. } if path == Path::new("/l/a.log.1")))
    );
    assert!(
        tr.checkpoints().iter().all(|c| c.path != "/l/a.log.1"),
        "a held copy is not checkpointed"
    );
    // The writer adds a line; the copy finishes with it; then the truncation.
    fs.append("/l/a.log", b"line-4\n");
    fs.append("/l/a.log.1", b"line-4\n");
    fs.truncate("/l/a.log");
    fs.append("/l/a.log", b"new-1\n");
    let v = round(&mut tr, &fs, 20, &all);
    assert_eq!(text(&v), [t("new-1", 0, 6), t("line-4", 21, 28)]);
}

/// logrotate's copy is usually seen unfinished (a large file takes a while to copy), and
/// the original sorts before its copy (`a.log` < `a.log.1`): the truncation is handled in
/// the scan that also sees the copy finished, and the copy is read from what the original
/// was read to, not from the size it had when first seen. From that size, the lines in
/// between came again under the copy's own uids, the first one cut in the middle.
#[test]
fn a_copy_first_seen_unfinished_is_read_from_the_originals_offset_not_its_old_size() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"line-1\nline-2\nline-3\n");
    let mut tr = Tracker::new(TrackerConfig {
        copy_hold_ms: 1_000,
        ..cfg(ReadFrom::Start)
    });
    assert_eq!(round(&mut tr, &fs, 0, &all).len(), 3);
    // 18 of the 21 bytes copied so far: past the 16-byte head, so it is recognised.
    fs.create("/l/a.log.1", b"line-1\nline-2\nline");
    assert!(round(&mut tr, &fs, 10, &all).is_empty(), "the copy is held");
    fs.append("/l/a.log", b"line-4\n");
    fs.append("/l/a.log.1", b"-3\nline-4\n");
    fs.truncate("/l/a.log");
    fs.append("/l/a.log", b"new-1\n");
    let v = round(&mut tr, &fs, 20, &all);
    assert_eq!(text(&v), [t("new-1", 0, 6), t("line-4", 21, 28)]);
}

/// A new file that starts as a tracked one but whose original is never truncated (a
/// backup made with `cp`, or two files that really share their first bytes): after
/// `copy_hold_ms` it is read whole, as any new file. Held, never lost.
#[test]
fn a_held_copy_whose_original_is_not_truncated_is_read_whole_in_the_end() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"line-1\nline-2\nline-3\n");
    let mut tr = Tracker::new(TrackerConfig {
        copy_hold_ms: 100,
        ..cfg(ReadFrom::Start)
    });
    round(&mut tr, &fs, 0, &all);
    fs.create("/l/a.bak", b"line-1\nline-2\nline-3\nmine\n");
    assert!(round(&mut tr, &fs, 10, &all).is_empty());
    assert!(round(&mut tr, &fs, 50, &all).is_empty());
    let v = round(&mut tr, &fs, 110, &all);
    assert_eq!(
        text(&v),
        [
            t("line-1", 0, 7),
            t("line-2", 7, 14),
            t("line-3", 14, 21),
            t("mine", 21, 26)
        ]
    );
}

/// copytruncate while the agent was stopped: the checkpoint names content that is gone
/// from its inode. The copy starts as that content did, so it is read from the checkpoint:
/// the lines written before the truncation that the agent had not read, and no others.
#[test]
fn copytruncate_while_stopped_reads_the_copy_from_the_checkpoint() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"l1\nl2\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    round(&mut tr, &fs, 0, &all);
    tr.commit_polled();
    fs.append("/l/a.log", b"l3\n");
    fs.create("/l/a.log.1", b"l1\nl2\nl3\n");
    fs.truncate("/l/a.log");
    fs.append("/l/a.log", b"n1\n");
    let mut tr2 = restart(&tr, cfg(ReadFrom::Start));
    let v = round(&mut tr2, &fs, 1, &all);
    assert_eq!(text(&v), [t("n1", 0, 3), t("l3", 6, 9)]);
}

#[test]
fn truncation_to_empty_waits_for_new_bytes() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"aaa\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    round(&mut tr, &fs, 0, &all);
    fs.truncate("/l/a.log");
    assert!(round(&mut tr, &fs, 1, &all).is_empty());
    assert!(!tr.is_tracked(DEV, 1));
    fs.append("/l/a.log", b"bbb\n");
    assert_eq!(text(&round(&mut tr, &fs, 2, &all)), [t("bbb", 0, 4)]);
}

/// Emptied, then written again with the same first line: the new content is a new
/// identity chained to the old one, so its lines do not take the old lines' uids (which a
/// store drops as already stored).
#[test]
fn content_written_again_after_an_emptying_truncation_is_a_new_identity() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"banner\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    let before = round(&mut tr, &fs, 0, &all);
    fs.truncate("/l/a.log");
    assert!(round(&mut tr, &fs, 1, &all).is_empty());
    fs.append("/l/a.log", b"banner\n");
    let after = round(&mut tr, &fs, 2, &all);
    assert_eq!(text(&after), [t("banner", 0, 7)]);
    assert_ne!(after[0].source_id, before[0].source_id);
}

#[test]
fn same_size_rewrite_is_caught_by_the_fingerprint() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"aaa\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    round(&mut tr, &fs, 0, &all);
    fs.truncate("/l/a.log");
    fs.append("/l/a.log", b"xyz\nmore\n");
    assert_eq!(
        text(&round(&mut tr, &fs, 1, &all)),
        [t("xyz", 0, 4), t("more", 4, 9)]
    );
}

#[test]
fn long_lines_are_cut_and_flagged_crlf_is_stripped() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"0123456789abcdefghij\r\nok\r\n");
    let mut tr = Tracker::new(TrackerConfig {
        max_line_bytes: 8,
        ..cfg(ReadFrom::Start)
    });
    let v = round(&mut tr, &fs, 0, &all);
    assert_eq!(text(&v), [t("01234567", 0, 22), t("ok", 22, 26)]);
    assert!(v[0].truncated && !v[1].truncated);
    assert_eq!(tr.stats().truncated_lines, 1);
}

/// Encodes and decodes, as a save and a restart would.
fn restart(old: &Tracker, cfg: TrackerConfig) -> Tracker {
    let saved = checkpoint::decode(&checkpoint::encode(&old.checkpoints())).expect("decodes");
    let mut tr = Tracker::new(cfg);
    tr.restore(saved);
    tr
}

#[test]
fn restart_resumes_at_the_commit_repeating_only_uncommitted_lines() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"l1\nl2\nl3\n");
    let mut tr = Tracker::new(cfg(ReadFrom::End));
    round(&mut tr, &fs, 0, &all);
    fs.append("/l/a.log", b"l4\nl5\n");
    let v = round(&mut tr, &fs, 1, &all);
    assert_eq!(text(&v), [t("l4", 9, 12), t("l5", 12, 15)]);
    tr.commit(v[0].key, v[0].end);
    // kill -9 now: l5 was emitted but never committed. Lines are written while stopped.
    fs.append("/l/a.log", b"l6\n");
    let mut tr2 = restart(&tr, cfg(ReadFrom::End));
    let v2 = round(&mut tr2, &fs, 2, &all);
    assert_eq!(text(&v2), [t("l5", 12, 15), t("l6", 15, 18)]);
    assert_eq!(
        v2[0].source_id, v[1].source_id,
        "same uid for the repeated line"
    );
    assert!(matches!(
        notices(&mut tr2)[..],
        [Notice::Resumed { offset: 12, .. }]
    ));
}

#[test]
fn restart_after_rotation_while_stopped_drains_the_rotated_file_and_reads_the_new_one() {
    let mut fs = Fs::default();
    fs.create("/l/auth.log", b"a1\n");
    let mut tr = Tracker::new(cfg(ReadFrom::End));
    let starts_auth = |p: &Path| p.to_string_lossy().starts_with("/l/auth.log");
    round(&mut tr, &fs, 0, &starts_auth);
    fs.append("/l/auth.log", b"a2\n");
    let v = round(&mut tr, &fs, 1, &starts_auth);
    assert_eq!(text(&v), [t("a2", 3, 6)]);
    tr.commit_polled();
    // Stopped: more lines, rotation, lines in the new file.
    fs.append("/l/auth.log", b"a3\n");
    fs.rename("/l/auth.log", "/l/auth.log.1");
    fs.create("/l/auth.log", b"b1\n");
    fs.create("/l/other.log", b"never checkpointed\n");
    let mut tr2 = restart(&tr, cfg(ReadFrom::End));
    let v2 = round(&mut tr2, &fs, 2, &starts_auth);
    // Not the first run: a file without checkpoint appeared while stopped, read whole.
    assert_eq!(text(&v2), [t("a3", 6, 9), t("b1", 0, 3)]);
    assert_eq!(v2[0].source_id, v[0].source_id);
}

#[test]
fn a_checkpoint_whose_file_is_gone_is_dropped_with_a_notice() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"a\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    round(&mut tr, &fs, 0, &all);
    tr.commit_polled();
    fs.unlink("/l/a.log");
    let mut tr2 = restart(&tr, cfg(ReadFrom::Start));
    assert_eq!(tr2.checkpoints().len(), 1, "kept until a scan has looked");
    assert!(round(&mut tr2, &fs, 1, &all).is_empty());
    assert_eq!(
        notices(&mut tr2),
        [Notice::CheckpointDropped {
            path: "/l/a.log".into(),
            reason: DropReason::FileGone
        }]
    );
    assert!(tr2.checkpoints().is_empty());
}

#[test]
fn inode_reuse_while_stopped_is_a_new_file() {
    let mut fs = Fs::default();
    fs.create("/l/a.log", b"old content 1\nold content 2\n");
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    let v = round(&mut tr, &fs, 0, &all);
    tr.commit_polled();
    // Deleted while stopped; a new file gets the same inode, longer than the old offset.
    fs.unlink("/l/a.log");
    fs.create_with_ino("/l/b.log", 1, b"new content, inode reused\nnext\n");
    let mut tr2 = restart(&tr, cfg(ReadFrom::Start));
    let v2 = round(&mut tr2, &fs, 1, &all);
    assert_eq!(
        text(&v2),
        [t("new content, inode reused", 0, 26), t("next", 26, 31)]
    );
    assert_ne!(v2[0].source_id, v[0].source_id);
    assert!(notices(&mut tr2).contains(&Notice::CheckpointDropped {
        path: "/l/a.log".into(),
        reason: DropReason::ContentChanged
    }));
}

#[test]
fn stale_reads_are_refused() {
    let mut tr = Tracker::new(cfg(ReadFrom::Start));
    tr.handle_scan(
        0,
        vec![FileObservation {
            path: "/l/a.log".into(),
            dev: DEV,
            ino: 1,
            size: 4,
            head: Fingerprint::of(b"abc\n"),
            head_bytes: b"abc\n".to_vec(),
        }],
    );
    let Some(Action::Read { key, .. }) = tr.poll_action() else {
        panic!("a read")
    };
    assert_eq!(
        tr.handle_read(key, 3, b"x"),
        Err(StaleRead {
            key,
            offset: 3,
            expected: Some(0)
        })
    );
    assert!(tr.handle_read(key, 0, b"abc\n").is_ok());
    assert!(tr.handle_read(key, 4, b"").is_err(), "not asked for");
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8, bool),
    Rotate,
    /// logrotate's `copytruncate`, the copy inside the patterns.
    CopyTruncate,
    /// Its two steps apart, with rounds between them (a large file's copy takes a while).
    Copy,
    Truncate,
    Round,
    Restart {
        commit_first: bool,
    },
}

fn arb_op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (1u8..12, any::<bool>()).prop_map(|(n, lf)| Op::Append(n, lf)),
        1 => Just(Op::Rotate),
        1 => Just(Op::CopyTruncate),
        1 => Just(Op::Copy),
        1 => Just(Op::Truncate),
        3 => Just(Op::Round),
        1 => any::<bool>().prop_map(|commit_first| Op::Restart { commit_first }),
    ]
}

proptest::proptest! {
    /// Appends, rotations, copytruncates, rounds and restarts in any order: every line
    /// written is delivered with its bytes and offsets, never twice by one tracker, and
    /// again after a restart only if it was not committed; a repeated line has the same
    /// source_id. A line of a copy counts as delivered when the original's content it was
    /// copied from delivered it at the same offset. (A copy whose head the fingerprint does
    /// not vouch for is read whole: a repeat, never a loss; the unit tests above show the
    /// copies that are recognised.)
    #[test]
    fn no_loss_and_only_uncommitted_repeats(ops in proptest::collection::vec(arb_op(), 1..40)) {
        let mut fs = Fs::default();
        fs.create("/l/app.log", b"");
        // A held copy waits 2-3 rounds for its truncation.
        let model_cfg = || TrackerConfig { copy_hold_ms: 25, ..cfg(ReadFrom::Start) };
        let mut tr = Tracker::new(model_cfg());
        let (mut rotations, mut copies) = (0, 0);
        let mut now = 0;
        // Content epochs: an inode's content starts over at each truncation.
        let mut epoch: HashMap<u64, u64> = HashMap::new();
        // A copy's inode -> the (inode, epoch) content it was copied from.
        let mut copy_of: HashMap<u64, (u64, u64)> = HashMap::new();
        type Pos = (u64, u64, u64);
        let mut seen: HashMap<Pos, (Arc<str>, Vec<u8>)> = HashMap::new();
        let mut this_life: std::collections::HashSet<Pos> = std::collections::HashSet::new();
        // Committed offsets by content identity (the checkpoint's source_id).
        let mut committed: HashMap<String, u64> = HashMap::new();
        type Life = std::collections::HashSet<Pos>;
        let mut check = |tr: &mut Tracker, fs: &Fs, now: i64, this_life: &mut Life, committed: &HashMap<String, u64>, epoch: &HashMap<u64, u64>| {
            for l in round(tr, fs, now, &all) {
                let e = epoch.get(&l.key.ino).copied().unwrap_or(0);
                let id = (l.key.ino, e, l.start);
                proptest::prop_assert!(this_life.insert(id), "repeated by one tracker: {id:?}");
                let c = committed.get(&*l.source_id).copied().unwrap_or(0);
                if let Some((sid, bytes)) = seen.get(&id) {
                    proptest::prop_assert!(l.start >= c, "committed line repeated: {id:?}");
                    proptest::prop_assert_eq!(sid, &l.source_id);
                    proptest::prop_assert_eq!(bytes, &l.bytes);
                }
                let raw = &fs.inodes[&l.key.ino][l.start as usize..l.end as usize];
                proptest::prop_assert_eq!(raw.strip_suffix(b"\n").unwrap_or(raw), &l.bytes[..]);
                seen.insert(id, (l.source_id.clone(), l.bytes.clone()));
            }
            Ok(())
        };
        for op in ops {
            now += 10;
            match op {
                Op::Append(n, lf) => {
                    // Unique bytes, as timestamps make log lines: a file truncated and
                    // rewritten with the very bytes it had is the same file to any
                    // fingerprint, and no log does that.
                    let mut b = format!("{now:05}").into_bytes();
                    b.extend(std::iter::repeat_n(b'a' + n, usize::from(n)));
                    if lf {
                        b.push(b'\n');
                    }
                    fs.append("/l/app.log", &b);
                }
                Op::Rotate => {
                    rotations += 1;
                    fs.rename("/l/app.log", &format!("/l/app.log.{rotations}"));
                    fs.create("/l/app.log", b"");
                }
                Op::CopyTruncate | Op::Copy | Op::Truncate => {
                    let ino = fs.paths[Path::new("/l/app.log")];
                    if !matches!(op, Op::Truncate) {
                        copies += 1;
                        let bytes = fs.inodes[&ino].clone();
                        let copy = fs.create(&format!("/l/app.log.c{copies}"), &bytes);
                        copy_of.insert(copy, (ino, epoch.get(&ino).copied().unwrap_or(0)));
                    }
                    if !matches!(op, Op::Copy) {
                        *epoch.entry(ino).or_insert(0) += 1;
                        fs.truncate("/l/app.log");
                    }
                }
                Op::Round => check(&mut tr, &fs, now, &mut this_life, &committed, &epoch)?,
                Op::Restart { commit_first } => {
                    if commit_first {
                        tr.commit_polled();
                        for c in tr.checkpoints() {
                            committed.insert(c.source_id, c.offset);
                        }
                    }
                    tr = restart(&tr, model_cfg());
                    this_life.clear();
                }
            }
        }
        check(&mut tr, &fs, now + 10, &mut this_life, &committed, &epoch)?;
        // Past `copy_hold_ms`: a copy still held is read.
        check(&mut tr, &fs, now + 100, &mut this_life, &committed, &epoch)?;
        // Every complete line of every file's present content was delivered: from the file,
        // or, for a copy, from the content it was copied from.
        for (&ino, bytes) in &fs.inodes {
            let e = epoch.get(&ino).copied().unwrap_or(0);
            let mut at = 0;
            for line in bytes.split_inclusive(|&b| b == b'\n').filter(|l| l.ends_with(b"\n")) {
                let from_copied = copy_of
                    .get(&ino)
                    .is_some_and(|&(o, oe)| seen.contains_key(&(o, oe, at)));
                proptest::prop_assert!(
                    seen.contains_key(&(ino, e, at)) || from_copied,
                    "lost line at {ino}:{at}"
                );
                at += line.len() as u64;
            }
        }
    }
}
