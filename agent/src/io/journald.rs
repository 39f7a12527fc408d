//! The journald input of `vedette-agent run`: `journalctl --output=json --follow`, resumed
//! after the cursor of the last entry whose event was written (what mature agents do; the
//! journal's C API would tie the agent to libsystemd). Entries go to the stage in batches
//! with at most two unacknowledged, and the cursor is checkpointed after every
//! acknowledgement, like a file offset: a kill -9 repeats at most the entries in flight,
//! with the same uids (they derive from the cursor).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::tz::TimeZone;
use tokio::sync::mpsc;

use super::acks;
use super::clock;
use super::durable::{Barrier, CheckpointSync};
use super::pipeline::{Batch, LiveSource, RecordKind, StageMsg};
use crate::config::{JournaldInput, ReadFrom};
use crate::core::time::TimeContext;
use crate::core::{Received, Source, journal};

const BATCH_LINES: usize = 512;
/// A batch is also sent once it holds this many bytes: lines may be a megabyte each, and
/// 512 of them, two in flight and more queued, held gigabytes while catching up.
const BATCH_BYTES: usize = 1 << 20;
const MAX_IN_FLIGHT: usize = 2;
const SYNC_EVERY_MS: i64 = 1000;
/// How long before `journalctl` is started again after it exited on its own.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// A cursor file holding this and a Unix time in seconds, not a cursor: where a first start
/// from the end began ([`Reader::mark_start`]).
const SINCE: &str = "since=@";

/// The smallest cap on one `journalctl` JSON line (see [`Reader::line_cap`]).
const MIN_LINE_CAP: usize = 1 << 20;

/// A running journald input.
#[derive(Debug)]
pub struct JournaldSource {
    child: Arc<Mutex<Option<Child>>>,
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    /// For logs: the `journalctl` command line.
    pub name: String,
}

impl JournaldSource {
    /// Stops `journalctl`, waits for the stage to acknowledge what was sent, saves the
    /// cursor.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        kill(&self.child);
        if self.thread.join().is_err() {
            eprintln!("vedette-agent: {}: the reader panicked", self.name);
        }
    }
}

/// The cursor file of an input, named after its command line.
pub fn cursor_path(state_dir: &Path, input: &JournaldInput) -> PathBuf {
    let key = format!("{}\n{}", input.journalctl.display(), input.args.join("\n"));
    let h = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
    state_dir.join(format!("journald-{h:016x}.cursor"))
}

/// Starts reading the journal.
pub fn spawn(
    input: &JournaldInput,
    state_dir: &Path,
    tz: TimeZone,
    max_line_bytes: usize,
    tx: mpsc::Sender<StageMsg>,
    barrier: Barrier,
) -> std::io::Result<JournaldSource> {
    let name = std::iter::once(input.journalctl.display().to_string())
        .chain(input.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let log_source = if input.args.is_empty() {
        "journald".to_owned()
    } else {
        format!("journald:{}", input.args.join(" "))
    };
    // A journalctl that cannot run at all (not installed, not executable) is the config's
    // error, said at start or reload; it was retried every second for ever, in silence
    // after "reading the journal".
    if let Err(e) = Command::new(&input.journalctl)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        return Err(std::io::Error::new(
            e.kind(),
            format!("cannot run {}: {e}", input.journalctl.display()),
        ));
    }
    let child = Arc::new(Mutex::new(None));
    let stopping = Arc::new(AtomicBool::new(false));
    let reader = Reader {
        input: input.clone(),
        cursor_file: cursor_path(state_dir, input),
        log_source,
        tz,
        tx,
        child: child.clone(),
        stopping: stopping.clone(),
        in_flight: 0,
        line_cap: max_line_bytes.saturating_mul(4).max(MIN_LINE_CAP),
        committed: None,
        saved: None,
        since: None,
        sources: Default::default(),
        name: name.clone(),
        pending: Default::default(),
        next_batch: 0,
        acked_through: None,
        floors: Default::default(),
        saver: CheckpointSync::new(barrier, SYNC_EVERY_MS, clock::monotonic_ms()),
    };
    let thread = std::thread::Builder::new()
        .name("vedette-journal".into())
        .spawn(move || reader.run())?;
    Ok(JournaldSource {
        child,
        stopping,
        thread,
        name,
    })
}

struct Reader {
    input: JournaldInput,
    cursor_file: PathBuf,
    log_source: String,
    tz: TimeZone,
    tx: mpsc::Sender<StageMsg>,
    child: Arc<Mutex<Option<Child>>>,
    stopping: Arc<AtomicBool>,
    in_flight: usize,
    /// Bytes of one JSON line kept: with `--all`, a field is as big as what was logged
    /// (a core dump stored in the journal is megabytes), so a line over this is cut, and
    /// its event says so. Four times `max_line_bytes`: JSON escaping and the other fields
    /// around a message of the largest size kept whole.
    line_cap: usize,
    /// The cursor of the last entry whose event is written.
    committed: Option<String>,
    saved: Option<String>,
    /// Where to start, seconds since the epoch, when `journalctl` refused the saved cursor.
    since: Option<i64>,
    /// Per journal sequence-number id: the source its entries are normalized as.
    sources: std::collections::HashMap<String, LiveSource>,
    name: String,
    /// Batches sent whose end the checkpoint has not passed, in order: the stage may still
    /// hold events of their entries (a repeat inside a dedup window, an auditd event
    /// waiting for its end), and a cursor past those would lose them to a crash.
    pending: std::collections::VecDeque<Sent>,
    /// The number the next batch sent gets ([`Sent::n`]).
    next_batch: u64,
    /// The last batch the stage acknowledged.
    acked_through: Option<u64>,
    /// By source: the earliest sequence number the stage still holds.
    floors: std::collections::HashMap<String, u64>,
    /// Which cursor saves are synced (after the sink: see `durable`).
    saver: CheckpointSync,
}

/// A batch sent to the stage: its number (in sending order), its source (sequence-number
/// id), its last entry's sequence number and cursor.
struct Sent {
    n: u64,
    key: String,
    last: u64,
    cursor: String,
}

/// What the stage says of a source's entries: a batch acknowledged (`batch` is its
/// [`Sent::n`]) with the earliest sequence number of its source the stage still holds
/// (`floor`), or, without `batch`, that the source's entries before `floor` held back
/// earlier are out (`pipeline::LateCommit`).
struct JournalAck {
    key: String,
    batch: Option<u64>,
    floor: Option<u64>,
    /// The last batch of one [`Reader::send`]: one fewer in flight.
    completes: bool,
}

/// How many of the `pending` batches (in order) the checkpoint may pass: those the stage
/// has acknowledged (up to batch `acked_through`) whose entries all lie below what the
/// stage still holds of their source (`floors`, by source). One cursor orders every
/// source of the journal, so a batch held by its own source's floor holds back the
/// batches of other sources after it too: passing them, the cursor passed the held
/// entries, and a crash lost them.
fn passable(
    pending: &std::collections::VecDeque<Sent>,
    acked_through: Option<u64>,
    floors: &std::collections::HashMap<String, u64>,
) -> usize {
    let Some(through) = acked_through else {
        return 0;
    };
    pending
        .iter()
        .take_while(|s| s.n <= through && floors.get(&s.key).is_none_or(|&f| s.last < f))
        .count()
}

impl Reader {
    fn run(mut self) {
        let saved = std::fs::read_to_string(&self.cursor_file)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        match saved {
            Some(m) if m.starts_with(SINCE) => self.since = m[SINCE.len()..].parse().ok(),
            Some(c) => self.committed = Some(c),
            None if self.input.read_from == ReadFrom::End => match self.tail_cursor() {
                // Read from after the last entry there is now, saved at once.
                Some(c) => {
                    self.committed = Some(c);
                    self.save(true);
                }
                None => self.mark_start(),
            },
            None => {}
        }
        self.saved = self.committed.clone();
        let (commit_tx, commit_rx) = std_mpsc::channel::<JournalAck>();
        while !self.stopping.load(Ordering::SeqCst) {
            let mut child = match self.command().spawn() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("vedette-agent: cannot run {}: {e}", self.name);
                    std::thread::sleep(RESTART_AFTER);
                    continue;
                }
            };
            let stdout = child.stdout.take().expect("piped stdout");
            *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
            // A stop that came while starting: the kill above found no child yet.
            if self.stopping.load(Ordering::SeqCst) {
                self.kill_child();
            }
            let mut entries = 0usize;
            let mut reader = BufReader::with_capacity(1 << 20, stdout);
            let mut batch: Vec<Line> = Vec::new();
            let mut batch_bytes = 0usize;
            let mut line = Vec::new();
            loop {
                line.clear();
                // Idle between entries: acknowledgements that come meanwhile (a cursor
                // move a dedup window held back until it ended) are taken now, not at the
                // next entry, which may be hours away: a crash meanwhile would read the
                // entries since the held one again.
                if reader.buffer().is_empty() {
                    while !readable(reader.get_ref(), acks::ACK_SLICE) {
                        while let Ok(a) = commit_rx.try_recv() {
                            self.acked(a);
                        }
                        if self.stopping.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                }
                let (n, skipped_cursor) =
                    match read_line_capped(&mut reader, &mut line, self.line_cap) {
                        Ok(r) => r,
                        Err(e) => {
                            eprintln!("vedette-agent: {}: {e}", self.name);
                            (0, None)
                        }
                    };
                if n > 0 {
                    entries += 1;
                    let cursor = cursor_of(&line).or(skipped_cursor);
                    let cut_from = (n > line.len()).then_some(n as u64);
                    batch_bytes += line.len();
                    batch.push(Line {
                        bytes: line.clone(),
                        cursor,
                        cut_from,
                    });
                }
                let idle = reader.buffer().is_empty();
                let full = batch.len() >= BATCH_LINES || batch_bytes >= BATCH_BYTES;
                if !batch.is_empty() && (n == 0 || idle || full) {
                    batch_bytes = 0;
                    if !self.send(&mut batch, &commit_tx, &commit_rx) {
                        self.kill_child();
                        break;
                    }
                }
                while let Ok(a) = commit_rx.try_recv() {
                    self.acked(a);
                }
                if n == 0 {
                    break;
                }
            }
            let status = self
                .child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .map(|mut c| c.wait());
            if !self.stopping.load(Ordering::SeqCst) {
                // Refused at once with an exit code; killed by a signal (the OOM killer,
                // a stop of the unit's cgroup) is no verdict on the cursor.
                let failed = matches!(&status, Some(Ok(s)) if s.code().is_some_and(|c| c != 0));
                if failed && entries == 0 && self.committed.is_some() {
                    self.drop_cursor();
                    continue;
                }
                eprintln!(
                    "vedette-agent: {} exited ({status:?}); starting it again",
                    self.name
                );
                std::thread::sleep(RESTART_AFTER);
            }
        }
        // What the stage acknowledges now is in the checkpoint; what it cannot (it ended,
        // or holds on past the drain time) is read again at the next start.
        let tx = self.tx.clone();
        let mut draining = acks::draining(&commit_rx, || !tx.is_closed());
        while self.in_flight > 0 {
            let Some(a) = draining.next() else { break };
            self.acked(a);
        }
        let sources = self.sources.values().map(LiveSource::uid_hash).collect();
        acks::flush_stage(&self.tx, sources);
        while let Ok(a) = commit_rx.try_recv() {
            self.acked(a);
        }
        let sync = self.saver.sync_final(&self.name);
        self.save(sync);
    }

    fn kill_child(&self) {
        kill(&self.child);
    }

    /// The cursor of the last entry the input's journal holds now (its filters applied),
    /// for a first start from the end: saved at once and followed from, nothing logged
    /// after it is missed, by this run or by a restart before any entry was acknowledged
    /// (with nothing saved, a restart started at the end again, and a quiet input
    /// (`-u sshd`) lost all that was logged while the agent was down).
    fn tail_cursor(&self) -> Option<String> {
        let out = Command::new(&self.input.journalctl)
            .args(&self.input.args)
            .args(["--output=json", "--lines=1", "--no-pager"])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .ok()?;
        cursor_of(&out.stdout)
    }

    /// A first start from the end of a journal with no entry yet (for its filters) saves
    /// when it started instead, so that a restart reads from then; the first acknowledged
    /// entry's cursor replaces it.
    fn mark_start(&self) {
        let marker = format!("{SINCE}{}", clock::now_ms().div_euclid(1000));
        if let Err(e) = super::persist::write_atomic(&self.cursor_file, &marker, true) {
            eprintln!(
                "vedette-agent: {}: saving the start to {}: {e}",
                self.name,
                self.cursor_file.display()
            );
        }
    }

    /// `journalctl` failed at once on the saved cursor ("Failed to seek to cursor": a
    /// cursor file edited, damaged or of another format): restarting it with the same
    /// cursor failed for ever, and nothing more was read. Start from the time the cursor
    /// names, or else from when it was saved (the file's time): what is read again has
    /// the same uids, so nothing is lost and the store drops the repeats. The file stays
    /// until a new cursor replaces it, so a restart meanwhile starts from there again.
    fn drop_cursor(&mut self) {
        let Some(bad) = self.committed.take() else {
            return;
        };
        self.saved = None;
        let saved_at = std::fs::metadata(&self.cursor_file)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| jiff::Timestamp::try_from(t).ok())
            .map(|t| t.as_second());
        self.since = cursor_time_s(&bad).or(saved_at).map(|s| s - 1);
        eprintln!(
            "vedette-agent: {}: journalctl refused the saved cursor {bad:?}; reading {} instead (entries read again keep their uids)",
            self.name,
            match self.since {
                Some(s) => format!("from @{s}, when it was saved"),
                None => format!("from the {:?} as for a first start", self.input.read_from),
            }
        );
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.input.journalctl);
        cmd.args(&self.input.args)
            // `--all`: without it journalctl replaces every field over 4096 bytes by null,
            // and a long message (a stack trace, a long command line) became an empty one.
            .args(["--output=json", "--all", "--follow", "--no-pager"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match (&self.committed, self.since, self.input.read_from) {
            (Some(c), _, _) => cmd.arg(format!("--after-cursor={c}")),
            (None, Some(s), _) => cmd.arg(format!("--since=@{s}")),
            (None, None, ReadFrom::Start) => cmd.arg("--no-tail"),
            (None, None, ReadFrom::End) => cmd.arg("--lines=0"),
        };
        cmd
    }

    /// Sends the batch, keeping at most [`MAX_IN_FLIGHT`] unacknowledged; false when the
    /// stage is gone or the reader is stopping while waiting for acknowledgements.
    fn send(
        &mut self,
        lines: &mut Vec<Line>,
        commit_tx: &std_mpsc::Sender<JournalAck>,
        commit_rx: &std_mpsc::Receiver<JournalAck>,
    ) -> bool {
        while self.in_flight >= MAX_IN_FLIGHT {
            let (stopping, tx) = (&self.stopping, &self.tx);
            let give_up = || stopping.load(Ordering::SeqCst) || tx.is_closed();
            match acks::next(commit_rx, give_up) {
                Some(a) => self.acked(a),
                None => return false,
            }
        }
        let now_ms = clock::now_ms();
        // Entries of one journal file share a source; a batch spans one source.
        let mut batches: Vec<Batch> = Vec::new();
        // The cursor of each batch's last entry that has one.
        let mut cursors: Vec<Option<String>> = Vec::new();
        for Line {
            bytes: line,
            cursor,
            cut_from,
        } in lines.drain(..)
        {
            let (key, seq) = cursor
                .as_deref()
                .and_then(journal::position)
                .map_or(("unknown".to_owned(), 0), |(s, i)| (s.to_owned(), i));
            let uid_key = format!("journald:s={key}");
            let same = batches
                .last()
                .is_some_and(|b| b.source.uid_key.as_deref() == Some(uid_key.as_str()));
            if !same {
                let src = self
                    .sources
                    .entry(uid_key.clone())
                    .or_insert_with(|| {
                        LiveSource::new(Source {
                            id: self.log_source.clone(),
                            uid_key: Some(uid_key),
                            time: TimeContext::new(clock::now(), self.tz.clone()),
                            syslog: false,
                            sender_name: None,
                        })
                    })
                    .at(now_ms);
                let mut b = Batch::new(src);
                b.kind = RecordKind::Journal;
                batches.push(b);
            }
            let rx = Received {
                seq,
                now_ms,
                peer: None,
                cut_from,
                clock_ms: None,
                incomplete: false,
            };
            batches.last_mut().expect("pushed above").push(&line, rx);
            if cursor.is_some() {
                if cursors.len() < batches.len() {
                    cursors.resize(batches.len(), None);
                }
                cursors[batches.len() - 1] = cursor;
            }
        }
        cursors.resize(batches.len(), None);
        // Every batch with a cursor is acknowledged, with its source's floor: the cursor
        // may pass a batch only once none of its source's entries up to it are held.
        let completing = cursors.iter().rposition(Option::is_some);
        for (i, (mut b, cursor)) in batches.into_iter().zip(cursors).enumerate() {
            if let Some(c) = cursor {
                let (key, last) = journal::position(&c)
                    .map_or(("unknown".to_owned(), 0), |(s, i)| (s.to_owned(), i));
                let n = self.next_batch;
                self.next_batch += 1;
                let completes = Some(i) == completing;
                let tx = commit_tx.clone();
                let k = key.clone();
                b.ack = Some(Box::new(move |floor| {
                    let _ignored = tx.send(JournalAck {
                        key: k,
                        batch: Some(n),
                        floor,
                        completes,
                    });
                }));
                // Held back by a floor, the cursor moves on once the stage lets go.
                b.end = Some(last + 1);
                let tx = commit_tx.clone();
                let k = key.clone();
                // The stage may hand over a later batch's end (it keeps one per source):
                // what it held before that end is out.
                b.late = Some(Arc::new(move |end: u64| {
                    let _ignored = tx.send(JournalAck {
                        key: k.clone(),
                        batch: None,
                        floor: Some(end.max(last + 1)),
                        completes: false,
                    });
                }));
                self.pending.push_back(Sent {
                    n,
                    key,
                    last,
                    cursor: c,
                });
                if completes {
                    self.in_flight += 1;
                }
            }
            if self.tx.blocking_send(StageMsg::Batch(b)).is_err() {
                return false;
            }
        }
        true
    }

    /// A batch acknowledged: the checkpoint moves to the end of the last batch whose
    /// entries the stage no longer holds.
    fn acked(&mut self, a: JournalAck) {
        if a.completes {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        match a.batch {
            Some(n) => {
                self.acked_through = Some(self.acked_through.map_or(n, |t| t.max(n)));
                // What the stage holds of the source now (the acks come in order).
                match a.floor {
                    Some(f) => self.floors.insert(a.key, f),
                    None => self.floors.remove(&a.key),
                };
            }
            // Out up to the floor given (what lies past it, later acks answer for); a
            // source an ack since found holding nothing is not held again by it.
            None => {
                if let (Some(f), Some(held)) = (a.floor, self.floors.get_mut(&a.key)) {
                    *held = (*held).max(f);
                }
            }
        }
        let n = passable(&self.pending, self.acked_through, &self.floors);
        let passed = self.pending.drain(..n).next_back();
        if let Some(s) = passed {
            self.commit(s.cursor);
        }
    }

    fn commit(&mut self, cursor: String) {
        self.committed = Some(cursor);
        let sync = self.saver.sync_now(clock::monotonic_ms(), &self.name);
        self.save(sync);
    }

    fn save(&mut self, sync: bool) {
        let Some(c) = &self.committed else { return };
        if self.saved.as_ref() == Some(c) && !sync {
            return;
        }
        if let Err(e) = super::persist::write_atomic(&self.cursor_file, c, sync) {
            eprintln!(
                "vedette-agent: {}: saving the cursor to {}: {e}",
                self.name,
                self.cursor_file.display()
            );
        } else {
            self.saved = Some(c.clone());
        }
    }
}

/// Kills the running `journalctl`, if any (its reader then sees the end of its output).
fn kill(child: &Mutex<Option<Child>>) {
    if let Some(c) = child.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let _ignored = c.kill();
    }
}

/// The wall-clock time a cursor names (its `t=` field, hex microseconds), in seconds.
fn cursor_time_s(cursor: &str) -> Option<i64> {
    let hex = cursor.split(';').find_map(|f| f.strip_prefix("t="))?;
    let us = i64::from_str_radix(hex, 16).ok()?;
    Some(us / 1_000_000)
}

/// The `__CURSOR` of an entry line, without parsing the whole entry (cursors hold no
/// characters JSON escapes).
/// One line of `journalctl` output: at most [`Reader::line_cap`] bytes of it, its cursor,
/// and its whole length when it was cut.
struct Line {
    bytes: Vec<u8>,
    cursor: Option<String>,
    cut_from: Option<u64>,
}

/// Whether `fd` has something to read (or its end, or an error: the read says which)
/// within `wait`.
fn readable(fd: &impl std::os::fd::AsFd, wait: Duration) -> bool {
    let timeout = rustix::event::Timespec {
        tv_sec: wait.as_secs() as i64,
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(n) => n > 0,
        Err(rustix::io::Errno::INTR) => false,
        Err(_) => true,
    }
}

/// Reads one line into `line` (with its newline), keeping at most `cap` bytes and
/// skipping the rest; returns the line's whole length (0 at the end) and, for a line cut
/// short, the cursor found in what was skipped: fields come in no fixed order, and an
/// entry without its cursor could be neither checkpointed nor told apart from another.
fn read_line_capped(
    r: &mut impl BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<(usize, Option<String>)> {
    let mut total = 0;
    let mut scan = SkippedCursor::default();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((total, scan.found));
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = cap.saturating_sub(line.len()).min(take);
        line.extend_from_slice(&buf[..room]);
        if room < take {
            // The scan starts with what was kept last, for a key cut at the cap.
            if scan.carry.is_empty() && scan.found.is_none() {
                let keep = line.len().saturating_sub(SkippedCursor::WINDOW);
                scan.carry.extend_from_slice(&line[keep..]);
            }
            scan.feed(&buf[room..take]);
        }
        r.consume(take);
        total += take;
        if done {
            return Ok((total, scan.found));
        }
    }
}

/// Looks for `"__CURSOR":"…"` in the skipped part of a line, chunk by chunk, carrying a
/// short window over each chunk's end so a key or value split between two is found.
#[derive(Default)]
struct SkippedCursor {
    carry: Vec<u8>,
    found: Option<String>,
}

impl SkippedCursor {
    /// Longer than the key and a cursor (about 150 bytes).
    const WINDOW: usize = 512;

    fn feed(&mut self, chunk: &[u8]) {
        if self.found.is_some() {
            return;
        }
        self.carry.extend_from_slice(chunk);
        if let Some(c) = cursor_of(&self.carry) {
            self.found = Some(c);
            self.carry = Vec::new();
            return;
        }
        let keep = self.carry.len().saturating_sub(Self::WINDOW);
        self.carry.drain(..keep);
    }
}

fn cursor_of(line: &[u8]) -> Option<String> {
    // `"__CURSOR":"…"`, or `"__CURSOR" : "…"` as journalctl before systemd 240 prints it
    // (RHEL 8): without the spaces, no cursor was found there and none ever saved. The key
    // with its closing quote cannot occur inside a value, where quotes are escaped.
    const KEY: &[u8] = b"\"__CURSOR\"";
    let mut at = memchr::memmem::find(line, KEY)? + KEY.len();
    let skip = |at: &mut usize| {
        while line.get(*at).is_some_and(|b| *b == b' ') {
            *at += 1;
        }
    };
    skip(&mut at);
    (line.get(at) == Some(&b':')).then_some(())?;
    at += 1;
    skip(&mut at);
    (line.get(at) == Some(&b'"')).then_some(())?;
    at += 1;
    let len = memchr::memchr(b'"', &line[at..])?;
    String::from_utf8(line[at..at + len].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_checkpoint_passes_only_batches_below_what_the_stage_holds() {
        use super::{Sent, passable};
        use std::collections::{HashMap, VecDeque};
        let sent = |batches: &[(&str, u64)]| -> VecDeque<Sent> {
            (0u64..)
                .zip(batches)
                .map(|(n, &(k, l))| Sent {
                    n,
                    key: k.to_owned(),
                    last: l,
                    cursor: format!("{k};{l}"),
                })
                .collect()
        };
        let floors = |f: &[(&str, u64)]| -> HashMap<String, u64> {
            f.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
        };
        let one = sent(&[("s", 10), ("s", 20), ("s", 30)]);
        // Nothing held: up to the acknowledged batch.
        assert_eq!(passable(&one, Some(1), &floors(&[])), 2);
        assert_eq!(passable(&one, None, &floors(&[])), 0);
        // Entry 15 held: only the batch ending before it.
        assert_eq!(passable(&one, Some(2), &floors(&[("s", 15)])), 1);
        assert_eq!(passable(&one, Some(2), &floors(&[("s", 11)])), 1);
        assert_eq!(passable(&one, Some(2), &floors(&[("s", 10)])), 0);
        // A floor past the batch holds nothing of it.
        assert_eq!(passable(&one, Some(1), &floors(&[("s", 25)])), 2);
        // Another source's floor holds its own batches, and every batch after them: the
        // one cursor cannot pass an entry still held.
        let mixed = sent(&[("a", 5), ("s", 10), ("s", 20)]);
        assert_eq!(passable(&mixed, Some(2), &floors(&[("s", 3)])), 1);
        assert_eq!(passable(&mixed, Some(2), &floors(&[("a", 5)])), 0);
        assert_eq!(passable(&mixed, Some(2), &floors(&[("a", 6)])), 3);
    }

    #[test]
    fn a_line_over_the_cap_is_cut_and_the_rest_skipped() {
        let input = b"short\nABCDEFGHIJ\nlast";
        let mut r = std::io::BufReader::with_capacity(4, &input[..]);
        let mut line = Vec::new();
        let mut read = || {
            line.clear();
            let (n, c) = super::read_line_capped(&mut r, &mut line, 6).unwrap();
            assert_eq!(c, None);
            (n, String::from_utf8(line.clone()).unwrap())
        };
        assert_eq!(read(), (6, "short\n".to_owned()));
        assert_eq!(read(), (11, "ABCDEF".to_owned()));
        assert_eq!(read(), (4, "last".to_owned()));
        assert_eq!(read(), (0, String::new()));
    }

    #[test]
    fn the_cursor_of_a_cut_line_is_found_wherever_it_lies() {
        let cursor =
            "s=3341e4ee124344fa9bdb6c396c4eb288;i=2193;b=be47;m=12d1b58;t=54208f568a37a;x=f8";
        let field = format!("\"__CURSOR\":\"{cursor}\"");
        let big = "x".repeat(5000);
        // Before the cap, straddling it, and far past it, read in chunks of every size.
        for line in [
            format!("{{{field},\"BIG\":\"{big}\"}}\n"),
            format!(
                "{{\"A\":\"{}\",{field},\"BIG\":\"{big}\"}}\n",
                "y".repeat(80)
            ),
            format!("{{\"BIG\":\"{big}\",{field}}}\n"),
        ] {
            for chunk in [1, 7, 64, 4096, 1 << 16] {
                let mut r = std::io::BufReader::with_capacity(chunk, line.as_bytes());
                let mut kept = Vec::new();
                let (n, skipped) = super::read_line_capped(&mut r, &mut kept, 100).unwrap();
                assert_eq!(n, line.len());
                assert_eq!(kept.len(), 100);
                let found = super::cursor_of(&kept).or(skipped);
                assert_eq!(
                    found.as_deref(),
                    Some(cursor),
                    "chunk {chunk}: {}",
                    &line[..120]
                );
            }
        }
    }

    #[test]
    fn a_cursor_names_its_time_in_hex_microseconds() {
        let c = "s=3341e4ee124344fa9bdb6c396c4eb288;i=2193;b=be47864b06854a6cada0c657be52cd03;m=12d1b58;t=54208f568a37a;x=f8e475d455d24cca";
        assert_eq!(super::cursor_time_s(c), Some(0x54208f568a37a / 1_000_000));
        assert_eq!(super::cursor_time_s("garbage"), None);
        assert_eq!(super::cursor_time_s("t=zz"), None);
    }

    #[test]
    fn cursor_is_found_anywhere_in_the_line() {
        let l = br#"{"A":"1","__CURSOR":"s=ab;i=3;b=cd","MESSAGE":"x"}"#;
        assert_eq!(super::cursor_of(l).as_deref(), Some("s=ab;i=3;b=cd"));
        assert_eq!(super::cursor_of(b"{}"), None);
        // journalctl before systemd 240 (RHEL 8) spaces its JSON.
        let old = br#"{ "__CURSOR" : "s=ab;i=3;b=cd", "MESSAGE" : "x" }"#;
        assert_eq!(super::cursor_of(old).as_deref(), Some("s=ab;i=3;b=cd"));
        // A value quoting the key is escaped, so it is never taken for it.
        let quoted = br#"{"MESSAGE":"say \"__CURSOR\":\"s=evil\"","__CURSOR":"s=ab;i=4"}"#;
        assert_eq!(super::cursor_of(quoted).as_deref(), Some("s=ab;i=4"));
    }
}
