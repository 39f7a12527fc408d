//! The aggregator's durable state, behind traits: [`EventStore`] (events, committed
//! batches, watermarks) and [`Registry`] (enrollment tokens, agents). The embedded default
//! is SQLite ([`sqlite::SqliteStore`] implements both); a distributed deployment swaps in
//! a column store for events and PostgreSQL for the registry (see DESIGN.md "Real parts")
//! behind the same traits, so the server code path stays the same.
//!
//! Time is always passed in (`now_ms`, ms since the epoch): nothing here reads a clock.
//!
//! **Acknowledgement:** [`EventStore::commit`] returns only once the batch is durable (with
//! [`sqlite::Synchronous::Full`], fsynced). The caller sends the [`AckOutcome`] it returns,
//! and only then: an error means nothing was committed and nothing must be acknowledged
//! (the agent will send the batch again, and that is safe, see [`EventStore::commit`]).
//!
//! The server's call order for one batch stream, `peer` read from the client certificate
//! (and checked against [`Registry::admission`] at connection time):
//!
//! ```text
//! read header frame; refuse it if memory_charge(&header) is over the agent's share
//! read exactly header.zstd_len payload bytes (<= wire::MAX_PAYLOAD)
//! match decode_batch(&header, &payload, &peer) {            // core::ingest
//!     Err(e) => match e.outcome() { Some(rejected) => ack it, None => close the stream },
//!     Ok(batch) => match store.commit(&peer, &header, &batch, now_ms) {
//!         Ok(outcome) => ack outcome,       // Replay when (agent, epoch, seq) is stored
//!                                           // with this checksum; durable by now
//!         Err(_) => close the stream without an ack,        // the agent resends
//!     },
//! }
//! ```
//!
//! A resend is recognized inside `commit`'s transaction, after decoding: the same number
//! with other content (an agent's disk restored from a snapshot) must be stored, not
//! answered as a replay, and the checksum that tells them apart is vouched for only by
//! decoding. A resent batch costs a decode (~3 µs per event); resends come only after a
//! lost connection, at most the agent's window of batches.

pub mod sqlite;

use vedette_schemas::wire::{AckOutcome, BatchHeader};

use crate::core::ingest::{DecodedBatch, Peer};
use crate::core::postings::Key;

/// The store failed: our side (disk, database, a bug), never the peer's. Retrying the
/// same operation later is safe; a batch that failed is not acknowledged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer aggregator.
    #[error("store schema version {found} is newer than this aggregator's {supported}")]
    NewerSchema {
        /// `user_version` in the file.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The database could not be put in WAL mode (e.g. a read-only or network file system).
    #[error("store: journal mode is {0}, WAL is required")]
    NotWal(String),
    /// An agent with this id is already registered.
    #[error("agent {0} is already registered")]
    AgentExists(String),
    /// A token with this id already exists.
    #[error("enrollment token {0} already exists")]
    TokenExists(String),
    /// A stored document does not read back.
    #[error(transparent)]
    Doc(#[from] crate::core::ingest::DocError),
    /// The group commit this batch was part of failed (nothing of it was stored).
    #[error("group commit: {0}")]
    Group(String),
    /// The file is not a store this build can open or migrate.
    #[error("store: {0}")]
    Unusable(String),
}

/// A hole in what an agent delivered from one source stream: positions `[first, end)` were
/// never accounted for by any committed batch (lost before the spool, dropped by the
/// spool's drop-oldest policy, or a batch still in flight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The source (`metadata.log_source`).
    pub source: String,
    /// The stream of the source (file identity, listener start, journal boot).
    pub stream: String,
    /// What positions count (`byte`, `message`, `seqnum`).
    pub unit: String,
    /// First missing position.
    pub first: u64,
    /// Just past the last missing position: the `first` of the next range received.
    pub end: u64,
}

/// Events, committed batches and their watermarks.
pub trait EventStore: Send {
    /// Commits one decoded batch of `peer` atomically and durably, and says what happened:
    /// - [`AckOutcome::Replay`] when `(peer.agent_id, header.epoch, header.seq)` was
    ///   committed before with the same checksum: nothing is stored again (with another
    ///   checksum, or none kept, the batch is stored, `reused`);
    /// - else [`AckOutcome::Stored`]: each row whose `(tenant, uid)` is new is stored,
    ///   the others count as `duplicates` (re-read after an agent crash), and the
    ///   watermarks and the batch itself are recorded.
    ///
    /// Identity comes from `peer` (the certificate), never from the header's `agent_id`.
    /// On `Err` nothing was committed: do not acknowledge.
    fn commit(
        &mut self,
        peer: &Peer,
        header: &BatchHeader,
        batch: &DecodedBatch,
        now_ms: i64,
    ) -> Result<AckOutcome, StoreError>;

    /// Whether `(agent_id, epoch, seq)` is committed, whatever its content. For tools and
    /// tests; the server leaves replays to [`EventStore::commit`] (see the module doc).
    fn is_committed(&self, agent_id: &str, epoch: u64, seq: u64) -> Result<bool, StoreError>;

    /// Commits several batches (of one or more agents) together: each gets the outcome
    /// [`EventStore::commit`] would give it. A store that can should do it in one
    /// transaction, one fsync for all (SQLite does; on `Err` none was committed); this
    /// default commits them one by one.
    fn commit_group(
        &mut self,
        items: &[(&Peer, &BatchHeader, &DecodedBatch)],
        now_ms: i64,
    ) -> Result<Vec<AckOutcome>, StoreError> {
        items
            .iter()
            .map(|&(p, h, b)| self.commit(p, h, b, now_ms))
            .collect()
    }

    /// Deletes what is older than `before_ms`, a slice at a time (call again while
    /// [`Pruned::is_full_slice`], so ingest waits for one slice at most): at most
    /// `max_chunks` chunks, the events of every chunk whose newest event time is before
    /// it (an event newer than that keeps its chunk's older ones; an event dated more than
    /// [`sqlite::FUTURE_SKEW_MS`] after its chunk arrived counts as dated then, so a wrong
    /// clock cannot keep it for ever), their search entries
    /// and class counts; once no such chunk is left, at most as many batch records
    /// (replay keys) committed before it, with their watermarks. A batch record whose
    /// watermark lies above a range of its stream still kept waits for that range to go,
    /// so the watermarks kept never show a hole where batches arrived.
    fn prune(&mut self, before_ms: i64, max_chunks: usize) -> Result<Pruned, StoreError>;

    /// Events stored, all tenants.
    fn event_count(&self) -> Result<u64, StoreError>;

    /// Per `class_uid`, events stored (all tenants), by class.
    fn counts_by_class(&self) -> Result<Vec<(u32, u64)>, StoreError>;

    /// One event of a tenant by `metadata.uid`, as stored (with the certificate's tenant).
    fn get_event(&self, tenant: &str, uid: &str) -> Result<Option<serde_json::Value>, StoreError>;

    /// The latest `limit` events of a tenant with a time in `[from_ms, to_ms]`, whatever
    /// they are, newest first (ties: the later stored first), as JSON.
    fn latest(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError>;

    /// The latest `limit` events of a tenant with `key` (a class, a host, a user, or an
    /// address on either side) and a time in `[from_ms, to_ms]`, newest first (ties: the
    /// later stored first), as JSON.
    fn find(
        &self,
        tenant: &str,
        key: &Key<'_>,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError>;

    /// The holes between the ranges the agent's committed batches account for, per
    /// (source, stream, unit), in order. Before the first range nothing is reported (a
    /// source may start being read anywhere, e.g. at the end of an existing file). Empty
    /// ranges (`first == end`) cover nothing and split nothing.
    fn gaps(&self, agent_id: &str) -> Result<Vec<Gap>, StoreError>;
}

/// What one [`EventStore::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Chunks of events.
    pub chunks: u64,
    /// Events.
    pub events: u64,
    /// Batch records.
    pub batches: u64,
    /// Batch records due but kept for now: their watermark lies above a range of the
    /// same stream still kept (they go in a later run).
    pub batches_waiting: u64,
}

impl Pruned {
    /// Whether a call with `slice` did a whole slice, chunks or batch records: more may be
    /// due, and the caller calls again.
    pub fn is_full_slice(&self, slice: usize) -> bool {
        let slice = slice as u64;
        self.chunks >= slice || self.batches + self.batches_waiting >= slice
    }
}

/// Why an enrollment token was not accepted. Only [`TokenError::Store`] is our fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No token with this id.
    #[error("unknown enrollment token")]
    Unknown,
    /// The secret does not match the token's.
    #[error("enrollment token secret does not match")]
    Mismatch,
    /// The token was used before (tokens are one-time).
    #[error("enrollment token already used")]
    Used,
    /// The token expired.
    #[error("enrollment token expired")]
    Expired,
    /// The operator revoked the token before it was used.
    #[error("enrollment token revoked")]
    Revoked,
    /// The token was good but the agent could not be issued its certificate.
    #[error("{0}")]
    Refused(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for TokenError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

/// What [`Registry::revoke_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRevocation {
    /// Revoked now, or already (the first time is kept).
    Revoked,
    /// No token with this id.
    Unknown,
    /// Spent already: what it opened is an agent now, revoked as an agent.
    Used {
        /// The agent it enrolled.
        agent_id: String,
    },
}

/// An enrollment token as the registry keeps it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's id, the second part of `vdt1.<id>.…`.
    pub id: String,
    /// The tenant it enrolls into.
    pub tenant: String,
    /// When it was made.
    pub created_ms: i64,
    /// When it stops being accepted.
    pub expires_ms: i64,
    /// Who spent it, if anyone did.
    pub used: Option<TokenUse>,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
}

/// The enrollment that spent a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    /// When.
    pub at_ms: i64,
    /// The host name the agent gave.
    pub hostname: String,
    /// The agent it became.
    pub agent_id: String,
}

/// Whether an agent's certificate is taken ([`Registry::admission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Enrolled here and not revoked.
    Active,
    /// Revoked.
    Revoked,
    /// Not in this registry.
    Unknown,
    /// The certificate presented is neither the agent's current one nor one its renewals
    /// signed since: a renewal replaced it (a copy of an old key, or an agent restored
    /// from a backup of its identity).
    Superseded,
    /// Taken ([`Registry::admit_cert`]), and now its current certificate: one the registry
    /// has no record of, signed after every certificate it recorded for the agent. Only
    /// a renewal the registry lost makes one (the database restored from a backup older
    /// than the renewal), where [`Admission::Superseded`] would lock out every agent that
    /// renewed since the backup until it is enrolled again.
    Restored,
}

impl Admission {
    /// Why a connection or batch of the agent is refused, if it is.
    pub fn refusal(self, agent_id: &str) -> Option<String> {
        match self {
            Self::Active | Self::Restored => None,
            Self::Revoked => Some(format!("{agent_id} is revoked")),
            Self::Unknown => Some(format!(
                "{agent_id} is not enrolled here (its registry entry is gone: the database was replaced?); enroll it again"
            )),
            Self::Superseded => Some(format!(
                "{agent_id} presented a certificate a renewal replaced (an old copy of its identity?); enroll it again"
            )),
        }
    }
}

/// An enrolled agent, as recorded at enrollment (and renewal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// The agent's id (its certificate's subject).
    pub agent_id: String,
    /// The tenant it joined.
    pub tenant: String,
    /// Host name at enrollment (for the operator; not part of the identity).
    pub hostname: String,
    /// Serial number of its current certificate (hex).
    pub cert_serial: String,
    /// Its current certificate's expiry, ms since the epoch.
    pub not_after_ms: i64,
    /// When it enrolled.
    pub enrolled_ms: i64,
}

/// What an agent last said about itself (hello and heartbeats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentState {
    /// When it was last heard from, aggregator clock.
    pub last_seen_ms: i64,
    /// Its version.
    pub version: String,
    /// Its host name now.
    pub hostname: String,
    /// Host facts (addresses, OS), JSON text as the agent sent them.
    pub host_facts: String,
    /// Age of its oldest unacknowledged batch, ms.
    pub lag_ms: i64,
    /// Bytes waiting in its spool.
    pub spool_bytes: u64,
    /// Batches its spool dropped (drop-oldest) since it started.
    pub dropped_batches: u64,
    /// Events in those batches.
    pub dropped_events: u64,
    /// Records lost to spool damage found at start.
    pub damaged_records: u64,
    /// UDP datagrams the kernel dropped.
    pub udp_drops: u64,
}

/// An agent as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// As enrolled (and renewed).
    pub record: AgentRecord,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
    /// What it last said about itself, if it ever connected.
    pub state: Option<AgentState>,
}

/// Identity state: one-time enrollment tokens and enrolled agents.
pub trait Registry: Send {
    /// Records a token: the SHA-256 of its secret (the secret itself is never stored), the
    /// tenant it enrolls into, its expiry.
    fn create_token(
        &mut self,
        id: &str,
        secret_hash: [u8; 32],
        tenant: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Spends a token and records the agent it enrolls, in one transaction, atomically (of
    /// two concurrent callers, even from two processes on one database, exactly one
    /// succeeds) and for good. The token is checked in this order, so that who does not
    /// know the secret learns nothing about its state: [`TokenError::Unknown`],
    /// [`TokenError::Mismatch`], [`TokenError::Used`], [`TokenError::Revoked`],
    /// [`TokenError::Expired`] (at
    /// `now_ms >= expires_ms`). Then `issue` is called with the token's tenant and makes
    /// the agent's record (signing its certificate; `T` is whatever else the caller needs
    /// back). If it refuses ([`TokenError::Refused`]) or the record cannot be stored, the
    /// token is not spent: an enrollment that fails on the aggregator's side does not cost
    /// the operator a new token. Records who used it.
    fn enroll_with_token<T>(
        &mut self,
        id: &str,
        secret_hash: [u8; 32],
        hostname: &str,
        now_ms: i64,
        issue: impl FnOnce(&str) -> Result<(AgentRecord, T), String>,
    ) -> Result<(AgentRecord, T), TokenError>
    where
        Self: Sized;

    /// Revokes a token that has not been used: enrolling with it fails with
    /// [`TokenError::Revoked`] from now on. A used one is left as it is
    /// ([`TokenRevocation::Used`]: the agent it enrolled is what to revoke).
    fn revoke_token(&mut self, id: &str, now_ms: i64) -> Result<TokenRevocation, StoreError>;

    /// Every token, oldest first.
    fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;

    /// Records a newly enrolled agent; [`StoreError::AgentExists`] if the id is taken.
    fn register_agent(&mut self, agent: &AgentRecord) -> Result<(), StoreError>;

    /// Revokes an agent (its certificate is refused from now on); `false` if unknown. A
    /// second revocation keeps the first time.
    fn revoke_agent(&mut self, agent_id: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// Whether the agent's certificate is taken: only an agent the registry knows and has
    /// not revoked is. An unknown one is refused: its certificate is the CA's, but the
    /// registry that would say it was revoked is not the one it enrolled in (a database
    /// deleted or restored from an older backup, which would otherwise let every agent
    /// revoked since back in).
    fn admission(&self, agent_id: &str) -> Result<Admission, StoreError>;

    /// [`Registry::admission`] of a batch from a connection that presented the
    /// certificate `serial`: [`Admission::Superseded`] once another connection made a
    /// newer certificate current (the old one's sessions end at their next batch).
    fn admission_of(&self, agent_id: &str, serial: &str) -> Result<Admission, StoreError>;

    /// [`Registry::admission`] of a connection presenting the certificate `serial`
    /// (expiring at `not_after_ms`): it must also be the agent's current certificate, or
    /// one its renewals signed since, which then becomes the current one (the agent saved
    /// it: the others are refused from now on). A certificate the registry has no record
    /// of, signed (`signed_ms`, the earliest it can have been: certificates say it to the
    /// second) after the latest certificate the registry recorded signing for the agent, is
    /// [`Admission::Restored`] and becomes current too. Anything else is
    /// [`Admission::Superseded`]. An agent enrolled before serials were kept has its first
    /// certificate presented taken as its current one.
    fn admit_cert(
        &mut self,
        agent_id: &str,
        serial: &str,
        signed_ms: i64,
        not_after_ms: i64,
    ) -> Result<Admission, StoreError>;

    /// One agent.
    fn agent(&self, agent_id: &str) -> Result<Option<AgentInfo>, StoreError>;

    /// Every agent, by id.
    fn list_agents(&self) -> Result<Vec<AgentInfo>, StoreError>;

    /// Records `new_serial` as a certificate a renewal signed for a connection that
    /// presented `presented_serial`: it becomes current once a connection presents it
    /// ([`Registry::admit_cert`]); until then every certificate signed since the current
    /// one is kept (an agent that saved one of them is not locked out by a later
    /// renewal on a stale session). `false` (nothing recorded, the certificate is not sent)
    /// if the agent is unknown, revoked, or `presented_serial` is no longer its current
    /// certificate (a newer one was made current since this connection was admitted).
    /// `signed_ms` is when it was signed: no certificate signed until then is
    /// [`Admission::Restored`] later.
    fn record_renewal(
        &mut self,
        agent_id: &str,
        presented_serial: &str,
        new_serial: &str,
        signed_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Records what the agent said about itself (hello, heartbeat); `false` if unknown.
    fn agent_seen(&mut self, agent_id: &str, state: &AgentState) -> Result<bool, StoreError>;

    /// [`Registry::agent_seen`] for many agents at once: a store that can writes them in
    /// one transaction (one fsync for all, where one per heartbeat would take the disk
    /// from the batches); this default writes them one by one.
    fn agents_seen(&mut self, seen: &[(String, AgentState)]) -> Result<(), StoreError> {
        for (id, s) in seen {
            self.agent_seen(id, s)?;
        }
        Ok(())
    }
}
