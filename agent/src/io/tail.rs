//! The file-tail shell: globs, stats, hashes and reads for the sans-I/O
//! [`Tracker`], and persists its checkpoints.
//!
//! Blocking and clock-free: the caller runs [`Tailer::poll`] from a thread at the interval
//! it likes, passing the time, hands the lines downstream, then [`Tailer::commit`]s and
//! [`Tailer::save_checkpoint`]s once they are durable there. Each matched file stays open
//! (keyed by dev and inode) until the tracker closes it, which is how a file renamed away
//! or deleted is still drained to its end.

mod backend;
mod glob;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

#[cfg(feature = "io-uring")]
pub use backend::IoUringReads;
pub use backend::{PlainReads, ReadBackend, choose as choose_backend};

use crate::core::tail::links::SymlinkRule;
use crate::core::tail::{
    Action, CheckpointError, FileKey, FileObservation, Fingerprint, Notice, ReadFrom, Tracker,
    TrackerConfig, binary, checkpoint, compressed, rotation,
};

/// What to tail and how.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// Path patterns (`*`, `?`, `[...]` within a component).
    pub patterns: Vec<String>,
    /// Patterns of paths not to tail even when `patterns` match them (see
    /// [`glob::excludes`]).
    pub exclude: Vec<String>,
    /// Which symbolic links among the matched paths are followed.
    pub symlinks: SymlinkRule,
    /// Where to start files found at the first start (no checkpoint file yet).
    pub read_from: ReadFrom,
    /// Longest line kept; longer ones are cut and flagged.
    pub max_line_bytes: usize,
    /// Head bytes that identify a file.
    pub fingerprint_bytes: u64,
    /// Bytes per read.
    pub read_chunk: usize,
    /// How long a rotated-away or deleted file is still read after reaching its end (ms).
    pub rotated_grace_ms: i64,
    /// Where checkpoints are kept; `None` keeps nothing across restarts.
    pub checkpoint_path: Option<PathBuf>,
    /// Bytes one [`Tailer::poll`] reads at most; the rest waits for the next round, so the
    /// caller commits and checkpoints between rounds even while a large file is read.
    pub max_bytes_per_poll: u64,
}

impl TailConfig {
    /// Defaults for `patterns`: from the end, 64 KiB lines, 1 KiB fingerprints.
    pub fn new(patterns: Vec<String>) -> Self {
        let t = TrackerConfig::default();
        Self {
            patterns,
            exclude: Vec::new(),
            symlinks: SymlinkRule::default(),
            read_from: t.read_from,
            max_line_bytes: t.max_line_bytes,
            fingerprint_bytes: t.fingerprint_bytes,
            read_chunk: t.read_chunk,
            rotated_grace_ms: t.rotated_grace_ms,
            checkpoint_path: None,
            max_bytes_per_poll: 1 << 20,
        }
    }
}

/// For an input without a checkpoint file of its own (`own`): the checkpoints the agent's
/// other file inputs (`files-*.checkpoint` beside it) hold for files `patterns` match and
/// `exclude` does not, the newest file's entry where two name one file; and the files they
/// came from. An input whose patterns changed (a path added to it, an input split in two)
/// is a new checkpoint file: without these it started at each file's end (losing what the
/// old input had not read yet) or, reading from the start, read every file again.
fn sibling_checkpoints(
    own: &Path,
    patterns: &[String],
    exclude: &[String],
) -> (Vec<checkpoint::Checkpoint>, Vec<String>) {
    let (Some(dir), Some(own_name)) = (own.parent(), own.file_name()) else {
        return (Vec::new(), Vec::new());
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut found: HashMap<(u64, u64), (std::time::SystemTime, checkpoint::Checkpoint)> =
        HashMap::new();
    let mut from = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if name == own_name || !n.starts_with("files-") || !n.ends_with(".checkpoint") {
            continue;
        }
        let (Ok(text), Ok(meta)) = (read_checkpoints(&e.path()), e.metadata()) else {
            continue;
        };
        // One another input cannot read is that input's to report, not this one's.
        let Ok(list) = checkpoint::decode(&text) else {
            continue;
        };
        let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        let mut used = false;
        for c in list {
            let p = Path::new(&c.path);
            // Whole paths only: a pattern without a `/` would match a name anywhere.
            let wanted = patterns
                .iter()
                .any(|pat| pat.contains('/') && glob::excludes(pat, p))
                && !exclude.iter().any(|x| glob::excludes(x, p));
            if !wanted {
                continue;
            }
            used = true;
            let key = (c.dev, c.ino);
            if found.get(&key).is_none_or(|(t, _)| *t < mtime) {
                found.insert(key, (mtime, c));
            }
        }
        if used {
            from.push(n.into_owned());
        }
    }
    from.sort();
    let mut v: Vec<_> = found.into_values().map(|(_, c)| c).collect();
    v.sort_by(|a, b| a.path.cmp(&b.path));
    (v, from)
}

/// What went wrong in the tail shell.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// Our config: a pattern that cannot be used.
    #[error("bad tail pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// The checkpoint file is unreadable (edited, or from a newer agent). Move it away to
    /// start fresh.
    #[error("checkpoint file {path}: {source}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong inside.
        #[source]
        source: CheckpointError,
    },
    /// Reading or writing the checkpoint file failed; retrying is safe.
    #[error("checkpoint I/O on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// A line as the callback sees it.
#[derive(Debug, Clone, Copy)]
pub struct TailLine<'a> {
    /// The file; pass it to [`Tailer::commit`].
    pub key: FileKey,
    /// Identity of the file's content for the event uid (stable across renames, restarts).
    pub source_id: &'a str,
    /// The path the file was found at when it was opened (where it lives may differ after
    /// a rename rotation): what `metadata.log_source` says.
    pub path: &'a Path,
    /// Offset of the first byte: the uid position.
    pub start: u64,
    /// Offset after the line: what to commit.
    pub end: u64,
    /// The line without LF/CR.
    pub bytes: &'a [u8],
    /// Cut at `max_line_bytes`.
    pub truncated: bool,
}

/// Follows `path`'s chain of symbolic links (the last component's; a directory on the way
/// is resolved by the kernel): the owner of each link, and what the chain ends at. A path
/// that is no link costs one `lstat`, as the `stat` it replaces.
fn walk_links(path: &Path) -> io::Result<(Vec<u32>, std::fs::Metadata)> {
    // The kernel's own limit on links followed in one lookup.
    const MAX_LINKS: usize = 40;
    let mut owners = Vec::new();
    let mut at = path.to_path_buf();
    loop {
        let meta = std::fs::symlink_metadata(&at)?;
        if !meta.file_type().is_symlink() {
            return Ok((owners, meta));
        }
        if owners.len() == MAX_LINKS {
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::LOOP.raw_os_error(),
            ));
        }
        owners.push(meta.uid());
        let target = std::fs::read_link(&at)?;
        at = match at.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
}

/// Opens for reading without waiting for a writer, should `path` be a named pipe; with
/// `no_follow`, failing where the last component is a symbolic link.
fn open_nonblocking(path: &Path, no_follow: bool) -> io::Result<File> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = OFlags::NONBLOCK;
    if no_follow {
        flags |= OFlags::NOFOLLOW;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
}

/// Let-go files remembered (see `Tailer::let_go`); past it the memory starts over, and a
/// rotation read before may be read again (a repeat, never a loss).
const MAX_LET_GO: usize = 65_536;

/// Descriptors kept out of the file tails' reach for everything else the agent opens:
/// listeners' connections, the spool, the journal reader, the aggregator link, state files.
const RESERVED_FDS: u64 = 512;

/// Files the tails of this process hold open.
static HELD_FILES: AtomicU64 = AtomicU64::new(0);

/// An open file a tail holds, counted against the tails' share of the open-file limit: a
/// pattern over more files than the limit allows takes what it may and reports the rest
/// unreadable, and the other inputs keep the descriptors they need (a syslog listener that
/// cannot accept, or a journal that cannot be read, would go blind in silence).
struct HeldFile(File);

impl HeldFile {
    fn open(path: &Path, no_follow: bool) -> io::Result<Self> {
        let limit = super::limits::open_files();
        let share = limit.saturating_sub(RESERVED_FDS).max(limit / 2);
        let held = HELD_FILES.load(Ordering::Relaxed);
        if held >= share {
            return Err(io::Error::other(format!(
                "the file tails hold {held} files, their share of the open-file limit \
                 ({limit}, less {RESERVED_FDS} kept for the agent's other inputs): raise \
                 LimitNOFILE, or narrow the patterns"
            )));
        }
        let file = open_nonblocking(path, no_follow)?;
        HELD_FILES.fetch_add(1, Ordering::Relaxed);
        Ok(Self(file))
    }
}

impl Drop for HeldFile {
    fn drop(&mut self) {
        HELD_FILES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::ops::Deref for HeldFile {
    type Target = File;
    fn deref(&self) -> &File {
        &self.0
    }
}

/// A checkpoint file's text. An append a crash cut short may end inside a character (a
/// path's): the unterminated last line is dropped before the text is read as UTF-8, or
/// the agent would not start. (`checkpoint::decode` leaves out such a line anyway.)
fn read_checkpoints(path: &Path) -> io::Result<String> {
    let mut bytes = std::fs::read(path)?;
    if bytes.last().is_some_and(|&b| b != b'\n')
        && let Some(end) = bytes.iter().rposition(|&b| b == b'\n')
    {
        bytes.truncate(end + 1);
    }
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Appends `text` to the file at `path`, which must exist; with `sync`, to the disk.
fn append(path: &Path, text: &str, sync: bool) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    if sync {
        f.sync_data()?;
    }
    Ok(())
}

/// What this tailer wrote to its checkpoint file: the last whole write, and the records
/// appended since.
#[derive(Debug, Clone, Copy)]
struct Written {
    whole: usize,
    appended: usize,
}

/// Clears `O_NONBLOCK` (see [`open_nonblocking`]) once the file is known to be regular.
fn blocking(file: &File) -> io::Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let flags = fcntl_getfl(file)?;
    fcntl_setfl(file, flags - OFlags::NONBLOCK)?;
    Ok(())
}

/// What a matching path that is not a regular file is, in words.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "named pipe"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// Why a file cannot be read, with what to do about the usual causes.
fn unreadable_because(e: &io::Error) -> String {
    use rustix::io::Errno;
    let code = e.raw_os_error();
    if e.kind() == io::ErrorKind::PermissionDenied {
        format!("{e} (the agent's user needs read access)")
    } else if code == Some(Errno::MFILE.raw_os_error()) || code == Some(Errno::NFILE.raw_os_error())
    {
        format!("{e} (the limit of open files is reached: raise LimitNOFILE)")
    } else {
        e.to_string()
    }
}

/// Counts `path` unreadable this round, with why.
fn note_unreadable(
    unreadable: &mut HashMap<PathBuf, String>,
    stats: &mut PollStats,
    path: &Path,
    e: &io::Error,
) {
    stats.unreadable += 1;
    unreadable.insert(path.to_owned(), unreadable_because(e));
}

/// One poll round's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Files the patterns matched.
    pub files: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Lines handed to the callback.
    pub lines: u64,
    /// Files that matched but could not be opened or read (permissions, races); retried
    /// next round.
    pub unreadable: usize,
    /// Files that matched but are compressed (rotated archives): not tailed.
    pub compressed: usize,
    /// Files that matched but are binary (`wtmp`, `lastlog`): not tailed.
    pub binary: usize,
}

struct Open {
    file: HeldFile,
    path: PathBuf,
}

/// A file this round's look found.
struct Seen {
    /// Opened by this look; `None` when it was held already (read through that handle).
    opened: Option<Open>,
    /// When it was last written.
    written: Option<SystemTime>,
}

/// Follows the files matching some patterns. See the module docs.
pub struct Tailer<B: ReadBackend = PlainReads> {
    cfg: TailConfig,
    tracker: Tracker,
    handles: HashMap<(u64, u64), Open>,
    /// Matching files the tracker does not follow yet (an empty file has no identity to
    /// checkpoint): held open all the same, so whoever looks sees them watched, as with
    /// the peers (the perf harness waits for exactly that before it writes).
    waiting: HashMap<(u64, u64), Open>,
    backend: B,
    buf: Vec<u8>,
    polls: u64,
    /// The files the patterns matched last round: one missing from this round's left
    /// them (rotated away, deleted).
    matched: HashSet<(u64, u64)>,
    /// When each file the last round matched was last written, as it saw them.
    written: HashMap<(u64, u64), SystemTime>,
    /// When the checkpoint file restored at start was last written: a log whose
    /// checkpointed file is gone had every line up to then read.
    checkpoint_written: Option<SystemTime>,
    /// What this tailer wrote to its checkpoint file (`None` before its first save: the
    /// first is a whole one).
    checkpoint_bytes: Option<Written>,
    /// Files drained and let go this run, with their last write then: a rotation of a log
    /// that was read is not read again as an unseen one.
    let_go: HashMap<(u64, u64), SystemTime>,
    /// Compressed files the last round matched, with their path and format: each is
    /// reported when it first appears, not every round.
    archives: HashMap<(u64, u64), (PathBuf, &'static str)>,
    /// Binary files the last round matched, reported when they first appear.
    binaries: HashMap<(u64, u64), PathBuf>,
    /// Matching paths the last round could not open or read, with the error.
    unreadable: HashMap<PathBuf, String>,
    /// Matching paths the last round found not to be regular files, with what they are.
    special: HashMap<PathBuf, &'static str>,
    /// Matching symbolic links the last round did not follow, with why.
    not_followed: HashMap<PathBuf, String>,
    /// Notices of the shell's own (compressed and unreadable files), before the tracker's.
    notices: std::collections::VecDeque<Notice>,
}

impl std::fmt::Debug for Tailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tailer")
            .field("cfg", &self.cfg)
            .field("tracker", &self.tracker)
            .field("open", &self.handles.len())
            .finish_non_exhaustive()
    }
}

impl Tailer {
    /// A tailer with plain reads, resuming from `cfg.checkpoint_path` if it exists.
    pub fn new(cfg: TailConfig) -> Result<Self, TailError> {
        Self::with_backend(cfg, PlainReads)
    }
}

impl<B: ReadBackend> Tailer<B> {
    /// A tailer reading through `backend`.
    pub fn with_backend(cfg: TailConfig, backend: B) -> Result<Self, TailError> {
        for p in cfg.patterns.iter().chain(&cfg.exclude) {
            glob::validate(p).map_err(|reason| TailError::Pattern {
                pattern: p.clone(),
                reason,
            })?;
        }
        let mut tracker = Tracker::new(TrackerConfig {
            read_from: cfg.read_from,
            max_line_bytes: cfg.max_line_bytes,
            fingerprint_bytes: cfg.fingerprint_bytes,
            read_chunk: cfg.read_chunk,
            rotated_grace_ms: cfg.rotated_grace_ms,
            copy_hold_ms: TrackerConfig::default().copy_hold_ms,
        });
        let mut checkpoint_written = None;
        if let Some(path) = &cfg.checkpoint_path {
            checkpoint_written = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            match read_checkpoints(path) {
                Ok(text) => tracker.restore(checkpoint::decode(&text).map_err(|source| {
                    TailError::Checkpoint {
                        path: path.clone(),
                        source,
                    }
                })?),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let (adopted, from) = sibling_checkpoints(path, &cfg.patterns, &cfg.exclude);
                    if !adopted.is_empty() {
                        eprintln!(
                            "vedette-agent: {}: resuming {} file(s) where {} left them",
                            cfg.patterns.join(", "),
                            adopted.len(),
                            from.join(", ")
                        );
                        tracker.adopt(adopted);
                    }
                }
                Err(source) => {
                    return Err(TailError::Io {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }
        Ok(Self {
            cfg,
            tracker,
            handles: HashMap::new(),
            waiting: HashMap::new(),
            backend,
            buf: Vec::new(),
            polls: 0,
            matched: HashSet::new(),
            written: HashMap::new(),
            checkpoint_written,
            checkpoint_bytes: None,
            let_go: HashMap::new(),
            archives: HashMap::new(),
            binaries: HashMap::new(),
            unreadable: HashMap::new(),
            special: HashMap::new(),
            not_followed: HashMap::new(),
            notices: std::collections::VecDeque::new(),
        })
    }

    /// One round: scan the patterns, read everything new, call `on_line` for each complete
    /// line. Call again for more; there is no waiting inside. `now_ms` times the rotated
    /// files' grace and the copies' hold: a clock that only moves forward
    /// ([`super::clock::monotonic_ms`]), so a step of the wall clock neither lets a rotated
    /// file go before its writer reopened nor keeps it open for the size of the step.
    pub fn poll(
        &mut self,
        now_ms: i64,
        on_line: &mut dyn FnMut(TailLine<'_>),
    ) -> Result<PollStats, TailError> {
        let mut stats = PollStats::default();
        let mut obs = Vec::new();
        let mut fresh: HashMap<(u64, u64), Seen> = HashMap::new();
        let archives_before = std::mem::take(&mut self.archives);
        let binaries_before = std::mem::take(&mut self.binaries);
        let unreadable_before = std::mem::take(&mut self.unreadable);
        let special_before = std::mem::take(&mut self.special);
        let not_followed_before = std::mem::take(&mut self.not_followed);
        let mut dir_links = Vec::new();
        let mut unlisted = Vec::new();
        let mut paths: Vec<PathBuf> = self
            .cfg
            .patterns
            .iter()
            .flat_map(|p| glob::expand(p, self.cfg.symlinks, &mut dir_links, &mut unlisted))
            .collect();
        paths.sort();
        paths.dedup();
        paths.retain(|p| !self.cfg.exclude.iter().any(|x| glob::excludes(x, p)));
        self.not_followed.extend(dir_links);
        for p in paths {
            stats.files += 1;
            self.observe(&p, &mut obs, &mut fresh, &mut stats);
        }
        // A directory that could not be listed (permissions, the open-file limit) is not
        // an empty one: the files held under it stay as they were, through their handles.
        // Letting them go as gone would drop their checkpoints and read them again whole
        // once the directory can be listed again, and whether they were rotated cannot be
        // told meanwhile.
        for (dir, e) in &unlisted {
            stats.unreadable += 1;
            self.unreadable.insert(dir.clone(), unreadable_because(e));
        }
        let unlisted_held: Vec<((u64, u64), PathBuf)> = self
            .handles
            .keys()
            .filter(|id| !fresh.contains_key(id))
            .filter_map(|&(dev, ino)| {
                let path = self.tracker.path_of(dev, ino)?;
                let under = unlisted.iter().any(|(dir, _)| path.starts_with(dir));
                under.then(|| ((dev, ino), path.to_owned()))
            })
            .collect();
        for (id, path) in unlisted_held {
            self.fingerprint(&path, id, None, &mut obs, &mut fresh, &mut stats);
        }
        let matched: HashSet<(u64, u64)> = fresh.keys().copied().collect();
        // The logs that left the patterns since the last look, with when each was last
        // written, so the rotations that followed it can be told from those before it.
        // When each was last written as the last look saw it: a writer that has not reopened
        // yet may write the old file after the rotation, past the middle file's writes.
        let mut left: Vec<(PathBuf, SystemTime)> = self
            .handles
            .iter()
            .filter(|(id, _)| self.matched.contains(id) && !matched.contains(id))
            .filter_map(|(id, open)| Some((open.path.clone(), *self.written.get(id)?)))
            .collect();
        // An empty log (held, not followed: no content to identify) that was written and
        // rotated away between two looks: read it as the rotated file it is.
        let emptied: Vec<((u64, u64), PathBuf)> = self
            .waiting
            .iter()
            .filter(|(id, _)| self.matched.contains(id) && !matched.contains(id))
            .map(|(id, open)| (*id, open.path.clone()))
            .collect();
        for (id, path) in emptied {
            let before = obs.len();
            self.fingerprint(&path, id, None, &mut obs, &mut fresh, &mut stats);
            if let (Some(o), Some(since)) = (obs.get(before), self.written.get(&id))
                && o.head.is_some()
            {
                left.push((path, *since));
            }
        }
        // Logs still matched whose file holds other content now: truncated (a copy of what
        // it held may be beside it, `copytruncate`), or deleted and its number taken at
        // once by the new log (ext4), after a rotation.
        // Only where a copy would be recognised and read from where the log was: one read
        // whole would repeat every line under other uids at each rotation.
        for o in &obs {
            if self.tracker.keeps_content(o) == Some(false) && self.tracker.copies_recognisable(o) {
                let since = self.written.get(&(o.dev, o.ino)).copied();
                left.extend(
                    since
                        .or(self.checkpoint_written)
                        .map(|w| (o.path.clone(), w)),
                );
            }
        }
        if self.polls == 0 {
            left.extend(self.find_rotated(&mut obs, &mut fresh, &mut stats));
        }
        self.matched = matched;
        self.written = fresh
            .iter()
            .filter_map(|(id, seen)| Some((*id, seen.written?)))
            .collect();
        self.find_unseen_rotations(&left, &mut obs, &mut fresh, &mut stats);
        self.polls += 1;
        self.tracker.handle_scan(now_ms, obs);
        // A file truncated to empty has no identity and is no longer tracked: let it go.
        // (Closed by the tracker outside the reads below: remembered as let go too.)
        let untracked: Vec<(u64, u64)> = self
            .handles
            .keys()
            .filter(|id| !self.tracker.is_tracked(id.0, id.1))
            .copied()
            .collect();
        for id in untracked {
            // Still matched (truncated to empty: no identity to follow until bytes come
            // back): held on as waiting, without a gap. Dropped, it was not held for a
            // round, and written and rotated away in that round, it was never read.
            if fresh.contains_key(&id)
                && let Some(open) = self.handles.remove(&id)
            {
                self.waiting.insert(id, open);
            } else {
                self.let_go_of(id);
            }
        }
        // This round's handles replace the last round's: a file that stopped matching (or
        // was deleted) is let go, one still waiting stays held without a gap.
        let mut waited = std::mem::take(&mut self.waiting);
        for (id, seen) in fresh {
            // Held already: followed (stays in `handles`), or waiting (moves on).
            let Some(open) = seen.opened.or_else(|| waited.remove(&id)) else {
                continue;
            };
            if self.tracker.is_tracked(id.0, id.1) {
                self.handles.entry(id).or_insert(open);
            } else {
                self.waiting.insert(id, open);
            }
        }
        // Reads not taken stay queued in the tracker for the next round.
        while stats.bytes < self.cfg.max_bytes_per_poll {
            let Some(action) = self.tracker.poll_action() else {
                break;
            };
            match action {
                Action::Read {
                    key,
                    offset,
                    max_len,
                } => self.read(key, offset, max_len, on_line, &mut stats),
                Action::Close { key } => self.let_go_of((key.dev, key.ino)),
            }
        }
        // A file that matches but cannot be opened or read (permissions, a dangling
        // link) is retried every round and reported when it starts failing, or fails
        // otherwise: silence would look like a quiet log.
        for (path, error) in &self.unreadable {
            if unreadable_before.get(path) != Some(error) {
                self.notices.push_back(Notice::Unreadable {
                    path: path.clone(),
                    error: error.clone(),
                });
            }
        }
        for (path, reason) in &self.not_followed {
            if not_followed_before.get(path) != Some(reason) {
                self.notices.push_back(Notice::NotFollowed {
                    path: path.clone(),
                    reason: reason.clone(),
                });
            }
        }
        for (path, kind) in &self.special {
            if special_before.get(path) != Some(kind) {
                self.notices.push_back(Notice::NotRegular {
                    path: path.clone(),
                    kind,
                });
            }
        }
        for (id, path) in &self.binaries {
            if !binaries_before.contains_key(id) {
                self.notices
                    .push_back(Notice::Binary { path: path.clone() });
            }
        }
        for (id, (path, format)) in &self.archives {
            if !archives_before.contains_key(id) {
                self.notices.push_back(Notice::Compressed {
                    path: path.clone(),
                    format,
                });
            }
        }
        Ok(stats)
    }

    /// Drops the handle of `id`, remembering the file as let go with its last write: not
    /// taken for an unseen rotation later (it was read), unless written since.
    fn let_go_of(&mut self, id: (u64, u64)) {
        if let Some(open) = self.handles.remove(&id)
            && let Ok(written) = open.file.metadata().and_then(|m| m.modified())
        {
            if self.let_go.len() >= MAX_LET_GO {
                self.let_go.clear();
            }
            self.let_go.insert(id, written);
        }
    }

    fn read(
        &mut self,
        key: FileKey,
        offset: u64,
        max_len: usize,
        on_line: &mut dyn FnMut(TailLine<'_>),
        stats: &mut PollStats,
    ) {
        self.buf.resize(max_len, 0);
        let path = self
            .handles
            .get(&(key.dev, key.ino))
            .map(|o| o.path.clone())
            .unwrap_or_default();
        let n = match self.handles.get(&(key.dev, key.ino)) {
            Some(open) => match self.backend.read_at(&open.file, &mut self.buf, offset) {
                Ok(n) => n,
                Err(e) => {
                    // Retried next round, as a file at its end is.
                    stats.unreadable += 1;
                    self.unreadable.insert(path.clone(), unreadable_because(&e));
                    0
                }
            },
            None => 0,
        };
        stats.bytes += n as u64;
        // Only a tracker/shell disagreement (a bug) makes this fail; the bytes are re-read.
        let accepted = self.tracker.handle_read(key, offset, &self.buf[..n]);
        debug_assert!(accepted.is_ok(), "{accepted:?}");
        while let Some(l) = self.tracker.poll_line() {
            stats.lines += 1;
            on_line(TailLine {
                key: l.key,
                source_id: &l.source_id,
                path: &path,
                start: l.start,
                end: l.end,
                bytes: &l.bytes,
                truncated: l.truncated,
            });
        }
    }

    /// Opens `path` (or takes the handle held for the file the path names), stats the
    /// handle (so the observation is of the file we hold, whatever the path names by now)
    /// and fingerprints its head.
    fn observe(
        &mut self,
        path: &Path,
        obs: &mut Vec<FileObservation>,
        fresh: &mut HashMap<(u64, u64), Seen>,
        stats: &mut PollStats,
    ) {
        let mut failed = |e: io::Error, stats: &mut PollStats| {
            note_unreadable(&mut self.unreadable, stats, path, &e)
        };
        // Looked at before opening: opening a named pipe waits for a writer (the tail
        // would hang), and closing it again could break the writer's pipe.
        let (link_owners, looked) = match walk_links(path) {
            Ok(found) => found,
            Err(e) => return failed(e, stats),
        };
        if !looked.is_file() {
            self.special
                .insert(path.to_owned(), kind_of(&looked.file_type()));
            return;
        }
        if let Some(reason) = self.cfg.symlinks.refusal(&link_owners, looked.uid()) {
            self.not_followed.insert(path.to_owned(), reason);
            return;
        }
        // The file the look found is held already: read through that handle. A second
        // descriptor per followed file each round would take twice the open-file limit,
        // and an open and a close per file and round.
        let id = (looked.dev(), looked.ino());
        let opened = if self.handles.contains_key(&id) || self.waiting.contains_key(&id) {
            None
        } else {
            // Non-blocking in case a pipe took the file's place since the look; not
            // following a link where the look found none (one swapped in since leads where
            // the look did not judge).
            match HeldFile::open(path, link_owners.is_empty()) {
                Ok(f) => Some(f),
                Err(e) => return failed(e, stats),
            }
        };
        self.fingerprint(path, id, opened, obs, fresh, stats);
    }

    /// The observation of the file `id` the look found at `path`: `opened` by it, or held
    /// already. Stats the handle and fingerprints its head.
    fn fingerprint(
        &mut self,
        path: &Path,
        id: (u64, u64),
        opened: Option<HeldFile>,
        obs: &mut Vec<FileObservation>,
        fresh: &mut HashMap<(u64, u64), Seen>,
        stats: &mut PollStats,
    ) {
        let mut failed = |e: io::Error, stats: &mut PollStats| {
            note_unreadable(&mut self.unreadable, stats, path, &e)
        };
        let file: &File = match &opened {
            Some(f) => f,
            None => match self.handles.get(&id).or_else(|| self.waiting.get(&id)) {
                Some(held) => &held.file,
                None => return,
            },
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return failed(e, stats),
        };
        if !meta.is_file() {
            self.special
                .insert(path.to_owned(), kind_of(&meta.file_type()));
            return;
        }
        // Whatever changed between the look and the open (a link, a file or a directory on
        // the way swapped for one leading elsewhere, e.g. to a file only root may read)
        // is not read: the file judged is the file opened, or the next round looks again.
        if (meta.dev(), meta.ino()) != id {
            return;
        }
        // A read of a non-blocking file through io_uring may answer EAGAIN instead of
        // waiting for the disk.
        if opened.is_some()
            && let Err(e) = blocking(file)
        {
            return failed(e, stats);
        }
        let (dev, ino) = (meta.dev(), meta.ino());
        let want = Fingerprint::head_len(meta.len(), self.tracker.fingerprint_len(dev, ino));
        let mut head = vec![0; want as usize];
        let mut got = 0;
        while got < head.len() {
            match self.backend.read_at(file, &mut head[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return failed(e, stats),
            }
        }
        // Shrunk since the stat: the bytes read are the head there is.
        head.truncate(got);
        if !self.tracker.is_tracked(dev, ino)
            && let Some(format) = compressed::format_of(&head)
        {
            stats.compressed += 1;
            self.archives.insert((dev, ino), (path.to_owned(), format));
            return;
        }
        if !self.tracker.knows(dev, ino) && binary::looks_binary(&head) {
            stats.binary += 1;
            self.binaries.insert((dev, ino), path.to_owned());
            return;
        }
        obs.push(FileObservation {
            path: path.to_owned(),
            dev,
            ino,
            size: if got < want as usize {
                got as u64
            } else {
                meta.len()
            },
            head: Fingerprint::of(&head),
            head_bytes: head,
        });
        fresh.entry((dev, ino)).or_insert(Seen {
            opened: opened.map(|file| Open {
                file,
                path: path.to_owned(),
            }),
            written: meta.modified().ok(),
        });
    }

    /// A file rotated while we were stopped may have left the patterns (`auth.log` is now
    /// `auth.log.1`) with lines we never read. Look for its inode beside its last path so
    /// the tracker can drain it. Returns each checkpointed log that left the patterns, with
    /// when it was last written (or, when its file is gone, when the checkpoints were):
    /// rotations of it written since hold lines never read (see
    /// [`Tailer::find_unseen_rotations`]).
    fn find_rotated(
        &mut self,
        obs: &mut Vec<FileObservation>,
        fresh: &mut HashMap<(u64, u64), Seen>,
        stats: &mut PollStats,
    ) -> Vec<(PathBuf, SystemTime)> {
        let mut left = Vec::new();
        let wanted: Vec<(u64, u64, PathBuf, Fingerprint)> = self
            .tracker
            .unmatched_checkpoints()
            .map(|c| (c.dev, c.ino, PathBuf::from(&c.path), c.fingerprint))
            .collect();
        for (dev, ino, last, fingerprint) in wanted {
            if fresh.contains_key(&(dev, ino)) {
                continue;
            }
            let Some(dir) = last.parent() else { continue };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut written = self.checkpoint_written;
            for e in entries.flatten() {
                let hit = e.metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino);
                if hit && !fresh.contains_key(&(dev, ino)) {
                    let before = obs.len();
                    self.observe(&e.path(), obs, fresh, stats);
                    // Only the rotated file itself: an inode is reused at once on ext4,
                    // and a file that took the number (an `id_rsa` beside the old log)
                    // matches no pattern, so it is never read, not even from its start.
                    if obs.len() > before && obs[before].head != Some(fingerprint) {
                        obs.truncate(before);
                        fresh.remove(&(dev, ino));
                    } else if obs.len() > before {
                        written = e.metadata().and_then(|m| m.modified()).ok();
                    }
                }
            }
            left.extend(written.map(|w| (last, w)));
        }
        left
    }

    /// A log rotated twice between two looks, or while the agent was stopped, leaves a
    /// middle file: `app.log` became `app.log.1` and then `app.log.2`, and the file that
    /// was `app.log` in between is `app.log.1` now, matched by no pattern and never seen
    /// live, so its lines would be lost. For each log in `left` (its last path, and when
    /// its file was last written), the files beside it named as its rotations
    /// ([`rotation`]), written since, and unknown to the tracker are read whole, then let
    /// go as the rotated file is. Older rotations were written before the log was, so they
    /// are not read again; the same instant (timestamps are coarse) counts as since: a
    /// repeat keeps its uids, a loss is for good. Links are not followed, and `exclude`
    /// holds.
    fn find_unseen_rotations(
        &mut self,
        left: &[(PathBuf, SystemTime)],
        obs: &mut Vec<FileObservation>,
        fresh: &mut HashMap<(u64, u64), Seen>,
        stats: &mut PollStats,
    ) {
        use std::os::unix::ffi::OsStrExt;
        // One look per directory, however many of its logs rotated at once.
        let mut dirs: HashMap<&Path, HashMap<&[u8], (&Path, SystemTime)>> = HashMap::new();
        for (last, written) in left {
            if let (Some(dir), Some(name)) = (last.parent(), last.file_name()) {
                let logs = dirs.entry(dir).or_default();
                let w = logs.entry(name.as_bytes()).or_insert((last, *written));
                w.1 = w.1.min(*written);
            }
        }
        let mut found = Vec::new();
        for (dir, logs) in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let Some((of, since)) =
                    rotation::rotated_from(name.as_bytes()).find_map(|base| logs.get(base))
                else {
                    continue;
                };
                // The entry's own metadata: a link is not followed.
                let Ok(m) = e.metadata() else { continue };
                let id = (m.dev(), m.ino());
                let modified = m.modified().ok();
                if !m.is_file()
                    || fresh.contains_key(&id)
                    || self.tracker.knows(id.0, id.1)
                    || modified.is_none_or(|t| t < *since)
                    || self.let_go.get(&id).is_some_and(|&t| modified == Some(t))
                {
                    continue;
                }
                let path = e.path();
                if !self.cfg.exclude.iter().any(|x| glob::excludes(x, &path)) {
                    found.push((path, of.to_path_buf()));
                }
            }
        }
        found.sort();
        for (path, of) in found {
            let before = obs.len();
            self.observe(&path, obs, fresh, stats);
            if obs.len() > before {
                self.notices.push_back(Notice::UnseenRotation { path, of });
            }
        }
    }

    /// Lines of `key` up to `end` are durable downstream.
    pub fn commit(&mut self, key: FileKey, end: u64) {
        self.tracker.commit(key, end);
    }

    /// Every line handed out so far is durable downstream.
    pub fn commit_all_emitted(&mut self) {
        self.tracker.commit_polled();
    }

    /// Writes the committed offsets if they changed, durably (fsync); `Ok(true)` when it
    /// wrote.
    pub fn save_checkpoint(&mut self) -> Result<bool, TailError> {
        self.save_checkpoint_with(true)
    }

    /// [`Tailer::save_checkpoint`]; without `sync` the write survives a crash of the
    /// process but not a power loss, for a fraction of the cost: for saving after every
    /// acknowledged batch, with a synced save now and then.
    pub fn save_checkpoint_with(&mut self, sync: bool) -> Result<bool, TailError> {
        let Some(path) = &self.cfg.checkpoint_path else {
            return Ok(false);
        };
        if !self.tracker.is_dirty() {
            return Ok(false);
        }
        // Files that only moved on are appended: rewriting every file's record for each
        // batch acknowledged cost 2,000 files 300 KB (and ~0.5 ms) per line read. The
        // appends are capped at the size of the last whole write (at least 64 KiB), then
        // the file is written whole again, so it stays within twice its own size.
        if let Some(moved) = self.tracker.moved_checkpoints()
            && let Some(written) = &mut self.checkpoint_bytes
        {
            let text = checkpoint::encode_records(&moved);
            if written.appended + text.len() <= written.whole.max(64 << 10) {
                if append(path, &text, sync).is_ok() {
                    written.appended += text.len();
                    self.tracker.mark_saved();
                    return Ok(true);
                }
                // Part of the records may be in the file, cut short: a later append behind
                // them would make a broken line in the middle (the agent would not start
                // again). Only a whole write follows, and it replaces the file.
                self.checkpoint_bytes = None;
            }
        }
        let text = checkpoint::encode(&self.tracker.checkpoints());
        super::persist::write_atomic(path, &text, sync).map_err(|source| TailError::Io {
            path: path.clone(),
            source,
        })?;
        self.checkpoint_bytes = Some(Written {
            whole: text.len(),
            appended: 0,
        });
        self.tracker.mark_saved();
        Ok(true)
    }

    /// The source ids of the files followed now.
    pub fn source_ids(&self) -> std::collections::HashSet<&str> {
        self.tracker.source_ids().collect()
    }

    /// The next notice (new, rotated, truncated, closed files; dropped checkpoints;
    /// compressed files not tailed; files that cannot be opened).
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices
            .pop_front()
            .or_else(|| self.tracker.poll_notice())
    }

    /// Paths the files held open now were first opened at.
    pub fn open_paths(&self) -> impl Iterator<Item = &Path> {
        self.handles.values().map(|o| o.path.as_path())
    }
}
