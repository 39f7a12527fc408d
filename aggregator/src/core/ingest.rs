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
//!    buffer is reserved at `raw_len` up front: the server charges every batch its
//!    [`memory_charge`] against a memory budget before reading it, and refuses one whose
//!    charge is over an agent's share);
//! 4. the xxh3-64 of the decompressed bytes is `checksum`;
//! 5. every line is an OCSF event (see below), and there are `events` of them; a line over
//!    [`SMALL_LINE`] is first checked against [`MAX_LINE`] and [`MAX_LINE_VALUES`] and then
//!    parsed alone, server-wide (parsing the densest JSON takes ~50 bytes per value);
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
use vedette_schemas::ocsf::Text;
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
    /// The serial of the certificate the connection presented (hex): its batches are
    /// refused once a renewed certificate has replaced it.
    pub serial: String,
}

/// One event ready to store: the fields analysts search by. Its document is the line of
/// the batch's [`Chunk`] at the row's index in [`DecodedBatch::rows`]. Its strings are
/// held inline up to 24 bytes (host names, IPv4 addresses, user names): a batch's rows
/// are not thousands of tiny allocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `metadata.uid`: deterministic, so a re-read line has the same one.
    pub uid: Text,
    /// `time`, ms since the epoch.
    pub time_ms: i64,
    /// `class_uid`.
    pub class_uid: u32,
    /// `type_uid` (`class_uid * 100 + activity_id`).
    pub type_uid: u32,
    /// `severity_id`.
    pub severity_id: u8,
    /// `device.hostname`: the host the event is about.
    pub device: Option<Text>,
    /// `device.ip`.
    pub device_ip: Option<Text>,
    /// `user.name`, else `actor.user.name`.
    pub user: Option<Text>,
    /// `src_endpoint.ip`.
    pub src_ip: Option<Text>,
    /// `dst_endpoint.ip`.
    pub dst_ip: Option<Text>,
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
        // As many as the header said, which the server charged for before reading.
        let mut rows = Vec::with_capacity(lines as usize);
        // Once a line needs rewriting (its tenant set), the stored text is built here as
        // the lines go by: those before it copied once, then each line or its rewrite.
        // None does in the common case.
        let mut rewriting = false;
        self.json.clear();
        if !body.is_empty() {
            let mut start = 0;
            for (i, line) in split_lines(body).enumerate() {
                let at = start;
                start += line.len() + 1;
                let big = line.len() > SMALL_LINE;
                // A big line is parsed alone, server-wide: what parsing it takes is bounded
                // once (see `memory_charge`), not per batch in flight.
                let _alone = if big {
                    check_big_line(line).map_err(|reason| IngestError::BadLine {
                        line: i + 1,
                        reason,
                    })?;
                    Some(
                        BIG_LINE
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    )
                } else {
                    None
                };
                let fast = self.fields.row(line, &who.tenant);
                if big {
                    // Its buffers were sized to it; the next lines need ordinary ones.
                    self.fields = FieldReader::default();
                }
                if let Some(row) = fast {
                    rows.push(row);
                    if rewriting {
                        self.json.extend_from_slice(line);
                        self.json.push(b'\n');
                    }
                    continue;
                }
                let bad = |reason: String| IngestError::BadLine {
                    line: i + 1,
                    reason,
                };
                if !rewriting {
                    rewriting = true;
                    self.json
                        .reserve(rewrite_bound(body.len(), lines, &who.tenant));
                    self.json.extend_from_slice(&body[..at]);
                }
                let event: Value =
                    serde_json::from_slice(line).map_err(|e| bad(format!("not JSON: {e}")))?;
                rows.push(row(event, &who.tenant, &mut self.json).map_err(bad)?);
                self.json.push(b'\n');
            }
        }
        let chunk = if rewriting {
            self.rewritten_chunk()?
        } else {
            Chunk {
                raw_len: header.raw_len,
                data: payload.to_vec(),
            }
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

    /// The batch's text as rewritten, compressed; the buffer is let go if the batch was
    /// large (it is kept for the next batch only up to an ordinary batch's size).
    fn rewritten_chunk(&mut self) -> Result<Chunk, IngestError> {
        let chunk = self.compress_rewritten();
        if self.json.capacity() > KEEP_JSON {
            self.json = Vec::new();
        }
        chunk
    }

    fn compress_rewritten(&mut self) -> Result<Chunk, IngestError> {
        if self.json.len() as u64 > wire::MAX_RAW {
            // Rewriting only adds a tenant, but that could cross the cap readers rely on.
            return Err(IngestError::TooLarge {
                raw_len: self.json.len() as u64,
            });
        }
        let mut data = self
            .zstd
            .compress(&self.json)
            .map_err(|e| IngestError::Internal(format!("compressing a chunk: {e}")))?;
        // Allocated at zstd's bound (the text's size); held until the commit.
        data.shrink_to_fit();
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

/// What the rewritten text of a batch of `body` bytes and `lines` lines may take: each line
/// may gain a `tenant_uid` member.
fn rewrite_bound(body: usize, lines: u64, tenant: &str) -> usize {
    body + 1 + lines as usize * (tenant.len() + r#","tenant_uid":"""#.len() + 1)
}

/// Capacity of the rewrite buffer kept between batches.
const KEEP_JSON: usize = 4 << 20;

/// One event to one row, its rewritten line appended to `out`; `Err` says what is wrong
/// with it.
fn row(mut event: Value, tenant: &str, out: &mut Vec<u8>) -> Result<Row, String> {
    let Some(obj) = event.as_object_mut() else {
        return Err("not a JSON object".into());
    };
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err("no metadata object".into());
    };
    let uid = match meta.get("uid") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_UID => Text::from(s.as_str()),
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
    let text = |path: &[&str]| -> Option<Text> {
        let mut v = obj.get(path[0])?;
        for k in &path[1..] {
            v = v.get(k)?;
        }
        v.as_str().map(Text::from)
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
    serde_json::to_writer(out, &event).expect("a Value serializes");
    Ok(row)
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

/// Lines up to this length are parsed without further checks: what parsing one takes (a
/// few times its length, ~50 times for the densest JSON) is within [`DECODE_FIXED`].
pub const SMALL_LINE: usize = 64 << 10;

/// Longest line accepted, bytes. The agent's events are far shorter (its `max_line_bytes`
/// is at most 1 MiB, and an event carries the line at most a few times, escaped).
pub const MAX_LINE: usize = 32 << 20;

/// Most JSON values one line may hold (each is a tape node and, on the general path, a
/// `serde_json::Value`: ~50 bytes of parser memory apiece).
pub const MAX_LINE_VALUES: usize = 1 << 20;

/// What parsing the one big line parsed at a time may take, at most
/// ([`line_parse_bytes`] of the longest, densest line accepted). Not charged per batch: at
/// most one such line is parsed at a time in the whole server.
pub const BIG_LINE_BYTES: u64 = parse_bytes(MAX_LINE, MAX_LINE_VALUES);

/// What parsing a line of `len` bytes and up to `values` values may take: two copies of it
/// (padded scratch, unescaped strings) and ~56 bytes per value (tape node, structural
/// index, and on the general path a `serde_json::Value`).
const fn parse_bytes(len: usize, values: usize) -> u64 {
    2 * len as u64 + 56 * values as u64
}

/// The bound on what parsing `line` may take, from its length and [`line_values`].
pub fn line_parse_bytes(line: &[u8]) -> u64 {
    parse_bytes(line.len(), line_values(line))
}

/// An upper bound on the JSON values in `line`, from the bytes that can start or separate
/// one (`,` `:` `[` `{`; some are inside strings), counted at memchr speed.
pub fn line_values(line: &[u8]) -> usize {
    memchr::memchr3_iter(b',', b':', b'[', line).count()
        + memchr::memchr_iter(b'{', line).count()
        + 1
}

/// Held while a line over [`SMALL_LINE`] is parsed.
static BIG_LINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Refuses a big line that is too long, or may hold more values than [`MAX_LINE_VALUES`]
/// ([`line_values`]), before any parsing.
fn check_big_line(line: &[u8]) -> Result<(), String> {
    if line.len() > MAX_LINE {
        return Err(format!(
            "{} bytes, over the {} MiB an event may take",
            line.len(),
            MAX_LINE >> 20
        ));
    }
    let values = line_values(line);
    if values > MAX_LINE_VALUES {
        return Err(format!(
            "up to {values} JSON values, over the {MAX_LINE_VALUES} an event may hold"
        ));
    }
    Ok(())
}

/// Memory decoding takes besides what is in proportion to the batch: zstd contexts,
/// reused buffers, parsing a line of up to [`SMALL_LINE`] bytes.
pub const DECODE_FIXED: u64 = 4 << 20;

/// Memory one row holds, its strings on the heap included (most are inline).
pub const ROW_BYTES: u64 = std::mem::size_of::<Row>() as u64 + 64;

/// Bytes of memory that checking and decoding a batch may hold at its peak, known from its
/// header before its payload is read (the server charges it against its memory budget):
/// the payload and the stored copy of it, the decompressed text, the rewritten text (when
/// lines need their tenant set) and zstd's output buffer for it, the rows. Parsing a line
/// over [`SMALL_LINE`] is bounded apart ([`BIG_LINE_BYTES`]). `tests/decode_memory.rs`
/// measures decoding against it.
pub fn memory_charge(header: &BatchHeader) -> u64 {
    DECODE_FIXED + 2 * header.zstd_len + 3 * header.raw_len + u64::from(header.events) * ROW_BYTES
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
