//! The spool: a disk queue of encoded batches between the batcher (a std thread that
//! appends) and the shipper (a tokio task that sends and acknowledges). A batch leaves the
//! spool only when the aggregator acknowledged it, or when the drop-oldest policy makes
//! room — counted, never silently.
//!
//! The record format and the scanner are in `core::spool` (documented there). This module
//! owns the directory:
//!
//! - `<first seq, 20 digits>.seg`: segment files, appended to one at a time and deleted
//!   once every record in them is acknowledged (the one being written only once sealed or
//!   when room is needed);
//! - `state`: the epoch (random, chosen when the spool is created) and the high-water mark
//!   of sequence numbers, saved before a segment holding the highest ones is deleted, so
//!   numbering continues after a restart even when every segment was acknowledged and
//!   deleted. Written atomically (temp file, fsync, rename, fsync the directory);
//! - `acks`: the seqs acknowledged while their segment still exists, 8 bytes each
//!   (little-endian), appended at each ack, so a restart resends only what was not
//!   acknowledged. Rewritten compactly at open and when it outgrows the segments it
//!   describes. Not flushed on its own: a lost ack costs a resend, which the aggregator
//!   answers as a replay.
//!
//! Memory holds only an index (seq → segment, offset, length, events, created_ms); payloads
//! are read back from disk when handed out. Opening reads each segment once to rebuild the
//! index: a torn tail is truncated, damaged records are skipped and reported, the spool
//! always opens.
//!
//! A power loss (not a process crash: the kernel keeps written pages) can lose the newest
//! records under `FsyncPolicy::Never` or `IntervalMs` after they were sent and
//! acknowledged; numbering would then restart below their seqs, and the aggregator would
//! take the new batches as replays of the old and drop them. So the state also records
//! the boot the spool last ran in ([`Spool::open_in_boot`]; Linux's
//! `/proc/sys/kernel/random/boot_id`): opened in another boot, the spool takes a new
//! epoch for the batches it makes from then on, and the aggregator's (agent, epoch, seq)
//! cannot meet an old one. Batches already spooled keep the epoch they were made with;
//! the state lists the earlier epochs (`earlier`, the last [`EARLIER_EPOCHS`]) for
//! `spool verify`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::core::batcher::{self, EncodedBatch};
use crate::core::spool::{self as format, HEADER_LEN, MAX_PAYLOAD, RecordMeta};

/// Name of the state file in the spool directory.
const STATE: &str = "state";
/// Name of the ack log in the spool directory.
const ACKS: &str = "acks";
/// First line of the state file.
const STATE_HEADER: &str = "vedette-spool 1";
/// ENOSPC and EDQUOT on Linux: the filesystem or the quota is full.
const ENOSPC: i32 = 28;
const EDQUOT: i32 = 122;
/// A segment never gets smaller than this when the filesystem turns out smaller than
/// `max_bytes`.
const MIN_SEGMENT_BYTES: u64 = 16 << 10;
/// A blocked append retries this often even without an acknowledgement: space another
/// process frees on the device is noticed.
const BLOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// When appended records are flushed to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every append: nothing acknowledged to the batcher is lost to a power cut.
    Always,
    /// By [`Spool::sync`], which the agent calls this often and before a source's
    /// checkpoint is saved; an append itself never waits for the device.
    IntervalMs(u64),
    /// Never explicitly (the kernel writes back on its own schedule).
    Never,
}

/// What an append does when the spool is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Wait until acknowledgements free space (or [`Spool::close`]). The sources slow down.
    Block,
    /// Delete the oldest unacknowledged batches until the new one fits, and count them.
    DropOldest,
}

/// How big the spool grows and how careful it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Bytes of segment files at most.
    pub max_bytes: u64,
    /// A segment is sealed and a new one started when the next record would pass this.
    pub segment_bytes: u64,
    /// When to flush.
    pub fsync: FsyncPolicy,
    /// What to do when full.
    pub when_full: FullPolicy,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            segment_bytes: 8 << 20,
            fsync: FsyncPolicy::IntervalMs(1000),
            when_full: FullPolicy::Block,
        }
    }
}

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files kept.
    pub segments: u64,
    /// Valid batches waiting (not yet acknowledged).
    pub batches: u64,
    /// Bytes of segment files kept.
    pub bytes: u64,
    /// Damaged regions skipped (one per region: a damaged record's seq may be unreadable).
    pub damaged_records: u64,
    /// Bytes in those regions.
    pub damaged_bytes: u64,
    /// Bytes of torn tails cut off (writes interrupted by a crash).
    pub truncated_bytes: u64,
    /// The spool was created: a new epoch.
    pub created: bool,
    /// The state file was unreadable and was replaced by a new epoch.
    pub state_reset: bool,
    /// The spool was last written in another boot: a new epoch from now on.
    pub new_boot: bool,
    /// The sequence number the next batch gets.
    pub next_seq: u64,
    /// The disk was full: the state (epoch, high-water mark) is kept in memory and the
    /// next append writes it.
    pub state_unsaved: bool,
    /// The disk was full: the acknowledgement log could not be compacted and is appended
    /// to as it was.
    pub acks_not_compacted: bool,
}

/// The spool's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes of batches waiting (records, headers included).
    pub bytes: u64,
    /// Bytes of segment files (acknowledged records stay until their segment goes).
    pub disk_bytes: u64,
    /// Batches waiting.
    pub batches: u64,
    /// When the oldest waiting batch was cut.
    pub oldest_created_ms: Option<i64>,
    /// Batches deleted unacknowledged by the drop-oldest policy since open. A batch deleted
    /// while it was on its way to the aggregator counts only once the connection it went
    /// out on ends without its acknowledgement: if the aggregator acknowledges it, it was
    /// stored and nothing was lost.
    pub dropped_batches: u64,
    /// Events in those batches.
    pub dropped_events: u64,
    /// Damaged records found since open (at open, or when read back).
    pub damaged_records: u64,
    /// Bytes in them.
    pub damaged_bytes: u64,
    /// Batches acknowledged since open.
    pub acked: u64,
    /// The sequence number the next batch gets.
    pub next_seq: u64,
}

/// What went wrong, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The filesystem failed (permissions, I/O error): the host's problem.
    #[error("spool I/O on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// [`Spool::close`] was called; the batch was not stored (the caller still has it).
    #[error("spool closed")]
    Closed,
    /// Another process has the spool open.
    #[error("the spool {0} is in use by another process (another agent with this state dir?)")]
    InUse(PathBuf),
    /// The batch cannot fit even an empty spool: our config (`max_bytes`) or batch size.
    #[error("batch of {len} bytes cannot fit a spool of {limit} bytes")]
    TooLarge {
        /// Record bytes.
        len: u64,
        /// The spool's `max_bytes`, or the record format's limit.
        limit: u64,
    },
    /// An append did not carry the sequence number the spool expects: a bug in the caller
    /// (one appender, seqs from [`Spool::next_seq`]).
    #[error("append of seq {got}, the spool expects {expected}")]
    OutOfOrder {
        /// [`Spool::next_seq`].
        expected: u64,
        /// The batch's seq.
        got: u64,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_no_space(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}

/// A write that failed: for lack of space (apply the full policy) or otherwise.
enum WriteError {
    NoSpace,
    Other(SpoolError),
}

/// Where a waiting batch lies.
#[derive(Debug, Clone, Copy)]
struct Entry {
    segment: u64,
    offset: u64,
    /// Record bytes, header included.
    len: u64,
    events: u32,
    created_ms: i64,
}

struct Segment {
    path: PathBuf,
    /// Read (and, for the active segment, append) handle; shared with readers outside
    /// the lock.
    file: Arc<File>,
    len: u64,
    /// Records in it, acknowledged or not (bounds the ack log: see `delete_segment`).
    records: u64,
    /// Records not yet acknowledged.
    live: u64,
    last_seq: u64,
    /// Written since the last flush.
    dirty: bool,
}

struct Inner {
    segments: BTreeMap<u64, Segment>,
    index: BTreeMap<u64, Entry>,
    /// Every waiting batch below this seq has been handed out.
    cursor: u64,
    /// Batches below the cursor to hand out again ([`Spool::retry`]), before the others.
    retry: std::collections::BTreeSet<u64>,
    /// The segment being appended to.
    active: Option<u64>,
    next_seq: u64,
    /// The high-water mark in the state file.
    hwm_saved: u64,
    /// A segment went before the state file could learn its seqs (a full disk): saved at
    /// the next append.
    hwm_unsaved: bool,
    /// The segment size in use: `segment_bytes`, lowered once the filesystem filled up
    /// before `max_bytes` did, so that dropping or freeing one segment is a fraction of
    /// what fits, not all of it.
    segment_bytes: u64,
    disk_bytes: u64,
    unacked_bytes: u64,
    dropped_batches: u64,
    dropped_events: u64,
    /// Batches drop-oldest deleted while they were handed out (seq → events): lost only if
    /// the connection ends without their acknowledgement ([`Spool::requeue_unacked`]).
    dropped_in_flight: BTreeMap<u64, u32>,
    damaged_records: u64,
    damaged_bytes: u64,
    /// Per waiting seq, reads that failed (an I/O error of the disk): after
    /// [`READ_ATTEMPTS`] the record is given up as damaged, so one bad sector cannot stop
    /// everything behind it.
    read_failures: BTreeMap<u64, u32>,
    acked: u64,
    closed: bool,
    /// [`Spool::stop_waiting`] was called.
    no_wait: bool,
    /// Bumped whenever space may have been freed; blocked appenders wait for a change.
    freed: u64,
    /// An ack could not be logged (said once).
    ack_log_failed: bool,
    /// Appenders waiting for space.
    waiters: usize,
    /// The ack log, open for appending.
    acks: File,
    /// Entries in it.
    ack_entries: u64,
}

/// The disk queue. Shared as `Arc<Spool>` between the appending thread and the shipper.
pub struct Spool {
    dir: PathBuf,
    cfg: SpoolConfig,
    /// The state as last written but for its high-water mark (which lives in `Inner`):
    /// the epoch new batches take, the boot, the earlier epochs.
    state: SpoolState,
    inner: Mutex<Inner>,
    /// The counters as of the last release of `inner`, for the shipper's questions
    /// ([`Spool::stats`], [`Spool::has_unsent`]): they run on the async runtime the syslog
    /// listeners share, and must not wait behind an append that waits for the device
    /// (`FsyncPolicy::Always`, a seal, a state file), or UDP datagrams overflow meanwhile.
    published: Mutex<SpoolStats>,
    /// A batch waits to be handed out, as of the last release of `inner`.
    unsent_waiting: AtomicBool,
    /// Held through a [`Spool::sync`]: a second caller waits for the first one's flush,
    /// which may cover records the second one needs (the first marked their segments
    /// clean when it took them, so the second would find nothing to flush and return
    /// before they are on the device).
    syncing: Mutex<()>,
    /// Signalled when space may have been freed, and at close.
    space: Condvar,
    /// Signalled when there is something new to hand out, and at close.
    unsent: Notify,
    /// The spool directory, held open with an exclusive lock for the spool's life: a second
    /// agent on the same directory (one started by hand beside the service) would take
    /// the first's half-written record for a torn tail and cut it, and both would delete
    /// segments the other still holds.
    _lock: fs::File,
    /// Test hook: this many next writes fail with ENOSPC after writing a partial header.
    #[cfg(test)]
    fail_writes: std::sync::atomic::AtomicU32,
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("epoch", &self.state.epoch)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The segment files of `dir`, by first seq.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(num) = name.strip_suffix(".seg") else {
            continue;
        };
        if num.len() != 20 || !num.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = num.parse::<u64>() {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads of one record that may fail before it is given up as damaged.
const READ_ATTEMPTS: u32 = 3;

/// Earlier epochs the state remembers (batches made in them may still be spooled).
pub const EARLIER_EPOCHS: usize = 16;

/// The `state` file: epoch, high-water mark, the boot it was written in (absent in files
/// of older versions, and when the boot is unknown), and the earlier epochs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SpoolState {
    epoch: u64,
    hwm: u64,
    boot: Option<String>,
    earlier: Vec<u64>,
}

fn parse_state(text: &str) -> Option<SpoolState> {
    let mut lines = text.lines();
    if lines.next()? != STATE_HEADER {
        return None;
    }
    let epoch = u64::from_str_radix(lines.next()?.strip_prefix("epoch ")?, 16).ok()?;
    let hwm = lines.next()?.strip_prefix("hwm ")?.parse().ok()?;
    let mut state = SpoolState {
        epoch,
        hwm,
        ..SpoolState::default()
    };
    for line in lines {
        if let Some(b) = line.strip_prefix("boot ") {
            state.boot = Some(b.to_owned());
        } else if let Some(e) = line.strip_prefix("earlier ") {
            state.earlier.push(u64::from_str_radix(e, 16).ok()?);
        } else {
            return None;
        }
    }
    Some(state)
}

fn state_text(s: &SpoolState) -> String {
    let mut t = format!("{STATE_HEADER}\nepoch {:016x}\nhwm {}\n", s.epoch, s.hwm);
    if let Some(b) = &s.boot {
        t.push_str(&format!("boot {b}\n"));
    }
    for e in &s.earlier {
        t.push_str(&format!("earlier {e:016x}\n"));
    }
    t
}

/// This host's boot id (Linux), `None` where there is none to read.
pub fn current_boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| id.to_owned())
}

fn new_epoch(dir: &Path) -> Result<u64, SpoolError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| SpoolError::Io {
            path: dir.to_path_buf(),
            source: io::Error::other("no system randomness for the spool epoch"),
        })?;
    Ok(u64::from_le_bytes(b))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`: rebuilds the index from the segments,
    /// truncates torn tails, skips damaged records. Fails only when the directory or a
    /// file cannot be read or written at all.
    ///
    /// The boot is not known here: numbering continues across restarts whatever happened
    /// in between (see the module docs); the agent opens with [`Spool::open_in_boot`].
    pub fn open(dir: &Path, cfg: SpoolConfig) -> Result<(Arc<Self>, OpenReport), SpoolError> {
        Self::open_in_boot(dir, cfg, None)
    }

    /// [`Spool::open`] in the boot `boot` ([`current_boot_id`]): a spool last written in
    /// another boot (or by a version that did not record it) takes a new epoch.
    pub fn open_in_boot(
        dir: &Path,
        cfg: SpoolConfig,
        boot: Option<&str>,
    ) -> Result<(Arc<Self>, OpenReport), SpoolError> {
        super::private::own_dir(dir).map_err(io_err(dir))?;
        let lock = lock_dir(dir)?;
        let mut report = OpenReport::default();
        let state_path = dir.join(STATE);
        let fresh = |dir: &Path| -> Result<SpoolState, SpoolError> {
            Ok(SpoolState {
                epoch: new_epoch(dir)?,
                ..SpoolState::default()
            })
        };
        let mut state = match fs::read_to_string(&state_path) {
            Ok(text) => match parse_state(&text) {
                Some(s) => s,
                None => {
                    report.state_reset = true;
                    fresh(dir)?
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                report.created = true;
                fresh(dir)?
            }
            Err(e) => return Err(io_err(&state_path)(e)),
        };
        let mut changed = report.created || report.state_reset;
        if let Some(boot) = boot
            && state.boot.as_deref() != Some(boot)
        {
            if !changed {
                // Written in another boot: what it numbered after its last sync may be
                // gone from the disk but not from the aggregator.
                state.earlier.insert(0, state.epoch);
                state.earlier.truncate(EARLIER_EPOCHS);
                state.epoch = new_epoch(dir)?;
                report.new_boot = true;
            }
            state.boot = Some(boot.to_owned());
            changed = true;
        }
        let hwm = state.hwm;
        let acks_path = dir.join(ACKS);
        let acked: std::collections::HashSet<u64> = match fs::read(&acks_path) {
            // A torn last entry (crash mid-append) is ignored: that batch is sent again.
            Ok(b) => b
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Default::default(),
            Err(e) => return Err(io_err(&acks_path)(e)),
        };
        let mut segments = BTreeMap::new();
        let mut index = BTreeMap::new();
        let (mut disk_bytes, mut unacked_bytes) = (0, 0);
        let mut max_seq = hwm;
        let listed = list_segments(dir)?;
        let newest = listed.len().saturating_sub(1);
        for (i, (first, path)) in listed.into_iter().enumerate() {
            let data = fs::read(&path).map_err(io_err(&path))?;
            let mut scan = format::scan(&data);
            report.damaged_records += scan.damaged.len() as u64;
            report.damaged_bytes += scan.damaged_bytes();
            let len = scan.valid_len(data.len() as u64);
            // Only the newest segment is written to, so only its end can be a write the
            // crash cut: a cut-short record at the end of an older one was whole (and
            // acknowledged to its source) once, and is damage, counted as such.
            if i != newest
                && let Some(t) = scan.torn_tail.take()
            {
                report.damaged_records += 1;
                report.damaged_bytes += t.end - t.start;
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                file.set_len(t.start).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
            }
            drop(data);
            if scan.records.is_empty() {
                // Nothing to send: a crash right after creating it, or all damage.
                fs::remove_file(&path).map_err(io_err(&path))?;
                report.truncated_bytes += scan.torn_tail.map_or(0, |t| t.end - t.start);
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            if let Some(t) = &scan.torn_tail {
                file.set_len(t.start).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
                report.truncated_bytes += t.end - t.start;
            }
            let mut seg = Segment {
                path,
                file: Arc::new(file),
                len,
                records: scan.records.len() as u64,
                live: 0,
                last_seq: 0,
                dirty: false,
            };
            for r in &scan.records {
                let seq = r.meta.seq;
                seg.last_seq = seg.last_seq.max(seq);
                max_seq = max_seq.max(seq);
                // Acknowledged, or two records claim one seq (a copied file?): the first
                // one found wins.
                if acked.contains(&seq) || index.contains_key(&seq) {
                    continue;
                }
                index.insert(
                    seq,
                    Entry {
                        segment: first,
                        offset: r.offset,
                        len: r.len,
                        events: r.meta.events,
                        created_ms: r.meta.created_ms,
                    },
                );
                unacked_bytes += r.len;
                seg.live += 1;
            }
            disk_bytes += seg.len;
            segments.insert(first, seg);
        }
        // A full disk must not keep the agent from starting (a peer's disk buffer refuses
        // to start then): the state stays in memory and the next append writes it, as
        // after a segment deleted on a full disk. A crash before that finds the old state,
        // whose numbering the segments on disk still extend, or none (a new epoch).
        let mut hwm_saved = hwm;
        let mut state_unsaved = false;
        if changed || max_seq > hwm {
            // Before any segment goes, the state must know the seqs in it (and before any
            // batch is made, its epoch).
            state.hwm = max_seq;
            match persist_state(&state_path, &state, cfg.fsync) {
                Ok(()) => hwm_saved = max_seq,
                Err(SpoolError::Io { source, .. }) if is_no_space(&source) => {
                    state_unsaved = true;
                }
                Err(e) => return Err(e),
            }
        }
        let kept = acked_on_disk(&segments, &index);
        let (acks, ack_entries) = match write_acks(dir, &kept, cfg.fsync) {
            Ok(f) => (f, kept.len() as u64),
            Err(SpoolError::Io { source, .. }) if is_no_space(&source) => {
                report.acks_not_compacted = true;
                reopen_acks(&acks_path)?
            }
            Err(e) => return Err(e),
        };
        let inner = Inner {
            segments,
            index,
            cursor: 0,
            retry: std::collections::BTreeSet::new(),
            active: None,
            next_seq: max_seq + 1,
            hwm_saved,
            hwm_unsaved: state_unsaved,
            segment_bytes: cfg.segment_bytes,
            disk_bytes,
            unacked_bytes,
            dropped_batches: 0,
            dropped_events: 0,
            dropped_in_flight: BTreeMap::new(),
            damaged_records: report.damaged_records,
            damaged_bytes: report.damaged_bytes,
            read_failures: BTreeMap::new(),
            acked: 0,
            closed: false,
            no_wait: false,
            freed: 0,
            ack_log_failed: false,
            waiters: 0,
            acks,
            ack_entries,
        };
        let spool = Self {
            _lock: lock,
            dir: dir.to_path_buf(),
            cfg,
            state,
            inner: Mutex::new(inner),
            published: Mutex::new(SpoolStats::default()),
            unsent_waiting: AtomicBool::new(false),
            syncing: Mutex::new(()),
            space: Condvar::new(),
            unsent: Notify::new(),
            #[cfg(test)]
            fail_writes: std::sync::atomic::AtomicU32::new(0),
        };
        {
            let mut g = spool.lock();
            // Segments acknowledged in full (their deletion was cut short by a crash); the
            // state is saved first where it must be, as at run time.
            let done: Vec<u64> = g
                .segments
                .iter()
                .filter(|(_, s)| s.live == 0)
                .map(|(&k, _)| k)
                .collect();
            for k in done {
                spool.delete_segment(&mut g, k)?;
            }
            report.state_unsaved = g.hwm_unsaved;
            report.segments = g.segments.len() as u64;
            report.batches = g.index.len() as u64;
            report.bytes = g.disk_bytes;
            report.next_seq = g.next_seq;
        }
        Ok((Arc::new(spool), report))
    }

    /// The spool's epoch: batches carry it with their seq.
    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    /// The state to write with high-water mark `hwm`.
    fn state_at(&self, hwm: u64) -> SpoolState {
        SpoolState {
            hwm,
            ..self.state.clone()
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> Locked<'_> {
        // A panic while holding the lock leaves counters, not invariants the disk depends
        // on: keep going.
        Locked {
            spool: self,
            guard: Some(self.inner.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// Copies what the lock-free questions answer from `g`; called whenever `inner` is
    /// released.
    fn publish(&self, g: &Inner) {
        self.unsent_waiting.store(
            !g.retry.is_empty() || g.index.range(g.cursor..).next().is_some(),
            Ordering::Release,
        );
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = SpoolStats {
            bytes: g.unacked_bytes,
            disk_bytes: g.disk_bytes,
            batches: g.index.len() as u64,
            oldest_created_ms: g.index.values().next().map(|e| e.created_ms),
            dropped_batches: g.dropped_batches,
            dropped_events: g.dropped_events,
            damaged_records: g.damaged_records,
            damaged_bytes: g.damaged_bytes,
            acked: g.acked,
            next_seq: g.next_seq,
        };
    }

    /// The seq the next appended batch must carry. With one appending thread, cut the batch
    /// with this seq, then [`Spool::append`] it.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Stores `batch` (cut with seq [`Spool::next_seq`]). When full, applies the policy:
    /// `Block` waits for acknowledgements (until [`Spool::close`] or
    /// [`Spool::stop_waiting`]: `Err(Closed)`),
    /// `DropOldest` deletes the oldest segment's waiting batches, counted in the stats,
    /// until it fits; a batch that cannot fit even then (larger than `max_bytes`, or a
    /// device filled by someone else) is itself dropped and counted: with `DropOldest` an
    /// append never waits for space and never fails for lack of it. A full filesystem
    /// (ENOSPC) counts as full: the partial write is rolled back first. On any error the
    /// batch is not stored and the caller still holds it. Blocking I/O: call it from a
    /// thread, not an async task.
    pub fn append(&self, batch: &EncodedBatch) -> Result<(), SpoolError> {
        let rec_len = (HEADER_LEN + batch.bytes.len()) as u64;
        let meta = RecordMeta {
            seq: batch.header.seq,
            events: batch.header.events,
            created_ms: batch.header.created_ms,
        };
        let mut g = self.lock();
        if g.closed {
            return Err(SpoolError::Closed);
        }
        if meta.seq != g.next_seq {
            return Err(SpoolError::OutOfOrder {
                expected: g.next_seq,
                got: meta.seq,
            });
        }
        if rec_len > self.cfg.max_bytes || batch.bytes.len() > MAX_PAYLOAD as usize {
            if self.cfg.when_full == FullPolicy::DropOldest {
                self.drop_new(&mut g, &meta);
                return Ok(());
            }
            return Err(SpoolError::TooLarge {
                len: rec_len,
                limit: self.cfg.max_bytes.min(u64::from(MAX_PAYLOAD)),
            });
        }
        if g.hwm_unsaved {
            self.save_hwm(&mut g);
        }
        let header = format::encode_header(&meta, &batch.bytes);
        loop {
            self.reclaim_active(&mut g)?;
            if g.disk_bytes + rec_len <= self.cfg.max_bytes {
                match self.write(&mut g, &meta, &header, &batch.bytes) {
                    Ok(()) => break,
                    Err(WriteError::NoSpace) => {
                        // The device is smaller than `max_bytes`: segments sized for the
                        // device, so that one of them going frees a part, not everything.
                        g.segment_bytes = g
                            .segment_bytes
                            .min((g.disk_bytes / 4).max(MIN_SEGMENT_BYTES));
                    }
                    Err(WriteError::Other(e)) => return Err(e),
                }
            }
            match self.cfg.when_full {
                FullPolicy::DropOldest => {
                    if !self.drop_oldest(&mut g)? {
                        // Nothing of ours left to drop and still no room: this batch goes,
                        // counted like the others.
                        self.drop_new(&mut g, &meta);
                        return Ok(());
                    }
                }
                FullPolicy::Block => {
                    // Woken when an ack or a reader frees space, at close or
                    // `stop_waiting`, and every
                    // BLOCK_RETRY in case the device is full of someone else's files (then
                    // no ack of ours may ever free it).
                    if g.no_wait {
                        return Err(SpoolError::Closed);
                    }
                    let seen = g.freed;
                    g.waiters += 1;
                    while g.freed == seen && !g.closed && !g.no_wait {
                        if g.wait_space(BLOCK_RETRY) {
                            break;
                        }
                    }
                    g.waiters -= 1;
                    if g.closed || g.no_wait {
                        return Err(SpoolError::Closed);
                    }
                }
            }
        }
        g.next_seq += 1;
        drop(g);
        self.unsent.notify_one();
        Ok(())
    }

    /// Drop-oldest with no room for `meta`'s batch whatever is dropped: the batch itself is
    /// dropped, counted, and its seq used up.
    fn drop_new(&self, g: &mut Inner, meta: &RecordMeta) {
        g.dropped_batches += 1;
        g.dropped_events += u64::from(meta.events);
        g.next_seq += 1;
    }

    /// Saves the high-water mark the state file missed (a full disk when a segment went).
    /// Best effort: the newer segments still hold the seqs; only a crash before they are
    /// written could reuse a seq.
    fn save_hwm(&self, g: &mut Inner) {
        let hwm = g.next_seq.saturating_sub(1);
        if persist_state(&self.dir.join(STATE), &self.state_at(hwm), self.cfg.fsync).is_ok() {
            g.hwm_saved = hwm;
            g.hwm_unsaved = false;
        }
    }

    /// Deletes the active segment when every record in it is acknowledged, so its space is
    /// not held for nothing when the spool is full.
    fn reclaim_active(&self, g: &mut Inner) -> Result<(), SpoolError> {
        if let Some(a) = g.active
            && g.segments.get(&a).is_some_and(|s| s.live == 0)
        {
            self.delete_segment(g, a)?;
        }
        Ok(())
    }

    fn write(
        &self,
        g: &mut Inner,
        meta: &RecordMeta,
        header: &[u8; HEADER_LEN],
        payload: &[u8],
    ) -> Result<(), WriteError> {
        let rec_len = (HEADER_LEN + payload.len()) as u64;
        if let Some(a) = g.active {
            let seg = &g.segments[&a];
            if seg.len > 0 && seg.len + rec_len > g.segment_bytes {
                self.seal(g, a).map_err(WriteError::Other)?;
            }
        }
        let key = match g.active {
            Some(a) => a,
            None => {
                let path = self.dir.join(segment_name(meta.seq));
                let file = super::private::file_options()
                    .read(true)
                    .append(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| {
                        if is_no_space(&e) {
                            WriteError::NoSpace
                        } else {
                            WriteError::Other(io_err(&path)(e))
                        }
                    })?;
                if self.cfg.fsync != FsyncPolicy::Never {
                    sync_dir(&self.dir).map_err(WriteError::Other)?;
                }
                g.segments.insert(
                    meta.seq,
                    Segment {
                        path,
                        file: Arc::new(file),
                        len: 0,
                        records: 0,
                        live: 0,
                        last_seq: 0,
                        dirty: false,
                    },
                );
                g.active = Some(meta.seq);
                meta.seq
            }
        };
        // Only `Always` waits for the device here, under the lock. `IntervalMs` leaves it
        // to `sync`, which the agent calls on the interval and for each checkpoint, outside
        // the lock: an append never holds the shipper (and the listeners on its runtime)
        // behind a slow disk's flush.
        let sync = self.cfg.fsync == FsyncPolicy::Always;
        let seg = g.segments.get_mut(&key).expect("active segment");
        let prev = seg.len;
        let res = self
            .write_record(&seg.file, header, payload)
            .and_then(|()| if sync { seg.file.sync_data() } else { Ok(()) });
        if let Err(e) = res {
            // Roll back to the last whole record, so the segment stays clean.
            let rolled = seg.file.set_len(prev);
            if prev == 0 {
                let path = seg.path.clone();
                g.segments.remove(&key);
                g.active = None;
                fs::remove_file(&path).ok(); // an empty file left behind is harmless
            }
            if let Err(re) = rolled {
                return Err(WriteError::Other(
                    io_err(&self.dir.join(segment_name(key)))(re),
                ));
            }
            return Err(if is_no_space(&e) {
                WriteError::NoSpace
            } else {
                WriteError::Other(io_err(&self.dir.join(segment_name(key)))(e))
            });
        }
        seg.len += rec_len;
        seg.records += 1;
        seg.live += 1;
        seg.last_seq = meta.seq;
        seg.dirty = !sync;
        g.disk_bytes += rec_len;
        g.unacked_bytes += rec_len;
        g.index.insert(
            meta.seq,
            Entry {
                segment: key,
                offset: prev,
                len: rec_len,
                events: meta.events,
                created_ms: meta.created_ms,
            },
        );
        Ok(())
    }

    fn write_record(&self, mut file: &File, header: &[u8], payload: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering;
            if self
                .fail_writes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                file.write_all(&header[..10])?;
                return Err(io::Error::from_raw_os_error(ENOSPC));
            }
        }
        file.write_all(header)?;
        file.write_all(payload)
    }

    /// Stops appending to segment `key`, and deletes it if nothing in it waits. What is
    /// not flushed yet stays for the next [`Spool::sync`] (which flushes sealed segments
    /// too), not flushed here under the lock.
    fn seal(&self, g: &mut Inner, key: u64) -> Result<(), SpoolError> {
        if g.active == Some(key) {
            g.active = None;
        }
        if g.segments.get(&key).is_some_and(|s| s.live == 0) {
            self.delete_segment(g, key)?;
        }
        Ok(())
    }

    /// Deletes segment `key`, first saving the high-water mark if it holds the highest seqs
    /// the state file does not know yet.
    fn delete_segment(&self, g: &mut Inner, key: u64) -> Result<(), SpoolError> {
        let Some(seg) = g.segments.get(&key) else {
            return Ok(());
        };
        // Only needed when no other segment keeps a seq as high: rare, as segments go
        // oldest first.
        let needed = seg.last_seq > g.hwm_saved
            && !g
                .segments
                .iter()
                .any(|(&k, s)| k != key && s.last_seq >= seg.last_seq);
        let hwm = g.next_seq.saturating_sub(1).max(seg.last_seq);
        let state = self.dir.join(STATE);
        let mut saved = !needed;
        if needed {
            match persist_state(&state, &self.state_at(hwm), self.cfg.fsync) {
                Ok(()) => {
                    g.hwm_saved = hwm;
                    g.hwm_unsaved = false;
                    saved = true;
                }
                // A full disk has no room for the state's temp file: free the segment
                // first, then try again (a crash in between loses the mark, not data: all
                // of it went).
                Err(SpoolError::Io { source, .. }) if is_no_space(&source) => {}
                Err(e) => return Err(e),
            }
        }
        let seg = g.segments.remove(&key).expect("segment present");
        match fs::remove_file(&seg.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                g.segments.insert(key, seg);
                let path = self.dir.join(segment_name(key));
                return Err(io_err(&path)(e));
            }
        }
        // Our handle goes with it: the space of a deleted file is freed only once the last
        // handle on it closes (a reader's may still be open: it says so when it closes).
        drop(seg.file);
        g.disk_bytes -= seg.len;
        if g.active == Some(key) {
            g.active = None;
        }
        if !saved {
            match persist_state(&state, &self.state_at(hwm), self.cfg.fsync) {
                Ok(()) => {
                    g.hwm_saved = hwm;
                    g.hwm_unsaved = false;
                }
                // Still no room (a reader holds the deleted file, or someone else filled
                // the device): the next append tries again.
                Err(SpoolError::Io { source, .. }) if is_no_space(&source) => {
                    g.hwm_unsaved = true;
                }
                Err(e) => {
                    g.hwm_unsaved = true;
                    self.freed(g);
                    return Err(e);
                }
            }
        }
        // The log holds acks of deleted segments too: rewrite it once they are most of it
        // (amortised: each rewrite at least halves it). Counted in records, not in bytes
        // over the smallest record: that bound let a log beside a full spool grow to a
        // third of `max_bytes` before a rewrite, and opening reads the log whole.
        let on_disk: u64 = g.segments.values().map(|s| s.records).sum();
        if g.ack_entries > 1024 && g.ack_entries > 2 * on_disk {
            let kept = acked_on_disk(&g.segments, &g.index);
            // On failure (a full disk) the old log stays: longer, still right.
            if let Ok(f) = write_acks(&self.dir, &kept, self.cfg.fsync) {
                g.acks = f;
                g.ack_entries = kept.len() as u64;
            }
        }
        self.freed(g);
        Ok(())
    }

    fn freed(&self, g: &mut Inner) {
        g.freed += 1;
        if g.waiters > 0 {
            self.space.notify_all();
        }
    }

    /// Drops the oldest segment with everything waiting in it; false when there is none.
    fn drop_oldest(&self, g: &mut Inner) -> Result<bool, SpoolError> {
        let Some(&key) = g.segments.keys().next() else {
            return Ok(false);
        };
        let (mut batches, mut events, mut bytes) = (0u64, 0u64, 0u64);
        let cursor = g.cursor;
        let mut in_flight = Vec::new();
        let Inner { index, retry, .. } = &mut *g;
        index.retain(|&seq, e| {
            if e.segment != key {
                return true;
            }
            bytes += e.len;
            // One waiting to be sent again is not on the wire (its stream failed): lost
            // now, like one not handed out yet.
            if seq < cursor && !retry.remove(&seq) {
                // Its bytes are on the wire already: the ack says whether it was lost.
                in_flight.push((seq, e.events));
            } else {
                batches += 1;
                events += u64::from(e.events);
            }
            false
        });
        g.dropped_in_flight.extend(in_flight);
        g.dropped_batches += batches;
        g.dropped_events += events;
        g.unacked_bytes -= bytes;
        if let Some(seg) = g.segments.get_mut(&key) {
            seg.live = 0;
        }
        self.delete_segment(g, key)?;
        Ok(true)
    }

    /// The next waiting batch not handed out yet, in seq order: its seq and its bytes (the
    /// encoded batch, exactly what goes on the stream). A record found damaged on the way
    /// is counted and skipped. Reads the disk without holding the lock.
    pub fn next_unsent(&self) -> Result<Option<(u64, Vec<u8>)>, SpoolError> {
        loop {
            let (seq, e, file, path) = {
                let mut g = self.lock();
                let again = loop {
                    match g.retry.pop_first() {
                        // Acknowledged or dropped since, or to come in order anyway.
                        Some(seq) if seq >= g.cursor => {}
                        Some(seq) => {
                            if let Some(&e) = g.index.get(&seq) {
                                break Some((seq, e));
                            }
                        }
                        None => break None,
                    }
                };
                let (seq, e) = match again {
                    Some(r) => r,
                    None => {
                        let Some((&seq, &e)) = g.index.range(g.cursor..).next() else {
                            return Ok(None);
                        };
                        g.cursor = seq + 1;
                        (seq, e)
                    }
                };
                let seg = &g.segments[&e.segment];
                (seq, e, Arc::clone(&seg.file), seg.path.clone())
            };
            let mut buf = vec![0u8; e.len as usize];
            let read = file.read_exact_at(&mut buf, e.offset);
            self.done_reading(e.segment, file);
            if let Err(err) = read {
                // Gone for good (the file was cut under it), or failing again and again
                // (a bad sector): counted as damaged and skipped, as a record that reads
                // back wrong is. Otherwise an error for this attempt; it comes again.
                let failures = {
                    let mut g = self.lock();
                    let n = g.read_failures.entry(seq).or_insert(0);
                    *n += 1;
                    *n
                };
                if err.kind() == io::ErrorKind::UnexpectedEof || failures >= READ_ATTEMPTS {
                    eprintln!(
                        "vedette-agent: spool: batch {seq} in {} cannot be read ({err}); given up as damaged",
                        path.display()
                    );
                    self.forget_damaged(seq)?;
                    continue;
                }
                return Err(io_err(&path)(err));
            }
            match format::check(&buf) {
                Ok((meta, _)) if meta.seq == seq => {
                    buf.drain(..HEADER_LEN);
                    return Ok(Some((seq, buf)));
                }
                _ => self.forget_damaged(seq)?,
            }
        }
    }

    /// Closes a reader's handle on segment `key`. When the segment was deleted meanwhile,
    /// this was the last handle keeping its space: a blocked appender may now fit.
    fn done_reading(&self, key: u64, file: Arc<File>) {
        let mut g = self.lock();
        let gone = !g
            .segments
            .get(&key)
            .is_some_and(|s| Arc::ptr_eq(&s.file, &file));
        drop(file);
        if gone {
            self.freed(&mut g);
        }
    }

    /// A record that no longer checks out when read back (the disk changed it): it can
    /// never be sent; count it and free it.
    fn forget_damaged(&self, seq: u64) -> Result<(), SpoolError> {
        let mut g = self.lock();
        g.read_failures.remove(&seq);
        let Some(e) = g.index.remove(&seq) else {
            return Ok(());
        };
        g.damaged_records += 1;
        g.damaged_bytes += e.len;
        self.release(&mut g, e)
    }

    /// Bookkeeping of an entry leaving the index (acknowledged or damaged).
    fn release(&self, g: &mut Inner, e: Entry) -> Result<(), SpoolError> {
        g.unacked_bytes -= e.len;
        let Some(seg) = g.segments.get_mut(&e.segment) else {
            return Ok(());
        };
        seg.live -= 1;
        if seg.live == 0 {
            if g.active == Some(e.segment) {
                // Kept for appends, but reclaimable by a blocked appender.
                self.freed(g);
            } else {
                self.delete_segment(g, e.segment)?;
            }
        }
        Ok(())
    }

    /// Whether a batch waits to be handed out. Does not wait for an append in progress.
    pub fn has_unsent(&self) -> bool {
        self.unsent_waiting.load(Ordering::Acquire)
    }

    /// Returns when there may be a batch to hand out (or the spool was just closed): check
    /// with [`Spool::next_unsent`] and come back. For the one shipper task. It returns at
    /// once only while a batch waits to be handed out: a closed spool wakes it once, not
    /// for good (a caller looping on it would spin).
    pub async fn wait_unsent(&self) {
        if self.has_unsent() {
            return;
        }
        self.unsent.notified().await;
    }

    /// Batch `seq`, handed out and not acknowledged, is handed out again (before those
    /// not handed out yet): its stream failed while the connection stayed up. Nothing if
    /// it is no longer waiting.
    pub fn retry(&self, seq: u64) {
        let mut g = self.lock();
        if seq < g.cursor && g.index.contains_key(&seq) {
            g.retry.insert(seq);
        } else if let Some(events) = g.dropped_in_flight.remove(&seq) {
            // Dropped (drop-oldest) while out, and its stream failed: lost now, not at the
            // end of a session that may last long.
            g.dropped_batches += 1;
            g.dropped_events += u64::from(events);
        }
        drop(g);
        self.unsent.notify_one();
    }

    /// The connection was lost: everything handed out but not acknowledged is handed out
    /// again, in seq order.
    pub fn requeue_unacked(&self) {
        let mut g = self.lock();
        g.cursor = 0;
        g.retry.clear();
        // Deleted while out, and no ack came: lost (at worst stored by an aggregator whose
        // ack the cut connection lost, which its watermarks then show).
        let lost = std::mem::take(&mut g.dropped_in_flight);
        g.dropped_batches += lost.len() as u64;
        g.dropped_events += lost.values().map(|&n| u64::from(n)).sum::<u64>();
        drop(g);
        self.unsent.notify_one();
    }

    /// The aggregator acknowledged `seq`: frees it, and its segment once nothing in it
    /// waits. False when `seq` was not waiting (acknowledged before, or dropped).
    pub fn ack(&self, seq: u64) -> Result<bool, SpoolError> {
        let mut g = self.lock();
        g.read_failures.remove(&seq);
        let Some(e) = g.index.remove(&seq) else {
            // Dropped while out, then stored after all: not a loss.
            g.dropped_in_flight.remove(&seq);
            return Ok(false);
        };
        g.acked += 1;
        // Space first: on a full disk the ack log cannot grow, and an ack that freed
        // nothing would leave a blocked spool blocked for good.
        self.release(&mut g, e)?;
        let mut log = &g.acks;
        match log.write_all(&seq.to_le_bytes()) {
            Ok(()) => g.ack_entries += 1,
            // A missing entry costs one resend after a restart, which the aggregator
            // answers as a replay; it is not worth failing the ack for.
            Err(e) => {
                if !g.ack_log_failed {
                    g.ack_log_failed = true;
                    eprintln!(
                        "vedette-agent: recording acks in {}: {e}; a restart will resend acknowledged batches (answered as replays)",
                        self.dir.join(ACKS).display()
                    );
                }
            }
        }
        Ok(true)
    }

    /// Flushes every segment holding records not flushed yet: the one being written and
    /// any sealed since the last flush (for `IntervalMs` on a timer, before a source's
    /// checkpoint is synced, and at shutdown). Once it returns `Ok`, every batch appended
    /// before the call is on the device. The lock is not held while the device works:
    /// appends and acks go on meanwhile. On an error the segments not flushed stay marked
    /// for the next call.
    pub fn sync(&self) -> Result<(), SpoolError> {
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(|e| e.into_inner());
        let dirty: Vec<(u64, Arc<File>, PathBuf)> = {
            let mut g = self.lock();
            g.segments
                .iter_mut()
                .filter(|(_, seg)| seg.dirty)
                .map(|(&key, seg)| {
                    // An append from now on marks it dirty again, for the next sync.
                    seg.dirty = false;
                    (key, Arc::clone(&seg.file), seg.path.clone())
                })
                .collect()
        };
        let mut first_err = None;
        for (key, file, path) in dirty {
            if let Err(e) = file.sync_data() {
                let mut g = self.lock();
                if let Some(seg) = g.segments.get_mut(&key)
                    && Arc::ptr_eq(&seg.file, &file)
                {
                    seg.dirty = true;
                }
                first_err.get_or_insert_with(|| io_err(&path)(e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// When appends are flushed.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.cfg.fsync
    }

    /// Stops the spool: blocked and later appends return `Err(Closed)`, the shipper's
    /// [`Spool::wait_unsent`] returns. Batches already stored stay for the next start.
    pub fn close(&self) {
        self.lock().closed = true;
        self.space.notify_all();
        self.unsent.notify_waiters();
        self.unsent.notify_one();
    }

    /// For a stop: from now on an append that would wait for space (block policy, full)
    /// returns `Err(Closed)` at once, and those waiting do; appends with room go on. Only
    /// what cannot be spooled is given up, so a stop with room loses nothing (a syslog
    /// listener's last messages, which no checkpoint would read again).
    pub fn stop_waiting(&self) {
        self.lock().no_wait = true;
        self.space.notify_all();
    }

    /// Whether [`Spool::close`] or [`Spool::stop_waiting`] was called.
    pub fn is_closed(&self) -> bool {
        let g = self.lock();
        g.closed || g.no_wait
    }

    /// The counters, as of the end of the last operation (an append in progress, which
    /// may be waiting for the device, is not waited for).
    pub fn stats(&self) -> SpoolStats {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Test hook: appenders currently waiting for space.
    #[cfg(test)]
    fn waiters(&self) -> usize {
        self.lock().waiters
    }

    /// Test hook: segments holding records not flushed yet.
    #[cfg(test)]
    fn unflushed_segments(&self) -> usize {
        self.lock().segments.values().filter(|s| s.dirty).count()
    }
}

/// The spool's lock: releasing it publishes the counters ([`Spool::publish`]).
struct Locked<'a> {
    spool: &'a Spool,
    /// `None` only inside [`Locked::wait_space`].
    guard: Option<MutexGuard<'a, Inner>>,
}

impl Locked<'_> {
    /// Releases the lock until space may have been freed or `timeout` passed; true on the
    /// timeout.
    fn wait_space(&mut self, timeout: std::time::Duration) -> bool {
        let g = self.guard.take().expect("held");
        self.spool.publish(&g);
        let (g, t) = self
            .spool
            .space
            .wait_timeout(g, timeout)
            .unwrap_or_else(|p| p.into_inner());
        self.guard = Some(g);
        t.timed_out()
    }
}

impl std::ops::Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.guard.as_ref().expect("held")
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        self.guard.as_mut().expect("held")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Some(g) = &self.guard {
            self.spool.publish(g);
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if self.cfg.fsync != FsyncPolicy::Never {
            // Best effort at shutdown; an error here has no one left to tell.
            self.sync().ok();
        }
    }
}

/// The acknowledged seqs of the segments still on disk: every seq in a segment's range
/// that is not waiting (one a damaged record held, too: harmless).
fn acked_on_disk(segments: &BTreeMap<u64, Segment>, index: &BTreeMap<u64, Entry>) -> Vec<u64> {
    let mut out = Vec::new();
    for (&first, seg) in segments {
        out.extend((first..=seg.last_seq).filter(|s| !index.contains_key(s)));
    }
    out
}

/// Replaces the ack log with `seqs` (temp file, rename) and opens it for appending.
fn write_acks(dir: &Path, seqs: &[u64], fsync: FsyncPolicy) -> Result<File, SpoolError> {
    let path = dir.join(ACKS);
    let tmp = dir.join(".acks.tmp");
    let bytes: Vec<u8> = seqs.iter().flat_map(|s| s.to_le_bytes()).collect();
    let written = super::private::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&bytes)?;
            if fsync != FsyncPolicy::Never {
                f.sync_all()?;
            }
            Ok(())
        });
    if let Err(e) = written {
        // A partial copy on a full disk would hold the space the spool needs.
        fs::remove_file(&tmp).ok();
        return Err(io_err(&tmp)(e));
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    if fsync != FsyncPolicy::Never {
        sync_dir(dir)?;
    }
    OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(io_err(&path))
}

/// The acknowledgement log as it is, opened for appending (a full disk has no room for
/// a compacted copy): a torn last entry is cut so the next ones stay aligned. Returns the
/// file and its entries.
fn reopen_acks(path: &Path) -> Result<(File, u64), SpoolError> {
    let f = super::private::file_options()
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let whole = len - len % 8;
    if whole != len {
        f.set_len(whole).map_err(io_err(path))?;
    }
    Ok((f, whole / 8))
}

fn persist_state(path: &Path, state: &SpoolState, fsync: FsyncPolicy) -> Result<(), SpoolError> {
    super::persist::write_atomic(path, &state_text(state), fsync != FsyncPolicy::Never)
        .map_err(io_err(path))
}

/// One segment as [`verify`] found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentReport {
    /// The file.
    pub path: PathBuf,
    /// Its length.
    pub bytes: u64,
    /// Valid records.
    pub batches: u64,
    /// Events in them.
    pub events: u64,
    /// Lowest and highest seq of its valid records.
    pub seqs: Option<(u64, u64)>,
    /// Damaged regions (byte ranges), one damaged record each.
    pub damaged: Vec<Range<u64>>,
    /// A write cut short at the end (the next open truncates it).
    pub torn_tail: Option<Range<u64>>,
    /// Records whose checksum holds but whose batch does not decode: offset, seq, why.
    pub undecodable: Vec<(u64, u64, String)>,
}

/// What [`verify`] found, for `vedette-agent spool verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// The spool directory.
    pub dir: PathBuf,
    /// The epoch, when the state file is readable.
    pub epoch: Option<u64>,
    /// Earlier epochs (before a reboot), whose batches may still be spooled.
    pub earlier_epochs: Vec<u64>,
    /// The saved high-water mark, when the state file is readable.
    pub hwm: Option<u64>,
    /// Why the state file is not readable, if it is not.
    pub state_problem: Option<String>,
    /// Every segment, by first seq.
    pub segments: Vec<SegmentReport>,
}

impl VerifyReport {
    /// Valid batches in all segments.
    pub fn batches(&self) -> u64 {
        self.segments.iter().map(|s| s.batches).sum()
    }

    /// Bytes of all segment files.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Damaged records in all segments.
    pub fn damaged_records(&self) -> u64 {
        self.segments.iter().map(|s| s.damaged.len() as u64).sum()
    }

    /// Lowest and highest seq over all segments.
    pub fn seqs(&self) -> Option<(u64, u64)> {
        self.segments
            .iter()
            .filter_map(|s| s.seqs)
            .fold(None, |acc, (lo, hi)| {
                Some(acc.map_or((lo, hi), |(a, b): (u64, u64)| (a.min(lo), b.max(hi))))
            })
    }

    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.state_problem.is_none()
            && self
                .segments
                .iter()
                .all(|s| s.damaged.is_empty() && s.torn_tail.is_none() && s.undecodable.is_empty())
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "spool {}", self.dir.display())?;
        match (self.epoch, &self.state_problem) {
            (Some(e), _) => writeln!(
                f,
                "  epoch {e:016x}, high-water mark {}",
                self.hwm.unwrap_or(0)
            )?,
            (None, Some(p)) => writeln!(f, "  state: {p}")?,
            (None, None) => writeln!(f, "  state: none")?,
        }
        let events: u64 = self.segments.iter().map(|s| s.events).sum();
        write!(
            f,
            "  {} segments, {} batches, {} events, {} bytes",
            self.segments.len(),
            self.batches(),
            events,
            self.bytes()
        )?;
        match self.seqs() {
            Some((lo, hi)) => writeln!(f, ", seqs {lo}..={hi}")?,
            None => writeln!(f)?,
        }
        for s in &self.segments {
            let name = s
                .path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            write!(f, "  {name}: {} batches, {} bytes", s.batches, s.bytes)?;
            match s.seqs {
                Some((lo, hi)) => writeln!(f, ", seqs {lo}..={hi}")?,
                None => writeln!(f)?,
            }
            for d in &s.damaged {
                writeln!(
                    f,
                    "    damaged record at bytes {}..{} ({} bytes lost)",
                    d.start,
                    d.end,
                    d.end - d.start
                )?;
            }
            if let Some(t) = &s.torn_tail {
                writeln!(
                    f,
                    "    torn tail at bytes {}..{} ({} bytes, cut off at the next start)",
                    t.start,
                    t.end,
                    t.end - t.start
                )?;
            }
            for (offset, seq, why) in &s.undecodable {
                writeln!(f, "    batch {seq} at byte {offset} does not decode: {why}")?;
            }
        }
        let torn: u64 = self
            .segments
            .iter()
            .filter_map(|s| s.torn_tail.as_ref())
            .map(|t| t.end - t.start)
            .sum();
        let undecodable: usize = self.segments.iter().map(|s| s.undecodable.len()).sum();
        if self.is_clean() {
            write!(f, "  ok: no damage")
        } else {
            write!(
                f,
                "  damage: {} damaged records, {} torn bytes, {} undecodable batches",
                self.damaged_records(),
                torn,
                undecodable
            )
        }
    }
}

/// Opens `dir` and takes its exclusive lock, or says who has it (released when the file
/// is closed, so also when the holder dies). A lock held for a moment is waited for: a
/// process forked by this one holds a copy of the descriptor until its exec closes it.
fn lock_dir(dir: &Path) -> Result<fs::File, SpoolError> {
    const TRIES: u32 = 50;
    let f = fs::File::open(dir).map_err(io_err(dir))?;
    let mut tries = 1;
    loop {
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(f),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK && tries < TRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(SpoolError::InUse(dir.to_owned()));
            }
            Err(e) => {
                return Err(SpoolError::Io {
                    path: dir.to_owned(),
                    source: e.into(),
                });
            }
        }
    }
}

/// Checks a spool directory without changing it: every record's checksum, every batch's
/// decoding, the state file. For `vedette-agent spool verify`; safe while the agent runs
/// (a record being written may show as a torn tail).
pub fn verify(dir: &Path) -> Result<VerifyReport, SpoolError> {
    let mut report = VerifyReport {
        dir: dir.to_path_buf(),
        ..VerifyReport::default()
    };
    let state_path = dir.join(STATE);
    match fs::read_to_string(&state_path) {
        Ok(text) => match parse_state(&text) {
            Some(state) => {
                report.epoch = Some(state.epoch);
                report.hwm = Some(state.hwm);
                report.earlier_epochs = state.earlier;
            }
            None => {
                report.state_problem = Some(format!(
                    "{} is not a spool state file",
                    state_path.display()
                ))
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            report.state_problem = Some(format!("{} is missing", state_path.display()));
        }
        Err(e) => return Err(io_err(&state_path)(e)),
    }
    for (_, path) in list_segments(dir)? {
        let data = fs::read(&path).map_err(io_err(&path))?;
        let scan = format::scan(&data);
        let mut seg = SegmentReport {
            path,
            bytes: data.len() as u64,
            batches: scan.records.len() as u64,
            damaged: scan.damaged.iter().map(|d| d.range.clone()).collect(),
            torn_tail: scan.torn_tail.clone(),
            ..SegmentReport::default()
        };
        for r in &scan.records {
            let seq = r.meta.seq;
            seg.events += u64::from(r.meta.events);
            seg.seqs = Some(
                seg.seqs
                    .map_or((seq, seq), |(lo, hi)| (lo.min(seq), hi.max(seq))),
            );
            let p = r.payload();
            match batcher::decode(&data[p.start as usize..p.end as usize]) {
                Ok((h, _))
                    if h.seq == seq
                        && report.epoch.is_none_or(|e| {
                            e == h.epoch || report.earlier_epochs.contains(&h.epoch)
                        }) => {}
                Ok((h, _)) => seg.undecodable.push((
                    r.offset,
                    seq,
                    format!("its header says epoch {:016x} seq {}", h.epoch, h.seq),
                )),
                Err(e) => seg.undecodable.push((r.offset, seq, e.to_string())),
            }
        }
        report.segments.push(seg);
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
