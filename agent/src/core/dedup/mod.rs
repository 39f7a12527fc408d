//! Edge de-duplication: one behaviour reported a thousand times becomes its first sighting
//! plus one summary event.
//!
//! Windows are tumbling per fingerprint (see [`fingerprint`]), opened by a first sighting
//! and `window_ms` long. The first sighting is forwarded at once, untouched: dedup never
//! delays it. Repeats inside the window are held back and folded into one summary at the
//! window's end: the first repeat itself, carrying `count` (the number of repeats),
//! `start_time` and `end_time` (their first and last times). Summing `count` (1 where
//! absent) over the output gives the number of events in, exactly.
//!
//! Sans-I/O: the caller passes the time (arrival time when tailing live, the events' own
//! times when replaying a file, so a replay folds as it would have live), calls
//! [`Dedup::handle_timeout`] at [`Dedup::poll_timeout`], and drains summaries with
//! [`Dedup::poll_event`]. Memory is bounded by `max_tracked` fingerprints; past it events
//! pass through unfolded and [`Metrics::untracked`] counts them. [`Dedup::flush`] at
//! shutdown emits every pending summary, so no count is lost.

pub mod fingerprint;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use vedette_schemas::ocsf::{Class, Event};

pub use fingerprint::Field;

use super::prehashed::Prehashed;

/// Dedup settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupConfig {
    /// Window length, ms (default 10 s).
    pub window_ms: i64,
    /// Most fingerprints tracked at once (default 10,000: a fingerprint with repeats holds one event, ~2-3 KiB, so this bounds the worst case near 30 MiB).
    pub max_tracked: usize,
    /// Per class, the fields that replace [`fingerprint::default_fields`].
    pub fields: HashMap<Class, Vec<Field>>,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            window_ms: 10_000,
            max_tracked: 10_000,
            fields: HashMap::new(),
        }
    }
}

/// Counts per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassMetrics {
    /// Events in.
    pub events_in: u64,
    /// Events out (first sightings, unfolded events and summaries).
    pub events_out: u64,
}

/// What dedup did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Events in.
    pub events_in: u64,
    /// Events out.
    pub events_out: u64,
    /// Repeats folded into summaries.
    pub folded: u64,
    /// Summaries emitted.
    pub summaries: u64,
    /// Events passed through unfolded because `max_tracked` fingerprints were tracked.
    pub untracked: u64,
    /// Per class name.
    pub per_class: BTreeMap<&'static str, ClassMetrics>,
}

impl Metrics {
    /// Events in per event out (1.0 when nothing was folded).
    pub fn reduction_ratio(&self) -> f64 {
        if self.events_out == 0 {
            1.0
        } else {
            self.events_in as f64 / self.events_out as f64
        }
    }
}

/// One open window (it ends at the time it is keyed by in `due`).
#[derive(Debug)]
struct Window {
    /// Per source (the source part of the repeats' uids, [`crate::core::uid::source_of`]),
    /// the earliest `metadata.sequence` of the repeats held.
    held: Vec<(u64, u64)>,
    /// The first repeat, which becomes the summary.
    summary: Option<Box<Event>>,
    count: u32,
    first: i64,
    last: i64,
    /// When it opened, and when it ends (`start + window_ms`), on the clock of
    /// [`Dedup::handle_event`].
    start: i64,
    end: i64,
}

fn mark(floors: &mut HashMap<u64, BTreeMap<u64, u32>>, src: u64, seq: u64) {
    *floors.entry(src).or_default().entry(seq).or_insert(0) += 1;
}

fn unmark(floors: &mut HashMap<u64, BTreeMap<u64, u32>>, src: u64, seq: u64) {
    if let Some(m) = floors.get_mut(&src) {
        if let Some(n) = m.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                m.remove(&seq);
            }
        }
        if m.is_empty() {
            floors.remove(&src);
        }
    }
}

/// The dedup state machine. See the module docs.
#[derive(Debug, Default)]
pub struct Dedup {
    cfg: DedupConfig,
    open: HashMap<u128, Window, Prehashed>,
    /// Window ends in time order.
    due: BTreeSet<(i64, u128)>,
    out: VecDeque<Box<Event>>,
    metrics: Metrics,
    /// Reused for the fingerprint's bytes.
    scratch: Vec<u8>,
    /// Per source, the windows' earliest held positions (position → windows holding it
    /// as theirs): a source's floor is the first key, found without visiting every open
    /// window at every acknowledgement.
    floors: HashMap<u64, BTreeMap<u64, u32>>,
}

impl Dedup {
    /// A dedup stage with `cfg`.
    pub fn new(cfg: DedupConfig) -> Self {
        Self {
            cfg,
            ..Self::default()
        }
    }

    /// The settings.
    pub fn config(&self) -> &DedupConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Takes one event seen at `now_ms`; returns it when it is to be forwarded now (a first
    /// sighting, or an event past the memory bound), `None` when it was folded. Windows that
    /// ended by `now_ms` are closed first (their summaries wait in [`Dedup::poll_event`]).
    pub fn handle_event(&mut self, now_ms: i64, ev: Box<Event>) -> Option<Box<Event>> {
        self.handle_timeout(now_ms);
        let class = ev.class();
        self.metrics.events_in += 1;
        self.class_metrics(class).events_in += 1;
        let fields = self
            .cfg
            .fields
            .get(&class)
            .map_or(fingerprint::default_fields(class), Vec::as_slice);
        let fp = fingerprint::fingerprint(&ev, fields, &mut self.scratch);
        // Replayed on the events' own times (`normalize --fold`), one dated in the future
        // opened a window that every later-read, earlier-dated repeat fell into, however
        // far apart: an event before its window's start opens a window of its own.
        if self.open.get(&fp).is_some_and(|w| now_ms < w.start)
            && let Some(w) = self.open.remove(&fp)
        {
            self.due.remove(&(w.end, fp));
            for &(src, seq) in &w.held {
                unmark(&mut self.floors, src, seq);
            }
            self.close(w);
        }
        if let Some(w) = self.open.get_mut(&fp) {
            let t = ev.time;
            // An event may already stand for several (sshd's "PAM 5 more authentication
            // failures" has count 5): the summary counts what they stand for.
            w.count = w.count.saturating_add(ev.count.unwrap_or(1));
            w.first = w.first.min(t);
            w.last = w.last.max(t);
            // Keyed by the source's identity, not its path: a rotated file and the new one
            // under its name are two sources, and a repeat held from one must not hold
            // back the other's checkpoint.
            if let (Some(src), Some(seq)) = (
                ev.metadata
                    .uid
                    .as_deref()
                    .and_then(crate::core::uid::source_of),
                ev.metadata.sequence,
            ) {
                let seq = seq.max(0) as u64;
                match w.held.iter_mut().find(|(s, _)| *s == src) {
                    Some((_, min)) if seq < *min => {
                        unmark(&mut self.floors, src, *min);
                        mark(&mut self.floors, src, seq);
                        *min = seq;
                    }
                    Some(_) => {}
                    None => {
                        w.held.push((src, seq));
                        mark(&mut self.floors, src, seq);
                    }
                }
            }
            if w.summary.is_none() {
                w.first = t;
                w.last = t;
                w.summary = Some(ev);
            }
            self.metrics.folded += 1;
            return None;
        }
        if self.open.len() >= self.cfg.max_tracked {
            self.metrics.untracked += 1;
        } else {
            let end = now_ms.saturating_add(self.cfg.window_ms);
            self.open.insert(
                fp,
                Window {
                    held: Vec::new(),
                    summary: None,
                    count: 0,
                    first: 0,
                    last: 0,
                    start: now_ms,
                    end,
                },
            );
            self.due.insert((end, fp));
        }
        self.metrics.events_out += 1;
        self.class_metrics(class).events_out += 1;
        Some(ev)
    }

    /// The earliest position (`metadata.sequence`) of a repeat from the source whose uids
    /// start with `source` ([`crate::core::uid::source_hash`] of its uid key) that an open
    /// window holds: that source must not checkpoint past it, or a crash would lose the
    /// repeats' count.
    pub fn pending_floor(&self, source: u64) -> Option<u64> {
        self.floors
            .get(&source)
            .and_then(|m| m.first_key_value())
            .map(|(&seq, _)| seq)
    }

    /// When the next window ends.
    pub fn poll_timeout(&self) -> Option<i64> {
        self.due.first().map(|&(end, _)| end)
    }

    /// Closes the windows that ended by `now_ms` (a window `[start, start + window_ms)`
    /// ends at `start + window_ms`).
    pub fn handle_timeout(&mut self, now_ms: i64) {
        while let Some(&(end, fp)) = self.due.first() {
            if end > now_ms {
                break;
            }
            self.due.pop_first();
            if let Some(w) = self.open.remove(&fp) {
                for &(src, seq) in &w.held {
                    unmark(&mut self.floors, src, seq);
                }
                self.close(w);
            }
        }
    }

    /// Closes every window (shutdown, end of input): no count is lost.
    pub fn flush(&mut self) {
        self.handle_timeout(i64::MAX);
    }

    /// Closes the windows holding repeats of any of `sources` (their
    /// [`crate::core::uid::source_hash`]es), in the order they would have ended: those
    /// sources are stopping and must checkpoint past every record they sent. The other
    /// sources' windows stay open (a reload that restarts one input does not split
    /// every other input's summaries in two).
    pub fn flush_sources(&mut self, sources: &[u64]) {
        let closing: Vec<(i64, u128)> = self
            .due
            .iter()
            .filter(|(_, fp)| {
                self.open
                    .get(fp)
                    .is_some_and(|w| w.held.iter().any(|(src, _)| sources.contains(src)))
            })
            .copied()
            .collect();
        for key in closing {
            self.due.remove(&key);
            if let Some(w) = self.open.remove(&key.1) {
                for &(src, seq) in &w.held {
                    unmark(&mut self.floors, src, seq);
                }
                self.close(w);
            }
        }
    }

    /// The next summary.
    pub fn poll_event(&mut self) -> Option<Box<Event>> {
        self.out.pop_front()
    }

    fn close(&mut self, w: Window) {
        let Some(mut ev) = w.summary else { return };
        ev.count = Some(w.count);
        ev.start_time = Some(w.first);
        ev.end_time = Some(w.last);
        let class = ev.class();
        self.metrics.summaries += 1;
        self.metrics.events_out += 1;
        self.class_metrics(class).events_out += 1;
        self.out.push_back(ev);
    }

    fn class_metrics(&mut self, class: Class) -> &mut ClassMetrics {
        self.metrics.per_class.entry(class.name()).or_default()
    }
}

#[cfg(test)]
mod tests;
