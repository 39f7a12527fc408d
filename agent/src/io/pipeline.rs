//! The normalize stage of `vedette-agent run`: batches of records from every source come in
//! on one bounded channel (a full channel is the backpressure: tails pause, TCP stops
//! reading, UDP leaves datagrams to the kernel, which counts what it drops), events go out
//! to the sink, and a batch is acknowledged to its source only once its events are written
//! (what a file tail checkpoints).

use std::io;
use std::sync::Arc;
use std::time::Duration;
use vedette_schemas::wire::Watermark;

use tokio::sync::mpsc;

use super::accounts::AccountWatcher;
use super::clock;
use super::hostfacts::HostWatcher;
use super::procfs::ProcReader;
use super::sink::Sink;
use crate::core::dedup::{Dedup, DedupConfig, Metrics as DedupMetrics};
use crate::core::enrich::baseline::Baseline;
use crate::core::enrich::host::AssetTags;
use crate::core::enrich::maintenance::{self, MaintenanceWindow};
use crate::core::enrich::process;
use crate::core::enrich::redact::{RedactConfig, Redactor};
use crate::core::time::TimeContext;
use crate::core::{NormalizeConfig, Normalizer, Received, Source};
use std::path::PathBuf;

/// A live source whose time reference follows the clock: year-less timestamps resolve
/// against when the record was received, and an agent runs for years.
#[derive(Debug, Clone)]
pub struct LiveSource {
    current: Arc<Source>,
}

/// How far the reference may lag the receive time (an hour: a year-less timestamp is
/// only ambiguous around New Year, and the rule allows a day of skew).
const REFERENCE_STEP_MS: i64 = 3_600_000;

impl LiveSource {
    /// `source`, its reference time replaced as records arrive.
    pub fn new(source: Source) -> Self {
        Self {
            current: Arc::new(source),
        }
    }

    /// Records from here on were sent by `name`, a name the sender proved (a client
    /// certificate); see [`Source::sender_name`].
    pub fn set_sender_name(&mut self, name: String) {
        let mut s = (*self.current).clone();
        s.sender_name = Some(name);
        self.current = Arc::new(s);
    }

    /// See [`Source::uid_hash`].
    pub fn uid_hash(&self) -> u64 {
        self.current.uid_hash()
    }

    /// The source for records received at `now_ms`.
    pub fn at(&mut self, now_ms: i64) -> Arc<Source> {
        let reference = self.current.time.reference.as_millisecond();
        if (now_ms - reference).abs() > REFERENCE_STEP_MS
            && let Ok(t) = jiff::Timestamp::from_millisecond(now_ms)
        {
            let mut s = (*self.current).clone();
            s.time = TimeContext::new(t, s.time.tz.clone());
            self.current = Arc::new(s);
        }
        self.current.clone()
    }
}

/// Called once the batch's events are written, with the position of the earliest record
/// of its source that the normalizer still holds (an auditd event waiting for its last
/// record), if any: the source must not checkpoint past it.
pub type Ack = Box<dyn FnOnce(Option<u64>) + Send>;

/// Moves a source's checkpoint on to `end`, past what an [`Ack`] held back: the stage
/// calls it once the records it held of that source are out. Without it a file whose last
/// batch was acknowledged held back (a repeat of it inside a dedup window when it was
/// rotated away) would never be committed to its end, and never closed.
pub type LateCommit = Arc<dyn Fn(u64) + Send + Sync>;

/// Records of one source, back to back in one buffer (one allocation per batch, not per
/// record).
pub struct Batch {
    /// Where they come from.
    pub source: Arc<Source>,
    data: Vec<u8>,
    records: Vec<(usize, Received)>,
    /// Run after the batch's events are written.
    pub ack: Option<Ack>,
    /// For a source whose checkpoint can be moved on later (file lines, with `end`).
    pub late: Option<LateCommit>,
    /// What the records are.
    pub kind: RecordKind,
    /// For file lines: the offset just past the last line (the records' `seq`s are the
    /// lines' start offsets).
    pub end: Option<u64>,
}

/// What a batch's records are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordKind {
    /// Log lines or syslog messages.
    #[default]
    Lines,
    /// `journalctl --output=json` entries.
    Journal,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("source", &self.source.id)
            .field("records", &self.records.len())
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl Batch {
    /// An empty batch of `source`.
    pub fn new(source: Arc<Source>) -> Self {
        Self {
            source,
            data: Vec::new(),
            records: Vec::new(),
            ack: None,
            late: None,
            kind: RecordKind::Lines,
            end: None,
        }
    }

    /// The range of its source's positions the batch covers, for completeness accounting
    /// downstream (`None` when empty).
    pub fn watermark(&self) -> Option<Watermark> {
        let first = self.records.first()?.1.seq;
        let last = self.records.last()?.1.seq;
        let (unit, end) = match (self.kind, self.end) {
            (RecordKind::Journal, _) => ("seqnum", last + 1),
            (RecordKind::Lines, Some(end)) => ("byte", end),
            (RecordKind::Lines, None) => ("message", last + 1),
        };
        Some(Watermark {
            source: self.source.id.clone(),
            stream: self
                .source
                .uid_key
                .clone()
                .unwrap_or_else(|| self.source.id.clone()),
            unit: unit.to_owned(),
            first,
            end,
            records: self.records.len() as u64,
        })
    }

    /// Adds a record.
    pub fn push(&mut self, bytes: &[u8], rx: Received) {
        self.data.extend_from_slice(bytes);
        self.records.push((self.data.len(), rx));
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The records with what their source knew about them.
    pub fn records(&self) -> impl Iterator<Item = (&[u8], Received)> {
        let mut start = 0;
        self.records.iter().map(move |&(end, rx)| {
            let r = &self.data[start..end];
            start = end;
            (r, rx)
        })
    }
}

/// What sources send the stage.
#[derive(Debug)]
pub enum StageMsg {
    /// Records to normalize.
    Batch(Batch),
    /// A reloaded config: from the next record on, the normalizer works with this (records
    /// it already holds for joining are kept), and dedup with that (`None`: off).
    Reconfigure(Box<Reconfigure>),
    /// An input is stopping: every dedup window holding repeats of its sources (their
    /// [`Source::uid_hash`]es) closes now, its summary is written, the checkpoints it held
    /// back move on, and then the reply comes. Without it a stopping source saved its
    /// checkpoint at the first repeat a window held, the summary was written afterwards,
    /// and the next start read those repeats again into a second summary: counted twice.
    Flush {
        /// The stopping input's sources.
        sources: Vec<u64>,
        /// Answered once the windows are closed and their summaries written.
        reply: std::sync::mpsc::Sender<()>,
    },
}

/// What the stage did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageStats {
    /// Batches taken.
    pub batches: u64,
    /// Records taken.
    pub records: u64,
    /// Events written.
    pub events: u64,
    /// Events the spool did not take because it was full at shutdown (block policy) and
    /// gave up waiting: their sources were not acknowledged, so files and the journal read
    /// them again at the next start; a syslog listener's are lost.
    pub unspooled: u64,
}

/// A reloaded config's settings for the stage ([`StageMsg::Reconfigure`]).
#[derive(Debug)]
pub struct Reconfigure {
    /// The normalizer's.
    pub normalize: NormalizeConfig,
    /// Dedup (`None`: off).
    pub dedup: Option<DedupConfig>,
    /// Redaction (`None`: off).
    pub redaction: Option<RedactConfig>,
    /// The redaction key, when redaction is on: a stage started with redaction off has
    /// none, and hashing with an empty key would leave every redacted secret open to a
    /// guess checked offline.
    pub key: Option<Vec<u8>>,
}

/// How often the first-seen baseline is saved while it changes.
const BASELINE_SAVE_MS: i64 = 10_000;

/// Output written before the stage stops taking queued batches to flush.
const FLUSH_BYTES: usize = 256 * 1024;

/// Runs the stage on the calling thread until every sender of `rx` is gone, then flushes
/// what joined events and dedup windows still hold (end of input) and returns. `rt` drives
/// the channel and the timeouts. `dedup` folds repeats on arrival time when given.
pub fn run_stage(
    mut rx: mpsc::Receiver<StageMsg>,
    norm: Normalizer,
    edge: Edge,
    sink: &mut Sink,
    rt: &tokio::runtime::Handle,
) -> io::Result<(StageStats, Option<DedupMetrics>)> {
    let mut st = Stage {
        norm,
        dedup: edge.dedup.map(Dedup::new),
        redactor: edge.redaction.map(|c| Redactor::new(c, &edge.key)),
        key: edge.key,
        accounts: edge.accounts,
        host: edge.host,
        maintenance: edge.maintenance,
        processes: edge.processes,
        baseline: edge.baseline,
        baseline_saved: clock::monotonic_ms(),
        local_host: edge.local_host,
        acks: Vec::new(),
        held_back: Vec::new(),
        flush_replies: Vec::new(),
        stats: StageStats::default(),
    };
    loop {
        let due = [
            st.norm.poll_timeout(),
            st.dedup.as_ref().and_then(Dedup::poll_timeout),
            sink.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        // Deadlines are on the monotonic clock: a step of the wall clock (NTP, an operator)
        // must not hold a dedup window, a joined event or a lingering batch for an hour.
        let wait =
            due.map(|due| Duration::from_millis((due - clock::monotonic_ms()).max(0) as u64));
        let next = rt.block_on(async {
            match wait {
                Some(d) => tokio::time::timeout(d, rx.recv()).await.ok(),
                None => Some(rx.recv().await),
            }
        });
        match next {
            // A joined event or a dedup window is due.
            None => st.timeout(clock::monotonic_ms(), sink),
            // Every source has stopped.
            Some(None) => break,
            Some(Some(msg)) => {
                st.take(msg, sink);
                // Whatever else is queued goes out in the same write.
                while sink.buffered() < FLUSH_BYTES {
                    match rx.try_recv() {
                        Ok(msg) => st.take(msg, sink),
                        Err(_) => break,
                    }
                }
            }
        }
        // A source waiting for its ack gets it once its events are out of our hands (in
        // the kernel's for a file, on disk for the spool); without one waiting, a spool
        // batch lingers to fill up.
        let waiting = !st.acks.is_empty() || st.late_due() || !st.flush_replies.is_empty();
        if let Err(e) = sink.flush(waiting) {
            return stopped_unspooled(st, sink, e);
        }
        st.run_acks();
        for reply in st.flush_replies.drain(..) {
            let _ignored = reply.send(());
        }
        st.save_baseline(false);
    }
    st.norm.finish();
    st.drain(sink);
    if let Some(d) = &mut st.dedup {
        d.flush();
    }
    st.drain(sink);
    if let Err(e) = sink.flush(true) {
        return stopped_unspooled(st, sink, e);
    }
    st.run_acks();
    st.save_baseline(true);
    Ok((st.stats, st.dedup.map(|d| d.metrics().clone())))
}

/// The stage's end when the sink failed: a spool that gave up waiting for space at
/// shutdown is a clean stop (the acknowledgements not given make files and the journal
/// read those records again at the next start; a syslog listener's are lost, and
/// counted), anything else the error.
fn stopped_unspooled(
    mut st: Stage,
    sink: &Sink,
    e: io::Error,
) -> io::Result<(StageStats, Option<DedupMetrics>)> {
    let Some(n) = sink.unspooled_at_close() else {
        return Err(e);
    };
    st.stats.unspooled = n;
    st.save_baseline(true);
    Ok((st.stats, st.dedup.map(|d| d.metrics().clone())))
}

/// The edge stage's settings: dedup and redaction (each `None` when off) and the key of
/// the redaction hashes.
#[derive(Debug)]
pub struct Edge {
    /// Dedup.
    pub dedup: Option<DedupConfig>,
    /// Redaction.
    pub redaction: Option<RedactConfig>,
    /// The agent's key.
    pub key: Vec<u8>,
    /// User enrichment from this host's account database.
    pub accounts: Option<AccountWatcher>,
    /// Device enrichment with this host's facts and asset tags.
    pub host: Option<(HostWatcher, AssetTags)>,
    /// This host's maintenance windows.
    pub maintenance: Vec<MaintenanceWindow>,
    /// Process enrichment from /proc.
    pub processes: Option<ProcReader>,
    /// The first-seen baseline and the file it is saved to.
    pub baseline: Option<(Baseline, PathBuf)>,
    /// This host's name: only events about it are enriched with its facts.
    pub local_host: String,
}

struct Stage {
    norm: Normalizer,
    dedup: Option<Dedup>,
    redactor: Option<Redactor>,
    key: Vec<u8>,
    accounts: Option<AccountWatcher>,
    host: Option<(HostWatcher, AssetTags)>,
    maintenance: Vec<MaintenanceWindow>,
    processes: Option<ProcReader>,
    baseline: Option<(Baseline, PathBuf)>,
    /// When the baseline was last saved, [`clock::monotonic_ms`].
    baseline_saved: i64,
    local_host: String,
    acks: Vec<Written>,
    /// Per source, the end of its last batch acknowledged held back, until the stage no
    /// longer holds records of it.
    held_back: Vec<HeldBack>,
    /// Sources waiting for a [`StageMsg::Flush`] to be done.
    flush_replies: Vec<std::sync::mpsc::Sender<()>>,
    stats: StageStats,
}

/// A batch written, its ack to run.
struct Written {
    ack: Ack,
    source: Arc<Source>,
    late: Option<(u64, LateCommit)>,
}

/// A source's last batch acknowledged short of its end.
struct HeldBack {
    source: Arc<Source>,
    end: u64,
    late: LateCommit,
}

impl Stage {
    fn take(&mut self, msg: StageMsg, sink: &mut Sink) {
        let mut batch = match msg {
            StageMsg::Batch(b) => b,
            StageMsg::Flush { sources, reply } => {
                if let Some(d) = &mut self.dedup {
                    d.flush_sources(&sources);
                }
                self.drain(sink);
                self.flush_replies.push(reply);
                return;
            }
            StageMsg::Reconfigure(cfg) => {
                let Reconfigure {
                    normalize: ncfg,
                    dedup: dcfg,
                    redaction: rcfg,
                    key,
                } = *cfg;
                self.norm.reconfigure(ncfg);
                if let Some(k) = key {
                    self.key = k;
                }
                self.redactor = rcfg.map(|c| Redactor::new(c, &self.key));
                // A changed dedup config starts fresh; what the old one held comes out now.
                // An unchanged one keeps its windows (a SIGHUP from logrotate's postrotate
                // split every open summary in two) and its counters.
                if self.dedup.as_ref().map(Dedup::config) != dcfg.as_ref() {
                    if let Some(d) = &mut self.dedup {
                        d.flush();
                    }
                    self.drain(sink);
                    self.dedup = dcfg.map(Dedup::new);
                }
                return;
            }
        };
        self.stats.batches += 1;
        self.stats.records += batch.len() as u64;
        if let Some(w) = batch.watermark() {
            sink.note_records(w);
        }
        // Each record's events go out before the next record is read: an event is written
        // while it is still in cache, and a batch's events are never all alive at once
        // (hundreds of boxed events, a megabyte, at the peak of the agent's memory).
        let clock_ms = Some(clock::monotonic_ms());
        for (bytes, rx) in batch.records() {
            let rx = Received { clock_ms, ..rx };
            match batch.kind {
                RecordKind::Lines => self.norm.handle_received(&batch.source, rx, bytes),
                RecordKind::Journal => self.norm.handle_journal(&batch.source, rx, bytes),
            }
            self.drain(sink);
        }
        if let Some(ack) = batch.ack.take() {
            self.acks.push(Written {
                ack,
                source: batch.source.clone(),
                late: batch.end.zip(batch.late.take()),
            });
        }
    }

    fn timeout(&mut self, now_ms: i64, sink: &mut Sink) {
        self.norm.handle_timeout(now_ms);
        self.drain(sink);
        if let Some(d) = &mut self.dedup {
            d.handle_timeout(now_ms);
        }
        self.drain(sink);
    }

    /// Saves the baseline when it changed, at most every [`BASELINE_SAVE_MS`] unless
    /// `now`.
    fn save_baseline(&mut self, now: bool) {
        let t = clock::monotonic_ms();
        let Some((b, path)) = &mut self.baseline else {
            return;
        };
        if !b.is_dirty() || (!now && t - self.baseline_saved < BASELINE_SAVE_MS) {
            return;
        }
        self.baseline_saved = t;
        // Synced only at shutdown: a crash costs at most the last 10 s of first sightings.
        match super::persist::write_atomic(path, &b.encode(), now) {
            Ok(()) => b.mark_saved(),
            Err(e) => eprintln!(
                "vedette-agent: saving the baseline to {}: {e}",
                path.display()
            ),
        }
    }

    /// Moves finished events through dedup to the sink.
    fn drain(&mut self, sink: &mut Sink) {
        let now_ms = if self.dedup.is_some() {
            clock::monotonic_ms()
        } else {
            0
        };
        while let Some(mut ev) = self.norm.poll_event() {
            // Facts of this host only for events about this host: a relayed record (from
            // the network, or another host's line in a collected file) keeps its own.
            if is_about(&ev, &self.local_host) {
                if let Some(w) = &mut self.accounts {
                    w.db(clock::now_ms()).apply(&mut ev);
                }
                if let Some((w, tags)) = &mut self.host {
                    w.facts(clock::now_ms()).apply(tags, &mut ev);
                }
                maintenance::apply(&self.maintenance, &mut ev);
                if let Some(r) = &mut self.processes
                    && let Some(pid) = process::pid_of(&ev)
                    && let Some(l) = r.lookup(pid, ev.time, clock::now_ms())
                {
                    process::apply(&mut ev, &l);
                }
            }
            // After enrichment, which may copy a secret in again (a live process's command
            // line from /proc); before the baseline and dedup, which see a redacted value
            // as its hash.
            if let Some(r) = &mut self.redactor {
                r.apply(&mut ev);
            }
            if let Some((b, _)) = &mut self.baseline {
                b.check(&mut ev, now_ms);
            }
            let ev = match &mut self.dedup {
                // Live windows run on arrival time.
                Some(d) => d.handle_event(now_ms, ev),
                None => Some(ev),
            };
            if let Some(mut ev) = ev {
                sink.write_event(&mut ev);
                self.stats.events += 1;
            }
        }
        if let Some(d) = &mut self.dedup {
            while let Some(mut ev) = d.poll_event() {
                sink.write_event(&mut ev);
                self.stats.events += 1;
            }
        }
    }

    /// Acknowledges the written batches, each with the earliest position of its source that
    /// the stage still holds (a pending auditd event, or a repeat inside a dedup window);
    /// then moves on the checkpoints held back earlier whose records are out by now.
    fn run_acks(&mut self) {
        for w in std::mem::take(&mut self.acks) {
            let floor = self.floor(&w.source);
            (w.ack)(floor);
            if let (Some(f), Some((end, late))) = (floor, w.late)
                && f < end
            {
                let same = |h: &HeldBack| Arc::ptr_eq(&h.source, &w.source);
                match self.held_back.iter_mut().find(|h| same(h)) {
                    Some(h) => h.end = h.end.max(end),
                    None => self.held_back.push(HeldBack {
                        source: w.source,
                        end,
                        late,
                    }),
                }
            }
        }
        if self.held_back.is_empty() {
            return;
        }
        let mut held = std::mem::take(&mut self.held_back);
        held.retain(|h| match self.floor(&h.source) {
            Some(f) if f < h.end => true,
            _ => {
                (h.late)(h.end);
                false
            }
        });
        self.held_back = held;
    }

    /// Whether a checkpoint held back can move on (its records are out of the stage, into
    /// the sink, which must hand them on first).
    fn late_due(&self) -> bool {
        self.held_back
            .iter()
            .any(|h| self.floor(&h.source).is_none_or(|f| f >= h.end))
    }

    /// The earliest position of `src` whose record the stage still holds.
    fn floor(&self, src: &Source) -> Option<u64> {
        let key = src.uid_key.as_ref().unwrap_or(&src.id);
        let joined = self.norm.pending_floor(key);
        let folded = self
            .dedup
            .as_ref()
            .and_then(|d| d.pending_floor(src.uid_hash()));
        joined.into_iter().chain(folded).min()
    }
}

/// Whether `ev` is about the host named `local`: not relayed over the network, and its
/// device is that host.
pub fn is_about(ev: &vedette_schemas::ocsf::Event, local: &str) -> bool {
    ev.metadata.loggers.is_none()
        && ev
            .device
            .as_ref()
            .and_then(|d| d.hostname.as_deref())
            .is_none_or(|h| h == local)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use super::*;

    /// The runtime the stage's timers run on. Multi-thread: a current-thread runtime's
    /// timers run only under its own `block_on`, not the stage's `Handle::block_on` (as in
    /// `run`).
    fn stage_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap()
    }

    /// `/var/log/auth.log`, in UTC, keyed by its path.
    fn auth_log() -> Arc<Source> {
        Arc::new(Source {
            id: "/var/log/auth.log".into(),
            uid_key: None,
            time: TimeContext::new(clock::now(), jiff::tz::TimeZone::UTC),
            syslog: false,
            sender_name: None,
        })
    }

    /// An edge stage with `dedup` and nothing else.
    fn dedup_edge(dedup: DedupConfig) -> Edge {
        Edge {
            dedup: Some(dedup),
            redaction: None,
            key: Vec::new(),
            accounts: None,
            host: None,
            maintenance: Vec::new(),
            processes: None,
            baseline: None,
            local_host: "vm".into(),
        }
    }

    /// A stage with the enrichment a test sets in `edge`, run over `lines` of one source;
    /// the NDJSON it wrote.
    fn run_lines(edge: Edge, lines: &[&str], name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("vedette-stage-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out.ndjson");
        let mut sink = Sink::file(&out).unwrap();
        let rt = stage_runtime();
        let (tx, rx) = mpsc::channel(4);
        let source = auth_log();
        let mut batch = Batch::new(source);
        for (i, line) in lines.iter().enumerate() {
            let rx = Received {
                seq: i as u64,
                now_ms: clock::now_ms(),
                peer: None,
                cut_from: None,
                clock_ms: None,
                incomplete: false,
            };
            batch.push(line.as_bytes(), rx);
        }
        tx.blocking_send(StageMsg::Batch(batch)).unwrap();
        drop(tx);
        let norm = Normalizer::new(NormalizeConfig::default());
        run_stage(rx, norm, edge, &mut sink, rt.handle()).unwrap();
        drop(sink);
        let text = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        text
    }

    /// A SIGHUP reconfigures the stage; with the dedup config unchanged its open windows
    /// stay open: every reload (logrotate's postrotate) split each summary in two and
    /// reset the counters.
    #[test]
    fn a_reload_with_the_same_dedup_config_keeps_the_open_windows() {
        let dir = std::env::temp_dir().join(format!("vedette-stage-{}-reload", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out.ndjson");
        let mut sink = Sink::file(&out).unwrap();
        let dedup = DedupConfig {
            window_ms: 600_000,
            ..DedupConfig::default()
        };
        let edge = dedup_edge(dedup.clone());
        let rt = stage_runtime();
        let (tx, rx) = mpsc::channel(4);
        let source = auth_log();
        let line = b"Jan 15 10:00:00 web-1 sshd[42]: Failed password for root from 203.0.113.9 port 50000 ssh2";
        let batch = |seqs: std::ops::Range<u64>| {
            let mut b = Batch::new(source.clone());
            for seq in seqs {
                let rx = Received {
                    seq,
                    now_ms: clock::now_ms(),
                    ..Received::default()
                };
                b.push(line, rx);
            }
            b
        };
        let stage = std::thread::spawn(move || {
            let norm = Normalizer::new(NormalizeConfig::default());
            run_stage(rx, norm, edge, &mut sink, rt.handle()).unwrap()
        });
        tx.blocking_send(StageMsg::Batch(batch(0..3))).unwrap();
        tx.blocking_send(StageMsg::Reconfigure(Box::new(super::Reconfigure {
            normalize: NormalizeConfig::default(),
            dedup: Some(dedup),
            redaction: None,
            key: None,
        })))
        .unwrap();
        tx.blocking_send(StageMsg::Batch(batch(3..5))).unwrap();
        drop(tx);
        let (stats, metrics) = stage.join().unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let counts: Vec<Option<u64>> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["count"].as_u64())
            .collect();
        assert_eq!(counts, [None, Some(4)], "{text}");
        assert_eq!(stats.events, 2);
        assert_eq!(metrics.unwrap().folded, 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Process enrichment copies a live process's command line from /proc into the event
    /// (sudo's pid names the sudo still running the command): redaction runs after it, and
    /// reaches the actor's process, so a secret typed on that command line is not shipped.
    #[test]
    fn a_secret_enrichment_copies_in_from_proc_is_redacted_too() {
        let root = std::env::temp_dir().join(format!("vedette-stage-proc-{}", std::process::id()));
        let p = root.join("proc/4242");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(root.join("proc/stat"), "cpu 0\nbtime 1700000000\n").unwrap();
        std::fs::write(
            p.join("stat"),
            "4242 (sudo) S 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1000 0 0",
        )
        .unwrap();
        std::fs::write(p.join("cmdline"), b"sudo\0/usr/bin/mysql\0-pS3cretPass\0").unwrap();
        let stamp = clock::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let line = format!(
            "{stamp} web-1 sudo[4242]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/mysql -pS3cretPass"
        );
        let redact = crate::core::enrich::redact::RedactConfig {
            patterns: vec![regex::Regex::new(r"-p(\S+)").unwrap()],
            ..Default::default()
        };
        let edge = Edge {
            dedup: None,
            redaction: Some(redact),
            key: b"k".to_vec(),
            accounts: None,
            host: None,
            maintenance: Vec::new(),
            processes: Some(ProcReader::new(root.clone())),
            baseline: None,
            local_host: "web-1".into(),
        };
        let out = run_lines(edge, &[&line], "proc");
        std::fs::remove_dir_all(&root).unwrap();
        assert!(out.contains("\"cmd_line\""), "enriched: {out}");
        assert!(!out.contains("S3cretPass"), "leaked: {out}");
    }

    /// A source's batch acknowledged short of its end (a repeat of its last line held in a
    /// dedup window) has its checkpoint moved on to the end once the window lets the
    /// repeat out: a rotated-away file sends no later batch whose ack would do it, and was
    /// never committed to its end, so never closed (its descriptor and disk space held for
    /// the agent's life).
    #[test]
    fn a_checkpoint_held_back_by_a_dedup_window_moves_on_once_the_window_ends() {
        let dir = std::env::temp_dir().join(format!("vedette-stage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sink = Sink::file(&dir.join("out.ndjson")).unwrap();
        let edge = dedup_edge(DedupConfig {
            window_ms: 50,
            ..DedupConfig::default()
        });
        let rt = stage_runtime();
        let (tx, rx) = mpsc::channel(4);
        let (acked_tx, acked) = std_mpsc::channel();
        let (late_tx, late) = std_mpsc::channel();
        let source = Arc::new(Source {
            id: "/var/log/auth.log.1".into(),
            uid_key: Some("dev=1,ino=2,head=ab".into()),
            time: TimeContext::new(clock::now(), jiff::tz::TimeZone::UTC),
            syslog: false,
            sender_name: None,
        });
        let mut batch = Batch::new(source);
        let line = b"Jan 15 10:00:00 web-1 sshd[42]: Failed password for root from 203.0.113.9 port 50000 ssh2";
        for seq in [0, 100, 200] {
            let rx = Received {
                seq,
                now_ms: clock::now_ms(),
                peer: None,
                cut_from: None,
                clock_ms: None,
                incomplete: false,
            };
            batch.push(line, rx);
        }
        batch.end = Some(300);
        batch.ack = Some(Box::new(move |floor| {
            acked_tx.send(floor).unwrap();
        }));
        batch.late = Some(Arc::new(move |end| {
            let _ignored = late_tx.send(end);
        }));
        let stage = std::thread::spawn(move || {
            let norm = Normalizer::new(NormalizeConfig::default());
            run_stage(rx, norm, edge, &mut sink, rt.handle()).unwrap()
        });
        tx.blocking_send(StageMsg::Batch(batch)).unwrap();
        let wait = Duration::from_secs(10);
        assert_eq!(
            acked.recv_timeout(wait).unwrap(),
            Some(100),
            "the second line is held in the window"
        );
        assert_eq!(
            late.recv_timeout(wait).unwrap(),
            300,
            "moved on to the end once the window let it out"
        );
        drop(tx);
        let (stats, dedup) = stage.join().unwrap();
        assert_eq!(stats.events, 2, "the first sighting and the summary");
        assert_eq!(dedup.unwrap().folded, 2);
        assert!(late.try_recv().is_err(), "moved on once");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
