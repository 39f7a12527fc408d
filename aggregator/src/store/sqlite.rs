//! The embedded store: one SQLite file (WAL mode) holding events, committed batches,
//! watermarks, agents and enrollment tokens. [`SqliteStore`] implements [`EventStore`]
//! and [`Registry`].
//!
//! One `SqliteStore` is one connection: `Send`, not `Sync`. The server gives it to one
//! store task (or a mutex); other processes (the CLI's `enroll-token create` while `serve`
//! runs) open their own on the same file: WAL lets readers run beside the writer, every
//! write transaction starts `IMMEDIATE` (takes the write lock up front, so it waits in
//! `busy_timeout` instead of failing half-way), and `busy_timeout` bounds the wait.
//!
//! Schema (version [`SCHEMA_VERSION`] in `PRAGMA user_version`; a file of a newer
//! version is refused, an older one is migrated in one transaction at open):
//! - `chunks`: the documents of one committed batch, as one zstd frame of NDJSON (see
//!   [`crate::core::ingest`]): compressed once, by the agent, with the repetition between
//!   events kept (141 B per event on the bench workload against 866 B for events
//!   compressed one by one, and no compression work here). Beside it, the range of
//!   event times and of event row ids it holds (its rows are inserted in one go, so
//!   their ids are consecutive), and the [`crate::core::ipfilter`] of the source and
//!   destination addresses its events name (NULL: none; empty: unknown, scan).
//! - `events`: one row per stored event: the searchable fields of [`Row`] and where its
//!   document is (`chunk`, `line`). `UNIQUE (tenant, uid)` is the dedup key; a uid of 32
//!   hex digits (the agent's) is stored as its 16 bytes, anything else as text, each in
//!   its agent's scope (`UidKey`; the scope's key is in `store_secrets`). The
//!   agent's uids start with their source's hash and end with the record's position, so
//!   each new one lands at the right edge of its source's range of the index, not at a
//!   random place (which cost 4 µs per row at 300k rows and grows with the index).
//!   No other index: a time range is searched through the chunks' time spans
//!   (`chunks_time`), the chunk's rows then read by their id range.
//! - `postings`: per chunk, one entry per class, host and user its events name, with
//!   their time range ([`crate::core::postings`]); and each chunk's address filter.
//!   Searches ([`EventStore::find`], and [`EventStore::latest`] through the chunks'
//!   time spans) go through these to the chunks to scan, instead of
//!   a B-tree index per event per field: each such index is an insert per event, and
//!   the four we had (class, host, user, source address) cut the insert rate to a
//!   quarter. A scan reads one chunk's rows by their id range (a thousand rows in tens
//!   of microseconds). What each choice costs, measured: `benches/src/bin/store-layouts.rs`
//!   and benches/README.md.
//! - `class_counts`: events stored per tenant and class, kept at each commit, so the
//!   counts (`stats`, the `serve` report) do not scan the events.
//! - `batches`: `(agent_id, epoch, seq)` of every committed batch (the replay key), what
//!   it held and what was stored.
//! - `watermarks`: the ranges `[first, end)` each committed batch accounts for, per
//!   agent and source stream; [`EventStore::gaps`] reads the holes between them.
//! - `agents`, `tokens`: the [`Registry`].
//!
//! Unsigned 64-bit values are stored as SQLite's signed integers: epochs and sequence
//! numbers bit for bit (only compared for equality), counters saturated at `i64::MAX`,
//! watermark positions as they are (ingest refuses any at or past 2^63).

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use vedette_schemas::wire::{AckOutcome, BatchHeader};

use super::{
    Admission, AgentInfo, AgentRecord, AgentState, EventStore, Gap, Pruned, Registry, StoreError,
    TokenError, TokenInfo, TokenRevocation, TokenUse,
};
use crate::core::ingest::{ChunkText, DecodedBatch, DocError, Peer, Row};
use crate::core::ipfilter::{Side, may_contain};
use crate::core::postings::{Key, postings};

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 13;

/// Migrations: `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    agent_id    TEXT    NOT NULL,
    uid         TEXT    NOT NULL,
    time_ms     INTEGER NOT NULL,
    class_uid   INTEGER NOT NULL,
    type_uid    INTEGER NOT NULL,
    severity_id INTEGER NOT NULL,
    device      TEXT,
    device_ip   TEXT,
    user        TEXT,
    src_ip      TEXT,
    dst_ip      TEXT,
    count       INTEGER NOT NULL,
    doc         BLOB    NOT NULL,
    UNIQUE (tenant, uid)
);
CREATE INDEX events_time        ON events (tenant, time_ms);
CREATE INDEX events_class_time  ON events (tenant, class_uid, time_ms);
CREATE INDEX events_device_time ON events (tenant, device, time_ms) WHERE device IS NOT NULL;
CREATE INDEX events_user_time   ON events (tenant, user, time_ms)   WHERE user IS NOT NULL;
CREATE INDEX events_src_ip_time ON events (tenant, src_ip, time_ms) WHERE src_ip IS NOT NULL;

CREATE TABLE batches (
    agent_id     TEXT    NOT NULL,
    epoch        INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    tenant       TEXT    NOT NULL,
    committed_ms INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    first_time   INTEGER NOT NULL,
    last_time    INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    stored       INTEGER NOT NULL,
    duplicates   INTEGER NOT NULL,
    PRIMARY KEY (agent_id, epoch, seq)
) WITHOUT ROWID;

CREATE TABLE watermarks (
    agent_id TEXT    NOT NULL,
    source   TEXT    NOT NULL,
    stream   TEXT    NOT NULL,
    unit     TEXT    NOT NULL,
    first    INTEGER NOT NULL,
    "end"    INTEGER NOT NULL,
    records  INTEGER NOT NULL,
    epoch    INTEGER NOT NULL,
    seq      INTEGER NOT NULL
);
CREATE INDEX watermarks_stream ON watermarks (agent_id, source, stream, unit, first);

CREATE TABLE agents (
    agent_id        TEXT    PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    hostname        TEXT    NOT NULL,
    cert_serial     TEXT    NOT NULL,
    not_after_ms    INTEGER NOT NULL,
    enrolled_ms     INTEGER NOT NULL,
    revoked_ms      INTEGER,
    last_seen_ms    INTEGER,
    version         TEXT,
    seen_hostname   TEXT,
    host_facts      TEXT,
    lag_ms          INTEGER,
    spool_bytes     INTEGER,
    dropped_batches INTEGER,
    dropped_events  INTEGER,
    damaged_records INTEGER,
    udp_drops       INTEGER
) WITHOUT ROWID;

CREATE TABLE tokens (
    id            TEXT    PRIMARY KEY,
    secret_hash   BLOB    NOT NULL,
    tenant        TEXT    NOT NULL,
    expires_ms    INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    used_ms       INTEGER,
    used_hostname TEXT,
    used_agent_id TEXT
) WITHOUT ROWID;
"#,
    // 1 -> 2: documents move into chunks (each old per-event frame becomes a chunk of one
    // line whose length its frame records), the agent's hex uids become their bytes, and
    // events lose `agent_id` (their chunk has it).
    r#"
CREATE TABLE chunks (
    id         INTEGER PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    agent_id   TEXT    NOT NULL,
    first_time INTEGER NOT NULL,
    last_time  INTEGER NOT NULL,
    first_id   INTEGER NOT NULL,
    last_id    INTEGER NOT NULL,
    ip_filter  BLOB,
    raw_len    INTEGER,
    data       BLOB    NOT NULL
);
CREATE INDEX chunks_time ON chunks (tenant, last_time);
INSERT INTO chunks (id, tenant, agent_id, first_time, last_time, first_id, last_id,
        ip_filter, raw_len, data)
    SELECT id, tenant, agent_id, time_ms, time_ms, id, id,
        CASE WHEN src_ip IS NULL AND dst_ip IS NULL THEN NULL ELSE x'' END, NULL, doc
    FROM events;

CREATE TABLE events_2 (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    uid         BLOB    NOT NULL,
    time_ms     INTEGER NOT NULL,
    class_uid   INTEGER NOT NULL,
    type_uid    INTEGER NOT NULL,
    severity_id INTEGER NOT NULL,
    device      TEXT,
    device_ip   TEXT,
    user        TEXT,
    src_ip      TEXT,
    dst_ip      TEXT,
    count       INTEGER NOT NULL,
    chunk       INTEGER NOT NULL,
    line        INTEGER NOT NULL,
    UNIQUE (tenant, uid)
);
INSERT INTO events_2 (id, tenant, uid, time_ms, class_uid, type_uid, severity_id, device,
        device_ip, user, src_ip, dst_ip, count, chunk, line)
    SELECT id, tenant,
        CASE WHEN length(uid) = 32 AND uid = lower(uid) AND unhex(uid) IS NOT NULL
            THEN unhex(uid) ELSE uid END,
        time_ms, class_uid, type_uid, severity_id, device, device_ip, user, src_ip, dst_ip,
        count, id, 0
    FROM events;
DROP TABLE events;
ALTER TABLE events_2 RENAME TO events;
CREATE INDEX events_time ON events (tenant, time_ms);

CREATE TABLE postings (
    tenant     TEXT    NOT NULL,
    field      INTEGER NOT NULL,
    value      ANY     NOT NULL,
    last_time  INTEGER NOT NULL,
    first_time INTEGER NOT NULL,
    chunk      INTEGER NOT NULL,
    PRIMARY KEY (tenant, field, value, last_time, chunk)
) WITHOUT ROWID;
INSERT INTO postings SELECT tenant, 1, class_uid, time_ms, time_ms, chunk FROM events;
INSERT INTO postings SELECT tenant, 2, device, time_ms, time_ms, chunk FROM events
    WHERE device IS NOT NULL;
INSERT INTO postings SELECT tenant, 3, user, time_ms, time_ms, chunk FROM events
    WHERE user IS NOT NULL;

CREATE TABLE class_counts (
    tenant    TEXT    NOT NULL,
    class_uid INTEGER NOT NULL,
    events    INTEGER NOT NULL,
    PRIMARY KEY (tenant, class_uid)
) WITHOUT ROWID;
INSERT INTO class_counts SELECT tenant, class_uid, count(*) FROM events
    GROUP BY tenant, class_uid;
"#,
    // 2 -> 3: a batch's checksum, to tell a resent batch from another one under the same
    // number (NULL: committed before checksums were kept), and how often its number came
    // again with other content.
    r#"
ALTER TABLE batches ADD COLUMN checksum INTEGER;
ALTER TABLE batches ADD COLUMN reused INTEGER NOT NULL DEFAULT 0;
"#,
    // 3 -> 4: uids are stored per agent (`UidKey::scoped`; the stored ones are rewritten
    // by `rescope_uids` after this); a lookup by uid goes through the tenant's agents,
    // found here.
    r#"
CREATE INDEX chunks_agent ON chunks (tenant, agent_id);
"#,
    // 4 -> 5: the scope of an agent's uids is keyed with a secret of this store (made by
    // `rekey_uids` after this, which also moves the stored uids into the keyed scopes).
    r#"
CREATE TABLE store_secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"#,
    // 5 -> 6: retention finds the batch records it deletes by commit time, a slice at a
    // time, and their watermarks by batch, without reading either table whole.
    r#"
CREATE INDEX IF NOT EXISTS batches_committed ON batches (committed_ms);
CREATE INDEX IF NOT EXISTS watermarks_batch ON watermarks (agent_id, epoch, seq);
"#,
    // 6 -> 7: events lose their own time index; a time range is searched through the
    // chunks' (`chunks_time`), as class, host and user are through the postings. One
    // B-tree insert less per event: the store took 1.2-1.27x the rows per second without
    // it (`insert-ceiling`, 300k events of the mixed workload, alternating runs).
    r#"
DROP INDEX IF EXISTS events_time;
"#,
    // 7 -> 8: retention finds the old chunks by their newest event time, and their search
    // entries by chunk: each slice read both tables whole (the chunks' documents included)
    // under the write lock.
    r#"
CREATE INDEX IF NOT EXISTS chunks_last ON chunks (last_time);
CREATE INDEX IF NOT EXISTS postings_chunk ON postings (chunk);
"#,
    // 8 -> 9: search entries keep a name as its text. `value ANY` had numeric affinity, so
    // user "0123" and user "123" of one chunk were both 123 and one entry took the other's
    // place. Rebuilt from the events (whose columns kept the text), one entry per key and
    // chunk with its time range, as `commit` writes them. (One pass over the events at the
    // first start of this version.)
    r#"
CREATE TABLE postings_9 (
    tenant     TEXT    NOT NULL,
    field      INTEGER NOT NULL,
    value              NOT NULL,
    last_time  INTEGER NOT NULL,
    first_time INTEGER NOT NULL,
    chunk      INTEGER NOT NULL,
    PRIMARY KEY (tenant, field, value, last_time, chunk)
) WITHOUT ROWID;
INSERT OR IGNORE INTO postings_9
    SELECT tenant, 1, class_uid, max(time_ms), min(time_ms), chunk FROM events
    GROUP BY tenant, class_uid, chunk;
INSERT OR IGNORE INTO postings_9
    SELECT tenant, 2, device, max(time_ms), min(time_ms), chunk FROM events
    WHERE device IS NOT NULL GROUP BY tenant, device, chunk;
INSERT OR IGNORE INTO postings_9
    SELECT tenant, 3, user, max(time_ms), min(time_ms), chunk FROM events
    WHERE user IS NOT NULL GROUP BY tenant, user, chunk;
DROP TABLE postings;
ALTER TABLE postings_9 RENAME TO postings;
CREATE INDEX postings_chunk ON postings (chunk);
"#,
    // 9 -> 10: the certificates renewals signed, one of them current once a connection
    // presents it (`Registry::admit_cert`): until then the one they replace stays current,
    // so an agent that could not save one keeps working; after, the others are refused.
    // Agents enrolled before are recognised by the first certificate they present (the
    // registry may have recorded a renewal the agent never saved).
    r#"
ALTER TABLE agents ADD COLUMN pending_serial TEXT;
UPDATE agents SET pending_serial = '*';
"#,
    // 10 -> 11: a token can be revoked before it is used or expires (one that leaked).
    r#"
ALTER TABLE tokens ADD COLUMN revoked_ms INTEGER;
"#,
    // 11 -> 12: retention goes by `retain_time`, the newest event time but at most a day
    // past the chunk's arrival ([`FUTURE_SKEW_MS`]): events dated in the future (a wrong
    // clock, a syslog sender's, a year guessed wrong) were kept for ever. A chunk without
    // one (stored before, or by an older `serve` still running on the migrated file) goes
    // by its newest event time, except that one dated past now + a day counts as arriving
    // now: only those rows are written here, not every chunk's row (and its document).
    r#"
ALTER TABLE chunks ADD COLUMN retain_time INTEGER;
UPDATE chunks SET retain_time = CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 86400000
    WHERE last_time > CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 86400000;
CREATE INDEX chunks_retain ON chunks (coalesce(retain_time, last_time));
"#,
    // 12 -> 13: when the latest certificate of each agent was signed, so that one signed
    // later and unknown to the registry is known for a renewal the registry lost (restored
    // from an older backup) rather than refused as replaced. Every certificate signed so
    // far was signed before now (rounded up to the second). An older `serve` still running
    // on the migrated file enrolls and renews without setting it: the triggers do it for
    // such a writer (a renewal it recorded and the agent passed over must not pass for one
    // the registry lost), and leave alone a row whose writer set it.
    r#"
ALTER TABLE agents ADD COLUMN last_signed_ms INTEGER;
UPDATE agents SET last_signed_ms = (CAST(strftime('%s', 'now') AS INTEGER) + 1) * 1000;
CREATE TRIGGER agents_enrolled_signed AFTER INSERT ON agents
WHEN NEW.last_signed_ms IS NULL
BEGIN
    UPDATE agents SET last_signed_ms = NEW.enrolled_ms WHERE agent_id = NEW.agent_id;
END;
CREATE TRIGGER agents_renewal_signed AFTER UPDATE OF pending_serial ON agents
WHEN NEW.pending_serial IS NOT NULL AND NEW.last_signed_ms IS OLD.last_signed_ms
BEGIN
    UPDATE agents SET last_signed_ms = max(coalesce(last_signed_ms, 0),
        (CAST(strftime('%s', 'now') AS INTEGER) + 1) * 1000)
    WHERE agent_id = NEW.agent_id;
END;
"#,
];

/// How far past its arrival a chunk's events may be dated and still count by their own
/// time for retention ([`EventStore::prune`]).
pub const FUTURE_SKEW_MS: i64 = 86_400_000;

/// [`Registry::agent_seen`] on `conn` (the store's connection, or a transaction on it).
fn record_seen(conn: &Connection, agent_id: &str, s: &AgentState) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE agents SET last_seen_ms = ?2, version = ?3, seen_hostname = ?4, \
             host_facts = ?5, lag_ms = ?6, spool_bytes = ?7, dropped_batches = ?8, \
             dropped_events = ?9, damaged_records = ?10, udp_drops = ?11 \
             WHERE agent_id = ?1",
        )?
        .execute(params![
            agent_id,
            s.last_seen_ms,
            s.version,
            s.hostname,
            s.host_facts,
            s.lag_ms,
            sat(s.spool_bytes),
            sat(s.dropped_batches),
            sat(s.dropped_events),
            sat(s.damaged_records),
            sat(s.udp_drops),
        ])?;
    Ok(n > 0)
}

/// The migration after which stored uids are rewritten per agent.
const RESCOPE_AFTER: usize = 3;

/// The migration after which the scopes are keyed.
const REKEY_AFTER: usize = 4;

/// The `store_secrets` row of the uid scope key.
const SCOPE_KEY: &str = "uid_scope";

/// Makes the store's uid scope key and moves every stored agent uid from its schema-4
/// scope ([`legacy_uid_scope`]) into its keyed one: XOR is its own inverse, so one XOR
/// with both scopes does it, and keys that were apart stay apart.
fn rekey_uids(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| StoreError::Unusable("no system randomness for the uid scope key".into()))?;
    tx.execute(
        "INSERT INTO store_secrets (name, value) VALUES (?1, ?2)",
        params![SCOPE_KEY, key.as_slice()],
    )?;
    let key = ScopeKey::new(&key);
    for_uids(tx, |uid, agent| match uid {
        rusqlite::types::Value::Blob(mut b) if b.len() == 16 => {
            let (old, new) = (legacy_uid_scope(agent), key.scope(agent));
            scope_bytes(&mut b, old);
            scope_bytes(&mut b, new);
            rusqlite::types::Value::Blob(b)
        }
        other => other,
    })?;
    Ok(())
}

/// The key the scope of an agent's uids is made with (see [`UidKey`]).
#[derive(Clone)]
pub(crate) struct ScopeKey(ring::hmac::Key);

impl std::fmt::Debug for ScopeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScopeKey(..)")
    }
}

impl ScopeKey {
    fn new(secret: &[u8]) -> Self {
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    /// The store's key.
    fn load(conn: &Connection) -> Result<Self, StoreError> {
        let secret: Vec<u8> = conn.query_row(
            "SELECT value FROM store_secrets WHERE name = ?1",
            [SCOPE_KEY],
            |r| r.get(0),
        )?;
        Ok(Self::new(&secret))
    }

    /// The scope of `agent_id`'s uids: the first 8 bytes of its HMAC, which no agent can
    /// compute (nor so choose its uids to land on another agent's).
    pub(crate) fn scope(&self, agent_id: &str) -> [u8; 8] {
        let tag = ring::hmac::sign(&self.0, agent_id.as_bytes());
        tag.as_ref()[..8]
            .try_into()
            .expect("a SHA-256 tag is 32 bytes")
    }
}

/// Rewrites every stored uid into its agent's scope ([`UidKey::scoped`]), the agent being
/// its chunk's. A key that would meet another row's (only a text uid crafted to look
/// scoped can) is left as it was: still found by [`EventStore::get_event`]'s fallback.
fn rescope_uids(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    for_uids(tx, |uid, agent| match uid {
        rusqlite::types::Value::Blob(mut b) if b.len() == 16 => {
            scope_bytes(&mut b, legacy_uid_scope(agent));
            rusqlite::types::Value::Blob(b)
        }
        rusqlite::types::Value::Text(t) => rusqlite::types::Value::Text(scope_text(agent, &t)),
        other => other,
    })
}

/// Rewrites every stored uid with `f(uid, its chunk's agent)`. A key that would meet
/// another row's is left as it was.
fn for_uids(
    tx: &rusqlite::Transaction<'_>,
    mut f: impl FnMut(rusqlite::types::Value, &str) -> rusqlite::types::Value,
) -> rusqlite::Result<()> {
    // A slice of rows at a time: a store of a hundred million events does not fit in
    // memory at once.
    const SLICE: i64 = 50_000;
    let mut select = tx.prepare(
        "SELECT e.id, e.uid, c.agent_id FROM events e JOIN chunks c ON c.id = e.chunk \
         WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
    )?;
    let mut update = tx.prepare("UPDATE OR IGNORE events SET uid = ?2 WHERE id = ?1")?;
    let mut after = i64::MIN;
    loop {
        let rows: Vec<(i64, rusqlite::types::Value, String)> = select
            .query_map(params![after, SLICE], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let Some(&(last, _, _)) = rows.last() else {
            return Ok(());
        };
        after = last;
        for (id, uid, agent) in rows {
            update.execute(params![id, f(uid, &agent)])?;
        }
    }
}

/// When SQLite waits for the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync at every commit: an acknowledged batch survives a power loss. The default,
    /// because the agent frees its spool on the acknowledgement.
    #[default]
    Full,
    /// fsync at checkpoints only (WAL): an acknowledged batch survives a crash of the
    /// aggregator but not of the machine. Faster; for hosts with battery-backed storage
    /// or tests.
    Normal,
}

/// Store settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// Durability of a commit (default [`Synchronous::Full`]).
    pub synchronous: Synchronous,
    /// How long a write waits for another connection's (default 5 s).
    pub busy_timeout: Duration,
    /// Page cache, KiB (default 64 MiB: the event indexes are hot at the right edge).
    pub cache_kib: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            cache_kib: 64 << 10,
        }
    }
}

/// The SQLite store: one connection to one file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    scope_key: ScopeKey,
    /// Where the batch records of one retention run were examined to, so the records
    /// that wait (see `prune_batches`) are passed over by the run's next slices instead
    /// of filling them.
    prune_cursor: Option<PruneCursor>,
}

/// The last batch record examined by retention, and the cut-off of its run.
#[derive(Debug, Clone, PartialEq)]
struct PruneCursor {
    before_ms: i64,
    after: (i64, String, i64, i64),
}

impl SqliteStore {
    /// Opens (creating or migrating) the store at `path`, in WAL mode.
    pub fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        // Before anything else may wait on another connection's lock.
        conn.busy_timeout(config.busy_timeout)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal(mode));
        }
        Self::setup(conn, &config)
    }

    /// A store in memory, gone when dropped (no WAL): for tests and benches.
    pub fn open_in_memory(config: SqliteConfig) -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?, &config)
    }

    fn setup(mut conn: Connection, config: &SqliteConfig) -> Result<Self, StoreError> {
        let sync = match config.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "cache_size", -i64::from(config.cache_kib))?;
        // The indexes keyed by host, user or address take rows all over their range, so
        // every batch dirties pages across them; checkpointing every 40 MiB of WAL
        // instead of 4 writes each such page back once per many batches (measured with
        // per-event random uids: 18k -> 28k rows/s on 300k real events).
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        // The WAL file is cut back to this after a checkpoint instead of staying at its
        // largest size for ever.
        conn.pragma_update(None, "journal_size_limit", 64 << 20)?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn)?;
        let scope_key = ScopeKey::load(&conn)?;
        Ok(Self {
            conn,
            scope_key,
            prune_cursor: None,
        })
    }

    /// The documents at `(chunk, line)` places, in that order. Each chunk is read and
    /// decompressed once, and only one is held at a time.
    fn documents(
        &self,
        tenant: &str,
        places: &[(i64, i64)],
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut order: Vec<usize> = (0..places.len()).collect();
        order.sort_unstable_by_key(|&i| places[i]);
        let mut read = self
            .conn
            .prepare_cached("SELECT raw_len, data FROM chunks WHERE id = ?1 AND tenant = ?2")?;
        let mut out: Vec<serde_json::Value> = vec![serde_json::Value::Null; places.len()];
        let mut open: Option<(i64, ChunkText)> = None;
        for i in order {
            let (chunk, line) = places[i];
            if open.as_ref().is_none_or(|(c, _)| *c != chunk) {
                let (raw_len, data): (Option<i64>, Vec<u8>) =
                    read.query_row(params![chunk, tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let raw_len = match raw_len {
                    Some(n) => n as u64,
                    // Migrated from schema 1: the frame records its own length.
                    None => zstd::zstd_safe::get_frame_content_size(&data)
                        .ok()
                        .flatten()
                        .ok_or(DocError::Size(u64::MAX))?,
                };
                open = Some((chunk, ChunkText::open(&data, raw_len)?));
            }
            let (_, text) = open.as_ref().expect("opened above");
            out[i] = text.line(line as usize)?;
        }
        Ok(out)
    }

    /// A read transaction for one search: its rows and the documents they point at are of
    /// one moment. Without it, retention could delete a chunk between the two, and a new
    /// batch take its id (ids of deleted rows are reused), so a search returned another
    /// batch's line, maybe another tenant's (which `documents` now also refuses).
    fn snapshot(&self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        Ok(self.conn.unchecked_transaction()?)
    }

    /// Batches committed, all agents.
    pub fn batch_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM batches")?
            .query_row([], |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction. A store already there is
/// only read: the CLI's queries (`stats`, `events`, `agents list` …) beside a running
/// `serve` take no write lock, so they neither wait for a long commit or prune slice nor
/// make its next commit wait.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    // Read again under the write lock: another process may have migrated meanwhile.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    // Not a version this or any build wrote: marking it current would skip the schema.
    let Ok(found_n) = usize::try_from(found) else {
        return Err(StoreError::Unusable(format!(
            "the database's user_version is {found}: not a Vedette store"
        )));
    };
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(found_n) {
        tx.execute_batch(sql)?;
        if n == RESCOPE_AFTER {
            rescope_uids(&tx)?;
        }
        if n == REKEY_AFTER {
            rekey_uids(&tx)?;
        }
    }
    if found < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

/// Once the chunks of that age are gone: the next `max` batch records committed before
/// `before_ms` after `from` (the same run's last slice), oldest first, each deleted with
/// its watermarks unless it waits; the numbers deleted and waiting, and the last record
/// examined.
///
/// A batch whose watermark has a range of the same stream below it still kept waits (a
/// batch resent late, committed after those above it, is newer than they are): deleting
/// it first would leave a hole in the middle of what arrived, and [`EventStore::gaps`]
/// would report as missing a range that came. It goes in a later run, once the ranges
/// below it have.
#[allow(clippy::type_complexity)]
fn prune_batches(
    tx: &rusqlite::Transaction<'_>,
    before_ms: i64,
    from: Option<PruneCursor>,
    max: usize,
) -> Result<(u64, u64, Option<(i64, String, i64, i64)>), StoreError> {
    let (t, a, e, q) = from.map_or((i64::MIN, String::new(), i64::MIN, i64::MIN), |c| c.after);
    let due: Vec<(i64, String, i64, i64)> = tx
        .prepare_cached(PRUNE_DUE_BATCHES)?
        .query_map(params![before_ms, t, a, e, q, max as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut above_a_kept_range = tx.prepare_cached(PRUNE_WAITING)?;
    let mut marks = tx
        .prepare_cached("DELETE FROM watermarks WHERE agent_id = ?1 AND epoch = ?2 AND seq = ?3")?;
    let mut batch =
        tx.prepare_cached("DELETE FROM batches WHERE agent_id = ?1 AND epoch = ?2 AND seq = ?3")?;
    let (mut deleted, mut waiting) = (0, 0);
    for (_, agent, epoch, seq) in &due {
        let key = params![agent, epoch, seq];
        if above_a_kept_range.exists(key)? {
            waiting += 1;
            continue;
        }
        marks.execute(key)?;
        deleted += batch.execute(key)? as u64;
    }
    Ok((deleted, waiting, due.into_iter().next_back()))
}

/// Retention's oldest chunks, a slice at a time (through `chunks_retain`).
const PRUNE_CHUNKS: &str = "SELECT id, tenant, first_id, last_id FROM chunks \
     WHERE coalesce(retain_time, last_time) < ?1 \
     ORDER BY coalesce(retain_time, last_time), id LIMIT ?2";

/// Retention's batch records due after its cursor, a slice at a time (through
/// `batches_committed`).
const PRUNE_DUE_BATCHES: &str = "SELECT committed_ms, agent_id, epoch, seq FROM batches \
     WHERE committed_ms < ?1 AND (committed_ms, agent_id, epoch, seq) > (?2, ?3, ?4, ?5) \
     ORDER BY committed_ms, agent_id, epoch, seq LIMIT ?6";

/// Whether a due batch record waits: a watermark of it lies above a range of its stream
/// that another batch still keeps (through `watermarks_batch`, then `watermarks_stream`).
const PRUNE_WAITING: &str = "SELECT 1 FROM watermarks w \
     WHERE w.agent_id = ?1 AND w.epoch = ?2 AND w.seq = ?3 \
     AND EXISTS (SELECT 1 FROM watermarks b WHERE b.agent_id = w.agent_id \
     AND b.source = w.source AND b.stream = w.stream AND b.unit = w.unit \
     AND b.first < w.first AND NOT (b.epoch = w.epoch AND b.seq = w.seq))";

/// The search entries of the chunks retention deletes (through `postings_chunk`).
const PRUNE_POSTINGS: &str =
    "DELETE FROM postings WHERE chunk IN (SELECT id FROM temp.pruned_chunks)";

/// A counter as SQLite's signed integer, saturated.
fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An epoch or sequence number, bit for bit (compared for equality only).
fn bits(v: u64) -> i64 {
    v as i64
}

/// A chunk a search reads: the latest event time it may match, and its rows' id range.
struct Candidate {
    last_time: i64,
    first_id: i64,
    last_id: i64,
}

/// A [`Candidate`] from a row of (last_time, first_id, last_id, …).
fn candidate(r: &rusqlite::Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        last_time: r.get(0)?,
        first_id: r.get(1)?,
        last_id: r.get(2)?,
    })
}

/// Adds the (time, id, chunk, line) rows `scan` answers for `params` to `found`.
fn hits(
    scan: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
    found: &mut Vec<(i64, i64, i64, i64)>,
) -> Result<(), StoreError> {
    for hit in scan.query_map(params, |e| Ok((e.get(0)?, e.get(1)?, e.get(2)?, e.get(3)?)))? {
        found.push(hit?);
    }
    Ok(())
}

/// The `(chunk, line)` places of the `limit` newest hits (by time, then id), newest first:
/// `scan` adds a chunk's hits as (time, id, chunk, line). `candidates` come latest last
/// event first, so the chunks are read only until the next one is older than every hit
/// kept.
fn newest(
    candidates: impl Iterator<Item = Result<Candidate, StoreError>>,
    limit: usize,
    mut scan: impl FnMut(&Candidate, &mut Vec<(i64, i64, i64, i64)>) -> Result<(), StoreError>,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut found: Vec<(i64, i64, i64, i64)> = Vec::new();
    for c in candidates {
        let c = c?;
        if found.len() >= limit {
            found.sort_unstable_by_key(|&(time, id, _, _)| std::cmp::Reverse((time, id)));
            found.truncate(limit);
            // Every event of this chunk and the ones after is older than all we keep.
            if c.last_time < found[limit - 1].0 {
                break;
            }
        }
        scan(&c, &mut found)?;
    }
    found.sort_unstable_by_key(|&(time, id, _, _)| std::cmp::Reverse((time, id)));
    found.truncate(limit);
    Ok(found.iter().map(|&(_, _, c, l)| (c, l)).collect())
}

/// A search key's value as SQL (the class as an integer, names and addresses as text).
struct KeyValue<'k, 'a>(&'k Key<'a>);

impl rusqlite::ToSql for KeyValue<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self.0 {
            Key::Class(c) => rusqlite::types::ToSqlOutput::from(i64::from(*c)),
            Key::Device(v) | Key::User(v) | Key::Ip(v) => rusqlite::types::ToSqlOutput::Borrowed(
                rusqlite::types::ValueRef::Text(v.as_bytes()),
            ),
        })
    }
}

/// A uid as stored: the agent's 32 lower-case hex digits as their 16 bytes (half the
/// index), anything else as text (a BLOB and a TEXT are never equal in SQLite, so the two
/// forms cannot collide).
///
/// Stored uids are the sending agent's ([`UidKey::scoped`]): uids are the agent's claim,
/// and with one namespace per tenant an agent (compromised, or reading the same file) that
/// sent another agent's future uids first made that agent's events vanish as duplicates.
/// An agent's hex uid has its first 8 bytes XORed with [`ScopeKey::scope`] of its id, a
/// value keyed with a secret of the store, so no agent can aim at another's keys; a text
/// uid is prefixed with the agent id.
pub(crate) enum UidKey<'a> {
    Bytes([u8; 16]),
    Text(std::borrow::Cow<'a, str>),
}

/// The scope of schema 4, an unkeyed hash of the agent id: any agent could compute
/// another's and send uids that, XORed with its own scope, landed on that agent's future
/// keys. Kept only to move stored uids out of it ([`rekey_uids`]).
fn legacy_uid_scope(agent_id: &str) -> [u8; 8] {
    xxhash_rust::xxh3::xxh3_64(agent_id.as_bytes()).to_be_bytes()
}

impl<'a> UidKey<'a> {
    pub(crate) fn of(uid: &'a str) -> Self {
        let b = uid.as_bytes();
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        if b.len() == 32 {
            let mut out = [0u8; 16];
            let mut ok = true;
            for (i, o) in out.iter_mut().enumerate() {
                match (nibble(b[2 * i]), nibble(b[2 * i + 1])) {
                    (Some(h), Some(l)) => *o = h << 4 | l,
                    _ => ok = false,
                }
            }
            if ok {
                return UidKey::Bytes(out);
            }
        }
        UidKey::Text(std::borrow::Cow::Borrowed(uid))
    }

    /// `uid` of the agent whose [`ScopeKey::scope`] is `scope`, as stored.
    pub(crate) fn scoped(scope: [u8; 8], agent_id: &str, uid: &'a str) -> Self {
        match Self::of(uid) {
            UidKey::Bytes(mut b) => {
                scope_bytes(&mut b, scope);
                UidKey::Bytes(b)
            }
            UidKey::Text(t) => UidKey::Text(scope_text(agent_id, &t).into()),
        }
    }
}

/// A uid's bytes into an agent's scope: its first 8 (the source hash) XORed with it.
fn scope_bytes(uid: &mut [u8], scope: [u8; 8]) {
    for (x, s) in uid.iter_mut().zip(scope) {
        *x ^= s;
    }
}

/// A text uid into an agent's scope.
fn scope_text(agent_id: &str, uid: &str) -> String {
    format!("{agent_id}/{uid}")
}

impl rusqlite::ToSql for UidKey<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            UidKey::Bytes(b) => {
                rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Blob(b))
            }
            UidKey::Text(t) => t.as_ref().to_sql()?,
        })
    }
}

/// Records an agent, on the connection or inside a caller's transaction.
fn insert_agent(conn: &rusqlite::Connection, a: &AgentRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO agents (agent_id, tenant, hostname, cert_serial, not_after_ms, \
         enrolled_ms, last_signed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![
        a.agent_id,
        a.tenant,
        a.hostname,
        a.cert_serial,
        a.not_after_ms,
        a.enrolled_ms
    ])
    .map_err(|e| {
        if is_constraint(&e) {
            StoreError::AgentExists(a.agent_id.clone())
        } else {
            e.into()
        }
    })?;
    Ok(())
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
}

impl EventStore for SqliteStore {
    fn commit(
        &mut self,
        peer: &Peer,
        header: &BatchHeader,
        batch: &DecodedBatch,
        now_ms: i64,
    ) -> Result<AckOutcome, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcome = commit_in(&tx, &self.scope_key, peer, header, batch, now_ms)?;
        if outcome != AckOutcome::Replay {
            tx.commit()?;
        }
        Ok(outcome)
    }

    fn commit_group(
        &mut self,
        items: &[(&Peer, &BatchHeader, &DecodedBatch)],
        now_ms: i64,
    ) -> Result<Vec<AckOutcome>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(items.len());
        for &(peer, header, batch) in items {
            out.push(commit_in(
                &tx,
                &self.scope_key,
                peer,
                header,
                batch,
                now_ms,
            )?);
        }
        tx.commit()?;
        Ok(out)
    }

    fn is_committed(&self, agent_id: &str, epoch: u64, seq: u64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM batches WHERE agent_id = ?1 AND epoch = ?2 AND seq = ?3",
            )?
            .exists(params![agent_id, bits(epoch), bits(seq)])?)
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(sum(events), 0) FROM class_counts")?
            .query_row([], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn prune(&mut self, before_ms: i64, max_chunks: usize) -> Result<Pruned, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut pruned = Pruned::default();
        let old: Vec<(i64, String, i64, i64)> = tx
            .prepare_cached(PRUNE_CHUNKS)?
            .query_map(params![before_ms, max_chunks as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        if !old.is_empty() {
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS pruned_chunks (id INTEGER PRIMARY KEY); \
                 DELETE FROM temp.pruned_chunks;",
            )?;
            let mut per_class: Vec<((String, u32), i64)> = Vec::new();
            {
                let mut classes = tx.prepare_cached(
                    "SELECT class_uid, count(*) FROM events \
                     WHERE id BETWEEN ?1 AND ?2 AND chunk = ?3 GROUP BY class_uid",
                )?;
                let mut delete = tx.prepare_cached(
                    "DELETE FROM events WHERE id BETWEEN ?1 AND ?2 AND chunk = ?3",
                )?;
                let mut mark = tx.prepare_cached("INSERT INTO temp.pruned_chunks VALUES (?1)")?;
                for (id, tenant, first, last) in &old {
                    let mut rows = classes.query(params![first, last, id])?;
                    while let Some(r) = rows.next()? {
                        let key = (tenant.clone(), r.get::<_, u32>(0)?);
                        let n: i64 = r.get(1)?;
                        match per_class.iter_mut().find(|(k, _)| *k == key) {
                            Some((_, m)) => *m += n,
                            None => per_class.push((key, n)),
                        }
                    }
                    pruned.events += delete.execute(params![first, last, id])? as u64;
                    mark.execute([id])?;
                }
                let mut count = tx.prepare_cached(
                    "UPDATE class_counts SET events = max(events - ?3, 0) \
                     WHERE tenant = ?1 AND class_uid = ?2",
                )?;
                for ((tenant, class_uid), n) in per_class {
                    count.execute(params![tenant, class_uid, n])?;
                }
            }
            tx.prepare_cached(PRUNE_POSTINGS)?.execute([])?;
            pruned.chunks = tx
                .prepare_cached(
                    "DELETE FROM chunks WHERE id IN (SELECT id FROM temp.pruned_chunks)",
                )?
                .execute([])? as u64;
        }
        let mut cursor = None;
        if old.len() < max_chunks {
            let from = self
                .prune_cursor
                .take()
                .filter(|c| c.before_ms == before_ms);
            let (deleted, waiting, last) = prune_batches(&tx, before_ms, from, max_chunks)?;
            pruned.batches = deleted;
            pruned.batches_waiting = waiting;
            cursor = last.map(|after| PruneCursor { before_ms, after });
        }
        tx.commit()?;
        self.prune_cursor = cursor;
        Ok(pruned)
    }

    fn counts_by_class(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT class_uid, sum(events) FROM class_counts GROUP BY class_uid \
             ORDER BY class_uid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get_event(&self, tenant: &str, uid: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let _snapshot = self.snapshot()?;
        // Each agent of the tenant has its own uids: the first that has it (agents do not
        // share sources, so one at most but for a file two of them read), then the
        // unscoped form events stored before schema 4 have.
        let agents: Vec<String> = self
            .conn
            .prepare_cached("SELECT DISTINCT agent_id FROM chunks WHERE tenant = ?1")?
            .query_map([tenant], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let keys = agents
            .iter()
            .map(|a| UidKey::scoped(self.scope_key.scope(a), a, uid))
            .chain(std::iter::once(UidKey::of(uid)));
        let mut find = self
            .conn
            .prepare_cached("SELECT chunk, line FROM events WHERE tenant = ?1 AND uid = ?2")?;
        for key in keys {
            let place: Option<(i64, i64)> = find
                .query_row(params![tenant, key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some(p) = place {
                return Ok(self.documents(tenant, &[p])?.pop());
            }
        }
        Ok(None)
    }

    fn latest(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        if limit == 0 || from_ms > to_ms {
            return Ok(Vec::new());
        }
        let _snapshot = self.snapshot()?;
        // The chunks whose time span meets the range, latest last event first (the
        // chunks' time index: events have none of their own, see the module doc).
        // The chunks whose time span meets the range, latest last event first (the
        // chunks' time index: events have none of their own, see the module doc), read
        // only until the next is older than every hit kept.
        let mut chunks = self.conn.prepare_cached(
            "SELECT last_time, first_id, last_id FROM chunks \
             WHERE tenant = ?1 AND last_time >= ?2 AND first_time <= ?3 \
             ORDER BY last_time DESC",
        )?;
        let candidates = chunks
            .query_map(params![tenant, from_ms, to_ms], candidate)?
            .map(|c| c.map_err(StoreError::from));
        // NOT INDEXED: one chunk's rows by their rowid range.
        let mut scan = self.conn.prepare_cached(
            "SELECT time_ms, id, chunk, line FROM events NOT INDEXED WHERE id BETWEEN ?1 AND ?2 \
             AND tenant = ?3 AND time_ms BETWEEN ?4 AND ?5",
        )?;
        let places = newest(candidates, limit, |c, found| {
            hits(
                &mut scan,
                params![c.first_id, c.last_id, tenant, from_ms, to_ms],
                found,
            )
        })?;
        self.documents(tenant, &places)
    }

    fn find(
        &self,
        tenant: &str,
        key: &Key<'_>,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        if limit == 0 || from_ms > to_ms {
            return Ok(Vec::new());
        }
        let _snapshot = self.snapshot()?;
        let matches = match key {
            Key::Class(_) => "class_uid = ?4",
            Key::Device(_) => "device = ?4",
            Key::User(_) => "user = ?4",
            Key::Ip(_) => "(src_ip = ?4 OR dst_ip = ?4)",
        };
        // NOT INDEXED: by the rowid range, one chunk's rows; left to itself the planner
        // preferred the (tenant, time_ms) index of schemas before 7, which over a wide time
        // range read the whole table for every chunk (13 s instead of 0.3 s for 8,749
        // events of one host in 300k).
        let mut scan = self.conn.prepare_cached(&format!(
            "SELECT time_ms, id, chunk, line FROM events NOT INDEXED WHERE id BETWEEN ?1 AND ?2 \
             AND tenant = ?3 AND {matches} AND time_ms BETWEEN ?5 AND ?6"
        ))?;
        let mut scan_chunk = |c: &Candidate, found: &mut Vec<(i64, i64, i64, i64)>| {
            hits(
                &mut scan,
                params![c.first_id, c.last_id, tenant, KeyValue(key), from_ms, to_ms],
                found,
            )
        };
        // The chunks that may hold it, latest last event first, read only until the next
        // is older than every hit kept.
        let places = match key {
            Key::Ip(ip) => {
                let mut chunks = self.conn.prepare_cached(
                    "SELECT last_time, first_id, last_id, ip_filter FROM chunks \
                     WHERE tenant = ?1 AND last_time >= ?2 AND first_time <= ?3 \
                     AND ip_filter IS NOT NULL ORDER BY last_time DESC",
                )?;
                let candidates = chunks
                    .query_map(params![tenant, from_ms, to_ms], |r| {
                        let filter = r.get_ref(3)?.as_blob().map_err(rusqlite::Error::from)?;
                        let hit = may_contain(filter, Side::Src, ip)
                            || may_contain(filter, Side::Dst, ip);
                        Ok(if hit { Some(candidate(r)?) } else { None })
                    })?
                    .filter_map(|c| c.map_err(StoreError::from).transpose());
                newest(candidates, limit, &mut scan_chunk)?
            }
            _ => {
                let mut postings = self.conn.prepare_cached(
                    "SELECT p.last_time, c.first_id, c.last_id FROM postings p \
                     JOIN chunks c ON c.id = p.chunk \
                     WHERE p.tenant = ?1 AND p.field = ?2 AND p.value = ?3 \
                     AND p.last_time >= ?4 AND p.first_time <= ?5 \
                     ORDER BY p.last_time DESC",
                )?;
                let candidates = postings
                    .query_map(
                        params![tenant, key.field(), KeyValue(key), from_ms, to_ms],
                        candidate,
                    )?
                    .map(|c| c.map_err(StoreError::from));
                newest(candidates, limit, &mut scan_chunk)?
            }
        };
        self.documents(tenant, &places)
    }

    fn gaps(&self, agent_id: &str) -> Result<Vec<Gap>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT source, stream, unit, first, \"end\" FROM watermarks \
             WHERE agent_id = ?1 AND \"end\" > first ORDER BY source, stream, unit, first, \"end\"",
        )?;
        let mut rows = stmt.query([agent_id])?;
        let mut gaps = Vec::new();
        // The stream being merged, and the end of what is covered so far.
        let mut cur: Option<(String, String, String, u64)> = None;
        while let Some(r) = rows.next()? {
            let (source, stream, unit): (String, String, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?);
            let (first, end) = (r.get::<_, i64>(3)? as u64, r.get::<_, i64>(4)? as u64);
            match &mut cur {
                Some((s, t, u, covered)) if *s == source && *t == stream && *u == unit => {
                    if first > *covered {
                        gaps.push(Gap {
                            source,
                            stream,
                            unit,
                            first: *covered,
                            end: first,
                        });
                    }
                    *covered = (*covered).max(end);
                }
                _ => cur = Some((source, stream, unit, end)),
            }
        }
        Ok(gaps)
    }
}

/// Equality of two secret hashes in time independent of where they differ.
fn same_hash(a: &[u8], b: &[u8; 32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const AGENT_COLUMNS: &str = "agent_id, tenant, hostname, cert_serial, not_after_ms, \
    enrolled_ms, revoked_ms, last_seen_ms, version, seen_hostname, host_facts, lag_ms, \
    spool_bytes, dropped_batches, dropped_events, damaged_records, udp_drops";

fn agent_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentInfo> {
    let last_seen_ms: Option<i64> = r.get(7)?;
    let count =
        |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0) as u64) };
    let state = match last_seen_ms {
        None => None,
        Some(last_seen_ms) => Some(AgentState {
            last_seen_ms,
            version: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
            hostname: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
            host_facts: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
            lag_ms: r.get::<_, Option<i64>>(11)?.unwrap_or(0),
            spool_bytes: count(12)?,
            dropped_batches: count(13)?,
            dropped_events: count(14)?,
            damaged_records: count(15)?,
            udp_drops: count(16)?,
        }),
    };
    Ok(AgentInfo {
        record: AgentRecord {
            agent_id: r.get(0)?,
            tenant: r.get(1)?,
            hostname: r.get(2)?,
            cert_serial: r.get(3)?,
            not_after_ms: r.get(4)?,
            enrolled_ms: r.get(5)?,
        },
        revoked_ms: r.get(6)?,
        state,
    })
}

impl Registry for SqliteStore {
    fn create_token(
        &mut self,
        id: &str,
        secret_hash: [u8; 32],
        tenant: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO tokens (id, secret_hash, tenant, expires_ms, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, secret_hash, tenant, expires_ms, now_ms])
            .map_err(|e| {
                if is_constraint(&e) {
                    StoreError::TokenExists(id.to_owned())
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    fn enroll_with_token<T>(
        &mut self,
        id: &str,
        secret_hash: [u8; 32],
        hostname: &str,
        now_ms: i64,
        issue: impl FnOnce(&str) -> Result<(AgentRecord, T), String>,
    ) -> Result<(AgentRecord, T), TokenError> {
        // IMMEDIATE: the write lock is held from the read to the update, so of two
        // concurrent spenders (even in two processes) the second reads `used_ms` set.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        type Row = (Vec<u8>, String, i64, Option<i64>, Option<i64>);
        let token: Option<Row> = tx
            .prepare_cached(
                "SELECT secret_hash, tenant, expires_ms, used_ms, revoked_ms \
                 FROM tokens WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let Some((hash, tenant, expires_ms, used_ms, revoked_ms)) = token else {
            return Err(TokenError::Unknown);
        };
        if !same_hash(&hash, &secret_hash) {
            return Err(TokenError::Mismatch);
        }
        if used_ms.is_some() {
            return Err(TokenError::Used);
        }
        if revoked_ms.is_some() {
            return Err(TokenError::Revoked);
        }
        if now_ms >= expires_ms {
            return Err(TokenError::Expired);
        }
        // Dropping `tx` on any error below rolls the spending back.
        let (record, extra) = issue(&tenant).map_err(TokenError::Refused)?;
        insert_agent(&tx, &record)?;
        tx.prepare_cached(
            "UPDATE tokens SET used_ms = ?2, used_hostname = ?3, used_agent_id = ?4 WHERE id = ?1",
        )?
        .execute(params![id, now_ms, hostname, record.agent_id])?;
        tx.commit()?;
        Ok((record, extra))
    }

    fn revoke_token(&mut self, id: &str, now_ms: i64) -> Result<TokenRevocation, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let used: Option<(Option<i64>, Option<String>)> = tx
            .prepare_cached("SELECT used_ms, used_agent_id FROM tokens WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let outcome = match used {
            None => TokenRevocation::Unknown,
            Some((Some(_), agent_id)) => TokenRevocation::Used {
                agent_id: agent_id.unwrap_or_default(),
            },
            Some((None, _)) => {
                tx.prepare_cached(
                    "UPDATE tokens SET revoked_ms = coalesce(revoked_ms, ?2) WHERE id = ?1",
                )?
                .execute(params![id, now_ms])?;
                TokenRevocation::Revoked
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, tenant, created_ms, expires_ms, used_ms, used_hostname, used_agent_id, \
             revoked_ms FROM tokens ORDER BY created_ms, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TokenInfo {
                id: r.get(0)?,
                tenant: r.get(1)?,
                created_ms: r.get(2)?,
                expires_ms: r.get(3)?,
                used: match r.get::<_, Option<i64>>(4)? {
                    None => None,
                    Some(at_ms) => Some(TokenUse {
                        at_ms,
                        hostname: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        agent_id: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                    }),
                },
                revoked_ms: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn register_agent(&mut self, a: &AgentRecord) -> Result<(), StoreError> {
        insert_agent(&self.conn, a)
    }

    fn revoke_agent(&mut self, agent_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE agents SET revoked_ms = coalesce(revoked_ms, ?2) WHERE agent_id = ?1",
            )?
            .execute(params![agent_id, now_ms])?;
        Ok(n > 0)
    }

    fn admission(&self, agent_id: &str) -> Result<Admission, StoreError> {
        Ok(match self.serials(agent_id)? {
            None => Admission::Unknown,
            Some(s) if s.revoked => Admission::Revoked,
            Some(_) => Admission::Active,
        })
    }

    fn agent(&self, agent_id: &str) -> Result<Option<AgentInfo>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE agent_id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([agent_id], agent_info)
            .optional()?)
    }

    fn list_agents(&self) -> Result<Vec<AgentInfo>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY agent_id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], agent_info)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn admission_of(&self, agent_id: &str, serial: &str) -> Result<Admission, StoreError> {
        Ok(match self.serials(agent_id)? {
            None => Admission::Unknown,
            Some(s) => s.admission(serial),
        })
    }

    fn admit_cert(
        &mut self,
        agent_id: &str,
        serial: &str,
        signed_ms: i64,
        not_after_ms: i64,
    ) -> Result<Admission, StoreError> {
        let Some(s) = self.serials(agent_id)? else {
            return Ok(Admission::Unknown);
        };
        let a = match s.admission(serial) {
            Admission::Superseded if s.last_signed_ms.is_some_and(|t| signed_ms > t) => {
                Admission::Restored
            }
            a => a,
        };
        let first_since_schema_10 = s.pending.iter().any(|p| p == ANY_SERIAL);
        let becomes_current = match a {
            Admission::Active => !s.is_current(serial) || first_since_schema_10,
            Admission::Restored => true,
            _ => false,
        };
        if becomes_current {
            self.conn
                .prepare_cached(
                    "UPDATE agents SET cert_serial = ?2, not_after_ms = ?3, \
                     pending_serial = NULL, \
                     last_signed_ms = max(coalesce(last_signed_ms, ?4), ?4) \
                     WHERE agent_id = ?1",
                )?
                .execute(params![
                    agent_id,
                    canonical_serial(serial),
                    not_after_ms,
                    signed_ms
                ])?;
        }
        Ok(a)
    }

    fn record_renewal(
        &mut self,
        agent_id: &str,
        presented_serial: &str,
        new_serial: &str,
        signed_ms: i64,
    ) -> Result<bool, StoreError> {
        let Some(s) = self.serials(agent_id)? else {
            return Ok(false);
        };
        if s.revoked || !s.is_current(presented_serial) {
            return Ok(false);
        }
        // The latest few: a connection renews at most once per twentieth of a lifetime.
        let mut pending: Vec<&str> = s.pending.iter().map(String::as_str).collect();
        pending.push(canonical_serial(new_serial));
        let keep = pending.len().saturating_sub(MAX_PENDING_SERIALS);
        let n = self
            .conn
            .prepare_cached(
                "UPDATE agents SET pending_serial = ?2, \
                 last_signed_ms = max(coalesce(last_signed_ms, ?3), ?3) WHERE agent_id = ?1",
            )?
            .execute(params![agent_id, pending[keep..].join(" "), signed_ms])?;
        Ok(n > 0)
    }

    fn agent_seen(&mut self, agent_id: &str, s: &AgentState) -> Result<bool, StoreError> {
        record_seen(&self.conn, agent_id, s)
    }

    fn agents_seen(&mut self, seen: &[(String, AgentState)]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (id, s) in seen {
            record_seen(&tx, id, s)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Certificates a renewal signed that an agent may still present, besides its current one.
const MAX_PENDING_SERIALS: usize = 8;

/// `agents.pending_serial` of an agent enrolled before serials were kept (schema 10): its
/// first certificate presented becomes its current one.
const ANY_SERIAL: &str = "*";

/// A serial as hex digits without leading zero bytes: DER drops them, so one serial can
/// be written with or without (registries of earlier versions recorded the padded form).
fn canonical_serial(hex: &str) -> &str {
    let mut s = hex;
    while s.len() > 2 && s.starts_with("00") {
        s = &s[2..];
    }
    s
}

/// An agent's certificates as the registry knows them.
struct Serials {
    revoked: bool,
    current: String,
    pending: Vec<String>,
    /// When the latest certificate the registry recorded for the agent was signed (NULL
    /// in no registry since schema 13).
    last_signed_ms: Option<i64>,
}

impl Serials {
    fn is_current(&self, serial: &str) -> bool {
        canonical_serial(&self.current) == canonical_serial(serial)
    }

    fn admission(&self, serial: &str) -> Admission {
        let serial = canonical_serial(serial);
        if self.revoked {
            Admission::Revoked
        } else if self.is_current(serial)
            || self
                .pending
                .iter()
                .any(|p| p == ANY_SERIAL || canonical_serial(p) == serial)
        {
            Admission::Active
        } else {
            Admission::Superseded
        }
    }
}

impl SqliteStore {
    fn serials(&self, agent_id: &str) -> Result<Option<Serials>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT revoked_ms IS NOT NULL, cert_serial, pending_serial, last_signed_ms \
                 FROM agents WHERE agent_id = ?1",
            )?
            .query_row([agent_id], |r| {
                let pending: Option<String> = r.get(2)?;
                Ok(Serials {
                    revoked: r.get(0)?,
                    current: r.get(1)?,
                    pending: pending
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                    last_signed_ms: r.get(3)?,
                })
            })
            .optional()?)
    }
}

#[cfg(test)]
impl SqliteStore {
    /// Test hook: runs `sql` on the store's own connection (temp triggers, say).
    pub(crate) fn call_sql(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(sql)
    }
}

#[cfg(test)]
mod tests;

/// Rows per multi-row `INSERT` of events (14 parameters each, well under SQLite's limit).
const INSERT_GROUP: usize = 32;

/// Parameters of one row of `events` in [`insert_events_sql`].
const EVENT_COLUMNS: usize = 14;

/// [`insert_events_sql`] for a group and for one row, built once (the statement cache is
/// looked up by its text at every commit).
static INSERT_MANY: LazyLock<String> = LazyLock::new(|| insert_events_sql(INSERT_GROUP));
static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_events_sql(1));

/// `INSERT OR IGNORE INTO events … VALUES (…), (…)` for `rows` rows.
fn insert_events_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; EVENT_COLUMNS].join(", "));
    format!(
        "INSERT OR IGNORE INTO events (tenant, uid, time_ms, class_uid, type_uid, \
         severity_id, device, device_ip, user, src_ip, dst_ip, count, chunk, line) VALUES {}",
        vec![one; rows].join(", ")
    )
}

/// Binds row `r` of a batch to the parameters of `stmt` after the first `at`.
fn bind_event_row(
    stmt: &mut rusqlite::Statement<'_>,
    at: usize,
    peer: &Peer,
    scope: [u8; 8],
    r: &Row,
    chunk: Option<i64>,
    line: usize,
) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(at + 1, &peer.tenant)?;
    stmt.raw_bind_parameter(at + 2, UidKey::scoped(scope, &peer.agent_id, &r.uid))?;
    stmt.raw_bind_parameter(at + 3, r.time_ms)?;
    stmt.raw_bind_parameter(at + 4, r.class_uid)?;
    stmt.raw_bind_parameter(at + 5, r.type_uid)?;
    stmt.raw_bind_parameter(at + 6, r.severity_id)?;
    stmt.raw_bind_parameter(at + 7, r.device.as_deref())?;
    stmt.raw_bind_parameter(at + 8, r.device_ip.as_deref())?;
    stmt.raw_bind_parameter(at + 9, r.user.as_deref())?;
    stmt.raw_bind_parameter(at + 10, r.src_ip.as_deref())?;
    stmt.raw_bind_parameter(at + 11, r.dst_ip.as_deref())?;
    stmt.raw_bind_parameter(at + 12, sat(r.count))?;
    stmt.raw_bind_parameter(at + 13, chunk)?;
    stmt.raw_bind_parameter(at + 14, line as i64)
}

/// Adds `n` stored events of `class_uid`.
fn add_class(per_class: &mut Vec<(u32, i64)>, class_uid: u32, n: i64) {
    match per_class.iter_mut().find(|(c, _)| *c == class_uid) {
        Some((_, k)) => *k += n,
        None => per_class.push((class_uid, n)),
    }
}

/// One batch inside `tx`: [`AckOutcome::Replay`] (nothing written) or what was stored.
/// The caller commits.
fn commit_in(
    tx: &rusqlite::Transaction<'_>,
    scope_key: &ScopeKey,
    peer: &Peer,
    header: &BatchHeader,
    batch: &DecodedBatch,
    now_ms: i64,
) -> Result<AckOutcome, StoreError> {
    let key = params![peer.agent_id, bits(header.epoch), bits(header.seq)];
    let before: Option<Option<i64>> = tx
        .prepare_cached(
            "SELECT checksum FROM batches WHERE agent_id = ?1 AND epoch = ?2 AND seq = ?3",
        )?
        .query_row(key, |r| r.get(0))
        .optional()?;
    // The same number with the same content is the agent resending a batch whose ack it
    // lost. With other content the agent's numbering went back (its disk restored from a
    // snapshot, so the same boot and epoch): taking it as a replay would acknowledge
    // events never stored. It is stored; its rows are deduplicated by uid as any.
    let reused = match before {
        None => false,
        Some(Some(c)) if c == bits(header.checksum) => return Ok(AckOutcome::Replay),
        // Other content; or a batch committed before checksums were kept (schema < 3),
        // which cannot be told apart: stored, its rows deduplicated by uid, so a resend
        // adds nothing and a reused number loses nothing.
        Some(_) => true,
    };
    let mut stored = 0u64;
    {
        let chunk = if batch.rows.is_empty() {
            None
        } else {
            let times = batch.rows.iter().map(|r| r.time_ms);
            // The ids its rows will get are past every id in the table now (their range is
            // set once they are in).
            tx.prepare_cached(
                "INSERT INTO chunks (tenant, agent_id, first_time, last_time, first_id, \
                 last_id, ip_filter, raw_len, data, retain_time) \
                 VALUES (?1, ?2, ?3, ?4, 0, 0, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                peer.tenant,
                peer.agent_id,
                times.clone().min(),
                times.clone().max(),
                batch.ip_filter,
                sat(batch.chunk.raw_len),
                batch.chunk.data,
                times
                    .max()
                    .map(|t| t.min(now_ms.saturating_add(FUTURE_SKEW_MS)))
            ])?;
            Some(tx.last_insert_rowid())
        };
        // A new row's id is one past the largest (INTEGER PRIMARY KEY without
        // AUTOINCREMENT), so this is the id of the first row stored below.
        let first_id: i64 = tx
            .prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM events")?
            .query_row([], |r| r.get(0))?;
        // Stored events per class, for `class_counts` (a batch names a few classes).
        let mut per_class: Vec<(u32, i64)> = Vec::new();
        // Rows go in groups of INSERT_GROUP per statement (the rest one by one): the
        // per-statement work (step, reset, the program's prologue) was a large part of
        // each row's cost on the store thread.
        let mut many = tx.prepare_cached(&INSERT_MANY)?;
        let mut one = tx.prepare_cached(&INSERT_ONE)?;
        let (full, rest) = batch
            .rows
            .split_at(batch.rows.len() - batch.rows.len() % INSERT_GROUP);
        let parts = full
            .chunks(INSERT_GROUP)
            .map(|p| (p, true))
            .chain(rest.chunks(1).map(|p| (p, false)));
        let mut line = 0usize;
        let scope = scope_key.scope(&peer.agent_id);
        let mut last_event_id = first_id - 1;
        for (part, grouped) in parts {
            let stmt = if grouped { &mut many } else { &mut one };
            for (i, r) in part.iter().enumerate() {
                bind_event_row(stmt, i * EVENT_COLUMNS, peer, scope, r, chunk, line + i)?;
            }
            // Rows whose `(tenant, uid)` is stored already are ignored.
            let n = stmt.raw_execute()?;
            line += part.len();
            if n == 0 {
                continue;
            }
            stored += n as u64;
            let before = std::mem::replace(&mut last_event_id, tx.last_insert_rowid());
            if n == part.len() {
                for r in part {
                    add_class(&mut per_class, r.class_uid, 1);
                }
            } else {
                // Some were repeats: the rows stored took the ids after `before`.
                let mut q = tx.prepare_cached(
                    "SELECT class_uid, count(*) FROM events WHERE id > ?1 AND id <= ?2 \
                     GROUP BY class_uid",
                )?;
                let mut found = q.query(params![before, last_event_id])?;
                while let Some(row) = found.next()? {
                    add_class(&mut per_class, row.get(0)?, row.get(1)?);
                }
            }
        }
        // The id of the last row stored (read before any other insert can move it).
        let last_id = tx.last_insert_rowid();
        let mut count = tx.prepare_cached(
            "INSERT INTO class_counts (tenant, class_uid, events) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tenant, class_uid) DO UPDATE SET events = events + excluded.events",
        )?;
        for (class_uid, n) in per_class {
            count.execute(params![peer.tenant, class_uid, n])?;
        }
        if let Some(chunk) = chunk {
            if stored == 0 {
                // Every event was stored before (a re-read after a crash): nothing points
                // here.
                tx.prepare_cached("DELETE FROM chunks WHERE id = ?1")?
                    .execute([chunk])?;
            } else {
                tx.prepare_cached("UPDATE chunks SET first_id = ?2, last_id = ?3 WHERE id = ?1")?
                    .execute(params![chunk, first_id, last_id])?;
                let mut post = tx.prepare_cached(
                    "INSERT OR IGNORE INTO postings (tenant, field, value, last_time, \
                     first_time, chunk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for p in postings(&batch.rows) {
                    post.execute(params![
                        peer.tenant,
                        p.key.field(),
                        KeyValue(&p.key),
                        p.last_time,
                        p.first_time,
                        chunk
                    ])?;
                }
            }
        }
        let mut mark = tx.prepare_cached(
            "INSERT INTO watermarks (agent_id, source, stream, unit, first, \"end\", \
                 records, epoch, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for w in &batch.watermarks {
            mark.execute(params![
                peer.agent_id,
                w.source,
                w.stream,
                w.unit,
                sat(w.first),
                sat(w.end),
                sat(w.records),
                bits(header.epoch),
                bits(header.seq),
            ])?;
        }
    }
    let duplicates = batch.rows.len() as u64 - stored;
    tx.prepare_cached(
        "INSERT INTO batches (agent_id, epoch, seq, tenant, committed_ms, created_ms, \
             first_time, last_time, events, stored, duplicates, checksum) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
         ON CONFLICT (agent_id, epoch, seq) DO UPDATE SET committed_ms = excluded.committed_ms, \
             created_ms = excluded.created_ms, first_time = min(first_time, excluded.first_time), \
             last_time = max(last_time, excluded.last_time), \
             events = events + excluded.events, stored = stored + excluded.stored, \
             duplicates = duplicates + excluded.duplicates, checksum = excluded.checksum, \
             reused = reused + 1",
    )?
    .execute(params![
        peer.agent_id,
        bits(header.epoch),
        bits(header.seq),
        peer.tenant,
        now_ms,
        header.created_ms,
        header.first_time,
        header.last_time,
        batch.rows.len() as i64,
        sat(stored),
        sat(duplicates),
        bits(header.checksum),
    ])?;
    Ok(AckOutcome::Stored {
        stored,
        duplicates,
        reused,
    })
}
