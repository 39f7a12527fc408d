//! The batcher: NDJSON event lines and source watermarks in, encoded wire batches out.
//!
//! A batch on the wire (see `vedette_schemas::wire` and DESIGN.md "Batch") is one
//! [`BatchHeader`] frame followed by the zstd payload of the NDJSON events. The batcher
//! gathers lines into one reused buffer and, when [`Batcher::cut`] is called, compresses
//! them with a reused zstd context and writes header and payload into one `Vec` that is
//! exactly what goes on the stream (and into the spool).
//!
//! Call order (sans-I/O, the time is passed in: `now_ms` on any clock that only moves
//! forward, for the linger; the wall clock's `created_ms` for the header at the cut):
//!
//! 1. [`Batcher::push_event`] for each event line and [`Batcher::note_records`] for each
//!    range of source records accounted for (records that produced no event too: the
//!    aggregator learns the source moved on);
//! 2. after each push, or when the timer from [`Batcher::poll_timeout`] fires, check
//!    [`Batcher::is_due`];
//! 3. when due (or at shutdown), [`Batcher::cut`] with the next spool sequence number.
//!
//! A batch may exceed `max_bytes` by the one line that crossed it: the caller cuts after
//! the push that made it due, so the check is cheap and no line is ever split.

use std::io::Read;

use vedette_schemas::wire::{self, BatchHeader, Watermark};
use xxhash_rust::xxh3::xxh3_64;

/// How big a batch grows and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Uncompressed payload bytes at which a batch is due.
    pub max_bytes: usize,
    /// Events at which a batch is due.
    pub max_events: u32,
    /// How long the first item of a batch waits for company, ms.
    pub linger_ms: i64,
    /// zstd level (1 fast … 19 small).
    pub zstd_level: i32,
}

/// The agent's zstd level: 1, not zstd's own default of 3. On the mixed workload's OCSF
/// batches level 1 compresses 12.75x against 13.1x (+3 % bytes on the wire), and end to end
/// on 2 cores it cut the agent's CPU per event from 7.9-9.2 us to 6.7-7.1 us (alternating
/// runs, benches/README.md): on the monitored host CPU is scarcer than a few percent of
/// bandwidth.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_events: 10_000,
            linger_ms: 200,
            zstd_level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

/// Bytes of source ranges one header carries at most: a frame ([`wire::MAX_FRAME`]) but
/// 16 KiB for the header's other fields (a few hundred bytes). 4,096 ranges of sources
/// named by 200-byte paths took more than a whole frame.
pub const MAX_RANGES_BYTES: usize = wire::MAX_FRAME - (16 << 10);

/// What `w` takes in a header's JSON at most: its strings escaped as they are, its
/// numbers at their longest (a range grows as later records extend it).
fn range_bytes(w: &Watermark) -> usize {
    let text = |s: &str| {
        s.len()
            + s.bytes()
                .filter(|&b| b < 0x20 || b == b'"' || b == b'\\')
                .count()
                * 5
    };
    // {"source":"","stream":"","unit":"","first":N,"end":N,"records":N}, and a comma.
    64 + text(&w.source) + text(&w.stream) + text(&w.unit) + 3 * 20
}

/// One batch, ready for the spool and the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    /// The header, as encoded at the front of `bytes`.
    pub header: BatchHeader,
    /// The header frame followed by the zstd payload: exactly what goes on the stream.
    pub bytes: Vec<u8>,
}

/// Gathers events and watermarks into batches. Buffers and the zstd context are reused
/// from one batch to the next.
pub struct Batcher {
    cfg: BatchConfig,
    /// The NDJSON payload so far.
    raw: Vec<u8>,
    events: u32,
    first_time: i64,
    last_time: i64,
    /// When the first item (event or watermark) of the open batch arrived.
    opened_ms: Option<i64>,
    watermarks: Vec<Watermark>,
    /// What `watermarks` take in the header's JSON, at most (see [`range_bytes`]).
    ranges_bytes: usize,
    compressor: zstd::bulk::Compressor<'static>,
    /// The compressed payload of the batch being cut.
    zbuf: Vec<u8>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("cfg", &self.cfg)
            .field("raw_len", &self.raw.len())
            .field("events", &self.events)
            .field("watermarks", &self.watermarks.len())
            .field("opened_ms", &self.opened_ms)
            .finish_non_exhaustive()
    }
}

impl Batcher {
    /// A batcher with an empty batch open.
    ///
    /// # Panics
    /// When zstd cannot allocate its context (out of memory) or rejects the level.
    pub fn new(cfg: BatchConfig) -> Self {
        let compressor =
            zstd::bulk::Compressor::new(cfg.zstd_level).expect("zstd compression context");
        Self {
            cfg,
            raw: Vec::new(),
            events: 0,
            first_time: 0,
            last_time: 0,
            opened_ms: None,
            watermarks: Vec::new(),
            ranges_bytes: 0,
            compressor,
            zbuf: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.cfg
    }

    /// Adds one event: `json_line` is one NDJSON line (a missing trailing `\n` is added),
    /// `time_ms` its event time.
    pub fn push_event(&mut self, json_line: &[u8], time_ms: i64, now_ms: i64) {
        self.push_event_with(time_ms, now_ms, |raw| raw.extend_from_slice(json_line));
    }

    /// [`Self::push_event`] with the line written by `write` straight into the batch, so an
    /// event's ~2 KB of JSON is not copied once more on its way in.
    pub fn push_event_with(&mut self, time_ms: i64, now_ms: i64, write: impl FnOnce(&mut Vec<u8>)) {
        self.open(now_ms);
        let start = self.raw.len();
        write(&mut self.raw);
        if self.raw.len() == start || self.raw.last() != Some(&b'\n') {
            self.raw.push(b'\n');
        }
        if self.events == 0 {
            self.first_time = time_ms;
            self.last_time = time_ms;
        } else {
            self.first_time = self.first_time.min(time_ms);
            self.last_time = self.last_time.max(time_ms);
        }
        self.events += 1;
    }

    /// Accounts for a range of source records. A range that continues the batch's last
    /// range of the same source, stream and unit extends it, so a batch carries one range
    /// per stream in the common case.
    pub fn note_records(&mut self, w: Watermark, now_ms: i64) {
        self.open(now_ms);
        if let Some(i) = self.continued_by(&w) {
            let prev = &mut self.watermarks[i];
            prev.end = w.end;
            prev.records += w.records;
            return;
        }
        self.ranges_bytes += range_bytes(&w);
        self.watermarks.push(w);
    }

    /// Whether `w` needs a range of its own and the open batch already carries the
    /// [`wire::MAX_WATERMARKS`] the aggregator takes, or as many bytes of ranges as a
    /// header frame may hold ([`MAX_RANGES_BYTES`]): the caller cuts the batch first, so
    /// no header is ever refused for its ranges (a refused batch would be resent forever,
    /// and hold back every batch after it).
    pub fn is_full_of_ranges(&self, w: &Watermark) -> bool {
        self.continued_by(w).is_none()
            && (self.watermarks.len() >= wire::MAX_WATERMARKS
                || self.ranges_bytes + range_bytes(w) > MAX_RANGES_BYTES)
    }

    /// The batch's last range of `w`'s source, stream and unit, when `w` starts where it
    /// ends.
    fn continued_by(&self, w: &Watermark) -> Option<usize> {
        self.watermarks
            .iter()
            .rposition(|p| p.source == w.source && p.stream == w.stream && p.unit == w.unit)
            .filter(|&i| self.watermarks[i].end == w.first)
    }

    fn open(&mut self, now_ms: i64) {
        if self.opened_ms.is_none() {
            self.opened_ms = Some(now_ms);
        }
    }

    /// Whether the open batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.watermarks.is_empty()
    }

    /// Events in the open batch.
    pub fn events(&self) -> u32 {
        self.events
    }

    /// Uncompressed payload bytes in the open batch.
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// When the open batch's linger expires (`None` while it is empty).
    pub fn poll_timeout(&self) -> Option<i64> {
        self.opened_ms
            .map(|at| at.saturating_add(self.cfg.linger_ms))
    }

    /// Whether the open batch should be cut now: full by bytes or events, or lingered long
    /// enough.
    pub fn is_due(&self, now_ms: i64) -> bool {
        if self.is_empty() {
            return false;
        }
        self.raw.len() >= self.cfg.max_bytes
            || self.events >= self.cfg.max_events
            || self.poll_timeout().is_some_and(|t| now_ms >= t)
    }

    /// Closes the open batch as `seq` of `epoch`, created at `created_ms` (ms since the
    /// epoch), and encodes it; `None` when it holds neither events nor watermarks. With no
    /// events, `first_time` and `last_time` are 0.
    ///
    /// # Panics
    /// When zstd fails to compress into a buffer of its own bound (a zstd bug).
    pub fn cut(
        &mut self,
        agent_id: &str,
        epoch: u64,
        seq: u64,
        created_ms: i64,
    ) -> Option<EncodedBatch> {
        if self.is_empty() {
            return None;
        }
        self.zbuf.clear();
        self.zbuf
            .reserve(zstd::zstd_safe::compress_bound(self.raw.len()));
        let zlen = self
            .compressor
            .compress_to_buffer(&self.raw, &mut self.zbuf)
            .expect("zstd compresses into its bound");
        debug_assert_eq!(zlen, self.zbuf.len());
        let header = BatchHeader {
            agent_id: agent_id.to_owned(),
            epoch,
            seq,
            events: self.events,
            first_time: self.first_time,
            last_time: self.last_time,
            created_ms,
            raw_len: self.raw.len() as u64,
            zstd_len: self.zbuf.len() as u64,
            checksum: xxh3_64(&self.raw),
            watermarks: std::mem::take(&mut self.watermarks),
        };
        self.ranges_bytes = 0;
        let mut bytes = Vec::with_capacity(self.zbuf.len() + 256 + 96 * header.watermarks.len());
        wire::encode_frame(&header, &mut bytes);
        bytes.extend_from_slice(&self.zbuf);
        self.raw.clear();
        self.events = 0;
        self.first_time = 0;
        self.last_time = 0;
        self.opened_ms = None;
        Some(EncodedBatch { header, bytes })
    }
}

/// Why bytes are not a valid batch.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The header frame is missing, too long or not a header.
    #[error("batch header: {0}")]
    Header(#[from] wire::FrameError),
    /// Fewer bytes than a whole header frame.
    #[error("batch cut short inside its header frame")]
    ShortHeader,
    /// The payload is not as long as the header says.
    #[error("payload of {actual} bytes, header says {header}")]
    PayloadLen {
        /// `zstd_len` from the header.
        header: u64,
        /// Bytes after the header frame.
        actual: u64,
    },
    /// The header announces more than the wire limits allow.
    #[error("header announces {zstd_len} compressed / {raw_len} raw bytes, over the wire limits")]
    TooLarge {
        /// `zstd_len` from the header.
        zstd_len: u64,
        /// `raw_len` from the header.
        raw_len: u64,
    },
    /// The payload is not valid zstd.
    #[error("payload does not decompress")]
    Zstd(#[source] std::io::Error),
    /// The payload decompresses to another length than the header says.
    #[error("payload decompresses to {actual}+ bytes, header says {header}")]
    RawLen {
        /// `raw_len` from the header.
        header: u64,
        /// Bytes decompressed (stopped one past the header's length).
        actual: u64,
    },
    /// The decompressed payload's xxh3-64 differs from the header's.
    #[error("checksum {actual:016x}, header says {header:016x}")]
    Checksum {
        /// `checksum` from the header.
        header: u64,
        /// Computed.
        actual: u64,
    },
    /// The payload holds another number of lines than the header's event count.
    #[error("payload holds {actual} lines, header says {header} events")]
    Events {
        /// `events` from the header.
        header: u32,
        /// Lines in the payload.
        actual: u64,
    },
}

/// Decodes one whole batch (header frame + zstd payload) and checks it: lengths, the wire
/// limits, the checksum and the event count. Decompression stops one byte past the
/// header's `raw_len` (itself capped at [`wire::MAX_RAW`]), so a zstd bomb costs at most
/// that.
pub fn decode(bytes: &[u8]) -> Result<(BatchHeader, Vec<u8>), DecodeError> {
    let (body, payload) = wire::split_frame(bytes)?.ok_or(DecodeError::ShortHeader)?;
    let header: BatchHeader = wire::decode_frame(body)?;
    if header.zstd_len > wire::MAX_PAYLOAD || header.raw_len > wire::MAX_RAW {
        return Err(DecodeError::TooLarge {
            zstd_len: header.zstd_len,
            raw_len: header.raw_len,
        });
    }
    if payload.len() as u64 != header.zstd_len {
        return Err(DecodeError::PayloadLen {
            header: header.zstd_len,
            actual: payload.len() as u64,
        });
    }
    // Grows with what actually decompresses, not with what the header claims.
    let mut raw = Vec::with_capacity((header.raw_len as usize).min(payload.len() * 8 + 1024));
    zstd::stream::read::Decoder::with_buffer(payload)
        .map_err(DecodeError::Zstd)?
        .take(header.raw_len + 1)
        .read_to_end(&mut raw)
        .map_err(DecodeError::Zstd)?;
    if raw.len() as u64 != header.raw_len {
        return Err(DecodeError::RawLen {
            header: header.raw_len,
            actual: raw.len() as u64,
        });
    }
    let checksum = xxh3_64(&raw);
    if checksum != header.checksum {
        return Err(DecodeError::Checksum {
            header: header.checksum,
            actual: checksum,
        });
    }
    let lines = memchr::memchr_iter(b'\n', &raw).count() as u64;
    if lines != u64::from(header.events) {
        return Err(DecodeError::Events {
            header: header.events,
            actual: lines,
        });
    }
    Ok((header, raw))
}

#[cfg(test)]
mod tests;
