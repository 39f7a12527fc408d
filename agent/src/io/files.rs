//! The file inputs of `vedette-agent run`: a thread per `[[input.file]]` polls its
//! [`Tailer`], hands lines to the stage in batches (blocking while the stage is full: the
//! tail pauses, nothing is dropped), commits what the stage acknowledges as written, and
//! checkpoints it. A line is committed only after its event is written, so a kill -9
//! repeats at most the lines in flight, with the same uids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::tz::TimeZone;
use tokio::sync::mpsc;

use super::acks;
use super::clock;
use super::durable::{Barrier, CheckpointSync};
use super::pipeline::{Batch, LiveSource, StageMsg};
use super::tail::{ReadBackend, TailConfig, TailLine, Tailer};
use crate::config::{FileInput, ReadFrom};
use crate::core::Received;
use crate::core::tail::{FileKey, ReadFrom as TailFrom};
use crate::core::time::TimeContext;
use crate::core::{Source, tail};

/// Lines per batch at most (tests/tests/live_files.rs bounds kill -9 repeats with it).
const BATCH_LINES: usize = 1024;
/// Batches handed to the stage and not yet acknowledged, per file input: two keep the
/// stage busy while the tail reads the next, and bound what a kill -9 repeats (as above).
const MAX_IN_FLIGHT: usize = 2;
/// Bytes one poll round reads (the tail commits and checkpoints between rounds). 128 KiB
/// rather than 64: 7-10 % less CPU per event in the perf harness's file scenario (fewer
/// batches, acknowledgements and checkpoint writes), for ~2 MiB more peak RSS
/// (benches/sustained-file.sh, alternating runs).
const ROUND_BYTES: u64 = 128 * 1024;
/// How often the checkpoint file is synced to disk (after the sink: see `durable`). It is
/// rewritten (without fsync) after every acknowledged batch, so a crash of the agent
/// repeats only what was in flight; a power loss may repeat up to this much more.
const SYNC_EVERY_MS: i64 = 1000;

/// Whether the input was told to stop (its sender dropped).
fn stop_asked(stop: &std_mpsc::Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(std_mpsc::TryRecvError::Empty))
}

/// A running file input.
#[derive(Debug)]
pub struct FileSource {
    stop: std_mpsc::Sender<()>,
    thread: JoinHandle<()>,
    /// The input's patterns, for logs.
    pub name: String,
}

impl FileSource {
    /// Stops the thread after the stage acknowledged what it sent, and saves the checkpoint.
    pub fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            eprintln!(
                "vedette-agent: file input {}: the thread panicked",
                self.name
            );
        }
    }
}

/// The checkpoint file of an input: named after its patterns, so reordering inputs in the
/// config keeps each one's offsets.
pub fn checkpoint_path(state_dir: &Path, input: &FileInput) -> PathBuf {
    let h = xxhash_rust::xxh3::xxh3_64(input.patterns.join("\n").as_bytes());
    state_dir.join(format!("files-{h:016x}.checkpoint"))
}

/// Starts tailing `input`; `barrier` syncs the sink before a checkpoint is synced.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    input: &FileInput,
    read_backend: &str,
    state_dir: &Path,
    max_line_bytes: usize,
    tz: TimeZone,
    poll_interval: Duration,
    tx: mpsc::Sender<StageMsg>,
    barrier: Barrier,
) -> Result<FileSource, super::tail::TailError> {
    let mut cfg = TailConfig::new(input.patterns.clone());
    cfg.exclude = input.exclude.clone();
    cfg.symlinks = input.symlinks;
    cfg.read_from = match input.read_from {
        ReadFrom::Start => TailFrom::Start,
        ReadFrom::End => TailFrom::End,
    };
    cfg.max_line_bytes = max_line_bytes;
    cfg.checkpoint_path = Some(checkpoint_path(state_dir, input));
    cfg.max_bytes_per_poll = ROUND_BYTES;
    let (backend, backend_name) =
        super::tail::choose_backend(read_backend).map_err(|source| super::tail::TailError::Io {
            path: PathBuf::from(format!("(read backend {read_backend})")),
            source,
        })?;
    let tailer = Tailer::with_backend(cfg, backend)?;
    let name = format!("{} ({backend_name} reads)", input.patterns.join(", "));
    let (stop, stop_rx) = std_mpsc::channel();
    let thread_name = name.clone();
    let thread = std::thread::Builder::new()
        .name("vedette-tail".into())
        .spawn(move || {
            Tail {
                tailer,
                tz,
                sources: HashMap::new(),
                tx,
                in_flight: 0,
                name: thread_name,
            }
            .run(&stop_rx, poll_interval, barrier)
        })
        .map_err(|e| super::tail::TailError::Io {
            path: PathBuf::from("(thread)"),
            source: e,
        })?;
    Ok(FileSource { stop, thread, name })
}

struct Tail {
    tailer: Tailer<Box<dyn ReadBackend + Send>>,
    tz: TimeZone,
    /// Per file content identity: the source its lines are normalized as.
    sources: HashMap<String, LiveSource>,
    tx: mpsc::Sender<StageMsg>,
    in_flight: usize,
    name: String,
}

impl Tail {
    fn run(mut self, stop: &std_mpsc::Receiver<()>, poll_interval: Duration, barrier: Barrier) {
        // (file, end, whether it acknowledges a batch in flight or moves a checkpoint on
        // that an earlier acknowledgement held back).
        let (commit_tx, commit_rx) = std_mpsc::channel::<(FileKey, u64, bool)>();
        let mut saver = CheckpointSync::new(barrier, SYNC_EVERY_MS, clock::monotonic_ms());
        'rounds: loop {
            while let Ok((key, end, acked)) = commit_rx.try_recv() {
                self.commit(key, end, acked, &mut saver);
            }
            let now = clock::now_ms();
            let (batches, bytes) = self.read_round(now);
            for (key, mut batch, end) in batches {
                // At most MAX_IN_FLIGHT batches are unacknowledged: what a kill -9 can
                // make the agent read twice.
                while self.in_flight >= MAX_IN_FLIGHT {
                    let tx = &self.tx;
                    match acks::next(&commit_rx, || stop_asked(stop) || tx.is_closed()) {
                        Some((key, end, acked)) => self.commit(key, end, acked, &mut saver),
                        None => break 'rounds,
                    }
                }
                batch.end = Some(end);
                let late_tx = commit_tx.clone();
                batch.late = Some(std::sync::Arc::new(move |end: u64| {
                    let _ignored = late_tx.send((key, end, false));
                }));
                let commit_tx = commit_tx.clone();
                batch.ack = Some(Box::new(move |floor: Option<u64>| {
                    let _ignored = commit_tx.send((key, floor.map_or(end, |f| f.min(end)), true));
                }));
                self.in_flight += 1;
                if self.tx.blocking_send(StageMsg::Batch(batch)).is_err() {
                    break 'rounds;
                }
            }
            // Files first seen, rotated or truncated this round have offsets to keep even
            // before any line of theirs is acknowledged: a file read from its end, or one
            // with nothing written yet, had no checkpoint until its first line was, and a
            // crash before that started it again from its end after the restart, losing
            // what was written meanwhile. (Written only when something changed.)
            self.save(false);
            let mut let_go = false;
            while let Some(n) = self.tailer.poll_notice() {
                let_go |= matches!(
                    n,
                    tail::Notice::Closed { .. } | tail::Notice::Truncated { .. }
                );
                notice(&self.name, &n);
            }
            if let_go {
                self.forget_sources();
            }
            // Busy files are read again at once, also while a line longer than a round's
            // budget completes none (an 8 MiB line waited eight intervals, a sparse file's
            // hole one per MiB); idle ones wait for the interval, or for the stop.
            let wait = if bytes > 0 {
                Duration::ZERO
            } else {
                poll_interval
            };
            match stop.recv_timeout(wait) {
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                _ => break,
            }
        }
        // What the stage acknowledges now is in the checkpoint; what it cannot (it ended,
        // or holds on past the drain time) is read again at the next start.
        let tx = self.tx.clone();
        let mut draining = acks::draining(&commit_rx, || !tx.is_closed());
        while self.in_flight > 0 {
            let Some((key, end, acked)) = draining.next() else {
                break;
            };
            self.commit(key, end, acked, &mut saver);
        }
        let sources = self.sources.values().map(LiveSource::uid_hash).collect();
        acks::flush_stage(&self.tx, sources);
        while let Ok((key, end, acked)) = commit_rx.try_recv() {
            self.commit(key, end, acked, &mut saver);
        }
        let sync = saver.sync_final(&self.name);
        self.save(sync);
    }

    /// Drops the sources of files no longer followed: with files rotated, truncated and
    /// made all day (per-job logs, containers' logs), one for every file ever seen was
    /// kept for the agent's life.
    fn forget_sources(&mut self) {
        let live = self.tailer.source_ids();
        self.sources.retain(|id, _| live.contains(id.as_str()));
    }

    /// The stage wrote a batch: commit it and rewrite the checkpoint at once (synced
    /// every [`SYNC_EVERY_MS`]).
    fn commit(&mut self, key: FileKey, end: u64, acked: bool, saver: &mut CheckpointSync) {
        self.tailer.commit(key, end);
        if acked {
            self.in_flight -= 1;
        }
        let sync = saver.sync_now(clock::monotonic_ms(), &self.name);
        self.save(sync);
    }

    /// One poll round, cut into batches of one file each; returns them and the lines read.
    /// This round's batches, and how many bytes it read.
    fn read_round(&mut self, now_ms: i64) -> (Vec<(FileKey, Batch, u64)>, u64) {
        let mut batches: Vec<(FileKey, Batch, u64)> = Vec::new();
        let Self {
            tailer,
            tz,
            sources,
            ..
        } = self;
        let stats = tailer.poll(clock::monotonic_ms(), &mut |l: TailLine<'_>| {
            let same = batches
                .last()
                .is_some_and(|(k, b, _)| *k == l.key && b.len() < BATCH_LINES);
            if !same {
                let src = sources
                    .entry(l.source_id.to_owned())
                    .or_insert_with(|| {
                        LiveSource::new(Source {
                            id: l.path.display().to_string(),
                            uid_key: Some(l.source_id.to_owned()),
                            time: TimeContext::new(clock::now(), tz.clone()),
                            syslog: false,
                            sender_name: None,
                        })
                    })
                    .at(now_ms);
                batches.push((l.key, Batch::new(src), l.end));
            }
            let (_, batch, end) = batches.last_mut().expect("pushed above");
            let rx = Received {
                seq: l.start,
                now_ms,
                peer: None,
                // The line's length as written (its offsets cover it whole, LF included).
                cut_from: l.truncated.then(|| (l.end - l.start).saturating_sub(1)),
                clock_ms: None,
                incomplete: false,
            };
            batch.push(l.bytes, rx);
            *end = l.end;
        });
        match stats {
            Ok(s) => (batches, s.bytes),
            Err(e) => {
                eprintln!("vedette-agent: file input {}: {e}", self.name);
                (batches, 0)
            }
        }
    }

    fn save(&mut self, sync: bool) {
        if let Err(e) = self.tailer.save_checkpoint_with(sync) {
            eprintln!("vedette-agent: file input {}: {e}", self.name);
        }
    }
}

fn notice(name: &str, n: &tail::Notice) {
    use tail::Notice as N;
    let what = match n {
        N::New { path, offset, .. } => format!("reading {} from byte {offset}", path.display()),
        N::Resumed { path, offset, .. } => {
            format!("resuming {} at byte {offset} (checkpoint)", path.display())
        }
        N::Renamed { from, to, .. } => format!(
            "{} was renamed to {} (rotation): reading it to its end",
            from.display(),
            to.display()
        ),
        N::Truncated { path, read_to, .. } => format!(
            "{} was truncated after byte {read_to} had been read: reading it again from the start",
            path.display()
        ),
        N::Copy {
            path, of, offset, ..
        } => format!(
            "{} is a copy of {} (copytruncate): reading it from byte {offset}, what {} had been read to",
            path.display(),
            of.display(),
            of.display()
        ),
        N::CopyHeld { path, of } => format!(
            "{} starts as {} does: a copy in the making (copytruncate), read once {} is truncated",
            path.display(),
            of.display(),
            of.display()
        ),
        N::Gone { path, .. } => format!(
            "{} was replaced or deleted: draining the open file",
            path.display()
        ),
        N::Closed { path, offset, .. } => {
            format!("done with {} at byte {offset}", path.display())
        }
        N::Compressed { path, format } => format!(
            "{} is {format}-compressed (a rotated archive, read while it was live): not tailed; `exclude` it to silence this, or read it with `vedette-agent normalize`",
            path.display()
        ),
        N::Binary { path } => format!(
            "{} is binary (a NUL byte in its first bytes, as wtmp, lastlog or a journal file): not tailed; `exclude` it to silence this",
            path.display()
        ),
        N::NotRegular { path, kind } => format!(
            "{} is a {kind}, not a regular file: not tailed; `exclude` it to silence this",
            path.display()
        ),
        N::NotFollowed { path, reason } => {
            format!("{} is {reason}", path.display())
        }
        N::Unreadable { path, error } => format!(
            "cannot read {}: {error}; retrying every poll",
            path.display()
        ),
        N::UnseenRotation { path, of } => format!(
            "{} is a rotation of {} not seen live (rotated twice between two looks, while the agent was stopped, or a copytruncate copy): reading it (whole, or from where its log was read to if it is a copy)",
            path.display(),
            of.display()
        ),
        N::CheckpointDropped { path, reason } => {
            format!("forgetting the checkpoint of {path}: {reason:?}")
        }
    };
    eprintln!("vedette-agent: file input {name}: {what}");
}
