//! The normalize stage of `vedette-agent run`: batches of records from every source come in
//! on one bounded channel (a full channel is the backpressure: tails pause, TCP stops
//! reading, UDP leaves datagrams to the kernel, which counts what it drops), events go out
//! to the sink, and a batch is acknowledged to its source only once its events are written
//! (what a file tail checkpoints).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::clock;
use super::sink::Sink;
use crate::core::time::TimeContext;
use crate::core::{NormalizeConfig, Normalizer, Received, Source};

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

/// Records of one source, back to back in one buffer (one allocation per batch, not per
/// record).
pub struct Batch {
    /// Where they come from.
    pub source: Arc<Source>,
    data: Vec<u8>,
    records: Vec<(usize, Received)>,
    /// Run after the batch's events are written.
    pub ack: Option<Ack>,
    /// What the records are.
    pub kind: RecordKind,
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
            kind: RecordKind::Lines,
        }
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
    /// it already holds for joining are kept).
    Reconfigure(Box<NormalizeConfig>),
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
}

/// Output written before the stage stops taking queued batches to flush.
const FLUSH_BYTES: usize = 256 * 1024;

/// Runs the stage on the calling thread until every sender of `rx` is gone, then flushes
/// what joined events still wait (end of input) and returns. `rt` drives the channel and
/// the join timeout.
pub fn run_stage(
    mut rx: mpsc::Receiver<StageMsg>,
    mut norm: Normalizer,
    sink: &mut Sink,
    rt: &tokio::runtime::Handle,
) -> io::Result<StageStats> {
    let mut stats = StageStats::default();
    let mut acks: Vec<(Ack, Arc<Source>)> = Vec::new();
    loop {
        let wait = norm
            .poll_timeout()
            .map(|due| Duration::from_millis((due - clock::now_ms()).max(0) as u64));
        let next = rt.block_on(async {
            match wait {
                Some(d) => tokio::time::timeout(d, rx.recv()).await.ok(),
                None => Some(rx.recv().await),
            }
        });
        match next {
            // The oldest joined event is due.
            None => norm.handle_timeout(clock::now_ms()),
            // Every source has stopped.
            Some(None) => break,
            Some(Some(msg)) => {
                take(&mut norm, msg, &mut stats, &mut acks);
                stats.events += drain(&mut norm, sink);
                // Whatever else is queued goes out in the same write.
                while sink.buffered() < FLUSH_BYTES {
                    match rx.try_recv() {
                        Ok(msg) => {
                            take(&mut norm, msg, &mut stats, &mut acks);
                            stats.events += drain(&mut norm, sink);
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        stats.events += drain(&mut norm, sink);
        sink.flush()?;
        run_acks(&norm, &mut acks);
    }
    norm.finish();
    stats.events += drain(&mut norm, sink);
    sink.flush()?;
    run_acks(&norm, &mut acks);
    Ok(stats)
}

fn run_acks(norm: &Normalizer, acks: &mut Vec<(Ack, Arc<Source>)>) {
    for (ack, src) in acks.drain(..) {
        ack(norm.pending_floor(src.uid_key.as_ref().unwrap_or(&src.id)));
    }
}

fn take(
    norm: &mut Normalizer,
    msg: StageMsg,
    stats: &mut StageStats,
    acks: &mut Vec<(Ack, Arc<Source>)>,
) {
    let mut batch = match msg {
        StageMsg::Batch(b) => b,
        StageMsg::Reconfigure(cfg) => {
            norm.reconfigure(*cfg);
            return;
        }
    };
    stats.batches += 1;
    stats.records += batch.len() as u64;
    for (bytes, rx) in batch.records() {
        match batch.kind {
            RecordKind::Lines => norm.handle_received(&batch.source, rx, bytes),
            RecordKind::Journal => norm.handle_journal(&batch.source, rx, bytes),
        }
    }
    if let Some(ack) = batch.ack.take() {
        acks.push((ack, batch.source.clone()));
    }
}

fn drain(norm: &mut Normalizer, sink: &mut Sink) -> u64 {
    let mut n = 0;
    while let Some(ev) = norm.poll_event() {
        sink.write_event(&ev);
        n += 1;
    }
    n
}
