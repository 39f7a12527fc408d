//! What each part of the event table's layout costs, for the choices in
//! `aggregator/src/store/sqlite.rs`: the rows of a real workload inserted batch by batch
//! (1,000 events, one transaction each, WAL, `synchronous` from `SYNC`, default FULL)
//! into fresh tables that differ in one thing at a time. Prints rows/s and bytes per row
//! for each layout, all in one run, so they compare as ratios.
//!
//! `store-layouts EVENTS.ndjson DIR LAYOUT[,LAYOUT…]`, a layout being
//! `DOCS-INDEXES-UID`:
//! - DOCS `chunk` (the batch's NDJSON as one zstd frame, the store's layout) or `doc`
//!   (each event compressed on its own at level 1, schema 1's);
//! - INDEXES: letters of the secondary indexes built, `t` time, `c` class, `d` device,
//!   `u` user, `s` source address (`none` for none); or `p`, the store's chunk postings
//!   for class, host and user (`vedette_aggregator::core::postings`);
//! - UID `seq` (the agent's uids, ordered per source), `hash` (a 128-bit hash of it, as
//!   uids were before), or `none` (no unique index).

use std::time::Instant;

use rusqlite::{Connection, params};
use vedette_aggregator::core::ingest::{DecodedBatch, Peer};
use vedette_aggregator::core::postings::{Key, postings};
use vedette_benches::{bench_peer, decoded_batches};

const INDEXES: [(char, &str); 5] = [
    ('t', "CREATE INDEX events_time ON events (tenant, time_ms)"),
    (
        'c',
        "CREATE INDEX events_class_time ON events (tenant, class_uid, time_ms)",
    ),
    (
        'd',
        "CREATE INDEX events_device_time ON events (tenant, device, time_ms) WHERE device IS NOT NULL",
    ),
    (
        'u',
        "CREATE INDEX events_user_time ON events (tenant, user, time_ms) WHERE user IS NOT NULL",
    ),
    (
        's',
        "CREATE INDEX events_src_ip_time ON events (tenant, src_ip, time_ms) WHERE src_ip IS NOT NULL",
    ),
];

fn uid_bytes(uid: &str, hashed: bool) -> Vec<u8> {
    let bytes: Vec<u8> = (0..uid.len() / 2)
        .filter_map(|i| u8::from_str_radix(uid.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    if hashed {
        xxhash_rust::xxh3::xxh3_128(&bytes).to_be_bytes().to_vec()
    } else {
        bytes
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark's stopwatch is its clock"
)]
fn run(
    db: &str,
    layout: &str,
    batches: &[(Vec<u8>, DecodedBatch)],
    peer: &Peer,
) -> Result<(u64, f64), Box<dyn std::error::Error>> {
    let [docs, indexes, uid] = layout.split('-').collect::<Vec<_>>()[..] else {
        return Err(format!("layout {layout}: want DOCS-INDEXES-UID").into());
    };
    for suffix in ["", "-wal", "-shm"] {
        let _ignored = std::fs::remove_file(format!("{db}{suffix}"));
    }
    let conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        std::env::var("SYNC").unwrap_or_else(|_| "FULL".into()),
    )?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    let unique = if uid == "none" {
        ""
    } else {
        ", UNIQUE (tenant, uid)"
    };
    conn.execute_batch(&format!(
        "CREATE TABLE chunks (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, data BLOB NOT NULL);
         CREATE TABLE events (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, uid BLOB NOT NULL,
            time_ms INTEGER NOT NULL, class_uid INTEGER NOT NULL, type_uid INTEGER NOT NULL,
            severity_id INTEGER NOT NULL, device TEXT, device_ip TEXT, user TEXT, src_ip TEXT,
            dst_ip TEXT, count INTEGER NOT NULL, chunk INTEGER, line INTEGER, doc BLOB{unique});"
    ))?;
    let with_postings = indexes.contains('p');
    if with_postings {
        conn.execute_batch(
            "CREATE TABLE postings (tenant TEXT NOT NULL, field INTEGER NOT NULL,
                value ANY NOT NULL, last_time INTEGER NOT NULL, first_time INTEGER NOT NULL,
                chunk INTEGER NOT NULL, PRIMARY KEY (tenant, field, value, last_time, chunk))
                WITHOUT ROWID;",
        )?;
    }
    for (c, sql) in INDEXES {
        if indexes.contains(c) {
            conn.execute(sql, [])?;
        }
    }
    let per_event = match docs {
        "chunk" => false,
        "doc" => true,
        _ => return Err(format!("layout {layout}: DOCS is chunk or doc").into()),
    };
    let mut zstd = zstd::bulk::Compressor::new(1)?;
    let start = Instant::now();
    let mut stored = 0u64;
    for (text, batch) in batches {
        let tx = conn.unchecked_transaction()?;
        let chunk = if per_event {
            None
        } else {
            tx.prepare_cached("INSERT INTO chunks (tenant, data) VALUES (?1, ?2)")?
                .execute(params![peer.tenant, batch.chunk.data])?;
            Some(tx.last_insert_rowid())
        };
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (tenant, uid, time_ms, class_uid, type_uid, \
             severity_id, device, device_ip, user, src_ip, dst_ip, count, chunk, line, doc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        for ((line, r), json) in batch
            .rows
            .iter()
            .enumerate()
            .zip(text.split(|&b| b == b'\n'))
        {
            let doc = if per_event {
                Some(zstd.compress(json)?)
            } else {
                None
            };
            stored += insert.execute(params![
                peer.tenant,
                uid_bytes(&r.uid, uid == "hash"),
                r.time_ms,
                r.class_uid,
                r.type_uid,
                r.severity_id,
                r.device.as_deref(),
                r.device_ip.as_deref(),
                r.user.as_deref(),
                r.src_ip.as_deref(),
                r.dst_ip.as_deref(),
                r.count as i64,
                chunk,
                line as i64,
                doc,
            ])? as u64;
        }
        drop(insert);
        if let (true, Some(chunk)) = (with_postings, chunk) {
            let mut post = tx
                .prepare_cached("INSERT OR IGNORE INTO postings VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            for p in postings(&batch.rows) {
                let value: rusqlite::types::Value = match p.key {
                    Key::Class(c) => i64::from(c).into(),
                    Key::Device(v) | Key::User(v) | Key::Ip(v) => v.to_owned().into(),
                };
                post.execute(params![
                    peer.tenant,
                    p.key.field(),
                    value,
                    p.last_time,
                    p.first_time,
                    chunk
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok((stored, start.elapsed().as_secs_f64()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, ndjson, dir, layouts] = &args[..] else {
        return Err("usage: store-layouts EVENTS.ndjson DIR LAYOUT[,LAYOUT...]".into());
    };
    let peer = bench_peer();
    let mut batches = Vec::new();
    for (_, decoded) in decoded_batches(ndjson, 1000)? {
        let text = zstd::bulk::decompress(&decoded.chunk.data, decoded.chunk.raw_len as usize)?;
        batches.push((text, decoded));
    }
    for layout in layouts.split(',') {
        let db = format!("{dir}/{layout}.db");
        let (rows, secs) = run(&db, layout, &batches, &peer)?;
        let bytes = std::fs::metadata(&db)?.len()
            + std::fs::metadata(format!("{db}-wal")).map_or(0, |m| m.len());
        println!(
            "{{\"layout\": \"{layout}\", \"rows\": {rows}, \"seconds\": {secs:.3}, \"rows_per_s\": {:.0}, \"bytes_per_row\": {}}}",
            rows as f64 / secs,
            bytes / rows.max(1)
        );
    }
    Ok(())
}
