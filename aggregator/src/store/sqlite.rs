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
//! - `events`: one row per stored event, `UNIQUE (tenant, uid)` (the dedup key), the
//!   searchable fields of [`Row`] and the compressed document. Indexes, each with the
//!   tenant first (every query is a tenant's), for the questions analysts start from:
//!   a time range; a class over time; a host, a user, a source address over time. The
//!   host, user and address indexes are partial (`WHERE x IS NOT NULL`): events without
//!   the field (a kernel message has no user) cost them nothing, and `x = ?` still uses
//!   them. Every index is a B-tree insert per event: the time-led ones append at the
//!   right edge and stay cheap; `UNIQUE (tenant, uid)` is the costly one (random keys),
//!   and is the one that cannot go. `dst_ip` is not indexed: on the events we emit today
//!   it is mostly our own hosts' addresses (inbound firewall refusals), which the device
//!   index already answers; the column is there for when outbound flows make it worth an
//!   index. `device_ip`, `type_uid` and `severity_id` filter within those ranges.
//!   Measured (`insert_rate_on_a_real_batch`, release, batches of 6,000 real events,
//!   `synchronous=FULL`, a noisy shared 2-core machine): ~10 µs per event with only
//!   `UNIQUE (tenant, uid)`, ~20 µs with these five indexes, ~22 µs with a sixth on
//!   `dst_ip`.
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
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use vedette_schemas::wire::{AckOutcome, BatchHeader};

use super::{
    AgentInfo, AgentRecord, AgentState, EventStore, Gap, Registry, StoreError, TokenError,
};
#[cfg(doc)]
use crate::core::ingest::Row;
use crate::core::ingest::{DecodedBatch, Peer, doc_json};

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// Migrations: `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

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
        // Events are keyed by a hash (uid), so every batch dirties index pages all over the
        // file; checkpointing every 40 MiB of WAL instead of 4 writes each hot page back
        // once per many batches (measured: 18k -> 28k rows/s on 300k real events).
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn)?;
        Ok(Self { conn })
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

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)?;
    }
    if found < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

/// A counter as SQLite's signed integer, saturated.
fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An epoch or sequence number, bit for bit (compared for equality only).
fn bits(v: u64) -> i64 {
    v as i64
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
        let outcome = commit_in(&tx, peer, header, batch, now_ms)?;
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
            out.push(commit_in(&tx, peer, header, batch, now_ms)?);
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
            .prepare_cached("SELECT count(*) FROM events")?
            .query_row([], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn counts_by_class(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT class_uid, count(*) FROM events GROUP BY class_uid ORDER BY class_uid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn events_by_class(
        &self,
        tenant: &str,
        class_uid: u32,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT doc FROM events WHERE tenant = ?1 AND class_uid = ?2 \
             ORDER BY time_ms DESC, id DESC LIMIT ?3",
        )?;
        let docs = stmt.query_map(params![tenant, class_uid, sat(limit as u64)], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        let mut out = Vec::new();
        for doc in docs {
            out.push(doc_json(&doc?)?);
        }
        Ok(out)
    }

    fn get_event(&self, tenant: &str, uid: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let doc: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT doc FROM events WHERE tenant = ?1 AND uid = ?2")?
            .query_row(params![tenant, uid], |r| r.get(0))
            .optional()?;
        Ok(doc.map(|d| doc_json(&d)).transpose()?)
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

    fn consume_token(
        &mut self,
        id: &str,
        secret_hash: [u8; 32],
        hostname: &str,
        agent_id: &str,
        now_ms: i64,
    ) -> Result<String, TokenError> {
        // IMMEDIATE: the write lock is held from the read to the update, so of two
        // concurrent spenders (even in two processes) the second reads `used_ms` set.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let token: Option<(Vec<u8>, String, i64, Option<i64>)> = tx
            .prepare_cached(
                "SELECT secret_hash, tenant, expires_ms, used_ms FROM tokens WHERE id = ?1",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((hash, tenant, expires_ms, used_ms)) = token else {
            return Err(TokenError::Unknown);
        };
        if !same_hash(&hash, &secret_hash) {
            return Err(TokenError::Mismatch);
        }
        if used_ms.is_some() {
            return Err(TokenError::Used);
        }
        if now_ms >= expires_ms {
            return Err(TokenError::Expired);
        }
        tx.prepare_cached(
            "UPDATE tokens SET used_ms = ?2, used_hostname = ?3, used_agent_id = ?4 WHERE id = ?1",
        )?
        .execute(params![id, now_ms, hostname, agent_id])?;
        tx.commit()?;
        Ok(tenant)
    }

    fn register_agent(&mut self, a: &AgentRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO agents (agent_id, tenant, hostname, cert_serial, not_after_ms, \
                 enrolled_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
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

    fn revoke_agent(&mut self, agent_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE agents SET revoked_ms = coalesce(revoked_ms, ?2) WHERE agent_id = ?1",
            )?
            .execute(params![agent_id, now_ms])?;
        Ok(n > 0)
    }

    fn is_revoked(&self, agent_id: &str) -> Result<bool, StoreError> {
        let revoked: Option<bool> = self
            .conn
            .prepare_cached("SELECT revoked_ms IS NOT NULL FROM agents WHERE agent_id = ?1")?
            .query_row([agent_id], |r| r.get(0))
            .optional()?;
        Ok(revoked.unwrap_or(false))
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

    fn update_cert(
        &mut self,
        agent_id: &str,
        cert_serial: &str,
        not_after_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE agents SET cert_serial = ?2, not_after_ms = ?3 WHERE agent_id = ?1",
            )?
            .execute(params![agent_id, cert_serial, not_after_ms])?;
        Ok(n > 0)
    }

    fn agent_seen(&mut self, agent_id: &str, s: &AgentState) -> Result<bool, StoreError> {
        let n = self
            .conn
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
}

#[cfg(test)]
mod tests;

/// One batch inside `tx`: [`AckOutcome::Replay`] (nothing written) or what was stored.
/// The caller commits.
fn commit_in(
    tx: &rusqlite::Transaction<'_>,
    peer: &Peer,
    header: &BatchHeader,
    batch: &DecodedBatch,
    now_ms: i64,
) -> Result<AckOutcome, StoreError> {
    let key = params![peer.agent_id, bits(header.epoch), bits(header.seq)];
    let replay = tx
        .prepare_cached("SELECT 1 FROM batches WHERE agent_id = ?1 AND epoch = ?2 AND seq = ?3")?
        .exists(key)?;
    if replay {
        return Ok(AckOutcome::Replay);
    }
    let mut stored = 0u64;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (tenant, agent_id, uid, time_ms, class_uid, \
                 type_uid, severity_id, device, device_ip, user, src_ip, dst_ip, count, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for r in &batch.rows {
            // 0 rows changed: `(tenant, uid)` is stored already.
            stored += insert.execute(params![
                peer.tenant,
                peer.agent_id,
                r.uid,
                r.time_ms,
                r.class_uid,
                r.type_uid,
                r.severity_id,
                r.device,
                r.device_ip,
                r.user,
                r.src_ip,
                r.dst_ip,
                sat(r.count),
                r.doc,
            ])? as u64;
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
             first_time, last_time, events, stored, duplicates) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
    ])?;
    Ok(AckOutcome::Stored { stored, duplicates })
}
