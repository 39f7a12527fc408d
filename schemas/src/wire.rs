//! The agent ↔ aggregator wire protocol (QUIC, see ../DESIGN.md "Batch").
//!
//! Every message on a stream is a *frame*: a 4-byte big-endian length, then that many bytes
//! of JSON. The agent opens every stream (bidirectional) and says what it is in its first
//! byte ([`STREAM_CONTROL`], [`STREAM_BATCH`]). A batch stream carries one [`BatchHeader`] frame followed by the raw zstd
//! payload (its length is in the header), and the aggregator answers with one [`Ack`] frame
//! on the same stream. The control stream carries [`Control`] frames both ways. JSON keeps
//! the small frames readable in a packet capture; the bulk of the bytes is the payload.

use serde::{Deserialize, Serialize};

/// ALPN of event shipping; served only to agents with a client certificate of the CA.
pub const ALPN_EVENTS: &[u8] = b"vedette/1";
/// ALPN of enrollment; the only one served without a client certificate.
pub const ALPN_ENROLL: &[u8] = b"vedette-enroll/1";
/// First byte of the agent's control stream.
pub const STREAM_CONTROL: u8 = 1;
/// First byte of a batch stream.
pub const STREAM_BATCH: u8 = 2;
/// Largest control, header or ack frame accepted (a frame is small; a bigger length
/// prefix is garbage or an attack).
pub const MAX_FRAME: usize = 1 << 20;
/// Largest batch payload (compressed) accepted.
pub const MAX_PAYLOAD: u64 = 64 << 20;
/// Largest decompressed batch accepted (a zstd bomb stops here).
pub const MAX_RAW: u64 = 256 << 20;

/// Source ranges one batch header may carry. The aggregator refuses a header with more
/// (its ranges are held in memory while the batch is stored); the agent's batcher cuts a
/// batch before it would need another.
pub const MAX_WATERMARKS: usize = 4096;

/// The header of one batch: what the payload holds and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchHeader {
    /// The agent that sent it, as it believes. Informational only: the aggregator takes
    /// the identity from the client certificate and rejects a batch whose claim differs.
    pub agent_id: String,
    /// Random number chosen when the agent's spool was created: a spool rebuilt from
    /// nothing starts a new sequence instead of colliding with the old one.
    pub epoch: u64,
    /// Monotonic per (agent, epoch), from 1.
    pub seq: u64,
    /// Events in the payload (NDJSON lines).
    pub events: u32,
    /// Earliest and latest event `time` in the payload, ms since the epoch.
    pub first_time: i64,
    /// See `first_time`.
    pub last_time: i64,
    /// When the agent cut the batch, ms since the epoch (for lag and latency).
    pub created_ms: i64,
    /// Length of the decompressed payload.
    pub raw_len: u64,
    /// Length of the zstd payload that follows the header.
    pub zstd_len: u64,
    /// xxh3-64 of the decompressed payload.
    pub checksum: u64,
    /// Per source, the range of records this batch accounts for.
    pub watermarks: Vec<Watermark>,
}

/// A range of one source's records that an agent read and accounted for in a batch: its
/// events are in this batch or, for records still joining or folding, a later one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The source as `metadata.log_source` names it (a path, a listener, the journal).
    pub source: String,
    /// The identity of the stream the positions belong to: a file's device, inode and
    /// head fingerprint; a listener and its start; the journal's boot. Positions of
    /// different streams of one source do not compare.
    pub stream: String,
    /// What the positions count: `"byte"` offsets of lines, `"message"` counters, journal
    /// `"seqnum"`s.
    pub unit: String,
    /// First position in the range.
    pub first: u64,
    /// Just past the range: the next byte offset, or the last counter + 1. Two ranges of
    /// one stream leave no gap when one's `end` is the other's `first`.
    pub end: u64,
    /// Records in the range.
    pub records: u64,
}

/// The aggregator's answer to one batch, sent only once the outcome is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The batch's epoch.
    pub epoch: u64,
    /// The batch's sequence number.
    pub seq: u64,
    /// What happened to it.
    pub outcome: AckOutcome,
}

/// What the aggregator did with a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AckOutcome {
    /// Committed: `stored` new events, `duplicates` whose uid was already stored.
    Stored {
        /// New events.
        stored: u64,
        /// Events already stored (re-read after a crash).
        duplicates: u64,
        /// This (agent, epoch, seq) was committed before with other content: the agent's
        /// numbering went back (a virtual machine restored from a snapshot) and the batch
        /// was stored as new.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reused: bool,
    },
    /// This (agent, epoch, seq) was committed before; nothing stored again.
    Replay,
    /// Refused for good (bad checksum, claims another agent, malformed): the agent
    /// keeps it out of the way and says so, it will never be accepted as is.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// A frame on the control stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// Agent → aggregator, first: who and what it is.
    Hello(Hello),
    /// Aggregator → agent, answer to hello: the identity it sees in the certificate.
    Welcome(Welcome),
    /// Agent → aggregator, periodically: liveness and state.
    Heartbeat(Heartbeat),
    /// Agent → aggregator: a new certificate for the same identity, before expiry.
    Renew {
        /// PEM certificate signing request for a fresh key.
        csr_pem: String,
    },
    /// Aggregator → agent: the renewed certificate.
    Renewed {
        /// PEM certificate.
        cert_pem: String,
    },
    /// Either way: a request could not be served.
    Error {
        /// Why.
        reason: String,
    },
}

/// Agent → aggregator: who and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The agent's version.
    pub version: String,
    /// The host name.
    pub hostname: String,
    /// Host facts (addresses, OS) as the agent knows them.
    pub host: serde_json::Value,
    /// The spool's epoch.
    pub epoch: u64,
}

/// Aggregator → agent: the identity the aggregator sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Agent id from the certificate.
    pub agent_id: String,
    /// Tenant from the certificate.
    pub tenant: String,
    /// The aggregator's version.
    pub version: String,
}

/// Agent → aggregator: liveness and state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Agent clock, ms since the epoch.
    pub now_ms: i64,
    /// Bytes waiting in the spool.
    pub spool_bytes: u64,
    /// Batches waiting in the spool.
    pub spool_batches: u64,
    /// Age of the oldest batch not yet acknowledged, ms.
    pub lag_ms: i64,
    /// Batches dropped by the spool's drop-oldest policy since start.
    pub dropped_batches: u64,
    /// Events in those batches.
    pub dropped_events: u64,
    /// Records lost to damage found in the spool at start.
    pub damaged_records: u64,
    /// UDP datagrams the kernel dropped before the agent read them.
    pub udp_drops: u64,
}

/// Enrollment request (ALPN `vedette-enroll/1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time token's id and secret (without the CA pin, which the agent used).
    pub token: String,
    /// PEM certificate signing request for the agent's fresh key.
    pub csr_pem: String,
    /// The host name (stored for the operator; not part of the identity).
    pub hostname: String,
}

/// Enrollment answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum EnrollResponse {
    /// Enrolled.
    Enrolled {
        /// The agent's id (also the certificate's common name).
        agent_id: String,
        /// The tenant it joined.
        tenant: String,
        /// The signed client certificate, PEM.
        cert_pem: String,
        /// The CA certificate, PEM.
        ca_pem: String,
    },
    /// Refused.
    Refused {
        /// Why.
        reason: String,
    },
}

/// Encodes `msg` as one frame onto `out`.
pub fn encode_frame<T: Serialize>(msg: &T, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *out, msg).expect("wire types serialize");
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Why a frame could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix exceeds [`MAX_FRAME`].
    TooLong(usize),
    /// The body is not the expected JSON.
    Malformed(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong(n) => write!(f, "frame of {n} bytes exceeds the {MAX_FRAME} limit"),
            Self::Malformed(e) => write!(f, "malformed frame: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The length announced by a frame's 4-byte prefix, checked against [`MAX_FRAME`].
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let n = u32::from_be_bytes(prefix) as usize;
    if n > MAX_FRAME {
        return Err(FrameError::TooLong(n));
    }
    Ok(n)
}

/// Decodes a frame body.
pub fn decode_frame<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// A frame's body and the bytes after it.
pub type Split<'a> = (&'a [u8], &'a [u8]);

/// Splits one whole frame off the front of `buf`: `Ok(None)` when more bytes are needed.
pub fn split_frame(buf: &[u8]) -> Result<Option<Split<'_>>, FrameError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let n = frame_len(*prefix)?;
    Ok(buf[4..].split_at_checked(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split_anywhere() {
        let ack = Ack {
            epoch: 7,
            seq: 42,
            outcome: AckOutcome::Stored {
                stored: 10,
                duplicates: 2,
                reused: false,
            },
        };
        let hb = Control::Heartbeat(Heartbeat {
            now_ms: 1,
            lag_ms: 5,
            ..Heartbeat::default()
        });
        let mut buf = Vec::new();
        encode_frame(&ack, &mut buf);
        encode_frame(&hb, &mut buf);
        for cut in 0..buf.len() {
            let head = &buf[..cut];
            match split_frame(head).unwrap() {
                None => {
                    assert!(cut < 4 + u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize)
                }
                Some((body, _)) => assert_eq!(decode_frame::<Ack>(body).unwrap(), ack),
            }
        }
        let (b1, rest) = split_frame(&buf).unwrap().unwrap();
        let (b2, rest) = split_frame(rest).unwrap().unwrap();
        assert!(rest.is_empty());
        assert_eq!(decode_frame::<Ack>(b1).unwrap(), ack);
        assert_eq!(decode_frame::<Control>(b2).unwrap(), hb);
    }

    #[test]
    fn an_oversized_or_garbage_frame_is_an_error_not_a_panic() {
        assert_eq!(
            split_frame(&[0xff, 0xff, 0xff, 0xff, b'{']),
            Err(FrameError::TooLong(u32::MAX as usize))
        );
        let mut buf = Vec::new();
        encode_frame(&"not an ack", &mut buf);
        let (body, _) = split_frame(&buf).unwrap().unwrap();
        assert!(matches!(
            decode_frame::<Ack>(body),
            Err(FrameError::Malformed(_))
        ));
    }
}

#[cfg(test)]
mod props {
    use super::*;

    proptest::proptest! {
        /// Any bytes off a stream split into frames or ask for more, never panic; each
        /// body decodes as a frame type or is refused.
        #[test]
        fn any_bytes_split_or_are_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let mut rest = &bytes[..];
            while let Ok(Some((body, more))) = split_frame(rest) {
                let _ignored = decode_frame::<Control>(body);
                let _ignored = decode_frame::<BatchHeader>(body);
                let _ignored = decode_frame::<Ack>(body);
                let _ignored = decode_frame::<EnrollRequest>(body);
                proptest::prop_assert!(more.len() < rest.len());
                rest = more;
            }
        }
    }
}
