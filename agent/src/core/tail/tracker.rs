//! The tail state machine: which files to read, from where, and when to let them go.
//!
//! Call order, once per poll round of the shell:
//!
//! 1. (once, before the first scan) [`Tracker::restore`] with the saved checkpoints;
//! 2. for each file the patterns match, ask [`Tracker::fingerprint_len`], hash that many
//!    head bytes (fewer if the file is shorter) and report everything in one
//!    [`Tracker::handle_scan`];
//! 3. [`Tracker::poll_action`] until `None`: perform each `Read` and answer it with
//!    [`Tracker::handle_read`] (0 bytes means end of file), drop the handle on `Close`;
//!    after each read, [`Tracker::poll_line`] until `None`;
//! 4. once the lines are durably written downstream, [`Tracker::commit`] their ends; save
//!    [`Tracker::checkpoints`] when [`Tracker::is_dirty`].
//!
//! The shell keeps each file open from its first observation until `Close`, keyed by
//! (dev, ino). That is what lets a renamed or deleted file be drained through its handle,
//! and it means an inode cannot be reused while we track it: the kernel frees it only when
//! the last handle closes.
//!
//! # Event identity
//!
//! Each file gets a `source_id` when its content is first seen: `file:` and 16 hex digits
//! of xxh3 over its device, inode, head fingerprint and any identity the same inode had
//! before. A line's event uid is `(source_id, start offset)`. The id is not the path, which
//! rotation changes, and not the inode alone, which is reused after deletion; it is stored
//! in the checkpoint, so rename and restart keep it. Mixing in dev+ino keeps two files that
//! happen to start with the same bytes apart, and chaining the previous identity keeps a
//! truncated file that is rewritten with the same first line apart from its old self: equal
//! uids downstream would be deduplicated, i.e. lost.
//!
//! # Copies (logrotate's `copytruncate`)
//!
//! When the patterns also match the copy (`app.log*`), the copy is a new inode holding the
//! bytes the original had, most of them read already. A new file that starts as a content
//! the tracker read does (the same fingerprint-long head, the fingerprint full length or
//! covering every byte read) is taken for its copy: if that content was truncated (in this
//! scan, within `copy_hold_ms`, or while the agent was stopped: a dropped checkpoint), the
//! copy is read from the last whole line emitted of it ([`Notice::Copy`]); if the original
//! is still live, the copy is held unread until the truncation comes
//! ([`Notice::CopyHeld`]), and read whole if it does not come in time. The failure mode
//! is a repeat, never a loss: a copy not recognised is read whole, as any new file.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use super::checkpoint::Checkpoint;
use super::fingerprint::Fingerprint;
use super::lines::LineAssembler;

/// Where to start files found by the first scan of the agent's first run. Files appearing
/// later, and after a restart every file without a checkpoint, are read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// From their first byte.
    Start,
    /// From their current end: only lines written from now on.
    End,
}

/// Tracker settings.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Where to start files found by the first scan that have no checkpoint.
    pub read_from: ReadFrom,
    /// Longest line kept; longer ones are cut and flagged.
    pub max_line_bytes: usize,
    /// How many head bytes identify a file (shorter files are identified by all of theirs).
    pub fingerprint_bytes: u64,
    /// Bytes asked for per read.
    pub read_chunk: usize,
    /// How long a file that left the patterns (rotated away, deleted) is still read after it
    /// reached its end, for writers that have not reopened their log yet (ms).
    pub rotated_grace_ms: i64,
    /// How long a new file that starts as a tracked one does (a copy in the making, as
    /// logrotate's `copytruncate` makes it) waits for the original to be truncated before
    /// it is read as a file of its own (ms); see [`Notice::Copy`].
    pub copy_hold_ms: i64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            read_from: ReadFrom::End,
            max_line_bytes: 64 * 1024,
            fingerprint_bytes: 1024,
            read_chunk: 64 * 1024,
            rotated_grace_ms: 5_000,
            copy_hold_ms: 30_000,
        }
    }
}

/// A tracked file's content identity. A truncated or replaced file gets a new generation
/// under the same (dev, ino), so commits for lines of its old content are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Which content of this inode.
    pub generation: u64,
}

/// One file a pattern matched, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileObservation {
    /// Path that matched.
    pub path: PathBuf,
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Fingerprint of the first `min(size, fingerprint_len(dev, ino))` bytes; `None` when
    /// the file is empty.
    pub head: Option<Fingerprint>,
    /// Those bytes: a file the tracker does not know yet is compared with the heads of the
    /// files it reads, to recognise a copy of one (see [`Notice::Copy`]).
    pub head_bytes: Vec<u8>,
}

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Read up to `max_len` bytes at `offset` of the file open for `key` and hand them to
    /// [`Tracker::handle_read`].
    Read {
        /// The file.
        key: FileKey,
        /// Where.
        offset: u64,
        /// How much at most.
        max_len: usize,
    },
    /// The file is drained and its lines committed: close its handle.
    Close {
        /// The file.
        key: FileKey,
    },
}

/// A complete line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The file it was read from.
    pub key: FileKey,
    /// Stable identity of the file's content, for the event uid (see the module docs).
    pub source_id: Arc<str>,
    /// Offset of its first byte: the uid position.
    pub start: u64,
    /// Offset after its LF: what to [`Tracker::commit`] once it is written downstream.
    pub end: u64,
    /// The line without LF (and CR).
    pub bytes: Vec<u8>,
    /// Longer than `max_line_bytes` and cut.
    pub truncated: bool,
}

/// Why a checkpoint was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// No matched file has its inode.
    FileGone,
    /// The inode holds other content now (reused, or truncated while we were stopped).
    ContentChanged,
}

/// Things worth a log line; none needs an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A file without checkpoint is tracked from `offset`.
    New {
        /// The file.
        key: FileKey,
        /// Where.
        path: PathBuf,
        /// First byte read.
        offset: u64,
    },
    /// A checkpoint matched: reading resumes at `offset`.
    Resumed {
        /// The file.
        key: FileKey,
        /// Where it is now.
        path: PathBuf,
        /// The committed offset.
        offset: u64,
    },
    /// The file is now seen at another path (rename rotation).
    Renamed {
        /// The file.
        key: FileKey,
        /// Old path.
        from: PathBuf,
        /// New path.
        to: PathBuf,
    },
    /// The file shrank below what was read, or its head changed (copytruncate, truncation,
    /// rewrite): it is read again from 0 as new content.
    Truncated {
        /// The old content.
        old: FileKey,
        /// The new content, `None` while the file is empty.
        new: Option<FileKey>,
        /// Where.
        path: PathBuf,
        /// How far the old content had been read.
        read_to: u64,
    },
    /// A new file is a copy of `of`, which was truncated (logrotate's `copytruncate`; or
    /// both happened while the agent was stopped): its first `offset` bytes were read from
    /// `of` before the truncation, so it is read from there. Reading it whole would repeat
    /// them under other uids, and not reading it would lose what `of` had not been read to.
    Copy {
        /// The copy.
        key: FileKey,
        /// Its path.
        path: PathBuf,
        /// The file it was copied from.
        of: PathBuf,
        /// Where reading starts.
        offset: u64,
    },
    /// A new file starts as `of` does (the same first bytes, fingerprint-long): a copy in
    /// the making. It is not read until `of` is truncated (then it is a [`Notice::Copy`]),
    /// or, if `of` is not truncated within `copy_hold_ms`, read whole as a file of its own.
    CopyHeld {
        /// The copy.
        path: PathBuf,
        /// The file it starts as.
        of: PathBuf,
    },
    /// No pattern matches the file any more: it is drained, then closed.
    Gone {
        /// The file.
        key: FileKey,
        /// Its last path.
        path: PathBuf,
    },
    /// Drained, committed and let go.
    Closed {
        /// The file.
        key: FileKey,
        /// Its last path.
        path: PathBuf,
        /// Its final offset.
        offset: u64,
    },
    /// A matching file is compressed (a rotated archive, `auth.log.2.gz`): its lines were
    /// read while it was live, so it is not tailed. Reported by the shell, which reads the
    /// head, when the file first matches.
    Compressed {
        /// The file.
        path: PathBuf,
        /// The compressor its magic number names (`gzip` …).
        format: &'static str,
    },
    /// A matching file that is not followed yet has a NUL byte in its head (`wtmp`,
    /// `lastlog`, a journal file): binary, not tailed. Reported by the shell when it first
    /// matches (see [`super::binary`]).
    Binary {
        /// The file.
        path: PathBuf,
    },
    /// A matching path is not a regular file (a named pipe, a socket, a device, a
    /// directory): never opened, since opening a pipe blocks the tail, or, once the
    /// reader closes it, breaks the writer's pipe. Reported by the shell when it first
    /// matches.
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is (`named pipe` …).
        kind: &'static str,
    },
    /// A matching path is a symbolic link the input's `symlinks` rule does not follow
    /// (see [`super::links`]). Reported by the shell when it first matches.
    NotFollowed {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A matching file cannot be opened or its head read (permissions, a dangling link):
    /// retried every round. Reported by the shell when it starts failing or its error
    /// changes; once readable it is `New` or `Resumed` as any file.
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        error: String,
    },
    /// A file named as a rotation of `of` (`app.log.1` of `app.log`) that no pattern
    /// matches and that was never followed, written since `of` was last seen live: the
    /// log rotated twice between two looks (or while the agent was stopped), and this is
    /// the file that was live in between. It is read whole, then let go as a rotated file
    /// is. Reported by the shell, which finds it.
    UnseenRotation {
        /// The file.
        path: PathBuf,
        /// The log it is a rotation of.
        of: PathBuf,
    },
    /// A restored checkpoint was not used.
    CheckpointDropped {
        /// The path it names.
        path: String,
        /// Why.
        reason: DropReason,
    },
}

/// A read answered for a file or offset the tracker did not ask for: a shell bug, or a
/// read that was overtaken by a truncation. Its bytes were ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read of {key:?} at {offset} not expected (expected {expected:?})")]
pub struct StaleRead {
    /// The key read.
    pub key: FileKey,
    /// The offset read.
    pub offset: u64,
    /// The offset the tracker wanted for that key, if it still tracks it.
    pub expected: Option<u64>,
}

/// Counters for the shell to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Bytes handed to `handle_read`.
    pub bytes: u64,
    /// Lines emitted.
    pub lines: u64,
    /// Lines cut at `max_line_bytes`.
    pub truncated_lines: u64,
}

#[derive(Debug)]
struct Tracked {
    key: FileKey,
    path: PathBuf,
    source_id: Arc<str>,
    fp: Fingerprint,
    /// Head bytes read contiguously from 0, while shorter than `fingerprint_bytes`: lets a
    /// short fingerprint grow with the file.
    head: Option<Vec<u8>>,
    size: u64,
    lines: LineAssembler,
    /// End of the last line polled.
    polled: u64,
    committed: u64,
    reading: bool,
    gone_since: Option<i64>,
    /// Gone, drained after the grace period, partial line flushed.
    finished: bool,
    /// A copy of another tracked file in the making: not read until that one is truncated.
    held: Option<Held>,
}

/// Why a tracked file is not read yet: it starts as `of` does.
#[derive(Debug, Clone)]
struct Held {
    of: (u64, u64),
    since: i64,
}

/// What a truncated (or, across a restart, replaced) file had been read to: a new file
/// that starts as it did is its copy, read from there.
#[derive(Debug, Clone)]
struct Truncation {
    fp: Fingerprint,
    read_to: u64,
    path: PathBuf,
    at: i64,
}

/// The tail state machine. See the module docs for the call order.
#[derive(Debug)]
pub struct Tracker {
    cfg: TrackerConfig,
    /// Ordered so rounds are deterministic.
    files: BTreeMap<(u64, u64), Tracked>,
    restored: BTreeMap<(u64, u64), Checkpoint>,
    /// Recent truncations, for recognising copies (kept `copy_hold_ms`).
    truncations: Vec<Truncation>,
    /// Files truncated to nothing (no head, so not followed until bytes come back): the
    /// identity their next content chains to, so that lines written again at the same
    /// offsets do not take the uids of the old ones.
    emptied: BTreeMap<(u64, u64), Arc<str>>,
    /// The files tracked before the new files of the current scan.
    known: std::collections::BTreeSet<(u64, u64)>,
    actions: VecDeque<Action>,
    lines: VecDeque<Line>,
    notices: VecDeque<Notice>,
    scans: u64,
    /// Checkpoints were restored: this is not the first run, so files unknown to the first
    /// scan appeared while we were stopped and are read whole, whatever `read_from` says.
    resumed: bool,
    next_generation: u64,
    now_ms: i64,
    dirty: bool,
    /// Files whose checkpoint only moved on (committed offset, a grown fingerprint) since
    /// the last save: their records can be appended; `dirty` (files added, replaced or
    /// let go) needs the whole set written.
    moved: std::collections::BTreeSet<(u64, u64)>,
    stats: TrackerStats,
}

fn source_id(dev: u64, ino: u64, fp: Fingerprint, before: Option<&str>) -> Arc<str> {
    let mut h = Xxh3::new();
    for n in [dev, ino, fp.hash, fp.len] {
        h.update(&n.to_le_bytes());
    }
    if let Some(b) = before {
        h.update(b.as_bytes());
    }
    format!("file:{:016x}", h.digest()).into()
}

/// Whether a file whose first bytes are `head` starts with the bytes `fp` covers.
fn starts_as(head: &[u8], fp: Fingerprint) -> bool {
    usize::try_from(fp.len)
        .ok()
        .and_then(|n| head.get(..n))
        .and_then(Fingerprint::of)
        == Some(fp)
}

impl Tracker {
    /// A tracker with nothing tracked yet.
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            cfg: TrackerConfig {
                fingerprint_bytes: cfg.fingerprint_bytes.max(1),
                read_chunk: cfg.read_chunk.max(1),
                ..cfg
            },
            files: BTreeMap::new(),
            restored: BTreeMap::new(),
            truncations: Vec::new(),
            emptied: BTreeMap::new(),
            known: std::collections::BTreeSet::new(),
            actions: VecDeque::new(),
            lines: VecDeque::new(),
            notices: VecDeque::new(),
            scans: 0,
            resumed: false,
            next_generation: 0,
            now_ms: 0,
            dirty: false,
            moved: std::collections::BTreeSet::new(),
            stats: TrackerStats::default(),
        }
    }

    /// Checkpoints from the last run; they are matched by the next scan, and those that match
    /// no file are dropped (with a notice) after it.
    /// Calling it at all, even with none, marks a restart (see [`ReadFrom`]).
    pub fn restore(&mut self, checkpoints: impl IntoIterator<Item = Checkpoint>) {
        self.resumed = true;
        for c in checkpoints {
            let id = (c.dev, c.ino);
            if !self.files.contains_key(&id) {
                self.restored.insert(id, c);
            }
        }
    }

    /// Checkpoints another input of this agent wrote for files this one's patterns match
    /// (its patterns changed, so its own checkpoint file is new): each such file resumes
    /// where they left it, as after a restart, while a file no checkpoint names is new to
    /// this input and starts where `read_from` says (unlike [`Tracker::restore`], where it
    /// appeared while the agent was down and is read whole).
    pub fn adopt(&mut self, checkpoints: impl IntoIterator<Item = Checkpoint>) {
        for c in checkpoints {
            let id = (c.dev, c.ino);
            if !self.files.contains_key(&id) {
                self.restored.insert(id, c);
            }
        }
    }

    /// Restored checkpoints not matched yet, for a shell that looks for rotated files
    /// outside the patterns (e.g. `auth.log.1` next to `auth.log`) on its first scan.
    pub fn unmatched_checkpoints(&self) -> impl Iterator<Item = &Checkpoint> {
        self.restored.values()
    }

    /// How many head bytes to fingerprint for the file with this dev and ino.
    pub fn fingerprint_len(&self, dev: u64, ino: u64) -> u64 {
        let id = (dev, ino);
        let full = self.cfg.fingerprint_bytes;
        self.files
            .get(&id)
            // A short fingerprint that cannot grow with the reads (the file was resumed or
            // read from its end, not from byte 0): the full length is asked for, and the
            // fingerprint grows from the look ([`Tracker::handle_scan`]).
            .map(|t| if t.head.is_none() { full } else { t.fp.len })
            .or_else(|| self.restored.get(&id).map(|c| c.fingerprint.len))
            .unwrap_or(full)
    }

    /// Whether `o` shows the content `t` follows: the same head as far as `t`'s fingerprint
    /// goes (the look may cover more, see [`Tracker::fingerprint_len`]), and not shorter
    /// than what was read.
    fn same_content(o: &FileObservation, t: &Tracked) -> bool {
        (o.head == Some(t.fp) || starts_as(&o.head_bytes, t.fp)) && o.size >= t.lines.next_offset()
    }

    /// Whether the shell should keep the file with this dev and ino open.
    pub fn is_tracked(&self, dev: u64, ino: u64) -> bool {
        self.files.contains_key(&(dev, ino))
    }

    /// Whether the file is followed or has a checkpoint waiting for it (a file read before
    /// a restart, not seen yet since).
    pub fn knows(&self, dev: u64, ino: u64) -> bool {
        self.is_tracked(dev, ino) || self.restored.contains_key(&(dev, ino))
    }

    /// Where the followed file with this dev and ino was last seen.
    pub fn path_of(&self, dev: u64, ino: u64) -> Option<&std::path::Path> {
        self.files.get(&(dev, ino)).map(|t| t.path.as_path())
    }

    /// Whether a copy of what the file `o` names held (followed or checkpointed) would be
    /// recognised once it is truncated: its fingerprint covers what was read, or is full
    /// length (see [`Notice::Copy`]). A file first seen under 1 KiB and read from its end,
    /// or restored so, keeps a short fingerprint, and its copy would be read whole again.
    pub fn copies_recognisable(&self, o: &FileObservation) -> bool {
        let id = (o.dev, o.ino);
        let full = self.cfg.fingerprint_bytes;
        if let Some(t) = self.files.get(&id) {
            return t.fp.len >= t.lines.line_start() || t.fp.len == full;
        }
        self.restored
            .get(&id)
            .is_some_and(|c| c.fingerprint.len >= c.offset || c.fingerprint.len == full)
    }

    /// Whether `o` still shows the content followed (or checkpointed) for its file, as
    /// [`Tracker::handle_scan`] will judge it: the same head, not shorter than what was
    /// read. `Some(false)`: truncated or replaced; `None`: a file not known.
    pub fn keeps_content(&self, o: &FileObservation) -> Option<bool> {
        let id = (o.dev, o.ino);
        if let Some(t) = self.files.get(&id) {
            return Some(Self::same_content(o, t));
        }
        let c = self.restored.get(&id)?;
        Some(o.head == Some(c.fingerprint) && o.size >= c.offset)
    }

    /// Everything the patterns matched at `now_ms`.
    pub fn handle_scan(&mut self, now_ms: i64, observations: Vec<FileObservation>) {
        self.now_ms = now_ms;
        let first = self.scans == 0;
        self.scans += 1;
        let hold = self.cfg.copy_hold_ms;
        self.truncations
            .retain(|t| now_ms.saturating_sub(t.at) <= hold);
        let mut seen = std::collections::BTreeSet::new();
        // The same inode under two paths (hard link, overlapping patterns): first wins.
        let observations: Vec<_> = observations
            .into_iter()
            .filter(|o| seen.insert((o.dev, o.ino)))
            .collect();
        // Files known (tracked, or checkpointed) first: a truncation found among them is
        // what a new file of this scan may be a copy of, whatever the paths' order.
        let (mut known, new): (Vec<_>, Vec<_>) = observations.into_iter().partition(|o| {
            self.files.contains_key(&(o.dev, o.ino)) || self.restored.contains_key(&(o.dev, o.ino))
        });
        // Held copies before their originals: a truncation releases the copy from what
        // the original was read to, capped at the copy's size, which must be this scan's
        // (a copy first seen unfinished has grown since), whatever the paths' order.
        known.sort_by_key(|o| {
            self.files
                .get(&(o.dev, o.ino))
                .is_none_or(|t| t.held.is_none())
        });
        for o in known {
            self.observe(first, o);
        }
        for c in std::mem::take(&mut self.restored).into_values() {
            self.dirty = true;
            self.remember_truncation(c.fingerprint, c.offset, PathBuf::from(&c.path));
            self.notices.push_back(Notice::CheckpointDropped {
                path: c.path,
                reason: DropReason::FileGone,
            });
        }
        // Only a file tracked before this scan can be what a new one is a copy of.
        self.known = self.files.keys().copied().collect();
        for o in new {
            self.observe(first, o);
        }
        self.release_held(now_ms, &seen);
        self.emptied.retain(|id, _| seen.contains(id));
        for (id, t) in &mut self.files {
            if !seen.contains(id) && t.gone_since.is_none() {
                t.gone_since = Some(now_ms);
                self.notices.push_back(Notice::Gone {
                    key: t.key,
                    path: t.path.clone(),
                });
            }
        }
        // Rotated-away files first: their lines are older than the new file's.
        let ids: Vec<_> = self.files.keys().copied().collect();
        for pass_gone in [true, false] {
            for id in &ids {
                if self.files[id].gone_since.is_some() == pass_gone {
                    self.schedule(*id, false);
                }
            }
        }
        for id in ids {
            self.maybe_close(id);
        }
    }

    fn observe(&mut self, first: bool, o: FileObservation) {
        let id = (o.dev, o.ino);
        let mut before = None;
        if let Some(t) = self.files.get_mut(&id) {
            if Self::same_content(&o, t) {
                // The look covered more of a short fingerprint's file: it grows, so that a
                // copy of the file can be told later (a file resumed under 1 KiB kept its
                // short fingerprint, and its copytruncate copy was read whole, or missed).
                if let Some(fp) = o.head.filter(|fp| fp.len > t.fp.len) {
                    t.fp = fp;
                    self.moved.insert(id);
                }
                if t.path != o.path {
                    self.notices.push_back(Notice::Renamed {
                        key: t.key,
                        from: std::mem::replace(&mut t.path, o.path.clone()),
                        to: o.path,
                    });
                    self.dirty = true;
                }
                t.size = o.size;
                t.gone_since = None;
                t.finished = false;
                return;
            }
            // Truncated or replaced: whatever was read of the old content stays emitted;
            // its unterminated tail is gone with it.
            let old = self.files.remove(&id).map(|t| {
                let (read_to, emitted) = (t.lines.next_offset(), t.lines.line_start());
                (t.key, read_to, emitted, t.source_id, t.fp, t.path)
            });
            if let Some((key, read_to, emitted, sid, fp, path)) = old {
                self.actions
                    .retain(|a| !matches!(a, Action::Read { key: k, .. } if *k == key));
                self.dirty = true;
                // A copy goes on from the last whole line emitted: the unterminated line
                // read so far is gone from the truncated file, not from its copy.
                if !self.release_copies_of(id, emitted, &path) {
                    self.remember_truncation(fp, emitted, path);
                }
                let new = self.insert_new(&o, 0, Some(&sid));
                if new.is_none() {
                    self.emptied.insert(id, sid);
                }
                self.notices.push_back(Notice::Truncated {
                    old: key,
                    new,
                    path: o.path,
                    read_to,
                });
            }
            return;
        }
        if let Some(c) = self.restored.remove(&id) {
            self.dirty = true;
            if o.head == Some(c.fingerprint) && o.size >= c.offset {
                let key = self.key(id);
                self.notices.push_back(Notice::Resumed {
                    key,
                    path: o.path.clone(),
                    offset: c.offset,
                });
                self.files.insert(
                    id,
                    Tracked {
                        key,
                        path: o.path,
                        source_id: c.source_id.into(),
                        fp: c.fingerprint,
                        head: None,
                        size: o.size,
                        lines: LineAssembler::new(c.offset, self.cfg.max_line_bytes),
                        polled: c.offset,
                        committed: c.offset,
                        reading: false,
                        gone_since: None,
                        finished: false,
                        held: None,
                    },
                );
                return;
            }
            self.remember_truncation(c.fingerprint, c.offset, PathBuf::from(&c.path));
            self.notices.push_back(Notice::CheckpointDropped {
                path: c.path,
                reason: DropReason::ContentChanged,
            });
            // Everything in it was written after the checkpoint: read it whole.
            before = Some(c.source_id);
        }
        if before.is_none()
            && let Some(sid) = self.emptied.remove(&id)
        {
            before = Some(sid.to_string());
        }
        let start = if first && !self.resumed && self.cfg.read_from == ReadFrom::End {
            o.size
        } else {
            0
        };
        if before.is_none() && start == 0 {
            if let Some(i) = self
                .truncations
                .iter()
                .position(|t| starts_as(&o.head_bytes, t.fp))
            {
                // One copy per truncation: a second file with that head is a file of its own.
                let t = self.truncations.remove(i);
                let offset = t.read_to.min(o.size);
                if let Some(key) = self.insert_new(&o, offset, None) {
                    self.notices.push_back(Notice::Copy {
                        key,
                        path: o.path,
                        of: t.path,
                        offset,
                    });
                }
                return;
            }
            let full = self.cfg.fingerprint_bytes;
            // Tracked before this scan (on a restart's first scan: resumed from a checkpoint).
            let original = self
                .files
                .iter()
                .find(|(id, t)| {
                    self.known.contains(id)
                        && t.held.is_none()
                        && t.gone_since.is_none()
                        && t.fp.len == full
                        && starts_as(&o.head_bytes, t.fp)
                })
                .map(|(&id, t)| (id, t.path.clone()));
            if let Some((of, of_path)) = original {
                if self.insert_new(&o, 0, None).is_some() {
                    let now = self.now_ms;
                    if let Some(t) = self.files.get_mut(&(o.dev, o.ino)) {
                        t.held = Some(Held { of, since: now });
                        t.head = None;
                    }
                    self.notices.push_back(Notice::CopyHeld {
                        path: o.path,
                        of: of_path,
                    });
                }
                return;
            }
        }
        if let Some(key) = self.insert_new(&o, start, before.as_deref()) {
            self.notices.push_back(Notice::New {
                key,
                path: o.path,
                offset: start,
            });
        }
    }

    /// Keeps what a truncated (or replaced) file had been read to, for a copy of it that
    /// may appear: only when its fingerprint vouches for the bytes a copy would skip (it
    /// covers all of them, or is full length), and only for `copy_hold_ms`.
    fn remember_truncation(&mut self, fp: Fingerprint, read_to: u64, path: PathBuf) {
        if read_to > 0 && (fp.len >= read_to || fp.len == self.cfg.fingerprint_bytes) {
            self.truncations.push(Truncation {
                fp,
                read_to,
                path,
                at: self.now_ms,
            });
        }
    }

    /// The copy held for `of`, now that `of` was truncated after `read_to` bytes were read
    /// of it: read from there, only the bytes `of` had unread. Whether there was one.
    fn release_copies_of(
        &mut self,
        of: (u64, u64),
        read_to: u64,
        of_path: &std::path::Path,
    ) -> bool {
        let mut released = false;
        for t in self.files.values_mut() {
            if t.held.as_ref().is_none_or(|h| h.of != of) {
                continue;
            }
            let offset = read_to.min(t.size);
            t.held = None;
            t.lines = LineAssembler::new(offset, self.cfg.max_line_bytes);
            t.polled = offset;
            t.committed = offset;
            released = true;
            self.notices.push_back(Notice::Copy {
                key: t.key,
                path: t.path.clone(),
                of: of_path.to_owned(),
                offset,
            });
        }
        self.dirty |= released;
        released
    }

    /// Held copies whose original was not truncated in time are files of their own, read
    /// whole; held copies that are gone had nothing of their own to read.
    fn release_held(&mut self, now_ms: i64, seen: &std::collections::BTreeSet<(u64, u64)>) {
        let hold = self.cfg.copy_hold_ms;
        let ids: Vec<(u64, u64)> = self
            .files
            .iter()
            .filter(|(_, t)| t.held.is_some())
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if !seen.contains(&id) {
                if let Some(t) = self.files.remove(&id) {
                    self.dirty = true;
                    self.actions.push_back(Action::Close { key: t.key });
                }
                continue;
            }
            let Some(t) = self.files.get_mut(&id) else {
                continue;
            };
            let expired = t
                .held
                .as_ref()
                .is_some_and(|h| now_ms.saturating_sub(h.since) >= hold);
            if expired {
                t.held = None;
                self.notices.push_back(Notice::New {
                    key: t.key,
                    path: t.path.clone(),
                    offset: 0,
                });
            }
        }
    }

    fn key(&mut self, (dev, ino): (u64, u64)) -> FileKey {
        self.next_generation += 1;
        FileKey {
            dev,
            ino,
            generation: self.next_generation,
        }
    }

    /// Tracks `o` from `start`; an empty file has no identity yet and is not tracked.
    fn insert_new(
        &mut self,
        o: &FileObservation,
        start: u64,
        before: Option<&str>,
    ) -> Option<FileKey> {
        let fp = o.head?;
        let id = (o.dev, o.ino);
        let key = self.key(id);
        self.dirty = true;
        self.files.insert(
            id,
            Tracked {
                key,
                path: o.path.clone(),
                source_id: source_id(o.dev, o.ino, fp, before),
                fp,
                head: (start == 0 && fp.len < self.cfg.fingerprint_bytes).then(Vec::new),
                size: o.size,
                lines: LineAssembler::new(start, self.cfg.max_line_bytes),
                polled: start,
                committed: start,
                reading: false,
                gone_since: None,
                finished: false,
                held: None,
            },
        );
        Some(key)
    }

    /// Queues a read if there may be something to read. `more`: the last read filled its
    /// buffer, so the file may hold more than the scan saw.
    fn schedule(&mut self, id: (u64, u64), more: bool) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        if t.reading || t.finished || t.held.is_some() {
            return;
        }
        if more || t.lines.next_offset() < t.size || t.gone_since.is_some() {
            t.reading = true;
            self.actions.push_back(Action::Read {
                key: t.key,
                offset: t.lines.next_offset(),
                max_len: self.cfg.read_chunk,
            });
        }
    }

    /// The bytes read at `offset` for `key`; empty means end of file.
    pub fn handle_read(
        &mut self,
        key: FileKey,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), StaleRead> {
        let id = (key.dev, key.ino);
        let t = match self.files.get_mut(&id) {
            Some(t) if t.key == key && t.reading && t.lines.next_offset() == offset => t,
            other => {
                return Err(StaleRead {
                    key,
                    offset,
                    expected: other
                        .filter(|t| t.key == key)
                        .map(|t| t.lines.next_offset()),
                });
            }
        };
        t.reading = false;
        if bytes.is_empty() {
            self.at_eof(id);
            return Ok(());
        }
        self.stats.bytes += bytes.len() as u64;
        if let Some(head) = &mut t.head {
            if head.len() as u64 == offset {
                let want = (self.cfg.fingerprint_bytes - offset) as usize;
                head.extend_from_slice(&bytes[..want.min(bytes.len())]);
                if let Some(fp) = Fingerprint::of(head).filter(|fp| fp.len >= t.fp.len) {
                    t.fp = fp;
                    self.moved.insert(id);
                }
                if head.len() as u64 >= self.cfg.fingerprint_bytes {
                    t.head = None;
                }
            } else {
                t.head = None;
            }
        }
        let (key, sid) = (t.key, t.source_id.clone());
        let (out, stats) = (&mut self.lines, &mut self.stats);
        t.lines.push(bytes, &mut |l| {
            stats.lines += 1;
            stats.truncated_lines += u64::from(l.truncated);
            out.push_back(Line {
                key,
                source_id: sid.clone(),
                start: l.start,
                end: l.end,
                bytes: l.bytes,
                truncated: l.truncated,
            });
        });
        t.size = t.size.max(t.lines.next_offset());
        let filled = bytes.len() >= self.cfg.read_chunk;
        // A rotated-away file has no size from the scan: read until a read comes back empty.
        let gone = t.gone_since.is_some();
        self.schedule(id, filled || gone);
        Ok(())
    }

    /// Same as an empty [`handle_read`](Self::handle_read).
    pub fn handle_eof(&mut self, key: FileKey, offset: u64) -> Result<(), StaleRead> {
        self.handle_read(key, offset, &[])
    }

    fn at_eof(&mut self, id: (u64, u64)) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        let Some(since) = t.gone_since else {
            return;
        };
        if t.finished || self.now_ms.saturating_sub(since) < self.cfg.rotated_grace_ms {
            return;
        }
        // No writer will finish the last line of a file that is gone and idle.
        let (key, sid) = (t.key, t.source_id.clone());
        let (out, stats) = (&mut self.lines, &mut self.stats);
        t.lines.flush(&mut |l| {
            stats.lines += 1;
            stats.truncated_lines += u64::from(l.truncated);
            out.push_back(Line {
                key,
                source_id: sid.clone(),
                start: l.start,
                end: l.end,
                bytes: l.bytes,
                truncated: l.truncated,
            });
        });
        t.finished = true;
        self.maybe_close(id);
    }

    fn maybe_close(&mut self, id: (u64, u64)) {
        let done = self.files.get(&id).is_some_and(|t| {
            // Committed up to the last line means every line was also polled.
            t.finished && t.committed >= t.lines.line_start()
        });
        if let Some(t) = done.then(|| self.files.remove(&id)).flatten() {
            self.dirty = true;
            self.actions.push_back(Action::Close { key: t.key });
            self.notices.push_back(Notice::Closed {
                key: t.key,
                path: t.path,
                offset: t.committed,
            });
        }
    }

    /// The next thing for the shell to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next complete line.
    pub fn poll_line(&mut self) -> Option<Line> {
        let l = self.lines.pop_front()?;
        if let Some(t) = self
            .files
            .get_mut(&(l.key.dev, l.key.ino))
            .filter(|t| t.key == l.key)
        {
            t.polled = t.polled.max(l.end);
        }
        Some(l)
    }

    /// The next notice.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// Lines of `key` up to `end` are durably written downstream: a restart resumes there.
    /// Ends beyond what was polled, and keys of replaced content, are ignored.
    pub fn commit(&mut self, key: FileKey, end: u64) {
        let id = (key.dev, key.ino);
        if let Some(t) = self.files.get_mut(&id).filter(|t| t.key == key) {
            let end = end.min(t.polled);
            if end > t.committed {
                t.committed = end;
                self.moved.insert(id);
            }
            self.maybe_close(id);
        }
    }

    /// Commits every line polled so far.
    pub fn commit_polled(&mut self) {
        let ids: Vec<_> = self.files.keys().copied().collect();
        for id in ids {
            let t = &self.files[&id];
            self.commit(t.key, t.polled);
        }
    }

    /// The source ids of the files followed now (their lines' uids are keyed by them).
    pub fn source_ids(&self) -> impl Iterator<Item = &str> {
        self.files.values().map(|t| &*t.source_id)
    }

    /// The committed state to save; restored checkpoints not yet matched by a scan are kept.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        // A held copy has read nothing of its own yet: after a restart it is judged again.
        let live = self
            .files
            .iter()
            .filter(|(_, t)| t.held.is_none())
            .map(|(&(dev, ino), t)| Checkpoint {
                dev,
                ino,
                fingerprint: t.fp,
                source_id: t.source_id.to_string(),
                offset: t.committed,
                path: t.path.to_string_lossy().into_owned(),
            });
        live.chain(self.restored.values().cloned()).collect()
    }

    /// Whether [`checkpoints`](Self::checkpoints) changed since [`mark_saved`](Self::mark_saved).
    pub fn is_dirty(&self) -> bool {
        self.dirty || !self.moved.is_empty()
    }

    /// When the only changes since the last save are files that moved on (the common
    /// case: lines committed), their checkpoints, which appended to the saved ones make
    /// the current set (a later record of a file replaces an earlier one); `None` when
    /// files were added, replaced or let go and the whole set is to be written.
    pub fn moved_checkpoints(&self) -> Option<Vec<Checkpoint>> {
        if self.dirty {
            return None;
        }
        let mut out = Vec::with_capacity(self.moved.len());
        for id in &self.moved {
            let t = self.files.get(id)?;
            if t.held.is_some() {
                return None;
            }
            out.push(Checkpoint {
                dev: id.0,
                ino: id.1,
                fingerprint: t.fp,
                source_id: t.source_id.to_string(),
                offset: t.committed,
                path: t.path.to_string_lossy().into_owned(),
            });
        }
        Some(out)
    }

    /// The checkpoints were durably saved.
    pub fn mark_saved(&mut self) {
        self.dirty = false;
        self.moved.clear();
    }

    /// Counters so far.
    pub fn stats(&self) -> &TrackerStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests;
