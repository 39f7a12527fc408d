//! Batch ingest: checks one batch received from an agent against its header and the
//! identity of the connection, and turns its NDJSON events into [`Row`]s ready to store.
//!
//! Sans-I/O: [`decode_batch`] (or [`Decoder::decode`], which reuses its zstd contexts
//! across batches) takes the [`BatchHeader`], the zstd payload and the [`Peer`] read from
//! the client certificate, and returns a [`DecodedBatch`] or the reason to refuse it. The
//! caller then commits the batch with [`crate::store::EventStore::commit`] and acknowledges
//! only once that returns.
//!
//! Checks, in order (the first failure refuses the whole batch):
//! 1. the header's `agent_id` is the certificate's;
//! 2. the payload is `zstd_len` bytes;
//! 3. `raw_len` is within [`wire::MAX_RAW`], and decompression never produces more than
//!    `raw_len` bytes (a zstd bomb stops there), and exactly `raw_len` (the output
//!    buffer is reserved at `raw_len` up front: an enrolled agent can make the aggregator
//!    reserve up to `MAX_RAW` per batch in flight, which the server bounds by limiting
//!    concurrent batch streams);
//! 4. the xxh3-64 of the decompressed bytes is `checksum`;
//! 5. every line is an OCSF event (see below), and there are `events` of them;
//! 6. every watermark range is well-formed (`first <= end`, positions that fit SQLite's
//!    signed 64-bit integers).
//!
//! **A malformed line refuses the batch** (with its line number) rather than being stored
//! as a raw Base Event with a parse-error reason. The agent's own normalizer writes these
//! lines, so a bad one is a bug or tampering, not a property of the logs; refusing keeps
//! the evidence intact (the agent sets the batch aside and reports it, nothing is lost
//! silently), while storing part of a batch would acknowledge it and let the agent free
//! the only copy of what could not be read. Required per line: a JSON object, with
//! `metadata.uid` (a non-empty string of at most [`MAX_UID`] bytes), and the OCSF-required
//! integers `time`, `class_uid`, `type_uid` and `severity_id`.
//!
//! **Tenancy:** `metadata.tenant_uid` is overwritten with the certificate's tenant in the
//! stored document: an agent's word about its tenant is never trusted.
//!
//! **Stored documents:** a batch's events are stored together, as one zstd frame of
//! their NDJSON (a [`Chunk`]), and each [`Row`] says which line of its chunk it is. When
//! every line already names the certificate's tenant (the agent writes it; anything else
//! is rewritten), the chunk is the agent's payload itself, checked above: storing it costs
//! no compression at all, and it keeps the repetition between events that per-event
//! frames lose (the bench workload: 141 B per event as a batch, 866 B compressed one by
//! one). Otherwise the rewritten lines are compressed again at [`CHUNK_LEVEL`]. One event
//! is read back by decompressing its chunk (at most [`wire::MAX_RAW`] bytes, the cap the
//! batch was checked against): [`ChunkText`].
//!
//! **Cost:** the indexed fields are read from each line without building a JSON tree
//! (a simd-json tape of the line, only the indexed keys looked at: `fields`); only a line
//! that does not carry the certificate's tenant is parsed whole and re-serialized.

use serde_json::Value;
use vedette_schemas::wire::{self, AckOutcome, BatchHeader, Watermark};
use xxhash_rust::xxh3::xxh3_64;

use super::ipfilter::{IpFilterBuilder, Side};
use fields::FieldReader;

mod fields;

/// Longest `metadata.uid` accepted, bytes (the agent's are 32 hex digits).
pub const MAX_UID: usize = 256;

/// zstd level of a chunk the aggregator compresses itself (one whose lines it rewrote).
pub const CHUNK_LEVEL: i32 = 3;

/// The identity of the connection a batch came in on, as read from its client certificate
/// (never from the batch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The agent's id (the certificate's subject).
    pub agent_id: String,
    /// The tenant the agent was enrolled into.
    pub tenant: String,
}

/// One event ready to store: the fields analysts search by. Its document is the line of
/// the batch's [`Chunk`] at the row's index in [`DecodedBatch::rows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `metadata.uid`: deterministic, so a re-read line has the same one.
    pub uid: String,
    /// `time`, ms since the epoch.
    pub time_ms: i64,
    /// `class_uid`.
    pub class_uid: u32,
    /// `type_uid` (`class_uid * 100 + activity_id`).
    pub type_uid: u32,
    /// `severity_id`.
    pub severity_id: u8,
    /// `device.hostname`: the host the event is about.
    pub device: Option<String>,
    /// `device.ip`.
    pub device_ip: Option<String>,
    /// `user.name`, else `actor.user.name`.
    pub user: Option<String>,
    /// `src_endpoint.ip`.
    pub src_ip: Option<String>,
    /// `dst_endpoint.ip`.
    pub dst_ip: Option<String>,
    /// `count` of a dedup summary, 1 where absent: summing it over events gives the number
    /// of occurrences.
    pub count: u64,
}

/// The documents of a batch: one zstd frame of NDJSON, line `i` the event of row `i`
/// (each with the certificate's tenant).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Decompressed length, at most [`wire::MAX_RAW`].
    pub raw_len: u64,
    /// The zstd frame.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("raw_len", &self.raw_len)
            .field("zstd_len", &self.data.len())
            .finish()
    }
}

/// A batch that passed every check: its rows, and the watermarks it accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedBatch {
    /// One per event, in payload order.
    pub rows: Vec<Row>,
    /// Their documents.
    pub chunk: Chunk,
    /// The [`crate::core::ipfilter`] of their addresses (`None`: no event names one).
    pub ip_filter: Option<Vec<u8>>,
    /// As in the header: per source stream, the range `[first, end)` the batch covers.
    pub watermarks: Vec<Watermark>,
}

/// Why a batch cannot be taken.
///
/// Every variant but [`IngestError::Internal`] is the peer's fault and final: answer
/// [`IngestError::outcome`] (a [`AckOutcome::Rejected`]) and the agent sets the batch
/// aside. `Internal` is ours: do not acknowledge, the agent will send it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The header names another agent than the certificate.
    #[error("claims agent {claimed}, certificate says {certified}")]
    AgentMismatch {
        /// `agent_id` in the header.
        claimed: String,
        /// The certificate's agent id.
        certified: String,
    },
    /// The payload is not `zstd_len` bytes.
    #[error("payload is {actual} bytes, header says {header}")]
    PayloadLength {
        /// `zstd_len`.
        header: u64,
        /// Bytes received.
        actual: u64,
    },
    /// `raw_len` exceeds [`wire::MAX_RAW`].
    #[error("raw length {raw_len} exceeds the {max} limit", max = wire::MAX_RAW)]
    TooLarge {
        /// `raw_len`.
        raw_len: u64,
    },
    /// The payload is not a zstd frame that decompresses within `raw_len`.
    #[error("payload does not decompress within {raw_len} bytes: {reason}")]
    Decompress {
        /// `raw_len`.
        raw_len: u64,
        /// zstd's words.
        reason: String,
    },
    /// The payload decompresses to another length than `raw_len`.
    #[error("payload decompresses to {actual} bytes, header says {header}")]
    RawLength {
        /// `raw_len`.
        header: u64,
        /// Decompressed length.
        actual: u64,
    },
    /// xxh3-64 of the decompressed payload differs from `checksum`.
    #[error("checksum {actual:016x} differs from the header's {header:016x}")]
    Checksum {
        /// `checksum`.
        header: u64,
        /// Computed.
        actual: u64,
    },
    /// The payload holds another number of events than `events`.
    #[error("payload holds {actual} events, header says {header}")]
    EventCount {
        /// `events`.
        header: u32,
        /// Lines in the payload.
        actual: u64,
    },
    /// A line is not an event this aggregator can store.
    #[error("line {line}: {reason}")]
    BadLine {
        /// 1-based line number in the decompressed payload.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A watermark range is malformed.
    #[error("watermark {index} ({log_source}): {reason}")]
    BadWatermark {
        /// 0-based index in the header's list.
        index: usize,
        /// Its source (`source` would be taken for an error source).
        log_source: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Our side failed (a zstd context could not be made): not the peer's fault.
    #[error("aggregator fault while decoding: {0}")]
    Internal(String),
}

impl IngestError {
    /// Whether the peer caused it, so that the batch is refused for good.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, Self::Internal(_))
    }

    /// The acknowledgement to send: [`AckOutcome::Rejected`] when the peer is at fault,
    /// `None` when the batch must not be acknowledged at all (it will come again).
    pub fn outcome(&self) -> Option<AckOutcome> {
        self.is_peer_fault().then(|| AckOutcome::Rejected {
            reason: self.to_string(),
        })
    }
}

/// Checks and decodes one batch with fresh zstd contexts; see [`Decoder`] to reuse them.
pub fn decode_batch(
    header: &BatchHeader,
    payload: &[u8],
    who: &Peer,
) -> Result<DecodedBatch, IngestError> {
    Decoder::new()?.decode(header, payload, who)
}

/// Batch decoder holding the zstd contexts (decompression of payloads, compression of
/// rewritten chunks) and a scratch buffer, reused from batch to batch. One per ingest
/// worker.
pub struct Decoder {
    unzstd: zstd::bulk::Decompressor<'static>,
    zstd: zstd::bulk::Compressor<'static>,
    json: Vec<u8>,
    fields: FieldReader,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").finish_non_exhaustive()
    }
}

impl Decoder {
    /// Fresh contexts.
    pub fn new() -> Result<Self, IngestError> {
        let internal = |e: std::io::Error| IngestError::Internal(e.to_string());
        Ok(Self {
            zstd: zstd::bulk::Compressor::new(CHUNK_LEVEL).map_err(internal)?,
            unzstd: zstd::bulk::Decompressor::new().map_err(internal)?,
            json: Vec::with_capacity(4096),
            fields: FieldReader::default(),
        })
    }

    /// Checks one batch (see the module docs for the order) and decodes its events.
    pub fn decode(
        &mut self,
        header: &BatchHeader,
        payload: &[u8],
        who: &Peer,
    ) -> Result<DecodedBatch, IngestError> {
        if header.agent_id != who.agent_id {
            return Err(IngestError::AgentMismatch {
                claimed: header.agent_id.clone(),
                certified: who.agent_id.clone(),
            });
        }
        if payload.len() as u64 != header.zstd_len {
            return Err(IngestError::PayloadLength {
                header: header.zstd_len,
                actual: payload.len() as u64,
            });
        }
        if header.raw_len > wire::MAX_RAW {
            return Err(IngestError::TooLarge {
                raw_len: header.raw_len,
            });
        }
        // `decompress` fails rather than write past the capacity: at most `raw_len`
        // (<= MAX_RAW) bytes are ever produced, whatever the frame claims.
        let raw = self
            .unzstd
            .decompress(payload, header.raw_len as usize)
            .map_err(|e| IngestError::Decompress {
                raw_len: header.raw_len,
                reason: e.to_string(),
            })?;
        if raw.len() as u64 != header.raw_len {
            return Err(IngestError::RawLength {
                header: header.raw_len,
                actual: raw.len() as u64,
            });
        }
        let sum = xxh3_64(&raw);
        if sum != header.checksum {
            return Err(IngestError::Checksum {
                header: header.checksum,
                actual: sum,
            });
        }
        let body = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let lines = if body.is_empty() {
            0
        } else {
            memchr::memchr_iter(b'\n', body).count() as u64 + 1
        };
        if lines != u64::from(header.events) {
            return Err(IngestError::EventCount {
                header: header.events,
                actual: lines,
            });
        }
        for (index, w) in header.watermarks.iter().enumerate() {
            let bad = |reason: &str| IngestError::BadWatermark {
                index,
                log_source: w.source.clone(),
                reason: reason.to_owned(),
            };
            if w.first > w.end {
                return Err(bad("first is past end"));
            }
            if i64::try_from(w.end).is_err() {
                return Err(bad("position beyond 2^63"));
            }
        }
        let mut rows = Vec::with_capacity(lines as usize);
        // Lines rewritten (tenant set), by index: none in the common case.
        let mut rewritten: Vec<(usize, Vec<u8>)> = Vec::new();
        if !body.is_empty() {
            for (i, line) in split_lines(body).enumerate() {
                let bad = |reason: String| IngestError::BadLine {
                    line: i + 1,
                    reason,
                };
                if let Some(row) = self.fields.row(line, &who.tenant) {
                    rows.push(row);
                    continue;
                }
                let event: Value =
                    serde_json::from_slice(line).map_err(|e| bad(format!("not JSON: {e}")))?;
                let (row, json) = row(event, &who.tenant).map_err(bad)?;
                rows.push(row);
                rewritten.push((i, json));
            }
        }
        let chunk = if rewritten.is_empty() {
            Chunk {
                raw_len: header.raw_len,
                data: payload.to_vec(),
            }
        } else {
            self.rewrite_chunk(body, &rewritten)?
        };
        let mut ips = IpFilterBuilder::default();
        for r in &rows {
            if let Some(ip) = &r.src_ip {
                ips.add(Side::Src, ip);
            }
            if let Some(ip) = &r.dst_ip {
                ips.add(Side::Dst, ip);
            }
        }
        Ok(DecodedBatch {
            rows,
            chunk,
            ip_filter: ips.finish(),
            watermarks: header.watermarks.clone(),
        })
    }

    /// The batch's lines with the rewritten ones in their places, compressed.
    fn rewrite_chunk(
        &mut self,
        body: &[u8],
        rewritten: &[(usize, Vec<u8>)],
    ) -> Result<Chunk, IngestError> {
        self.json.clear();
        let mut next = rewritten.iter().peekable();
        for (i, line) in split_lines(body).enumerate() {
            match next.next_if(|(at, _)| *at == i) {
                Some((_, json)) => self.json.extend_from_slice(json),
                None => self.json.extend_from_slice(line),
            }
            self.json.push(b'\n');
        }
        if self.json.len() as u64 > wire::MAX_RAW {
            // Rewriting only adds a tenant, but that could cross the cap readers rely on.
            return Err(IngestError::TooLarge {
                raw_len: self.json.len() as u64,
            });
        }
        let data = self
            .zstd
            .compress(&self.json)
            .map_err(|e| IngestError::Internal(format!("compressing a chunk: {e}")))?;
        Ok(Chunk {
            raw_len: self.json.len() as u64,
            data,
        })
    }
}

/// The lines of `body` (split at every LF, as `split` would), found with memchr: a byte
/// loop over every line's ~2 KB was a tenth of decoding.
fn split_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', body)
        .chain(std::iter::once(body.len()))
        .map(move |end| {
            let line = &body[start..end];
            start = end + 1;
            line
        })
}

/// One event to one row and its rewritten line; `Err` says what is wrong with it.
fn row(mut event: Value, tenant: &str) -> Result<(Row, Vec<u8>), String> {
    let Some(obj) = event.as_object_mut() else {
        return Err("not a JSON object".into());
    };
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err("no metadata object".into());
    };
    let uid = match meta.get("uid") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_UID => s.clone(),
        Some(Value::String(s)) if s.len() > MAX_UID => {
            return Err(format!("metadata.uid longer than {MAX_UID} bytes"));
        }
        _ => return Err("no metadata.uid string".into()),
    };
    meta.insert("tenant_uid".into(), Value::String(tenant.to_owned()));
    let int = |key: &str| -> Result<i64, String> {
        obj.get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("no integer {key}"))
    };
    let ranged = |key: &str, max: i64| -> Result<i64, String> {
        let v = int(key)?;
        if (0..=max).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{key} {v} out of range"))
        }
    };
    let time_ms = int("time")?;
    let class_uid = ranged("class_uid", u32::MAX.into())? as u32;
    let type_uid = ranged("type_uid", u32::MAX.into())? as u32;
    let severity_id = ranged("severity_id", u8::MAX.into())? as u8;
    let text = |path: &[&str]| -> Option<String> {
        let mut v = obj.get(path[0])?;
        for k in &path[1..] {
            v = v.get(k)?;
        }
        v.as_str().map(str::to_owned)
    };
    let row = Row {
        uid,
        time_ms,
        class_uid,
        type_uid,
        severity_id,
        device: text(&["device", "hostname"]),
        device_ip: text(&["device", "ip"]),
        user: text(&["user", "name"]).or_else(|| text(&["actor", "user", "name"])),
        src_ip: text(&["src_endpoint", "ip"]),
        dst_ip: text(&["dst_endpoint", "ip"]),
        count: obj.get("count").and_then(Value::as_u64).unwrap_or(1),
    };
    let json = serde_json::to_vec(&event).expect("a Value serializes");
    Ok((row, json))
}

/// Why a stored document cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The chunk's recorded length is over [`wire::MAX_RAW`].
    #[error("stored chunk claims {0} bytes")]
    Size(u64),
    /// zstd failed.
    #[error("stored chunk does not decompress: {0}")]
    Zstd(#[source] std::io::Error),
    /// The chunk has no such line.
    #[error("stored chunk has no line {0}")]
    NoLine(usize),
    /// Not JSON.
    #[error("stored document is not JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// A stored chunk, decompressed, with its lines found once (a reader takes many events
/// from one chunk).
#[derive(Debug)]
pub struct ChunkText {
    text: Vec<u8>,
    /// Where each line starts; line `i` ends one byte before line `i + 1` starts.
    starts: Vec<usize>,
}

impl ChunkText {
    /// Decompresses a stored chunk of `raw_len` bytes.
    pub fn open(data: &[u8], raw_len: u64) -> Result<Self, DocError> {
        if raw_len > wire::MAX_RAW {
            return Err(DocError::Size(raw_len));
        }
        let mut text = zstd::bulk::decompress(data, raw_len as usize).map_err(DocError::Zstd)?;
        if text.last() != Some(&b'\n') {
            text.push(b'\n');
        }
        // Lines as `Decoder::decode` counted them: an empty chunk, or a lone LF, holds none.
        let body = &text[..text.len() - 1];
        let mut starts = vec![0];
        if !body.is_empty() {
            starts.extend(memchr::memchr_iter(b'\n', body).map(|i| i + 1));
            // The last "start" is one past the final LF.
            starts.push(text.len());
        }
        Ok(Self { text, starts })
    }

    /// Lines in the chunk.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Whether the chunk holds no line.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Line `line` (0-based), as JSON.
    pub fn line(&self, line: usize) -> Result<Value, DocError> {
        if line >= self.len() {
            return Err(DocError::NoLine(line));
        }
        let json = &self.text[self.starts[line]..self.starts[line + 1] - 1];
        serde_json::from_slice(json).map_err(DocError::Json)
    }
}

/// The agent's side of a batch, for tests and benches: the header and zstd payload of
/// `events` (one JSON object each), with `first_time`/`last_time` from their `time`.
pub fn encode_batch(
    agent_id: &str,
    epoch: u64,
    seq: u64,
    events: &[Value],
    watermarks: Vec<Watermark>,
    created_ms: i64,
) -> (BatchHeader, Vec<u8>) {
    let mut raw = Vec::new();
    for e in events {
        serde_json::to_writer(&mut raw, e).expect("a Value serializes");
        raw.push(b'\n');
    }
    let times = events.iter().filter_map(|e| e.get("time")?.as_i64());
    let payload = zstd::bulk::compress(&raw, 3).expect("zstd compresses");
    let header = BatchHeader {
        agent_id: agent_id.to_owned(),
        epoch,
        seq,
        events: events.len() as u32,
        first_time: times.clone().min().unwrap_or(0),
        last_time: times.max().unwrap_or(0),
        created_ms,
        raw_len: raw.len() as u64,
        zstd_len: payload.len() as u64,
        checksum: xxh3_64(&raw),
        watermarks,
    };
    (header, payload)
}

#[cfg(test)]
pub(crate) mod tests;
