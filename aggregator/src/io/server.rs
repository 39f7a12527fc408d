//! The QUIC server: enrollment on `vedette-enroll/1`, events and control on `vedette/1`.
//!
//! Per event connection: the agent's identity and tenant are read from its verified client
//! certificate and nothing else; a revoked agent is refused at connect and at every batch.
//! Each batch is a bidirectional stream: header and payload in, one ack out, sent only
//! after the store's transaction has committed.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream, VarInt};
use rustls::pki_types::CertificateDer;
use vedette_schemas::wire::{
    self, ALPN_ENROLL, ALPN_EVENTS, Ack, BatchHeader, Control, EnrollRequest, EnrollResponse,
    Heartbeat, MAX_PAYLOAD, STREAM_BATCH, STREAM_CONTROL, Welcome,
};

use super::clock::now_ms;
use super::store_thread::StoreHandle;
use crate::core::ingest::{Peer, decode_batch, memory_charge};
use crate::identity::authority::{new_agent_id, valid_tenant};
use crate::identity::token::{parse_credential, secret_hash};
use crate::identity::{Authority, CertIdentity, cert_identity};
use crate::store::{Admission, AgentRecord, AgentState, EventStore, Registry};

/// Why the server closed a connection (QUIC application close codes).
pub mod close {
    /// Normal end.
    pub const DONE: u32 = 0;
    /// The event ALPN without a client certificate.
    pub const NO_CERT: u32 = 1;
    /// The agent is revoked.
    pub const REVOKED: u32 = 2;
    /// A frame or stream the protocol does not allow.
    pub const PROTOCOL: u32 = 3;
    /// The server is shutting down.
    pub const SHUTDOWN: u32 = 4;
    /// Nothing arrived for the stall timeout (an enrollment left hanging).
    pub const STALLED: u32 = 5;
    /// Too many enrollments at once; the agent tries again later.
    pub const BUSY: u32 = 6;
    /// The agent is not in the registry (enrolled with another database).
    pub const UNKNOWN: u32 = 7;
    /// The registry could not be read; the agent tries again later.
    pub const UNAVAILABLE: u32 = 8;
    /// The certificate was replaced by a renewal (see `Registry::admit_cert`).
    pub const SUPERSEDED: u32 = 9;
}

/// What every connection handler shares.
pub struct Server<S> {
    /// The store thread.
    pub store: StoreHandle<S>,
    /// The CA, to sign enrollments and renewals.
    pub authority: Arc<Authority>,
    /// Lifetime of agent certificates, ms.
    pub cert_lifetime_ms: i64,
    /// Memory that batches being read, decoded and committed may hold at once, in KiB
    /// (see [`memory_budget`]): a batch waits for its share before its payload is read,
    /// so many agents (or one hostile one) cannot make the server allocate without bound.
    pub memory: Arc<tokio::sync::Semaphore>,
    /// Each agent's share of [`Self::memory`] ([`AGENT_BUDGET_KIB`]), whatever the number
    /// of its connections: one agent cannot hold the whole budget and stall everyone.
    pub agent_memory: std::sync::Mutex<HashMap<String, Weak<tokio::sync::Semaphore>>>,
    /// Live connections per agent (at most [`MAX_AGENT_CONNECTIONS`]): what one agent's
    /// connections hold besides its memory share (QUIC's receive windows, headers waiting
    /// for the share) grows with their number.
    pub agent_connections: Arc<std::sync::Mutex<HashMap<String, usize>>>,
    /// How long a batch stream or an enrollment may go without a byte arriving before it
    /// is dropped (and its memory share freed).
    pub stall: Duration,
    /// Enrollments served at once ([`MAX_ENROLLMENTS`]): the enrollment ALPN is the one
    /// open to anyone, so what it may hold is bounded in number and in time.
    pub enrollments: Arc<tokio::sync::Semaphore>,
    /// What agents said about themselves (hellos, heartbeats) since the last
    /// [`Server::flush_seen`], the latest per agent.
    pub seen: std::sync::Mutex<HashMap<String, AgentState>>,
}

/// KiB of batch memory (what [`memory_charge`] counts: payloads, decompressed text, rows)
/// the server holds at most: 512 MiB. Besides it, one big line parsed at a time
/// ([`crate::core::ingest::BIG_LINE_BYTES`]) and the allocator's own overhead.
pub const MEMORY_BUDGET_KIB: u32 = 512 << 10;

/// KiB of [`MEMORY_BUDGET_KIB`] one agent may hold: a quarter, room for dozens of
/// ordinary batches (a few MiB each).
pub const AGENT_BUDGET_KIB: u32 = MEMORY_BUDGET_KIB / 4;

/// How many times its bytes a frame may take once decoded, charged while it is.
const DECODE_GROWTH: u32 = 16;

/// The largest control frame (hello, heartbeat, renewal).
const MAX_CONTROL_FRAME: usize = wire::MAX_FRAME;

/// The largest host facts kept from a hello (they are written with the agent's state): a
/// host's facts are kilobytes, a container host's hundreds of interfaces some hundred.
const MAX_HOST_FACTS: usize = 256 * 1024;

/// Bytes a batch header holds in memory, beyond what `memory_charge` counts.
fn header_bytes(h: &BatchHeader) -> u64 {
    h.watermarks
        .iter()
        .map(|w| {
            (std::mem::size_of::<wire::Watermark>()
                + w.source.len()
                + w.stream.len()
                + w.unit.len()) as u64
        })
        .sum::<u64>()
        + h.agent_id.len() as u64
}

/// Enrollments served at once; more are refused with [`close::BUSY`].
pub const MAX_ENROLLMENTS: usize = 16;
/// The largest enrollment request: a token and a CSR take under 2 KiB. The one door open
/// without a certificate does not take a frame as large as a batch header.
pub const MAX_ENROLL_FRAME: usize = 16 << 10;
/// Live connections one agent may hold: it uses one, two for a moment while it reconnects.
pub const MAX_AGENT_CONNECTIONS: usize = 4;
/// How often a connection gets a certificate signed at most: a twentieth of a
/// certificate's life, between 1 s and a minute. An agent asks once, when a third of its
/// certificate's life is left, and again only after a failure to save it; a connection
/// asking in a loop must not keep the CA signing. (Scaled with the lifetime so that a
/// short-lived certificate can still be renewed after a failed save well before it ends.)
fn renew_every_ms(cert_lifetime_ms: i64) -> i64 {
    (cert_lifetime_ms / 20).clamp(1_000, 60_000)
}

/// The semaphore for [`Server::memory`].
pub fn memory_budget() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(MEMORY_BUDGET_KIB as usize))
}

impl<S> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("cert_lifetime_ms", &self.cert_lifetime_ms)
            .finish()
    }
}

/// What went wrong on one stream or connection (logged, never fatal to the server).
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("read: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("read: {0}")]
    ReadToEnd(#[from] quinn::ReadToEndError),
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("connection: {0}")]
    Conn(#[from] quinn::ConnectionError),
    #[error("{0}")]
    Frame(#[from] wire::FrameError),
    #[error("{0}")]
    Protocol(String),
    #[error("the store thread has stopped")]
    StoreGone,
    #[error("{what}: nothing arrived for {secs} s, dropped", secs = .after.as_secs_f64())]
    Stalled { what: String, after: Duration },
}

impl From<super::store_thread::StoreGone> for ConnError {
    fn from(_: super::store_thread::StoreGone) -> Self {
        Self::StoreGone
    }
}

/// [`RecvStream::read_exact`], failing with [`ConnError::Stalled`] when `stall` passes
/// without a byte.
async fn read_exact_within(
    r: &mut RecvStream,
    buf: &mut [u8],
    stall: Duration,
    what: impl Fn() -> String,
) -> Result<(), ConnError> {
    let mut filled = 0;
    while filled < buf.len() {
        match tokio::time::timeout(stall, r.read(&mut buf[filled..])).await {
            Err(_) => {
                return Err(ConnError::Stalled {
                    what: format!("{} ({filled} of {} bytes in)", what(), buf.len()),
                    after: stall,
                });
            }
            Ok(Ok(Some(n))) => filled += n,
            Ok(Ok(None)) => return Err(quinn::ReadExactError::FinishedEarly(filled).into()),
            Ok(Err(e)) => return Err(quinn::ReadExactError::from(e).into()),
        }
    }
    Ok(())
}

/// Reads and drops `n` bytes, a chunk at a time (a refused batch is read to its end, so
/// that the agent gets the answer rather than a stopped stream it would retry).
async fn discard_within(
    r: &mut RecvStream,
    mut n: u64,
    stall: Duration,
    what: impl Fn() -> String,
) -> Result<(), ConnError> {
    while n > 0 {
        let max = usize::try_from(n).unwrap_or(usize::MAX).min(64 << 10);
        match tokio::time::timeout(stall, r.read_chunk(max, true)).await {
            Err(_) => {
                return Err(ConnError::Stalled {
                    what: format!("{} ({n} bytes still to come)", what()),
                    after: stall,
                });
            }
            Ok(Ok(Some(c))) => n = n.saturating_sub(c.bytes.len() as u64),
            Ok(Ok(None)) => return Err(quinn::ReadExactError::FinishedEarly(0).into()),
            Ok(Err(e)) => return Err(quinn::ReadExactError::from(e).into()),
        }
    }
    Ok(())
}

/// [`read_frame`] with [`read_exact_within`], of a frame of at most `max` bytes.
async fn read_frame_capped<T: serde::de::DeserializeOwned>(
    r: &mut RecvStream,
    stall: Duration,
    max: usize,
    what: impl Fn() -> String,
) -> Result<T, ConnError> {
    let mut prefix = [0u8; 4];
    read_exact_within(r, &mut prefix, stall, &what).await?;
    let n = wire::frame_len(prefix)?;
    if n > max {
        return Err(ConnError::Protocol(format!(
            "{} of {n} bytes, over {max}",
            what()
        )));
    }
    let mut body = vec![0u8; n];
    read_exact_within(r, &mut body, stall, &what).await?;
    Ok(wire::decode_frame(&body)?)
}

async fn write_frame<T: serde::Serialize>(w: &mut SendStream, msg: &T) -> Result<(), ConnError> {
    let mut buf = Vec::new();
    wire::encode_frame(msg, &mut buf);
    w.write_all(&buf).await?;
    Ok(())
}

impl<S: EventStore + Registry + Send + 'static> Server<S> {
    /// Accepts connections until the endpoint is closed.
    pub async fn run(self: Arc<Self>, endpoint: quinn::Endpoint) {
        while let Some(incoming) = endpoint.accept().await {
            let me = self.clone();
            tokio::spawn(async move {
                let remote = incoming.remote_address();
                match incoming.await {
                    Ok(conn) => me.connection(conn).await,
                    Err(e) => eprintln!("vedette-aggregator: handshake with {remote}: {e}"),
                }
            });
        }
    }

    async fn connection(self: Arc<Self>, conn: Connection) {
        let alpn = conn
            .handshake_data()
            .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|d| d.protocol);
        let remote = conn.remote_address();
        let result = match alpn.as_deref() {
            Some(p) if p == ALPN_ENROLL => match self.enrollments.clone().try_acquire_owned() {
                Ok(_permit) => self.enroll(&conn).await,
                Err(_) => {
                    conn.close(
                        VarInt::from_u32(close::BUSY),
                        b"too many enrollments at once, try again",
                    );
                    Err(ConnError::Protocol(format!(
                        "enrollment refused: {MAX_ENROLLMENTS} already in progress"
                    )))
                }
            },
            Some(p) if p == ALPN_EVENTS => match client_identity(&conn) {
                Ok(id) => self.events(&conn, id).await,
                Err(why) => {
                    conn.close(VarInt::from_u32(close::NO_CERT), why.as_bytes());
                    Err(ConnError::Protocol(why))
                }
            },
            // rustls already refused anything not offered.
            _ => Err(ConnError::Protocol("no ALPN".into())),
        };
        match result {
            Ok(()) | Err(ConnError::Conn(quinn::ConnectionError::ApplicationClosed(_))) => {}
            Err(e) => eprintln!("vedette-aggregator: {remote}: {e}"),
        }
    }

    /// One enrollment: token + CSR in, certificate out.
    async fn enroll(&self, conn: &Connection) -> Result<(), ConnError> {
        let stalled = || {
            conn.close(VarInt::from_u32(close::STALLED), b"enrollment stalled");
        };
        let Ok(accepted) = tokio::time::timeout(self.stall, conn.accept_bi()).await else {
            stalled();
            return Err(ConnError::Stalled {
                what: "an enrollment without a request".into(),
                after: self.stall,
            });
        };
        let (mut send, mut recv) = accepted?;
        // The whole request within one stall period, not a byte per period: a client that
        // trickled a large frame held one of the few enrollment places for as long as it
        // liked, and sixteen of them kept every new agent out.
        let what = || "an enrollment request".to_owned();
        let read = read_frame_capped(&mut recv, self.stall, MAX_ENROLL_FRAME, what);
        let req: EnrollRequest = match tokio::time::timeout(self.stall, read).await {
            Ok(Ok(req)) => req,
            Ok(Err(e)) => {
                match &e {
                    ConnError::Stalled { .. } => stalled(),
                    ConnError::Protocol(why) => {
                        conn.close(VarInt::from_u32(close::PROTOCOL), why.as_bytes());
                    }
                    _ => {}
                }
                return Err(e);
            }
            Err(_) => {
                stalled();
                return Err(ConnError::Stalled {
                    what: "an enrollment request, not whole".into(),
                    after: self.stall,
                });
            }
        };
        let resp = match self.enroll_request(req).await? {
            Ok(r) => r,
            Err(reason) => EnrollResponse::Refused { reason },
        };
        if let EnrollResponse::Refused { reason } = &resp {
            eprintln!(
                "vedette-aggregator: enrollment from {} refused: {reason}",
                conn.remote_address()
            );
        }
        write_frame(&mut send, &resp).await?;
        send.finish()?;
        // The agent closes once it has read the answer; one that does not is closed.
        if tokio::time::timeout(self.stall, conn.closed())
            .await
            .is_err()
        {
            conn.close(VarInt::from_u32(close::DONE), b"enrolled");
        }
        Ok(())
    }

    async fn enroll_request(
        &self,
        req: EnrollRequest,
    ) -> Result<Result<EnrollResponse, String>, ConnError> {
        let Ok((id, secret)) = parse_credential(&req.token) else {
            return Ok(Err("malformed token".into()));
        };
        // Checked before the token is spent: a malformed CSR should not burn it.
        if let Err(e) = rcgen::CertificateSigningRequestParams::from_pem(&req.csr_pem) {
            return Ok(Err(format!("certificate signing request: {e}")));
        }
        let agent_id = new_agent_id();
        let hash = secret_hash(&secret);
        let now = now_ms();
        let hostname: String = req.hostname.chars().take(255).collect();
        let (authority, lifetime) = (self.authority.clone(), self.cert_lifetime_ms);
        let (csr_pem, host) = (req.csr_pem, hostname.clone());
        // Signed inside the token's transaction: if signing or recording the agent fails,
        // the token is still good for the next try.
        let enrolled = self
            .store
            .call(move |s| {
                s.enroll_with_token(&id, hash, &host, now, |tenant| {
                    if !valid_tenant(tenant) {
                        return Err(format!("token names an invalid tenant `{tenant}`"));
                    }
                    let issued = authority
                        .sign_agent(&csr_pem, &agent_id, tenant, now, lifetime)
                        .map_err(|e| e.to_string())?;
                    let rec = AgentRecord {
                        agent_id,
                        tenant: tenant.to_owned(),
                        hostname,
                        cert_serial: issued.serial,
                        not_after_ms: issued.not_after_ms,
                        enrolled_ms: now,
                    };
                    Ok((rec, issued.cert_pem))
                })
            })
            .await?;
        let (
            AgentRecord {
                agent_id, tenant, ..
            },
            cert_pem,
        ) = match enrolled {
            Ok(e) => e,
            Err(e) => return Ok(Err(e.to_string())),
        };
        eprintln!("vedette-aggregator: enrolled {agent_id} (tenant {tenant})");
        Ok(Ok(EnrollResponse::Enrolled {
            agent_id,
            tenant,
            cert_pem,
            ca_pem: self.authority.cert_pem().to_owned(),
        }))
    }

    /// Whether the agent may connect with this certificate ([`Registry::admit_cert`]); a
    /// registry that cannot be read admits no one (the agent is told to come back, not
    /// that it was revoked).
    async fn admitted(&self, conn: &Connection, id: &CertIdentity) -> Result<(), ConnError> {
        let agent_id = id.agent_id.as_str();
        let (aid, serial) = (id.agent_id.clone(), id.serial.clone());
        let (signed, not_after) = (id.signed_ms, id.not_after_ms);
        match self
            .store
            .call(move |s| s.admit_cert(&aid, &serial, signed, not_after))
            .await?
        {
            Ok(Admission::Restored) => {
                eprintln!(
                    "vedette-aggregator: {agent_id} presented a certificate signed after every one its registry recorded (the database restored from an older backup?); it is the agent's current certificate now"
                );
                Ok(())
            }
            Ok(a) => refuse_unless_active(conn, a, agent_id),
            Err(e) => {
                conn.close(
                    VarInt::from_u32(close::UNAVAILABLE),
                    b"the registry is unavailable, try again",
                );
                Err(ConnError::Protocol(format!(
                    "reading whether {agent_id} may connect: {e}"
                )))
            }
        }
    }

    /// An enrolled agent's connection: a control stream and batch streams.
    async fn events(
        self: &Arc<Self>,
        conn: &Connection,
        id: CertIdentity,
    ) -> Result<(), ConnError> {
        self.admitted(conn, &id).await?;
        let Some(_slot) = ConnectionSlot::take(&self.agent_connections, &id.agent_id) else {
            conn.close(
                VarInt::from_u32(close::BUSY),
                b"too many connections of this agent, try again later",
            );
            return Err(ConnError::Protocol(format!(
                "more than {MAX_AGENT_CONNECTIONS} connections at once"
            )));
        };
        let peer = Arc::new(Peer {
            agent_id: id.agent_id.clone(),
            tenant: id.tenant.clone(),
            serial: id.serial.clone(),
        });
        let id = Arc::new(id);
        let share = self.agent_memory(&id.agent_id);
        // One control stream per connection: each holds its state and reads frames.
        let control_open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        loop {
            let (send, mut recv) = conn.accept_bi().await?;
            let me = self.clone();
            let (peer, id, conn, share) = (peer.clone(), id.clone(), conn.clone(), share.clone());
            let control_open = control_open.clone();
            tokio::spawn(async move {
                let mut tag = [0u8; 1];
                let r = match recv.read_exact(&mut tag).await {
                    Err(e) => Err(e.into()),
                    Ok(()) if tag[0] == STREAM_BATCH => {
                        me.batch(&conn, &peer, &share, send, recv).await
                    }
                    Ok(()) if tag[0] == STREAM_CONTROL => {
                        if control_open.swap(true, std::sync::atomic::Ordering::Relaxed) {
                            Err(ConnError::Protocol(
                                "a second control stream on one connection".into(),
                            ))
                        } else {
                            me.control(&id, &share, send, recv).await
                        }
                    }
                    Ok(()) => Err(ConnError::Protocol(format!(
                        "unknown stream kind {}",
                        tag[0]
                    ))),
                };
                match r {
                    Ok(()) => {}
                    Err(ConnError::Protocol(why)) => {
                        eprintln!("vedette-aggregator: {}: {why}", peer.agent_id);
                        conn.close(VarInt::from_u32(close::PROTOCOL), why.as_bytes());
                    }
                    Err(ConnError::Conn(_)) => {}
                    Err(e) => eprintln!("vedette-aggregator: {}: {e}", peer.agent_id),
                }
            });
        }
    }

    /// Writes what agents said since the last flush, in one transaction.
    pub async fn flush_seen(&self) {
        let seen: Vec<(String, AgentState)> = std::mem::take(
            &mut *self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_iter()
        .collect();
        if seen.is_empty() {
            return;
        }
        let n = seen.len();
        match self.store.call(move |s| s.agents_seen(&seen)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("vedette-aggregator: recording what {n} agent(s) said: {e}"),
            Err(_) => {}
        }
    }

    /// Flushes what agents said every `every` ([`Server::flush_seen`]).
    pub async fn flush_seen_every(self: Arc<Self>, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.flush_seen().await;
        }
    }

    /// The memory share of `agent_id`, shared by all its connections.
    fn agent_memory(&self, agent_id: &str) -> Arc<tokio::sync::Semaphore> {
        let mut map = self
            .agent_memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = map.get(agent_id).and_then(Weak::upgrade) {
            return s;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let s = Arc::new(tokio::sync::Semaphore::new(AGENT_BUDGET_KIB as usize));
        map.insert(agent_id.to_owned(), Arc::downgrade(&s));
        s
    }

    async fn batch(
        &self,
        conn: &Connection,
        peer: &Arc<Peer>,
        share: &tokio::sync::Semaphore,
        mut send: SendStream,
        mut recv: RecvStream,
    ) -> Result<(), ConnError> {
        // A stalled stream is dropped, its memory freed, and the agent told by the reset:
        // it sends the batch again on a new stream.
        let stalled = |e: ConnError, send: &mut SendStream, recv: &mut RecvStream| {
            if matches!(e, ConnError::Stalled { .. }) {
                let _ignored = send.reset(VarInt::from_u32(close::STALLED));
                let _ignored = recv.stop(VarInt::from_u32(close::STALLED));
            }
            e
        };
        let header: BatchHeader = match self
            .read_frame_charged(&mut recv, share, true, wire::MAX_FRAME, || {
                "a batch header".to_owned()
            })
            .await
        {
            Ok(h) => h,
            Err(e) => return Err(stalled(e, &mut send, &mut recv)),
        };
        if header.zstd_len > MAX_PAYLOAD {
            return Err(ConnError::Protocol(format!(
                "batch {} announces {} bytes, over the {MAX_PAYLOAD} limit",
                header.seq, header.zstd_len
            )));
        }
        if header.raw_len > wire::MAX_RAW {
            return Err(ConnError::Protocol(format!(
                "batch {} announces {} raw bytes, over the {} limit",
                header.seq,
                header.raw_len,
                wire::MAX_RAW
            )));
        }
        // The header stays in memory with the batch: its ranges are charged too.
        let kib = (memory_charge(&header) + header_bytes(&header)).div_ceil(1024);
        // Refused for good, so answered, not hung up on: a closed connection would make
        // the agent send the same batch again, forever. It sets the batch aside and says so.
        let refusal = if header.watermarks.len() > wire::MAX_WATERMARKS {
            Some(format!(
                "it carries {} source ranges, over the {} one batch may",
                header.watermarks.len(),
                wire::MAX_WATERMARKS
            ))
        } else if kib > AGENT_BUDGET_KIB.into() {
            Some(format!(
                "decoding it would take {} MiB, over the {} MiB one agent may hold (smaller batches: batch_max_kb)",
                kib >> 10,
                AGENT_BUDGET_KIB >> 10
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            let (seq, epoch, zstd_len) = (header.seq, header.epoch, header.zstd_len);
            // Not held while the payload is skipped (at the sender's pace): a refused
            // header of thousands of ranges is freed now.
            drop(header);
            if let Err(e) = discard_within(&mut recv, zstd_len, self.stall, || {
                format!("refused batch {seq}")
            })
            .await
            {
                return Err(stalled(e, &mut send, &mut recv));
            }
            eprintln!(
                "vedette-aggregator: refused batch {seq} of {}: {reason}",
                peer.agent_id
            );
            let ack = Ack {
                epoch,
                seq,
                outcome: wire::AckOutcome::Rejected { reason },
            };
            write_frame(&mut send, &ack).await?;
            send.finish()?;
            return Ok(());
        }
        // The agent's share first: an agent over it waits on itself, not on everyone. A
        // wait is bounded like a stall: a stream parked on a share its own other streams
        // hold (trickling their payloads) is reset, and the agent sends the batch again.
        let shut = |_| ConnError::Protocol("shutting down".into());
        let parked = ConnError::Stalled {
            what: format!("batch {} waiting for memory", header.seq),
            after: self.stall,
        };
        let _share = match tokio::time::timeout(self.stall, share.acquire_many(kib as u32)).await {
            Ok(p) => p.map_err(shut)?,
            Err(_) => return Err(stalled(parked, &mut send, &mut recv)),
        };
        let _permit =
            match tokio::time::timeout(self.stall, self.memory.acquire_many(kib as u32)).await {
                Ok(p) => p.map_err(shut)?,
                Err(_) => return Err(stalled(parked, &mut send, &mut recv)),
            };
        let mut payload = vec![0u8; header.zstd_len as usize];
        let seq = header.seq;
        if let Err(e) = read_exact_within(&mut recv, &mut payload, self.stall, || {
            format!("batch {seq}")
        })
        .await
        {
            return Err(stalled(e, &mut send, &mut recv));
        }
        let (epoch, seq) = (header.epoch, header.seq);
        let p = peer.clone();
        let decoded = match tokio::task::spawn_blocking(move || {
            let d = decode_batch(&header, &payload, &p);
            (header, d)
        })
        .await
        {
            Ok(d) => d,
            // Our bug, met by this batch's content: it would meet it again on every resend
            // (and closing the connection stopped the agent's other batches each time), so
            // the batch is refused for good: the agent keeps it in `rejected/`.
            Err(e) => {
                eprintln!(
                    "vedette-aggregator: decoding batch {seq} of {} panicked: {e}; refused (the agent keeps it)",
                    peer.agent_id
                );
                let ack = Ack {
                    epoch,
                    seq,
                    outcome: wire::AckOutcome::Rejected {
                        reason:
                            "the aggregator failed decoding it (a bug of the aggregator: report it)"
                                .into(),
                    },
                };
                write_frame(&mut send, &ack).await?;
                send.finish()?;
                return Ok(());
            }
        };
        let outcome = match decoded {
            (_, Err(e)) => match e.outcome() {
                Some(o) => o,
                // Our fault, not the agent's: no ack, it comes again.
                None => {
                    eprintln!(
                        "vedette-aggregator: decoding batch {seq} of {}: {e}",
                        peer.agent_id
                    );
                    send.reset(VarInt::from_u32(1))?;
                    return Ok(());
                }
            },
            (header, Ok(batch)) => {
                match self
                    .store
                    .commit(peer.clone(), header, batch, now_ms())
                    .await?
                {
                    Ok(Ok(o)) => {
                        if matches!(o, wire::AckOutcome::Stored { reused: true, .. }) {
                            eprintln!(
                                "vedette-aggregator: {} sent batch {epoch:016x}/{seq} again with other content: its numbering went back (its disk restored from a snapshot?); stored as new",
                                peer.agent_id
                            );
                        }
                        o
                    }
                    Ok(Err(a)) => return refuse_unless_active(conn, a, &peer.agent_id),
                    // Not acknowledged: the agent resends on its next connection.
                    Err(e) => {
                        eprintln!(
                            "vedette-aggregator: committing batch {seq} of {}: {e}",
                            peer.agent_id
                        );
                        send.reset(VarInt::from_u32(1))?;
                        return Ok(());
                    }
                }
            }
        };
        write_frame(
            &mut send,
            &Ack {
                epoch,
                seq,
                outcome,
            },
        )
        .await?;
        send.finish()?;
        Ok(())
    }

    /// Reads one frame of an agent's, its body charged to the agent's share and the
    /// server's budget while it is read and decoded (a frame may be 1 MiB, and an agent
    /// may open many streams on many connections). The body must come within the stall
    /// timeout once its length has; so must the length if `prefix_stalls` (a batch
    /// stream), not on the control stream, which waits between heartbeats.
    async fn read_frame_charged<T: serde::de::DeserializeOwned>(
        &self,
        r: &mut RecvStream,
        share: &tokio::sync::Semaphore,
        prefix_stalls: bool,
        max: usize,
        what: impl Fn() -> String,
    ) -> Result<T, ConnError> {
        let mut prefix = [0u8; 4];
        if prefix_stalls {
            read_exact_within(r, &mut prefix, self.stall, &what).await?;
        } else {
            r.read_exact(&mut prefix).await?;
        }
        let n = wire::frame_len(prefix)?;
        if n > max {
            return Err(ConnError::Protocol(format!(
                "{} of {n} bytes, over the {max} limit",
                what()
            )));
        }
        // What the frame decodes into, not only its bytes: JSON arrays decode to structs
        // and values many times their size (`[0,0,…]`: 2 bytes a value on the wire, 32 in
        // memory; a watermark `["","","",0,0,0]`: 17 bytes, 96 in memory).
        let kib = u32::try_from(n >> 10)
            .unwrap_or(u32::MAX)
            .saturating_add(1)
            .saturating_mul(DECODE_GROWTH);
        let shut = |_| ConnError::Protocol("shutting down".into());
        let _share = share.acquire_many(kib).await.map_err(shut)?;
        let _permit = self.memory.acquire_many(kib).await.map_err(shut)?;
        let mut body = vec![0u8; n];
        read_exact_within(r, &mut body, self.stall, &what).await?;
        Ok(wire::decode_frame(&body)?)
    }

    async fn control(
        &self,
        id: &CertIdentity,
        share: &tokio::sync::Semaphore,
        mut send: SendStream,
        mut recv: RecvStream,
    ) -> Result<(), ConnError> {
        let mut state = AgentState::default();
        // When this connection last had a certificate signed: each is a write and an
        // fsync on the store's thread, which a looping agent must not monopolise.
        // When this connection last got a certificate signed, `clock::monotonic_ms`.
        let mut renewed_at: Option<i64> = None;
        loop {
            let msg: Control = match self
                .read_frame_charged(&mut recv, share, false, MAX_CONTROL_FRAME, || {
                    "a control frame".to_owned()
                })
                .await
            {
                Ok(m) => m,
                // The agent finished its side: it is going away.
                Err(ConnError::Read(quinn::ReadExactError::FinishedEarly(0))) => return Ok(()),
                Err(e) => return Err(e),
            };
            let now = now_ms();
            let reply = match msg {
                Control::Hello(h) => {
                    state.version = h.version.chars().take(64).collect();
                    state.hostname = h.hostname.chars().take(255).collect();
                    // Written with the agent's state at every flush: bounded.
                    let facts = h.host.to_string();
                    state.host_facts = if facts.len() <= MAX_HOST_FACTS {
                        facts
                    } else {
                        format!(
                            "{{\"dropped\":\"host facts of {} bytes, over {MAX_HOST_FACTS}\"}}",
                            facts.len()
                        )
                    };
                    Some(Control::Welcome(Welcome {
                        agent_id: id.agent_id.clone(),
                        tenant: id.tenant.clone(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                    }))
                }
                Control::Heartbeat(hb) => {
                    apply_heartbeat(&mut state, &hb, now);
                    None
                }
                Control::Renew { csr_pem } => {
                    let every = renew_every_ms(self.cert_lifetime_ms);
                    let mono = super::clock::monotonic_ms();
                    if renewed_at.is_some_and(|t| mono - t < every) {
                        Some(Control::Error {
                            reason: format!(
                                "a renewal was signed less than {} ms ago on this connection",
                                every
                            ),
                        })
                    } else {
                        renewed_at = Some(mono);
                        Some(self.renew(id, &csr_pem, now).await?)
                    }
                }
                other => {
                    return Err(ConnError::Protocol(format!(
                        "unexpected control frame {other:?}"
                    )));
                }
            };
            state.last_seen_ms = now;
            // Written with every other agent's at the next flush: a transaction (an
            // fsync) per heartbeat took the disk from the batches at a few hundred agents.
            self.seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id.agent_id.clone(), state.clone());
            if let Some(r) = reply {
                write_frame(&mut send, &r).await?;
            }
        }
    }

    async fn renew(
        &self,
        id: &CertIdentity,
        csr_pem: &str,
        now: i64,
    ) -> Result<Control, ConnError> {
        // Revoked (or removed) since this connection was admitted: no new certificate. The
        // connection itself is refused at its next batch.
        let aid = id.agent_id.clone();
        let admission = self.store.call(move |s| s.admission(&aid)).await?;
        match admission {
            Ok(Admission::Active) => {}
            Ok(a) => {
                return Ok(Control::Error {
                    reason: a.refusal(&id.agent_id).unwrap_or_default(),
                });
            }
            Err(e) => {
                return Ok(Control::Error {
                    reason: format!("checking the agent before renewing: {e}"),
                });
            }
        }
        let issued = match self.authority.sign_agent(
            csr_pem,
            &id.agent_id,
            &id.tenant,
            now,
            self.cert_lifetime_ms,
        ) {
            Ok(i) => i,
            Err(e) => {
                return Ok(Control::Error {
                    reason: e.to_string(),
                });
            }
        };
        let (aid, presented, serial) = (
            id.agent_id.clone(),
            id.serial.clone(),
            issued.serial.clone(),
        );
        match self
            .store
            .call(move |s| s.record_renewal(&aid, &presented, &serial, now))
            .await?
        {
            Ok(true) => {}
            // Gone from the registry, revoked, or this connection's certificate replaced
            // since it was admitted: the certificate stays unsent (and unrecorded).
            Ok(false) => {
                return Ok(Control::Error {
                    reason: format!(
                        "{} is no longer enrolled here with this certificate",
                        id.agent_id
                    ),
                });
            }
            Err(e) => {
                return Ok(Control::Error {
                    reason: format!("recording the renewed certificate: {e}"),
                });
            }
        }
        eprintln!(
            "vedette-aggregator: renewed the certificate of {}",
            id.agent_id
        );
        Ok(Control::Renewed {
            cert_pem: issued.cert_pem,
        })
    }
}

/// A place among an agent's [`MAX_AGENT_CONNECTIONS`], given back when dropped.
struct ConnectionSlot {
    map: Arc<std::sync::Mutex<HashMap<String, usize>>>,
    agent_id: String,
}

impl ConnectionSlot {
    fn take(map: &Arc<std::sync::Mutex<HashMap<String, usize>>>, agent_id: &str) -> Option<Self> {
        let mut m = map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(agent_id.to_owned()).or_insert(0);
        if *n >= MAX_AGENT_CONNECTIONS {
            return None;
        }
        *n += 1;
        Some(Self {
            map: map.clone(),
            agent_id: agent_id.to_owned(),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut m = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.agent_id) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.agent_id);
            }
        }
    }
}

/// Closes `conn` with the code and reason of `a` unless the agent is active.
fn refuse_unless_active(conn: &Connection, a: Admission, agent_id: &str) -> Result<(), ConnError> {
    let Some(why) = a.refusal(agent_id) else {
        return Ok(());
    };
    let (code, reason): (u32, &[u8]) = match a {
        Admission::Unknown => (close::UNKNOWN, b"agent not enrolled here, enroll it again"),
        Admission::Superseded => (
            close::SUPERSEDED,
            b"certificate replaced by a renewal, enroll the agent again",
        ),
        _ => (close::REVOKED, b"agent revoked"),
    };
    conn.close(VarInt::from_u32(code), reason);
    Err(ConnError::Protocol(why))
}

fn apply_heartbeat(state: &mut AgentState, hb: &Heartbeat, _now: i64) {
    state.lag_ms = hb.lag_ms;
    state.spool_bytes = hb.spool_bytes;
    state.dropped_batches = hb.dropped_batches;
    state.dropped_events = hb.dropped_events;
    state.damaged_records = hb.damaged_records;
    state.udp_drops = hb.udp_drops;
}

/// The verified client certificate's identity, or why there is none.
fn client_identity(conn: &Connection) -> Result<CertIdentity, String> {
    let certs = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or_else(|| "no client certificate".to_owned())?;
    let leaf = certs
        .first()
        .ok_or_else(|| "no client certificate".to_owned())?;
    cert_identity(leaf).map_err(|e| e.to_string())
}
