//! The tailer on real files: rotation, truncation, late and tiny files, restarts from the
//! checkpoint file, over-long lines. No sleeping: each test advances its own clock and
//! calls `poll` again.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use vedette_agent::core::tail::{FileKey, Notice, ReadFrom};
use vedette_agent::io::tail::{TailConfig, Tailer};

/// A fresh directory under the system temp dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vedette-tail-{}-{name}", std::process::id()));
        if p.exists() {
            fs::remove_dir_all(&p).expect("clean old dir");
        }
        fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn pattern(&self, pat: &str) -> String {
        self.path(pat).to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("leaving {}: {e}", self.0.display());
        }
    }
}

fn append(p: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .and_then(|mut f| f.write_all(bytes))
        .expect("append");
}

/// Truncates `p` to nothing in place.
fn truncate(p: &Path) {
    OpenOptions::new()
        .write(true)
        .open(p)
        .and_then(|f| f.set_len(0))
        .expect("truncate");
}

/// logrotate's `copytruncate`: `log` copied to `copy`, then truncated in place.
fn copytruncate(log: &Path, copy: &Path) {
    fs::copy(log, copy).expect("copy");
    truncate(log);
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    key: FileKey,
    text: String,
    start: u64,
    end: u64,
    truncated: bool,
    source_id: String,
}

fn poll(t: &mut Tailer, now: i64) -> Vec<Got> {
    let mut v = Vec::new();
    t.poll(now, &mut |l| {
        v.push(Got {
            key: l.key,
            text: String::from_utf8_lossy(l.bytes).into_owned(),
            start: l.start,
            end: l.end,
            truncated: l.truncated,
            source_id: l.source_id.to_owned(),
        });
    })
    .expect("poll");
    v
}

fn texts(v: &[Got]) -> Vec<(&str, u64)> {
    v.iter().map(|g| (g.text.as_str(), g.start)).collect()
}

fn config(d: &Dir, pattern: &str, read_from: ReadFrom) -> TailConfig {
    TailConfig {
        read_from,
        rotated_grace_ms: 1_000,
        checkpoint_path: Some(d.path("checkpoints")),
        // These tests read everything there is in one poll.
        max_bytes_per_poll: u64::MAX,
        ..TailConfig::new(vec![d.pattern(pattern)])
    }
}

#[test]
fn rename_rotation_drains_unread_bytes_left_in_the_old_file() {
    let d = Dir::new("rename");
    let log = d.path("app.log");
    append(&log, b"one\n");
    let mut t = Tailer::new(config(&d, "app.log", ReadFrom::Start)).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 0)), [("one", 0)]);
    append(&log, b"two\nthree\n");
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    append(&log, b"new one\n");
    let v = poll(&mut t, 10);
    assert_eq!(texts(&v), [("two", 4), ("three", 8), ("new one", 0)]);
    assert_ne!(v[1].source_id, v[2].source_id);
    // A writer that has not reopened yet still reaches the old inode.
    append(&d.path("app.log.1"), b"late\n");
    assert_eq!(texts(&poll(&mut t, 20)), [("late", 14)]);
    t.commit_all_emitted();
    assert_eq!(t.open_paths().count(), 2, "grace period not over");
    assert!(poll(&mut t, 2_000).is_empty());
    assert_eq!(t.open_paths().count(), 1, "drained and let go");
}

#[test]
fn copytruncate_and_truncation_restart_at_zero() {
    let d = Dir::new("copytruncate");
    let log = d.path("app.log");
    append(&log, b"aaa\nbbb\n");
    let mut t = Tailer::new(config(&d, "app.log", ReadFrom::Start)).expect("tailer");
    let v1 = poll(&mut t, 0);
    assert_eq!(texts(&v1), [("aaa", 0), ("bbb", 4)]);
    copytruncate(&log, &d.path("app.log.1"));
    append(&log, b"ccc\n");
    let v2 = poll(&mut t, 1);
    assert_eq!(texts(&v2), [("ccc", 0)]);
    assert_ne!(v1[0].source_id, v2[0].source_id);
    // Truncated again, then rewritten longer than before with other content.
    fs::write(&log, b"a much longer first line\nx\n").expect("rewrite");
    assert_eq!(
        texts(&poll(&mut t, 2)),
        [("a much longer first line", 0), ("x", 25)]
    );
}

#[test]
fn files_created_after_start_are_read_whole_old_content_is_skipped() {
    let d = Dir::new("late");
    append(&d.path("old.log"), b"history\n");
    let mut t = Tailer::new(config(&d, "*.log", ReadFrom::End)).expect("tailer");
    assert!(poll(&mut t, 0).is_empty());
    append(&d.path("new.log"), b"first\n");
    append(&d.path("old.log"), b"fresh\n");
    let v = poll(&mut t, 1);
    let mut got = texts(&v);
    got.sort_unstable();
    assert_eq!(got, [("first", 0), ("fresh", 8)]);
}

#[test]
fn a_ten_byte_file_and_a_one_byte_file_that_grows() {
    let d = Dir::new("small");
    append(&d.path("ten.log"), b"123456789\n");
    let mut t = Tailer::new(config(&d, "*.log", ReadFrom::Start)).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 0)), [("123456789", 0)]);
    append(&d.path("one.log"), b"a");
    assert!(poll(&mut t, 1).is_empty());
    append(&d.path("one.log"), b"b\n");
    let v = poll(&mut t, 2);
    assert_eq!(texts(&v), [("ab", 0)]);
    let big = vec![b'x'; 3000];
    append(&d.path("one.log"), &big);
    append(&d.path("one.log"), b"\n");
    let v2 = poll(&mut t, 3);
    assert_eq!(v2.len(), 1);
    assert_eq!((v2[0].start, v2[0].end), (3, 3004));
    assert_eq!(v2[0].source_id, v[0].source_id, "growing is not a new file");
}

#[test]
fn lines_appended_while_stopped_are_read_after_restart() {
    let d = Dir::new("restart");
    let log = d.path("a.log");
    append(&log, b"l1\n");
    let cfg = config(&d, "a.log", ReadFrom::End);
    {
        let mut t = Tailer::new(cfg.clone()).expect("tailer");
        assert!(poll(&mut t, 0).is_empty());
        append(&log, b"l2\n");
        assert_eq!(texts(&poll(&mut t, 1)), [("l2", 3)]);
        t.commit_all_emitted();
        assert!(t.save_checkpoint().expect("save"));
        assert!(!t.save_checkpoint().expect("save"), "nothing changed");
    }
    append(&log, b"l3\nl4\n");
    let mut t = Tailer::new(cfg).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 2)), [("l3", 6), ("l4", 9)]);
}

#[test]
fn restart_without_commit_repeats_the_uncommitted_lines_with_the_same_ids() {
    let d = Dir::new("nocommit");
    let log = d.path("a.log");
    let cfg = config(&d, "a.log", ReadFrom::Start);
    append(&log, b"l1\nl2\nl3\n");
    let first = {
        let mut t = Tailer::new(cfg.clone()).expect("tailer");
        let v = poll(&mut t, 0);
        assert_eq!(texts(&v), [("l1", 0), ("l2", 3), ("l3", 6)]);
        // Only l1 reached the sink before the crash.
        t.commit(v[0].key, v[0].end);
        t.save_checkpoint().expect("save");
        v
    };
    let mut t = Tailer::new(cfg).expect("tailer");
    let again = poll(&mut t, 1);
    assert_eq!(
        again,
        first[1..],
        "l2 and l3 again, same source_id and offsets"
    );
}

#[test]
fn rotation_while_stopped_drains_the_rotated_file_outside_the_pattern() {
    let d = Dir::new("rotstopped");
    let log = d.path("auth.log");
    append(&log, b"a1\n");
    let cfg = config(&d, "auth.log", ReadFrom::Start);
    let sid = {
        let mut t = Tailer::new(cfg.clone()).expect("tailer");
        let v = poll(&mut t, 0);
        t.commit_all_emitted();
        t.save_checkpoint().expect("save");
        v[0].source_id.clone()
    };
    append(&log, b"a2\n");
    fs::rename(&log, d.path("auth.log.1")).expect("rename");
    append(&log, b"b1\n");
    let mut t = Tailer::new(cfg).expect("tailer");
    let mut v = poll(&mut t, 10);
    // Both files are found by the same first scan; only order within a file is defined.
    v.sort_by(|a, b| a.text.cmp(&b.text));
    assert_eq!(texts(&v), [("a2", 3), ("b1", 0)]);
    assert_eq!(v[0].source_id, sid);
    // Outside the pattern, it is let go once drained and committed.
    t.commit_all_emitted();
    assert!(poll(&mut t, 20).is_empty());
    assert_eq!(t.open_paths().count(), 2, "grace period not over");
    assert!(poll(&mut t, 2_000).is_empty());
    assert_eq!(t.open_paths().count(), 1);
}

#[test]
fn a_one_mib_line_is_cut_at_64_kib_and_the_next_line_is_intact() {
    let d = Dir::new("longline");
    let log = d.path("a.log");
    let mut big = vec![b'y'; 1 << 20];
    big.push(b'\n');
    append(&log, &big);
    append(&log, b"next\n");
    let mut t = Tailer::new(TailConfig {
        max_line_bytes: 64 * 1024,
        ..config(&d, "a.log", ReadFrom::Start)
    })
    .expect("tailer");
    let v = poll(&mut t, 0);
    assert_eq!(v.len(), 2);
    assert!(v[0].truncated);
    assert_eq!(v[0].text.len(), 64 * 1024);
    assert_eq!((v[0].start, v[0].end), (0, (1 << 20) + 1));
    assert_eq!(texts(&v[1..]), [("next", (1 << 20) + 1)]);
    assert!(!v[1].truncated);
}

#[test]
fn a_corrupt_checkpoint_file_is_refused_with_its_line() {
    let d = Dir::new("corrupt");
    fs::write(d.path("checkpoints"), "vedette-tail-checkpoints 1\n{oops\n").expect("write");
    let err = Tailer::new(config(&d, "a.log", ReadFrom::Start)).expect_err("refused");
    assert!(err.to_string().contains("line 2"), "{err}");
}

/// Whether this process holds `p` open (what `/proc/PID/fd` shows a watcher, and what the
/// perf harness checks before it starts writing).
fn held_open(p: &Path) -> bool {
    let want = fs::canonicalize(p).expect("canonical path");
    fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .any(|e| fs::read_link(e.path()).is_ok_and(|l| l == want))
}

/// An empty file has no identity to checkpoint yet, but it is watched from the first poll:
/// held open like a tracked one, and let go once it no longer matches.
#[test]
fn an_empty_file_is_held_open_from_the_first_poll_and_read_once_written() {
    let d = Dir::new("empty-held");
    let log = d.path("app.log");
    append(&log, b"");
    let mut t = Tailer::new(config(&d, "app.log", ReadFrom::Start)).expect("tailer");
    assert!(poll(&mut t, 0).is_empty());
    assert!(held_open(&log), "an empty matching file is held open");
    assert!(poll(&mut t, 10).is_empty());
    assert!(held_open(&log), "and stays held between polls");
    append(&log, b"first\n");
    assert_eq!(texts(&poll(&mut t, 20)), [("first", 0)]);
    assert!(held_open(&log));
    let other = d.path("other.txt");
    append(&other, b"");
    fs::rename(&log, &other).expect("rename over");
    let empty = d.path("app.log");
    append(&empty, b"");
    poll(&mut t, 30);
    assert!(held_open(&empty), "the new empty file is held");
}

/// A matching path that cannot be opened (here a dangling link; permissions, as for an
/// agent not in the `adm` group, fail the same way) was skipped in silence every round:
/// it is reported once, with the system's error, and read once it can be.
#[test]
fn a_matching_file_that_cannot_be_opened_is_reported_once_then_read() {
    use vedette_agent::core::tail::Notice;
    let d = Dir::new("unreadable");
    std::os::unix::fs::symlink(d.path("target.txt"), d.path("app.log")).expect("symlink");
    let mut t = Tailer::new(config(&d, "*.log", ReadFrom::Start)).expect("tailer");
    let notices = |t: &mut Tailer| std::iter::from_fn(|| t.poll_notice()).collect::<Vec<_>>();
    assert!(poll(&mut t, 0).is_empty());
    let n = notices(&mut t);
    assert!(
        matches!(&n[..], [Notice::Unreadable { path, error }]
            if *path == d.path("app.log") && error.contains("No such file")),
        "{n:?}"
    );
    assert!(poll(&mut t, 1).is_empty());
    assert!(notices(&mut t).is_empty(), "said once, not every round");
    append(&d.path("target.txt"), b"now there\n");
    assert_eq!(texts(&poll(&mut t, 2)), [("now there", 0)]);
    assert!(
        matches!(&notices(&mut t)[..], [Notice::New { offset: 0, .. }]),
        "read as a new file"
    );
    // Failing again later is news again.
    fs::remove_file(d.path("target.txt")).expect("remove");
    poll(&mut t, 3);
    assert!(
        notices(&mut t)
            .iter()
            .any(|n| matches!(n, Notice::Unreadable { .. })),
        "reported again"
    );
}

/// A named pipe matching the pattern (a program logging to a FIFO in /var/log) was opened
/// like a file: the open waits for a writer, so the tail hung and the regular file beside
/// it was never read. It is now reported once and never opened, so a writer still finds no
/// reader rather than one that goes away.
#[test]
fn a_named_pipe_that_matches_is_reported_and_never_opened() {
    use std::os::unix::fs::OpenOptionsExt;
    use vedette_agent::core::tail::Notice;
    let d = Dir::new("fifo");
    let fifo = d.path("a.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success(), "mkfifo: {made}");
    append(&d.path("b.log"), b"beside the pipe\n");
    let mut t = Tailer::new(config(&d, "*.log", ReadFrom::Start)).expect("tailer");
    // The old code hung in the first poll: fail, not hang, if it comes back.
    let (tx, rx) = std::sync::mpsc::channel();
    let polled = std::thread::spawn(move || {
        let lines = poll(&mut t, 0);
        let notices = std::iter::from_fn(|| t.poll_notice()).collect::<Vec<_>>();
        tx.send((lines, notices)).expect("send");
        t
    });
    let (lines, notices) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the first poll hung on the named pipe");
    let mut t = polled.join().expect("poll thread");
    assert_eq!(texts(&lines), [("beside the pipe", 0)]);
    let pipes: Vec<_> = notices
        .iter()
        .filter(|n| matches!(n, Notice::NotRegular { .. }))
        .collect();
    assert!(
        matches!(&pipes[..], [Notice::NotRegular { path, kind: "named pipe" }] if *path == fifo),
        "{notices:?}"
    );
    assert!(!held_open(&fifo), "the pipe is not held");
    // No reader: a non-blocking writer is refused (ENXIO) instead of writing to us.
    let writer = OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo);
    assert_eq!(
        writer.map(|_| ()).map_err(|e| e.raw_os_error()),
        Err(Some(rustix::io::Errno::NXIO.raw_os_error())),
        "nobody reads the pipe"
    );
    append(&d.path("b.log"), b"more\n");
    assert_eq!(texts(&poll(&mut t, 1)), [("more", 16)]);
    assert!(
        !std::iter::from_fn(|| t.poll_notice()).any(|n| matches!(n, Notice::NotRegular { .. })),
        "said once, not every round"
    );
}

/// A user who can write to a tailed directory could link `app.log` to a file only root
/// may read (`/etc/shadow`), and the agent, reading as root, shipped it to the SOC. A link
/// is followed only when root or the target file's owner made every link of its chain
/// (`symlinks = "owner"`, the default); `any` and `never` are the other rules.
#[test]
fn a_link_to_someone_elses_file_is_not_followed() {
    use std::os::unix::fs::{chown, lchown, symlink};
    use vedette_agent::core::tail::Notice;
    use vedette_agent::core::tail::links::SymlinkRule;
    const USER: u32 = 65534;
    let d = Dir::new("links");
    fs::create_dir(d.path("private")).expect("dir");
    let secret = d.path("private/secret.txt");
    append(&secret, b"root:$y$j9T$secret\n");
    let own = d.path("private/own.txt");
    append(&own, b"the user's own line\n");
    chown(&own, Some(USER), Some(USER)).expect("chown (the tests run as root)");
    let link = |name: &str, to: &Path, owner: u32| {
        let at = d.path(name);
        symlink(to, &at).expect("symlink");
        lchown(&at, Some(owner), Some(owner)).expect("lchown");
    };
    link("stolen.log", &secret, USER);
    link("own.log", &own, USER);
    link("roots.log", &secret, 0);
    // Root's link to the user's link to root's file: the user's link decides.
    link("private/hop", &secret, USER);
    link("chain.log", &d.path("private/hop"), 0);

    let read = |rule: SymlinkRule| {
        let mut cfg = config(&d, "*.log", ReadFrom::Start);
        cfg.symlinks = rule;
        cfg.checkpoint_path = None;
        let mut t = Tailer::new(cfg).expect("tailer");
        let got: Vec<String> = poll(&mut t, 0).into_iter().map(|g| g.text).collect();
        let refused: Vec<PathBuf> = std::iter::from_fn(|| t.poll_notice())
            .filter_map(|n| match n {
                Notice::NotFollowed { path, reason } => {
                    assert!(!reason.is_empty());
                    Some(path)
                }
                _ => None,
            })
            .collect();
        poll(&mut t, 1);
        let again = std::iter::from_fn(|| t.poll_notice())
            .filter(|n| matches!(n, Notice::NotFollowed { .. }))
            .count();
        assert_eq!(again, 0, "said once, not every round");
        (got, refused)
    };
    let secret_line = "root:$y$j9T$secret";
    let (got, mut refused) = read(SymlinkRule::Owner);
    refused.sort();
    assert_eq!(refused, [d.path("chain.log"), d.path("stolen.log")]);
    // roots.log is root's own link: read (the secret once, through it).
    assert_eq!(
        got.iter().filter(|l| *l == secret_line).count(),
        1,
        "{got:?}"
    );
    assert!(got.contains(&"the user's own line".to_owned()), "{got:?}");

    let (got, refused) = read(SymlinkRule::Any);
    assert!(refused.is_empty());
    // Three links to one file: one file, read once.
    assert_eq!(
        got.iter().filter(|l| *l == secret_line).count(),
        1,
        "{got:?}"
    );

    let (got, refused) = read(SymlinkRule::Never);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(refused.len(), 4);
}

/// `/var/log/*` matches `wtmp` and `lastlog` too: binary login records, `lastlog` a sparse
/// file of a gigabyte or more. Read as text they became NUL-padded garbage events (and a
/// gigabyte of zeros read). A file whose head has a NUL byte is now reported once and not
/// tailed; a followed text log that later holds a NUL is still read.
#[test]
fn binary_files_among_the_logs_are_reported_and_not_tailed() {
    use vedette_agent::core::tail::Notice;
    let d = Dir::new("binary");
    let mut wtmp = vec![7u8, 0, 0, 0, 0x39, 0x30, 0, 0];
    wtmp.extend_from_slice(b"pts/0");
    wtmp.resize(384 * 3, 0);
    append(&d.path("wtmp"), &wtmp);
    let lastlog = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(d.path("lastlog"))
        .expect("lastlog");
    lastlog.set_len(1 << 30).expect("a sparse gigabyte");
    append(&d.path("auth.log"), b"text line\n");
    let mut t = Tailer::new(config(&d, "*", ReadFrom::Start)).expect("tailer");
    let mut stats = None;
    let mut got = Vec::new();
    t.poll(0, &mut |l| {
        got.push(String::from_utf8_lossy(l.bytes).into_owned())
    })
    .map(|s| stats = Some(s))
    .expect("poll");
    assert_eq!(got, ["text line"]);
    let stats = stats.expect("stats");
    assert_eq!(stats.binary, 2);
    assert!(
        stats.bytes < 1 << 20,
        "lastlog was not read: {} bytes",
        stats.bytes
    );
    let mut binaries: Vec<PathBuf> = std::iter::from_fn(|| t.poll_notice())
        .filter_map(|n| match n {
            Notice::Binary { path } => Some(path),
            _ => None,
        })
        .collect();
    binaries.sort();
    assert_eq!(binaries, [d.path("lastlog"), d.path("wtmp")]);
    append(&d.path("auth.log"), b"a NUL \0 inside\n");
    assert_eq!(texts(&poll(&mut t, 1)), [("a NUL \u{0} inside", 10)]);
    assert!(
        !std::iter::from_fn(|| t.poll_notice()).any(|n| matches!(n, Notice::Binary { .. })),
        "said once"
    );
}

/// copytruncate on real files with the copy matched (`app.log*`): the copy holds only
/// lines already read, so nothing is read from it, and the new content is read from 0.
#[test]
fn copytruncate_with_the_copy_matched_reads_nothing_twice() {
    use vedette_agent::core::tail::Notice;
    let d = Dir::new("copy-matched");
    let log = d.path("app.log");
    append(&log, b"aaa\nbbb\n");
    let mut t = Tailer::new(config(&d, "app.log*", ReadFrom::Start)).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 0)), [("aaa", 0), ("bbb", 4)]);
    copytruncate(&log, &d.path("app.log.1"));
    append(&log, b"ccc\n");
    assert_eq!(texts(&poll(&mut t, 1)), [("ccc", 0)]);
    let n: Vec<_> = std::iter::from_fn(|| t.poll_notice()).collect();
    assert!(
        n.iter().any(
            |n| matches!(n, Notice::Copy { offset: 8, path, .. } if *path == d.path("app.log.1"))
        ),
        "{n:?}"
    );
}

fn notices(t: &mut Tailer) -> Vec<Notice> {
    std::iter::from_fn(|| t.poll_notice()).collect()
}

fn sorted(mut v: Vec<Got>) -> Vec<Got> {
    v.sort_by(|a, b| a.text.cmp(&b.text));
    v
}

/// Sets `p`'s modification time an hour back: a rotation made long before the test's.
fn age(p: &Path) {
    let written = fs::metadata(p).and_then(|m| m.modified()).expect("mtime");
    let hour_ago = written - std::time::Duration::from_secs(3600);
    OpenOptions::new()
        .write(true)
        .open(p)
        .and_then(|f| f.set_modified(hour_ago))
        .expect("set mtime");
}

/// Files beside the log that are not its unseen rotations: an older rotation (read when it
/// was live), a compressed one, and names that only start as the log's.
fn bystanders(d: &Dir) {
    for name in ["app.log.3", "app.log.bak", "app.logger"] {
        append(&d.path(name), format!("{name} line\n").as_bytes());
    }
    age(&d.path("app.log.3"));
    append(&d.path("app.log.4.gz"), b"\x1f\x8b\x08\x00gzip");
}

/// A first run that reads `a1` from `app.log`, checkpoints it and stops.
fn read_a1_and_stop(cfg: &TailConfig) {
    let mut t = Tailer::new(cfg.clone()).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 0)), [("a1", 0)]);
    t.commit_all_emitted();
    t.save_checkpoint().expect("save");
}

/// A log rotated twice between two looks: `app.log` (read) became `app.log.1` and then
/// `app.log.2`, and the file that was `app.log` in between is `app.log.1` now. Followers
/// that read only what their patterns match (Fluent Bit's, Filebeat's and Vector's file
/// inputs; the `app.log` pattern here) never see that file, so a burst that rotates a
/// size-limited log twice within one scan interval loses it whole.
#[test]
fn two_rotations_between_polls_read_the_middle_file_whole() {
    let d = Dir::new("tworot");
    let log = d.path("app.log");
    bystanders(&d);
    append(&log, b"a1\n");
    let mut t = Tailer::new(config(&d, "app.log", ReadFrom::Start)).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 0)), [("a1", 0)]);
    notices(&mut t);
    append(&log, b"a2\n");
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    append(&log, b"b1\nb2\n");
    fs::rename(d.path("app.log.1"), d.path("app.log.2")).expect("rename");
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    append(&log, b"c1\n");
    let v = sorted(poll(&mut t, 10));
    assert_eq!(
        texts(&v),
        [("a2", 3), ("b1", 0), ("b2", 3), ("c1", 0)],
        "the old file drained, the middle one whole, the new one; nothing else"
    );
    assert!(
        notices(&mut t).contains(&Notice::UnseenRotation {
            path: d.path("app.log.1"),
            of: log.clone(),
        }),
        "the middle file is reported"
    );
    // Let go once drained and committed, as the rotated file is.
    t.commit_all_emitted();
    assert!(poll(&mut t, 20).is_empty());
    assert_eq!(t.open_paths().count(), 3, "grace period not over");
    assert!(poll(&mut t, 2_000).is_empty());
    assert_eq!(t.open_paths().count(), 1);
    // A rotation the tail saw go by (one per look) reads nothing beside it. (The files
    // above were all written within one tick of the file system's clock, which would
    // count as "since": aged, they are the older rotations they stand for.)
    age(&d.path("app.log.1"));
    age(&d.path("app.log.2"));
    fs::rename(d.path("app.log.1"), d.path("app.log.5")).expect("rename");
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    append(&log, b"d1\n");
    assert_eq!(texts(&poll(&mut t, 2_010)), [("d1", 0)]);
    assert!(
        !notices(&mut t)
            .iter()
            .any(|n| matches!(n, Notice::UnseenRotation { .. }))
    );
}

/// The same two rotations while the agent is stopped (a host where the agent was down over
/// two daily rotations): Wazuh's logcollector resumes at the live file and skips what was
/// written meanwhile; here the checkpointed file is drained where it went, and the middle
/// file is read whole.
#[test]
fn two_rotations_while_stopped_read_the_middle_file_whole() {
    let d = Dir::new("tworotstopped");
    let log = d.path("app.log");
    bystanders(&d);
    append(&log, b"a1\n");
    let cfg = config(&d, "app.log", ReadFrom::Start);
    read_a1_and_stop(&cfg);
    append(&log, b"a2\n");
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    append(&log, b"b1\n");
    fs::rename(d.path("app.log.1"), d.path("app.log.2")).expect("rename");
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    append(&log, b"c1\n");
    let mut t = Tailer::new(cfg).expect("tailer");
    assert_eq!(
        texts(&sorted(poll(&mut t, 10))),
        [("a2", 3), ("b1", 0), ("c1", 0)]
    );
}

/// Two rotations while stopped with logrotate's `rotate 1`: the checkpointed file was
/// deleted by the second rotation (its unread lines are gone with it), but the middle file
/// was written after the last checkpoint, so it is read whole.
#[test]
fn a_middle_file_is_read_when_the_checkpointed_file_was_deleted() {
    let d = Dir::new("tworotdeleted");
    let log = d.path("app.log");
    bystanders(&d);
    append(&log, b"a1\n");
    let cfg = config(&d, "app.log", ReadFrom::Start);
    read_a1_and_stop(&cfg);
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    append(&log, b"b1\n");
    fs::remove_file(d.path("app.log.1")).expect("remove");
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    append(&log, b"c1\n");
    let mut t = Tailer::new(cfg).expect("tailer");
    assert_eq!(texts(&sorted(poll(&mut t, 10))), [("b1", 0), ("c1", 0)]);
}

/// logrotate's `copytruncate` while the agent is stopped, the copy outside the pattern: the
/// lines written after the last checkpoint and before the copy are only in the copy (the
/// live file was truncated). The copy is a rotation of the log written since, so it is
/// found, and read from where the log had been read to (no repeats).
#[test]
fn copytruncate_while_stopped_reads_the_copy_outside_the_pattern_from_where_it_stopped() {
    let d = Dir::new("copystopped");
    let log = d.path("app.log");
    bystanders(&d);
    append(&log, b"a1\n");
    let cfg = config(&d, "app.log", ReadFrom::Start);
    read_a1_and_stop(&cfg);
    append(&log, b"a2\n");
    copytruncate(&log, &d.path("app.log.1"));
    append(&log, b"c1\n");
    let mut t = Tailer::new(cfg).expect("tailer");
    assert_eq!(texts(&sorted(poll(&mut t, 10))), [("a2", 3), ("c1", 0)]);
}

/// `copytruncate` between two looks with the copy outside the pattern: the lines written
/// after the last look and before the copy are only in the copy. OpenTelemetry's filelog
/// receiver and Vector lose or repeat exactly these; here the copy, a rotation of the log
/// written since the last look, is read from where the log had been read to.
#[test]
fn copytruncate_between_polls_reads_the_copy_outside_the_pattern_from_where_it_stopped() {
    let d = Dir::new("copyrunning");
    let log = d.path("app.log");
    bystanders(&d);
    append(&log, b"a1\n");
    let mut t = Tailer::new(config(&d, "app.log", ReadFrom::Start)).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 0)), [("a1", 0)]);
    append(&log, b"a2\n");
    copytruncate(&log, &d.path("app.log.1"));
    append(&log, b"c1\n");
    assert_eq!(texts(&sorted(poll(&mut t, 10))), [("a2", 3), ("c1", 0)]);
}

/// Lines committed append their file's record to the checkpoint file rather than rewrite
/// every file's (2,000 followed files made 300 KB of writes per line read); a restart
/// resumes at the last record of each file, and the file is written whole again once the
/// appends reach its size (at least 64 KiB), so it never grows without bound.
#[test]
fn committed_offsets_are_appended_and_a_restart_resumes_at_the_last() {
    let d = Dir::new("ckpt-append");
    for name in ["a.log", "b.log", "c.log"] {
        append(&d.path(name), format!("{name} 0\n").as_bytes());
    }
    let cfg = config(&d, "*.log", ReadFrom::Start);
    let ckpt = d.path("checkpoints");
    let records = || {
        fs::read_to_string(&ckpt)
            .expect("checkpoints")
            .lines()
            .count()
            - 1
    };
    {
        let mut t = Tailer::new(cfg.clone()).expect("tailer");
        assert_eq!(poll(&mut t, 0).len(), 3);
        t.commit_all_emitted();
        assert!(t.save_checkpoint().expect("save"));
        assert_eq!(records(), 3, "the first save is whole");
        for i in 1..=5 {
            append(&d.path("b.log"), format!("b.log {i}\n").as_bytes());
            assert_eq!(poll(&mut t, i).len(), 1);
            t.commit_all_emitted();
            assert!(t.save_checkpoint().expect("save"));
            assert_eq!(records(), 3 + i as usize, "one record appended");
        }
        // Enough appends to pass 64 KiB: written whole again.
        let mut most = 0;
        for i in 6..600 {
            append(&d.path("a.log"), format!("a.log {i}\n").as_bytes());
            poll(&mut t, i);
            t.commit_all_emitted();
            t.save_checkpoint_with(false).expect("save");
            most = most.max(fs::metadata(&ckpt).expect("size").len());
        }
        assert!(records() < 600, "compacted: {} records", records());
        assert!(most <= (64 << 10) + 1024, "{most} bytes");
    }
    let mut t = Tailer::new(cfg).expect("tailer");
    assert!(poll(&mut t, 10).is_empty(), "nothing read again");
    append(&d.path("b.log"), b"b.log new\n");
    assert_eq!(texts(&poll(&mut t, 20)), [("b.log new", 48)]);
}

/// logrotate's `create` leaves the log empty after each rotation: written and rotated
/// again between two looks, that file (held, but not followed: an empty file has no
/// identity) is read as the rotated file it is.
#[test]
fn an_empty_log_written_and_rotated_between_polls_is_read() {
    let d = Dir::new("emptyrot");
    let log = d.path("app.log");
    append(&log, b"a1\n");
    let mut t = Tailer::new(config(&d, "app.log", ReadFrom::Start)).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 0)), [("a1", 0)]);
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    File::create(&log).expect("create");
    assert!(poll(&mut t, 10).is_empty());
    append(&log, b"b1\n");
    fs::rename(d.path("app.log.1"), d.path("app.log.2")).expect("rename");
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    File::create(&log).expect("create");
    assert_eq!(texts(&poll(&mut t, 20)), [("b1", 0)]);
}

/// Another log beside the configured one is no rotation of it (`worker-1` of `worker`):
/// not read when `worker` is replaced.
#[test]
fn a_log_named_like_another_plus_a_number_is_not_a_rotation() {
    let d = Dir::new("notrot");
    let log = d.path("worker");
    append(&log, b"w1\n");
    let mut t = Tailer::new(config(&d, "worker", ReadFrom::Start)).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 0)), [("w1", 0)]);
    append(&d.path("worker-1"), b"other log\n");
    fs::rename(&log, d.path("worker.1")).expect("rename");
    append(&log, b"w2\n");
    assert_eq!(texts(&sorted(poll(&mut t, 10))), [("w2", 0)]);
}

/// A log under 1 KiB read from its end (or resumed after a restart) keeps a short
/// fingerprint: it grows from the looks, so the log's copytruncate copy outside the pattern
/// is told and read from where the log had been read to: not whole again under other
/// uids, and not missed (the lines written between the last look and the copy).
#[test]
fn a_copy_of_a_log_first_seen_short_is_read_from_where_it_stopped() {
    let d = Dir::new("shortcopy");
    let log = d.path("app.log");
    append(&log, b"x1\nx2\n");
    let cfg = config(&d, "app.log", ReadFrom::End);
    let mut t = Tailer::new(cfg.clone()).expect("tailer");
    assert!(poll(&mut t, 0).is_empty());
    append(&log, b"y1\ny2\n");
    assert_eq!(texts(&poll(&mut t, 10)), [("y1", 6), ("y2", 9)]);
    append(&log, b"y3\n");
    copytruncate(&log, &d.path("app.log.1"));
    append(&log, b"z1\n");
    assert_eq!(texts(&sorted(poll(&mut t, 20))), [("y3", 12), ("z1", 0)]);
    // Restarted while the log is short, then it grows past 1 KiB and is copied.
    t.commit_all_emitted();
    t.save_checkpoint().expect("save");
    drop(t);
    fs::remove_file(d.path("app.log.1")).expect("rm copy");
    let mut t = Tailer::new(cfg).expect("tailer");
    assert!(poll(&mut t, 30).is_empty());
    let long: String = (0..60)
        .map(|i| format!("line {i:02} of the long log\n"))
        .collect();
    append(&log, long.as_bytes());
    assert_eq!(poll(&mut t, 40).len(), 60);
    t.commit_all_emitted();
    append(&log, b"last\n");
    copytruncate(&log, &d.path("app.log.1"));
    append(&log, b"next\n");
    assert_eq!(
        texts(&sorted(poll(&mut t, 50))),
        [("last", 3 + long.len() as u64), ("next", 0)]
    );
}

/// An append to the checkpoint file cut short by a crash can end inside a character of a
/// path: the agent still starts, from the records before it (their lines are read again,
/// with the same uids), rather than refusing to read the file.
#[test]
fn a_checkpoint_append_cut_inside_a_character_still_restores() {
    let d = Dir::new("ckpt-torn-utf8");
    let log = d.path("journal-é.log");
    append(&log, b"l1\n");
    let cfg = config(&d, "*.log", ReadFrom::Start);
    {
        let mut t = Tailer::new(cfg.clone()).expect("tailer");
        assert_eq!(poll(&mut t, 0).len(), 1);
        t.commit_all_emitted();
        t.save_checkpoint().expect("save");
        append(&log, b"l2\n");
        assert_eq!(poll(&mut t, 1).len(), 1);
        t.commit_all_emitted();
        t.save_checkpoint().expect("save (appended)");
    }
    let ckpt = d.path("checkpoints");
    let text = fs::read(&ckpt).expect("checkpoint");
    let cut = text.len()
        - 1
        - text
            .iter()
            .rev()
            .skip(1)
            .position(|&b| b == 0xc3)
            .expect("é")
        - 1;
    fs::write(&ckpt, &text[..=cut]).expect("tear inside the é");
    let mut t = Tailer::new(cfg).expect("starts");
    assert_eq!(texts(&poll(&mut t, 10)), [("l2", 3)]);
}

/// A log truncated to empty (no identity to follow until bytes come back) stays held: the
/// round after the truncation dropped it, and written and rotated away in that round, its
/// lines were never read.
#[test]
fn a_log_truncated_to_empty_stays_held_through_its_rotation() {
    let d = Dir::new("emptied-held");
    let log = d.path("app.log");
    append(&log, b"a1\n");
    let mut t = Tailer::new(config(&d, "app.log", ReadFrom::Start)).expect("tailer");
    assert_eq!(texts(&poll(&mut t, 0)), [("a1", 0)]);
    t.commit_all_emitted();
    truncate(&log);
    assert!(poll(&mut t, 10).is_empty());
    append(&log, b"written after emptying\n");
    fs::rename(&log, d.path("app.log.1")).expect("rename");
    File::create(&log).expect("create");
    assert_eq!(texts(&poll(&mut t, 20)), [("written after emptying", 0)]);
}
