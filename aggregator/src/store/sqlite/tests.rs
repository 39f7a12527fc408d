use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use serde_json::{Value, json};
use vedette_schemas::wire::Watermark;

use super::*;
use crate::core::ingest::tests::{event, peer, watermark};
use crate::core::ingest::{Decoder, decode_batch, encode_batch};

/// A database file in the temp directory, removed (with its WAL) when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "vedette-store-{}-{n}-{name}.db",
            std::process::id()
        ));
        let db = Self(path);
        db.remove();
        db
    }

    fn open(&self) -> SqliteStore {
        let config = SqliteConfig {
            synchronous: Synchronous::Normal,
            ..SqliteConfig::default()
        };
        SqliteStore::open(&self.0, config).unwrap()
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            // Absent is fine: this only cleans up.
            std::fs::remove_file(p).ok();
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The schema version the store's file says.
fn user_version(s: &SqliteStore) -> i64 {
    s.conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

fn memory() -> SqliteStore {
    SqliteStore::open_in_memory(SqliteConfig::default()).unwrap()
}

/// Decodes and commits one batch of `events` as `peer()`.
fn send(
    store: &mut SqliteStore,
    seq: u64,
    events: &[Value],
    watermarks: Vec<Watermark>,
) -> AckOutcome {
    let who = peer();
    let (h, p) = encode_batch(&who.agent_id, 7, seq, events, watermarks, 100);
    let batch = decode_batch(&h, &p, &who).unwrap();
    store.commit(&who, &h, &batch, 1_000 + seq as i64).unwrap()
}

fn stored(stored: u64, duplicates: u64) -> AckOutcome {
    AckOutcome::Stored {
        stored,
        duplicates,
        reused: false,
    }
}

#[test]
fn a_replayed_batch_is_acknowledged_as_replay_and_stores_nothing() {
    let mut s = memory();
    let evs = [event("u1", 1), event("u2", 2)];
    assert_eq!(send(&mut s, 1, &evs, vec![watermark(0, 10)]), stored(2, 0));
    // The same content again (its ack was lost): a replay.
    assert_eq!(
        send(&mut s, 1, &evs, vec![watermark(0, 10)]),
        AckOutcome::Replay
    );
    assert_eq!(s.event_count().unwrap(), 2);
    assert_eq!(s.batch_count().unwrap(), 1);
    assert_eq!(s.gaps("agent-1").unwrap(), vec![]);
    assert!(s.is_committed("agent-1", 7, 1).unwrap());
    assert!(!s.is_committed("agent-1", 7, 2).unwrap());
    assert!(!s.is_committed("agent-2", 7, 1).unwrap());
    // Another epoch with the same seq is another batch.
    let more = [event("u3", 3)];
    let who = peer();
    let (h, p) = encode_batch("agent-1", 8, 1, &more, vec![], 0);
    let b = decode_batch(&h, &p, &who).unwrap();
    assert_eq!(s.commit(&who, &h, &b, 0).unwrap(), stored(1, 0));
}

#[test]
fn a_batch_number_reused_with_other_content_is_stored_not_taken_as_a_replay() {
    // A VM restored from a snapshot: same boot, same epoch, and the agent numbers its
    // next batches from where the snapshot left it, with lines written since.
    let mut s = memory();
    let first = [event("u1", 1), event("u2", 2)];
    assert_eq!(send(&mut s, 1, &first, vec![]), stored(2, 0));
    // After the restore: u2 read again, u3 new, under the same number.
    let again = [event("u2", 2), event("u3", 3)];
    assert_eq!(
        send(&mut s, 1, &again, vec![]),
        AckOutcome::Stored {
            stored: 1,
            duplicates: 1,
            reused: true
        }
    );
    assert_eq!(s.event_count().unwrap(), 3);
    assert_eq!(s.batch_count().unwrap(), 1);
    // Its ack lost, the restored agent resends it: now a replay.
    assert_eq!(send(&mut s, 1, &again, vec![]), AckOutcome::Replay);
    assert_eq!(s.event_count().unwrap(), 3);
}

#[test]
fn a_uid_already_stored_counts_as_a_duplicate_and_is_stored_once() {
    let mut s = memory();
    assert_eq!(
        send(&mut s, 1, &[event("u1", 1), event("u2", 2)], vec![]),
        stored(2, 0)
    );
    // Re-read after an agent crash: same uids in a new batch, and one twice in a batch.
    let evs = [event("u2", 2), event("u3", 3), event("u3", 3)];
    assert_eq!(send(&mut s, 2, &evs, vec![]), stored(1, 2));
    assert_eq!(s.event_count().unwrap(), 3);
    // The kept counts are the rows, duplicates not counted.
    let rows: i64 = s
        .conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3);
    assert_eq!(s.counts_by_class().unwrap(), [(3002, 3)]);
}

#[test]
fn one_agent_cannot_make_anothers_events_duplicates() {
    // An agent sending another agent's uids first (compromised; or reading the same file,
    // whose uids are the same on both) made that agent's events vanish as duplicates.
    let mut s = memory();
    let hex = |i: u64| format!("{:016x}{:016x}", 0xfeed_u64, i);
    let other = Peer {
        agent_id: "agent-2".into(),
        tenant: "acme".into(),
        serial: "01ab".into(),
    };
    let commit_as = |s: &mut SqliteStore, who: &Peer, seq: u64, evs: &[Value]| {
        let (h, p) = encode_batch(&who.agent_id, 7, seq, evs, vec![], 0);
        let b = decode_batch(&h, &p, who).unwrap();
        s.commit(who, &h, &b, 0).unwrap()
    };
    let theirs = [event(&hex(1), 1), event(&hex(2), 2), event("text-uid", 3)];
    assert_eq!(commit_as(&mut s, &other, 1, &theirs), stored(3, 0));
    // The same uids from agent-1: its own events, stored.
    assert_eq!(send(&mut s, 1, &theirs, vec![]), stored(3, 0));
    // Each agent's own re-read is still a duplicate.
    assert_eq!(send(&mut s, 2, &theirs, vec![]), stored(0, 3));
    assert_eq!(commit_as(&mut s, &other, 2, &theirs), stored(0, 3));
    assert_eq!(s.event_count().unwrap(), 6);
    // Found by uid.
    assert!(s.get_event("acme", &hex(2)).unwrap().is_some());
    assert!(s.get_event("acme", "text-uid").unwrap().is_some());
}

#[test]
fn an_agent_cannot_compute_the_keys_of_anothers_uids() {
    // Schema 4 scoped uids with an unkeyed hash of the agent id: an agent that knew another
    // one's id (in `agents list`, logs, certificate subjects) sent a uid that, XORed with
    // its own scope, landed on the other's future key, and that event was later taken as
    // a duplicate: acknowledged, never stored. The scope is now keyed by a secret of the
    // store; this is the same forgery, computed the only way an agent can.
    let mut s = memory();
    let victim_uid = format!("{:016x}{:016x}", 0xfeed_u64, 7);
    let forger = Peer {
        agent_id: "agent-2".into(),
        tenant: "acme".into(),
        serial: "01ab".into(),
    };
    let mut forged = UidKey::of(&victim_uid);
    let UidKey::Bytes(b) = &mut forged else {
        panic!("hex uid")
    };
    scope_bytes(b, legacy_uid_scope(&peer().agent_id));
    scope_bytes(b, legacy_uid_scope(&forger.agent_id));
    let forged: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let (h, p) = encode_batch(&forger.agent_id, 7, 1, &[event(&forged, 1)], vec![], 0);
    let b = decode_batch(&h, &p, &forger).unwrap();
    assert_eq!(s.commit(&forger, &h, &b, 0).unwrap(), stored(1, 0));
    // The victim's own event is stored, and found by its uid.
    assert_eq!(
        send(&mut s, 1, &[event(&victim_uid, 2)], vec![]),
        stored(1, 0)
    );
    assert_eq!(
        s.get_event("acme", &victim_uid).unwrap().unwrap()["time"],
        2
    );
    // Keys are the store's own: another store scopes the same agent elsewhere.
    assert_ne!(
        s.scope_key.scope("agent-1"),
        memory().scope_key.scope("agent-1")
    );
}

#[test]
fn a_store_of_schema_4_gets_a_key_and_its_uids_keep_deduplicating() {
    let db = TempDb::new("v4");
    let hex = format!("{:016x}{:016x}", 0xbeef_u64, 1);
    {
        // A schema-4 store: this one's tables without the secrets, uids in the unkeyed
        // scope.
        let mut s = db.open();
        assert_eq!(
            send(&mut s, 1, &[event(&hex, 1), event("text", 2)], vec![]),
            stored(2, 0)
        );
        let mut key = UidKey::of(&hex);
        let UidKey::Bytes(k) = &mut key else {
            panic!("hex uid")
        };
        let legacy = {
            let mut l = *k;
            scope_bytes(&mut l, legacy_uid_scope("agent-1"));
            l
        };
        scope_bytes(k, s.scope_key.scope("agent-1"));
        let moved = s
            .conn
            .execute(
                "UPDATE events SET uid = ?2 WHERE uid = ?1",
                params![key, legacy.as_slice()],
            )
            .unwrap();
        assert_eq!(moved, 1);
        s.conn
            .execute_batch(
                "DROP TRIGGER agents_enrolled_signed; DROP TRIGGER agents_renewal_signed; \
                 DROP TABLE store_secrets; ALTER TABLE agents DROP COLUMN pending_serial; \
                 ALTER TABLE tokens DROP COLUMN revoked_ms; DROP INDEX chunks_retain; \
                 ALTER TABLE chunks DROP COLUMN retain_time; \
                 ALTER TABLE agents DROP COLUMN last_signed_ms; PRAGMA user_version = 4;",
            )
            .unwrap();
    }
    let mut s = db.open();
    assert_eq!(user_version(&s), SCHEMA_VERSION);
    assert_eq!(s.get_event("acme", &hex).unwrap().unwrap()["time"], 1);
    assert_eq!(s.get_event("acme", "text").unwrap().unwrap()["time"], 2);
    assert_eq!(
        send(&mut s, 2, &[event(&hex, 1), event("text", 2)], vec![]),
        stored(0, 2)
    );
}

#[test]
fn a_batch_number_committed_before_checksums_were_kept_is_stored_again_not_replayed() {
    // Such a batch (schema 1-2) cannot be told from another under the same number: taken
    // as a replay, a restored agent's new batch was acknowledged and never stored.
    let mut s = memory();
    assert_eq!(send(&mut s, 1, &[event("u1", 1)], vec![]), stored(1, 0));
    s.conn
        .execute("UPDATE batches SET checksum = NULL", [])
        .unwrap();
    let reused = |stored, duplicates| AckOutcome::Stored {
        stored,
        duplicates,
        reused: true,
    };
    assert_eq!(send(&mut s, 1, &[event("u2", 2)], vec![]), reused(1, 0));
    assert_eq!(s.get_event("acme", "u2").unwrap().unwrap()["time"], 2);
}

#[test]
fn a_database_with_a_negative_schema_version_is_refused() {
    let db = TempDb::new("negative");
    db.open()
        .conn
        .pragma_update(None, "user_version", -3)
        .unwrap();
    let e = SqliteStore::open(&db.0, SqliteConfig::default()).unwrap_err();
    assert!(
        matches!(&e, StoreError::Unusable(m) if m.contains("user_version is -3")),
        "{e}"
    );
}

/// `event(uid, time)` with `src` as its source address and `dst` as its destination.
fn flow(uid: &str, time: i64, src: Option<&str>, dst: Option<&str>) -> Value {
    let mut e = event(uid, time);
    let o = e.as_object_mut().unwrap();
    o.remove("src_endpoint");
    if let Some(ip) = src {
        o.insert("src_endpoint".into(), json!({"ip": ip}));
    }
    if let Some(ip) = dst {
        o.insert("dst_endpoint".into(), json!({"ip": ip}));
    }
    e
}

impl SqliteStore {
    fn find_ip(
        &self,
        tenant: &str,
        ip: &str,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError> {
        self.find(tenant, &Key::Ip(ip), from, to, limit)
    }
}

fn uids(docs: &[Value]) -> Vec<&str> {
    docs.iter()
        .map(|d| d["metadata"]["uid"].as_str().unwrap())
        .collect()
}

#[test]
fn events_by_address_find_either_side_in_the_time_range_newest_first() {
    let mut s = memory();
    let (a, b) = ("203.0.113.7", "2001:db8::7");
    let first = [
        flow("e1", 100, Some(a), None),
        flow("e2", 200, Some("198.51.100.1"), Some(a)),
        flow("e3", 300, None, None),
    ];
    let second = [
        flow("e4", 400, Some(b), Some(a)),
        flow("e5", 500, Some(b), None),
    ];
    let third: Vec<Value> = (0..200)
        .map(|i| {
            flow(
                &format!("n{i}"),
                1_000 + i,
                Some(&format!("10.0.{}.{}", i / 250, i % 250)),
                None,
            )
        })
        .collect();
    assert_eq!(send(&mut s, 1, &first, vec![]), stored(3, 0));
    assert_eq!(send(&mut s, 2, &second, vec![]), stored(2, 0));
    assert_eq!(send(&mut s, 3, &third, vec![]), stored(200, 0));
    let find =
        |s: &SqliteStore, ip, from, to, limit| s.find_ip("acme", ip, from, to, limit).unwrap();
    assert_eq!(uids(&find(&s, a, 0, i64::MAX, 10)), ["e4", "e2", "e1"]);
    assert_eq!(uids(&find(&s, a, 150, 450, 10)), ["e4", "e2"]);
    assert_eq!(uids(&find(&s, a, 0, i64::MAX, 2)), ["e4", "e2"]);
    assert_eq!(uids(&find(&s, b, 0, i64::MAX, 10)), ["e5", "e4"]);
    assert_eq!(uids(&find(&s, "10.0.0.199", 0, i64::MAX, 10)), ["n199"]);
    assert!(find(&s, "192.0.2.99", 0, i64::MAX, 10).is_empty());
    // Another tenant's events are not searched.
    assert!(s.find_ip("other", a, 0, i64::MAX, 10).unwrap().is_empty());
    // A duplicate stores nothing new and changes no answer.
    assert_eq!(
        send(&mut s, 4, &[flow("e1", 100, Some(a), None)], vec![]),
        stored(0, 1)
    );
    assert_eq!(uids(&find(&s, a, 0, i64::MAX, 10)), ["e4", "e2", "e1"]);
}

#[test]
fn a_batch_of_only_duplicates_leaves_no_chunk_behind() {
    let mut s = memory();
    let evs = [event("u1", 1), event("u2", 2)];
    assert_eq!(send(&mut s, 1, &evs, vec![]), stored(2, 0));
    assert_eq!(send(&mut s, 2, &evs, vec![]), stored(0, 2));
    let chunks: i64 = s
        .conn
        .query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(chunks, 1);
    // A batch of watermarks only makes none either.
    assert_eq!(send(&mut s, 3, &[], vec![watermark(0, 5)]), stored(0, 0));
    let chunks: i64 = s
        .conn
        .query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(chunks, 1);
}

#[test]
fn the_agents_hex_uids_are_kept_as_bytes_and_other_uids_as_text_without_colliding() {
    let mut s = memory();
    let hex = "00112233445566778899aabbccddeeff";
    // The same 16 bytes as text would be another event, as would the upper-case spelling.
    let bytes_as_text: String = (0..16u8).map(|i| char::from(b'A' + i)).collect();
    let upper = hex.to_uppercase();
    let evs = [
        event(hex, 1),
        event(&bytes_as_text, 2),
        event(&upper, 3),
        event("not-hex", 4),
    ];
    assert_eq!(send(&mut s, 1, &evs, vec![]), stored(4, 0));
    let kinds: Vec<String> = s
        .conn
        .prepare("SELECT typeof(uid) FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, ["blob", "text", "text", "text"]);
    for (uid, time) in [
        (hex, 1),
        (&bytes_as_text[..], 2),
        (&upper[..], 3),
        ("not-hex", 4),
    ] {
        let doc = s.get_event("acme", uid).unwrap().expect(uid);
        assert_eq!(
            (doc["metadata"]["uid"].as_str(), doc["time"].as_i64()),
            (Some(uid), Some(time))
        );
    }
    assert_eq!(send(&mut s, 2, &[event(hex, 9)], vec![]), stored(0, 1));
}

#[test]
fn a_store_of_schema_1_is_migrated_with_every_event_readable() {
    let db = TempDb::new("v1");
    let hex = "00000000000000010000000000000002";
    {
        let conn = rusqlite::Connection::open(&db.0).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for (id, uid) in [(1, hex), (2, "legacy-uid")] {
            let mut e = event(uid, 1_000 * id);
            e["metadata"]["tenant_uid"] = json!("acme");
            // Schema 1 stored each document as its own zstd frame (content size recorded).
            let doc = zstd::bulk::compress(&serde_json::to_vec(&e).unwrap(), 1).unwrap();
            conn.execute(
                "INSERT INTO events (tenant, agent_id, uid, time_ms, class_uid, type_uid, \
                 severity_id, device, user, src_ip, count, doc) \
                 VALUES ('acme', 'agent-1', ?1, ?2, 3002, 300201, 2, 'web-01', 'bob', \
                 '10.71.52.174', 1, ?3)",
                params![uid, 1_000 * id, doc],
            )
            .unwrap();
        }
    }
    let mut s = db.open();
    assert_eq!(user_version(&s), SCHEMA_VERSION);
    assert_eq!(s.event_count().unwrap(), 2);
    assert_eq!(s.get_event("acme", hex).unwrap().unwrap()["time"], 1_000);
    assert_eq!(
        s.get_event("acme", "legacy-uid").unwrap().unwrap()["time"],
        2_000
    );
    let docs = s
        .find("acme", &Key::Class(3002), i64::MIN, i64::MAX, 10)
        .unwrap();
    assert_eq!(docs.len(), 2);
    // Migrated chunks have no filter: they are scanned.
    let by_ip = s.find_ip("acme", "10.71.52.174", 0, i64::MAX, 10).unwrap();
    assert_eq!(uids(&by_ip), ["legacy-uid", hex]);
    // The migrated uid keeps deduplicating against new batches.
    assert_eq!(
        send(&mut s, 1, &[event(hex, 5), event("new", 6)], vec![]),
        stored(1, 1)
    );
}

#[test]
fn a_batch_with_a_rejected_line_stores_nothing_and_does_not_burn_its_seq() {
    let mut s = memory();
    let who = peer();
    let mut bad = event("u2", 2);
    bad["metadata"].as_object_mut().unwrap().remove("uid");
    let (h, p) = encode_batch("agent-1", 7, 1, &[event("u1", 1), bad], vec![], 0);
    let e = decode_batch(&h, &p, &who).unwrap_err();
    assert!(matches!(e.outcome(), Some(AckOutcome::Rejected { .. })));
    assert_eq!(s.event_count().unwrap(), 0);
    assert_eq!(s.batch_count().unwrap(), 0);
    // The sequence number was not committed: a good batch under it is stored.
    assert_eq!(send(&mut s, 1, &[event("u1", 1)], vec![]), stored(1, 0));
}

#[test]
fn the_stored_event_says_the_certificates_tenant_and_tenants_are_apart() {
    let mut s = memory();
    let mut ev = event("u1", 1);
    ev["metadata"]["tenant_uid"] = json!("globex");
    assert_eq!(send(&mut s, 1, &[ev.clone()], vec![]), stored(1, 0));
    let got = s.get_event("acme", "u1").unwrap().unwrap();
    assert_eq!(got["metadata"]["tenant_uid"], "acme");
    assert_eq!(got["user"]["name"], "bob");
    assert_eq!(s.get_event("globex", "u1").unwrap(), None);
    assert_eq!(s.get_event("acme", "nope").unwrap(), None);
    // The same uid from an agent of another tenant is another event.
    let other = Peer {
        agent_id: "agent-9".into(),
        tenant: "globex".into(),
        serial: "01ab".into(),
    };
    let (h, p) = encode_batch("agent-9", 1, 1, &[ev], vec![], 0);
    let b = decode_batch(&h, &p, &other).unwrap();
    assert_eq!(s.commit(&other, &h, &b, 0).unwrap(), stored(1, 0));
    let got = s.get_event("globex", "u1").unwrap().unwrap();
    assert_eq!(got["metadata"]["tenant_uid"], "globex");
    assert_eq!(s.event_count().unwrap(), 2);
}

#[test]
fn gaps_are_the_holes_between_committed_ranges_per_stream() {
    let mut s = memory();
    let other = Watermark {
        stream: "dev=2049,ino=99,head=cd34".into(),
        ..watermark(500, 600)
    };
    send(
        &mut s,
        1,
        &[event("u1", 1)],
        vec![watermark(100, 200), other.clone()],
    );
    // Batch 2 is lost: [200, 350) never arrives. Batch 4 arrives before batch 3.
    send(&mut s, 4, &[event("u4", 4)], vec![watermark(420, 500)]);
    send(&mut s, 3, &[event("u3", 3)], vec![watermark(350, 420)]);
    // The other stream restarts from a lower position: overlap, no gap, then a hole.
    send(
        &mut s,
        5,
        &[],
        vec![
            Watermark {
                first: 550,
                end: 700,
                ..other.clone()
            },
            Watermark {
                first: 800,
                end: 900,
                ..other.clone()
            },
        ],
    );
    let g = s.gaps("agent-1").unwrap();
    assert_eq!(
        g,
        vec![
            Gap {
                source: "/var/log/auth.log".into(),
                stream: "dev=2049,ino=12,head=ab12".into(),
                unit: "byte".into(),
                first: 200,
                end: 350,
            },
            Gap {
                source: "/var/log/auth.log".into(),
                stream: other.stream.clone(),
                unit: "byte".into(),
                first: 700,
                end: 800,
            },
        ]
    );
    assert_eq!(s.gaps("agent-2").unwrap(), vec![]);
}

#[test]
fn counts_and_events_by_class() {
    let mut s = memory();
    let mut net = event("n1", 5);
    net["class_uid"] = json!(4001);
    net["type_uid"] = json!(400105);
    send(
        &mut s,
        1,
        &[event("u1", 1), event("u2", 3), net, event("u3", 2)],
        vec![],
    );
    assert_eq!(s.counts_by_class().unwrap(), vec![(3002, 3), (4001, 1)]);
    let latest = s
        .find("acme", &Key::Class(3002), i64::MIN, i64::MAX, 2)
        .unwrap();
    let uids: Vec<_> = latest
        .iter()
        .map(|e| e["metadata"]["uid"].clone())
        .collect();
    assert_eq!(uids, [json!("u2"), json!("u3")]);
    assert!(
        s.find("globex", &Key::Class(3002), i64::MIN, i64::MAX, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn tokens_are_one_time_expire_and_need_the_secret() {
    let mut s = memory();
    let secret = [7u8; 32];
    s.create_token("t1", secret, "acme", 1_000, 0).unwrap();
    assert!(matches!(
        s.create_token("t1", secret, "acme", 1_000, 0),
        Err(StoreError::TokenExists(_))
    ));
    let spend = |s: &mut SqliteStore, id: &str, hash: [u8; 32], now: i64| {
        s.enroll_with_token(id, hash, "web-01", now, |t| {
            Ok((record_in("agent-1", t), ()))
        })
        .map(|(r, ())| r.tenant)
    };
    assert!(matches!(
        spend(&mut s, "t0", secret, 10),
        Err(TokenError::Unknown)
    ));
    assert!(matches!(
        spend(&mut s, "t1", [8; 32], 10),
        Err(TokenError::Mismatch)
    ));
    assert!(matches!(
        spend(&mut s, "t1", secret, 1_000),
        Err(TokenError::Expired)
    ));
    assert_eq!(spend(&mut s, "t1", secret, 999).unwrap(), "acme");
    assert!(matches!(
        spend(&mut s, "t1", secret, 999),
        Err(TokenError::Used)
    ));
    // Used and expired: who has the secret learns it was used; who has not, nothing.
    assert!(matches!(
        spend(&mut s, "t1", secret, 5_000),
        Err(TokenError::Used)
    ));
    assert!(matches!(
        spend(&mut s, "t1", [0; 32], 5_000),
        Err(TokenError::Mismatch)
    ));
}

/// A token that leaked can be shut before anyone uses it; one already used is not
/// touched (its agent is what to revoke), and the listing never needs the secret.
#[test]
fn a_revoked_token_is_refused_and_a_used_one_cannot_be_revoked() {
    let mut s = memory();
    let secret = [7u8; 32];
    s.create_token("t1", secret, "acme", 10_000, 0).unwrap();
    s.create_token("t2", secret, "blue", 10_000, 1).unwrap();
    s.create_token("t3", secret, "blue", 100, 2).unwrap();
    let spend = |s: &mut SqliteStore, id: &str, hash: [u8; 32]| {
        s.enroll_with_token(id, hash, "web-01", 50, |t| {
            Ok((record_in(&format!("agent-{t}"), t), ()))
        })
        .map(|(r, ())| r.agent_id)
    };
    assert_eq!(s.revoke_token("t1", 20).unwrap(), TokenRevocation::Revoked);
    // A second revocation keeps the first time.
    assert_eq!(s.revoke_token("t1", 30).unwrap(), TokenRevocation::Revoked);
    assert!(matches!(
        spend(&mut s, "t1", secret),
        Err(TokenError::Revoked)
    ));
    // Who lacks the secret learns nothing about the revocation.
    assert!(matches!(
        spend(&mut s, "t1", [0; 32]),
        Err(TokenError::Mismatch)
    ));
    assert_eq!(spend(&mut s, "t2", secret).unwrap(), "agent-blue");
    assert_eq!(
        s.revoke_token("t2", 60).unwrap(),
        TokenRevocation::Used {
            agent_id: "agent-blue".to_owned()
        }
    );
    assert_eq!(s.revoke_token("t9", 60).unwrap(), TokenRevocation::Unknown);

    let listed = s.list_tokens().unwrap();
    let ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2", "t3"]);
    assert_eq!(listed[0].revoked_ms, Some(20));
    assert_eq!(listed[0].used, None);
    assert_eq!(
        listed[1].used,
        Some(TokenUse {
            at_ms: 50,
            hostname: "web-01".to_owned(),
            agent_id: "agent-blue".to_owned()
        })
    );
    assert_eq!(listed[1].revoked_ms, None);
    assert_eq!(
        (
            listed[2].tenant.as_str(),
            listed[2].expires_ms,
            listed[2].created_ms
        ),
        ("blue", 100, 2)
    );
}

#[test]
fn of_two_connections_spending_one_token_at_once_exactly_one_wins() {
    let db = TempDb::new("tokens");
    db.open()
        .create_token("t1", [1; 32], "acme", i64::MAX, 0)
        .unwrap();
    for round in 0..5 {
        let id = format!("r{round}");
        db.open()
            .create_token(&id, [1; 32], "acme", i64::MAX, 0)
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let mut s = db.open();
                let barrier = barrier.clone();
                let id = id.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    s.enroll_with_token(&id, [1; 32], "h", 1, |_| {
                        Ok((record(&format!("{id}-agent-{i}")), ()))
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{results:?}");
        assert!(results.iter().any(|r| matches!(r, Err(TokenError::Used))));
    }
}

/// Enrolls `agent` with token `t1` (secret `[1; 32]`).
fn enroll(s: &mut SqliteStore, token: &str, agent: &str, now: i64) -> Result<String, TokenError> {
    s.enroll_with_token(token, [1; 32], "h", now, |t| Ok((record_in(agent, t), ())))
        .map(|(r, ())| r.tenant)
}

#[test]
fn a_failed_enrollment_does_not_spend_its_token() {
    let mut s = memory();
    s.create_token("t1", [1; 32], "acme", i64::MAX, 0).unwrap();
    s.register_agent(&record("agent-1")).unwrap();
    // Signing refused: nothing recorded, token still good.
    let refused = s.enroll_with_token("t1", [1; 32], "h", 1, |_| {
        Err::<(AgentRecord, ()), _>("the CA key is unreadable".into())
    });
    assert!(
        matches!(&refused, Err(TokenError::Refused(r)) if r == "the CA key is unreadable"),
        "{refused:?}"
    );
    // The agent record cannot be stored (its id taken): the token is not spent either.
    assert!(matches!(
        enroll(&mut s, "t1", "agent-1", 2),
        Err(TokenError::Store(StoreError::AgentExists(_)))
    ));
    assert_eq!(s.list_agents().unwrap().len(), 1);
    assert_eq!(enroll(&mut s, "t1", "agent-2", 3).unwrap(), "acme");
    let a = s.agent("agent-2").unwrap().unwrap();
    assert_eq!(a.record.tenant, "acme");
    let used: (i64, String, String) = s
        .conn
        .query_row(
            "SELECT used_ms, used_hostname, used_agent_id FROM tokens WHERE id = 't1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(used, (3, "h".into(), "agent-2".into()));
    assert!(matches!(
        enroll(&mut s, "t1", "agent-3", 4),
        Err(TokenError::Used)
    ));
}

fn record(id: &str) -> AgentRecord {
    record_in(id, "acme")
}

fn record_in(id: &str, tenant: &str) -> AgentRecord {
    AgentRecord {
        agent_id: id.into(),
        tenant: tenant.into(),
        hostname: "web-01".into(),
        cert_serial: "01ab".into(),
        not_after_ms: 10_000,
        enrolled_ms: 1_000,
    }
}

#[test]
fn an_agent_enrolled_before_serials_were_kept_is_known_by_its_first_certificate() {
    // The registry of earlier versions recorded a renewal before the agent saved it: the
    // certificate an agent holds may be one the registry never kept. Its first one
    // presented after the upgrade is taken, and from then on only it.
    let db = TempDb::new("serial-migrated");
    let mut s = db.open();
    s.register_agent(&record("agent-1")).unwrap();
    s.conn
        .execute_batch("UPDATE agents SET pending_serial = '*'")
        .unwrap();
    assert_eq!(
        s.admission_of("agent-1", "0777").unwrap(),
        Admission::Active
    );
    assert_eq!(
        s.admit_cert("agent-1", "0777", 2_000, 30_000).unwrap(),
        Admission::Active
    );
    assert_eq!(
        s.admit_cert("agent-1", "01ab", 1_000, 10_000).unwrap(),
        Admission::Superseded
    );
    assert_eq!(
        s.admit_cert("agent-1", "0777", 2_000, 30_000).unwrap(),
        Admission::Active
    );
    let a = s.agent("agent-1").unwrap().unwrap();
    assert_eq!(
        (a.record.cert_serial.as_str(), a.record.not_after_ms),
        ("0777", 30_000)
    );
}

/// The database restored from a backup older than an agent's renewal: the registry's
/// current certificate is the one the renewal replaced, and the renewed one, which the
/// agent holds, is no serial it knows. It was signed after every certificate the restored
/// registry recorded, which only a renewal it lost makes: taken, and current from then on
/// (refused, every agent that renewed since the backup was locked out until enrolled
/// again). What the registry did record keeps its rules.
#[test]
fn a_renewal_lost_with_a_restored_backup_is_taken_and_older_copies_are_not() {
    let db = TempDb::new("restored");
    let backup = TempDb::new("restored-backup");
    {
        let mut s = db.open();
        s.register_agent(&record("agent-1")).unwrap();
        s.register_agent(&record("agent-2")).unwrap();
    }
    std::fs::copy(&db.0, &backup.0).unwrap();
    {
        // After the backup: agent-1 renews (signed at 5 000) and uses it; agent-2 renews
        // and is revoked.
        let mut s = db.open();
        assert!(s.record_renewal("agent-1", "01ab", "0bbb", 5_000).unwrap());
        assert_eq!(
            s.admit_cert("agent-1", "0bbb", 5_000, 50_000).unwrap(),
            Admission::Active
        );
        assert!(s.record_renewal("agent-2", "01ab", "0ccc", 5_000).unwrap());
    }
    // The backup restored.
    let mut s = backup.open();
    assert_eq!(
        s.admit_cert("agent-1", "0bbb", 5_000, 50_000).unwrap(),
        Admission::Restored
    );
    let a = s.agent("agent-1").unwrap().unwrap();
    assert_eq!(
        (a.record.cert_serial.as_str(), a.record.not_after_ms),
        ("0bbb", 50_000)
    );
    assert_eq!(
        s.admission_of("agent-1", "0bbb").unwrap(),
        Admission::Active,
        "its batches are taken"
    );
    assert_eq!(
        s.admit_cert("agent-1", "0bbb", 5_000, 50_000).unwrap(),
        Admission::Active,
        "restored once"
    );
    assert_eq!(
        s.admit_cert("agent-1", "01ab", 1_000, 10_000).unwrap(),
        Admission::Superseded,
        "the certificate it replaced is refused again"
    );
    assert_eq!(
        s.admit_cert("agent-1", "0777", 4_000, 40_000).unwrap(),
        Admission::Superseded,
        "nor is one signed before the one taken"
    );
    // Signed no later than the registry's own latest: a copy it replaced, not one it lost.
    assert_eq!(
        s.admit_cert("agent-2", "0ddd", 1_000, 10_000).unwrap(),
        Admission::Superseded
    );
    // The revocation made after the backup is lost with it (an operator revokes again);
    // made in the registry, it holds whatever the certificate.
    assert!(s.revoke_agent("agent-2", 6_000).unwrap());
    assert_eq!(
        s.admit_cert("agent-2", "0ccc", 5_000, 50_000).unwrap(),
        Admission::Revoked
    );
    assert_eq!(
        s.admit_cert("agent-3", "0eee", 5_000, 50_000).unwrap(),
        Admission::Unknown,
        "an agent enrolled after the backup enrolls again"
    );
    drop(s);
    backup.remove();
}

/// A renewal the registry recorded and the agent never used (another one was taken
/// first) was signed at or before the registry's latest signing: still refused.
#[test]
fn a_recorded_renewal_passed_over_is_not_taken_for_a_lost_one() {
    let mut s = memory();
    s.register_agent(&record("agent-1")).unwrap();
    assert!(s.record_renewal("agent-1", "01ab", "02cd", 2_000).unwrap());
    assert!(s.record_renewal("agent-1", "01ab", "03ef", 3_000).unwrap());
    assert_eq!(
        s.admit_cert("agent-1", "02cd", 2_000, 20_000).unwrap(),
        Admission::Active
    );
    assert_eq!(
        s.admit_cert("agent-1", "03ef", 3_000, 30_000).unwrap(),
        Admission::Superseded
    );
    // Enrolled at 1 000: a certificate of the same agent signed later is taken as lost
    // only past the latest signing recorded.
    assert_eq!(
        s.admit_cert("agent-1", "0456", 3_001, 30_000).unwrap(),
        Admission::Restored
    );
}

/// An older `serve` still running on a file a newer CLI migrated enrolls and renews
/// without recording when it signed: the schema's triggers record it for that writer, so
/// a renewal it recorded and the agent passed over is not taken for a lost one.
#[test]
fn an_older_writer_on_the_migrated_file_still_records_its_signings() {
    let s = memory();
    // What a schema-12 `serve` writes: no `last_signed_ms`.
    s.conn
        .execute_batch(
            "INSERT INTO agents (agent_id, tenant, hostname, cert_serial, not_after_ms, \
             enrolled_ms) VALUES ('agent-1', 'acme', 'h', '01ab', 10000, 1000)",
        )
        .unwrap();
    let signed = |s: &SqliteStore| -> Option<i64> {
        s.conn
            .query_row(
                "SELECT last_signed_ms FROM agents WHERE agent_id = 'agent-1'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(signed(&s), Some(1_000), "enrolled");
    s.conn
        .execute_batch("UPDATE agents SET pending_serial = '02cd' WHERE agent_id = 'agent-1'")
        .unwrap();
    let now = crate::io::clock::now_ms();
    let t = signed(&s).unwrap();
    assert!((now..=now + 2_000).contains(&t), "{t} vs now {now}");
    // This version's own writes keep the signing time they give.
    let mut s = s;
    assert!(
        s.record_renewal("agent-1", "01ab", "03ef", t + 5_000)
            .unwrap()
    );
    assert_eq!(signed(&s), Some(t + 5_000));
}

/// A registry of schema 12 knows no signing times: every certificate made before its
/// migration counts as signed by then, so none of them is taken for a lost renewal.
#[test]
fn the_migration_counts_every_earlier_certificate_as_recorded() {
    let db = TempDb::new("v12-signed");
    {
        let mut s = db.open();
        s.register_agent(&record("agent-1")).unwrap();
        s.conn
            .execute_batch(
                "DROP TRIGGER agents_enrolled_signed; DROP TRIGGER agents_renewal_signed; \
                 ALTER TABLE agents DROP COLUMN last_signed_ms; PRAGMA user_version = 12;",
            )
            .unwrap();
    }
    let mut s = db.open();
    assert_eq!(user_version(&s), SCHEMA_VERSION);
    let now = crate::io::clock::now_ms();
    assert_eq!(
        s.admit_cert("agent-1", "0bbb", now - 1_000, 50_000)
            .unwrap(),
        Admission::Superseded
    );
    assert_eq!(
        s.admit_cert("agent-1", "0bbb", now + 2_000, 50_000)
            .unwrap(),
        Admission::Restored
    );
}

#[test]
fn agents_register_renew_report_and_get_revoked() {
    let mut s = memory();
    s.register_agent(&record("agent-1")).unwrap();
    s.register_agent(&record("agent-0")).unwrap();
    assert!(matches!(
        s.register_agent(&record("agent-1")),
        Err(StoreError::AgentExists(_))
    ));
    let a = s.agent("agent-1").unwrap().unwrap();
    assert_eq!(a.record, record("agent-1"));
    assert_eq!((a.revoked_ms, a.state), (None, None));
    // A renewal is signed for the current certificate; it becomes current once presented.
    assert!(s.record_renewal("agent-1", "01ab", "02cd", 2_000).unwrap());
    assert!(!s.record_renewal("agent-x", "01ab", "02cd", 2_000).unwrap());
    assert_eq!(
        s.admit_cert("agent-1", "01ab", 1_000, 10_000).unwrap(),
        Admission::Active,
        "the old one stays current until the new one is used (its save may have failed)"
    );
    assert_eq!(
        s.admit_cert("agent-1", "02cd", 2_000, 20_000).unwrap(),
        Admission::Active
    );
    assert_eq!(
        s.admit_cert("agent-1", "01ab", 1_000, 10_000).unwrap(),
        Admission::Superseded,
        "replaced once the renewed one was presented"
    );
    assert!(
        !s.record_renewal("agent-1", "01ab", "0999", 2_500).unwrap(),
        "nor renewed"
    );
    assert_eq!(
        s.admit_cert("agent-1", "0999", 1_500, 30_000).unwrap(),
        Admission::Superseded,
        "a certificate the registry never recorded"
    );
    assert_eq!(
        s.admit_cert("agent-x", "01ab", 1_000, 10_000).unwrap(),
        Admission::Unknown
    );
    // Batches of a connection still on the replaced certificate are refused too.
    assert_eq!(
        s.admission_of("agent-1", "01ab").unwrap(),
        Admission::Superseded
    );
    assert_eq!(
        s.admission_of("agent-1", "02cd").unwrap(),
        Admission::Active
    );
    // Two renewals before either is used (the first answer lost, or not saved): either
    // one is taken, and then only it.
    assert!(s.record_renewal("agent-1", "02cd", "03ef", 3_000).unwrap());
    assert!(s.record_renewal("agent-1", "02cd", "0456", 3_500).unwrap());
    assert_eq!(
        s.admit_cert("agent-1", "03ef", 3_000, 40_000).unwrap(),
        Admission::Active
    );
    assert_eq!(
        s.admit_cert("agent-1", "0456", 3_500, 40_000).unwrap(),
        Admission::Superseded
    );
    // DER drops a serial's leading zero bytes; the registry may hold them.
    assert_eq!(
        s.admit_cert("agent-1", "0003ef", 3_000, 40_000).unwrap(),
        Admission::Active
    );
    assert!(
        s.record_renewal("agent-1", "03ef", "0002cd", 4_000)
            .unwrap()
    );
    assert_eq!(
        s.admit_cert("agent-1", "02cd", 4_000, 50_000).unwrap(),
        Admission::Active
    );
    assert_eq!(
        s.agent("agent-1").unwrap().unwrap().record.cert_serial,
        "02cd"
    );
    let seen = AgentState {
        last_seen_ms: 5_000,
        version: "0.1.0".into(),
        hostname: "web-01b".into(),
        host_facts: r#"{"os":"debian"}"#.into(),
        lag_ms: 12,
        spool_bytes: u64::MAX,
        dropped_batches: 1,
        dropped_events: 2,
        damaged_records: 3,
        udp_drops: 4,
    };
    assert!(s.agent_seen("agent-1", &seen).unwrap());
    assert!(!s.agent_seen("agent-x", &seen).unwrap());
    let a = s.agent("agent-1").unwrap().unwrap();
    assert_eq!(
        (a.record.cert_serial.as_str(), a.record.not_after_ms),
        ("02cd", 50_000)
    );
    // Counters saturate at i64::MAX.
    let want = AgentState {
        spool_bytes: i64::MAX as u64,
        ..seen
    };
    assert_eq!(a.state, Some(want));
    assert_eq!(s.admission("agent-1").unwrap(), Admission::Active);
    assert!(s.revoke_agent("agent-1", 7_000).unwrap());
    assert!(s.revoke_agent("agent-1", 9_000).unwrap());
    assert!(!s.revoke_agent("agent-x", 7_000).unwrap());
    assert_eq!(s.admission("agent-1").unwrap(), Admission::Revoked);
    assert!(
        !s.record_renewal("agent-1", "02cd", "03ef", 6_000).unwrap(),
        "a revoked agent's renewal is not recorded"
    );
    assert_eq!(
        s.agent("agent-1").unwrap().unwrap().record.cert_serial,
        "02cd"
    );
    assert_eq!(s.admission("agent-0").unwrap(), Admission::Active);
    // A certificate of this CA for an agent the registry does not know is not taken.
    assert_eq!(s.admission("agent-x").unwrap(), Admission::Unknown);
    assert_eq!(s.agent("agent-1").unwrap().unwrap().revoked_ms, Some(7_000));
    let ids: Vec<_> = s
        .list_agents()
        .unwrap()
        .into_iter()
        .map(|a| a.record.agent_id)
        .collect();
    assert_eq!(ids, ["agent-0", "agent-1"]);
}

#[test]
fn everything_persists_across_a_reopen() {
    let db = TempDb::new("reopen");
    {
        let mut s = db.open();
        send(&mut s, 1, &[event("u1", 1)], vec![watermark(0, 10)]);
        send(&mut s, 3, &[event("u3", 3)], vec![watermark(20, 30)]);
        s.create_token("t1", [1; 32], "acme", 100, 0).unwrap();
        s.create_token("t2", [2; 32], "acme", 100, 0).unwrap();
        enroll(&mut s, "t1", "agent-1", 1).unwrap();
        s.revoke_agent("agent-1", 50).unwrap();
    }
    let mut s = db.open();
    assert_eq!(s.event_count().unwrap(), 2);
    assert_eq!(s.get_event("acme", "u3").unwrap().unwrap()["time"], 3);
    assert_eq!(
        send(&mut s, 1, &[event("u1", 1)], vec![]),
        AckOutcome::Replay
    );
    assert_eq!(send(&mut s, 4, &[event("u1", 1)], vec![]), stored(0, 1));
    assert_eq!(s.gaps("agent-1").unwrap().len(), 1);
    assert!(matches!(
        enroll(&mut s, "t1", "agent-1", 2),
        Err(TokenError::Used)
    ));
    assert_eq!(
        s.enroll_with_token("t2", [2; 32], "h", 2, |t| Ok((record_in("agent-2", t), ())))
            .unwrap()
            .0
            .tenant,
        "acme"
    );
    assert_eq!(s.admission("agent-1").unwrap(), Admission::Revoked);
    assert_eq!(user_version(&s), SCHEMA_VERSION);
    let mode: String = s
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_database_of_a_newer_schema_is_refused() {
    let db = TempDb::new("newer");
    db.open()
        .conn
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    assert!(matches!(
        SqliteStore::open(&db.0, SqliteConfig::default()),
        Err(StoreError::NewerSchema { .. })
    ));
}

/// Insert rate with the indexes of the schema: `VEDETTE_NDJSON=/path/to/events.ndjson
/// cargo test --release -p vedette-aggregator insert_rate -- --ignored --nocapture`.
/// Every line gets a fresh uid so each batch stores all its events.
#[test]
#[ignore = "needs VEDETTE_NDJSON"]
fn insert_rate_on_a_real_batch() {
    #[expect(clippy::disallowed_methods, reason = "a measurement, not logic")]
    let now = std::time::Instant::now;
    let raw = std::fs::read(std::env::var("VEDETTE_NDJSON").unwrap()).unwrap();
    let events: Vec<Value> = raw
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let db = TempDb::new("rate");
    let mut s = SqliteStore::open(&db.0, SqliteConfig::default()).unwrap();
    if let Ok(sql) = std::env::var("VEDETTE_EXTRA_SQL") {
        s.conn.execute_batch(&sql).unwrap();
    }
    let who = peer();
    let mut dec = Decoder::new().unwrap();
    let (mut decode, mut commit, mut n) = (0.0, 0.0, 0);
    for round in 0..10u64 {
        let evs: Vec<Value> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut e = e.clone();
                e["metadata"]["uid"] = json!(format!("{round}-{i}"));
                // As the agent ships them: the decoder's fast path.
                e["metadata"]["tenant_uid"] = json!("acme");
                e
            })
            .collect();
        let (h, p) = encode_batch("agent-1", 1, round + 1, &evs, vec![], 0);
        let t = now();
        let b = dec.decode(&h, &p, &who).unwrap();
        decode += t.elapsed().as_secs_f64();
        let t = now();
        s.commit(&who, &h, &b, 0).unwrap();
        commit += t.elapsed().as_secs_f64();
        n += evs.len();
    }
    println!(
        "{n} events: decode {:.1} us/event, commit {:.1} us/event (synchronous=FULL, one batch of {} per commit)",
        decode * 1e6 / n as f64,
        commit * 1e6 / n as f64,
        events.len()
    );
}

proptest::proptest! {
    /// Gaps against a model: the positions between the lowest first and the highest end
    /// of the non-empty ranges that no range covers, as maximal runs.
    #[test]
    fn gaps_are_the_uncovered_runs(ranges in proptest::collection::vec((0u64..64, 0u64..16), 1..8)) {
        let mut s = memory();
        for (i, &(first, len)) in ranges.iter().enumerate() {
            send(&mut s, i as u64 + 1, &[], vec![watermark(first, first + len)]);
        }
        let mut covered = [false; 80];
        let mut lo = u64::MAX;
        let mut hi = 0;
        for &(first, len) in ranges.iter().filter(|r| r.1 > 0) {
            covered[first as usize..(first + len) as usize].fill(true);
            lo = lo.min(first);
            hi = hi.max(first + len);
        }
        let mut want = Vec::new();
        let mut p = lo;
        while p < hi {
            if covered[p as usize] {
                p += 1;
                continue;
            }
            let start = p;
            while !covered[p as usize] {
                p += 1;
            }
            want.push((start, p));
        }
        let got: Vec<_> = s.gaps("agent-1").unwrap().iter().map(|g| (g.first, g.end)).collect();
        proptest::prop_assert_eq!(got, want);
    }
}

#[test]
fn a_group_commit_gives_each_batch_its_own_outcome_in_one_transaction() {
    let mut s = memory();
    assert_eq!(send(&mut s, 1, &[event("u1", 1)], vec![]), stored(1, 0));
    let who = peer();
    let mk = |seq: u64, evs: &[Value]| {
        let (h, p) = encode_batch("agent-1", 7, seq, evs, vec![], 0);
        let b = decode_batch(&h, &p, &who).unwrap();
        (h, b)
    };
    // seq 1 again (a replay), seq 2 new with a re-read u1, seq 3 new, seq 3 again.
    let batches = [
        mk(1, &[event("u1", 1)]),
        mk(2, &[event("u1", 1), event("u2", 2)]),
        mk(3, &[event("u3", 3)]),
        mk(3, &[event("u3", 3)]),
    ];
    let items: Vec<_> = batches.iter().map(|(h, b)| (&who, h, b)).collect();
    assert_eq!(
        s.commit_group(&items, 0).unwrap(),
        vec![
            AckOutcome::Replay,
            stored(1, 1),
            stored(1, 0),
            AckOutcome::Replay
        ]
    );
    assert_eq!(s.event_count().unwrap(), 3);
    assert_eq!(s.batch_count().unwrap(), 3);
}

#[test]
fn every_search_answers_what_a_scan_of_all_events_answers() {
    // Batches of events with times out of order across batches, repeated uids, and a few
    // hosts, users, classes and addresses: each search is checked against a brute-force
    // answer over the stored events (newest first, later stored first among equal times).
    let mut s = memory();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let hosts = ["web-01", "web-02", "db-01"];
    let users = ["bob", "alice", "root"];
    let ips = ["203.0.113.7", "198.51.100.1", "2001:db8::7", "10.0.0.1"];
    let mut all: Vec<Value> = Vec::new(); // stored, in id order
    let mut seen = std::collections::HashSet::new();
    for seq in 1..=40u64 {
        let base = next(1_000) as i64 * 10;
        let evs: Vec<Value> = (0..next(30) + 1)
            .map(|_| {
                let uid = format!("u{}", next(600));
                let mut e = flow(
                    &uid,
                    base + next(500) as i64,
                    (next(3) > 0).then(|| ips[next(4) as usize]),
                    (next(4) == 0).then(|| ips[next(4) as usize]),
                );
                let o = e.as_object_mut().unwrap();
                if next(5) == 0 {
                    o.remove("device");
                } else {
                    o.insert(
                        "device".into(),
                        json!({"hostname": hosts[next(3) as usize]}),
                    );
                }
                if next(4) == 0 {
                    o.remove("user");
                } else {
                    o.insert("user".into(), json!({"name": users[next(3) as usize]}));
                }
                if next(2) == 0 {
                    o.insert("class_uid".into(), json!(4001));
                }
                e
            })
            .collect();
        send(&mut s, seq, &evs, vec![]);
        for e in evs {
            if seen.insert(e["metadata"]["uid"].as_str().unwrap().to_owned()) {
                all.push(e);
            }
        }
    }
    assert_eq!(s.event_count().unwrap(), all.len() as u64);
    let text = |e: &Value, path: &[&str]| -> Option<String> {
        let mut v = e;
        for k in path {
            v = v.get(k)?;
        }
        v.as_str().map(str::to_owned)
    };
    let mut keys: Vec<Key<'_>> = vec![Key::Class(3002), Key::Class(4001), Key::Class(1)];
    keys.extend(hosts.iter().map(|h| Key::Device(h)));
    keys.extend(users.iter().map(|u| Key::User(u)));
    keys.extend(ips.iter().map(|i| Key::Ip(i)));
    // The brute-force answer: the uids of the `limit` newest of `all` (time, then the
    // later stored) that `hit` and lie in `[from, to]`.
    let newest = |hit: &dyn Fn(&Value) -> bool, from: i64, to: i64, limit: usize| {
        let mut v: Vec<(i64, usize)> = all
            .iter()
            .enumerate()
            .map(|(i, e)| (e["time"].as_i64().unwrap(), i))
            .filter(|&(t, i)| (from..=to).contains(&t) && hit(&all[i]))
            .collect();
        v.sort_unstable_by_key(|&k| std::cmp::Reverse(k));
        v.truncate(limit);
        v.iter()
            .map(|&(_, i)| all[i]["metadata"]["uid"].as_str().unwrap())
            .collect::<Vec<&str>>()
    };
    let mut checked = 0;
    for key in &keys {
        let hit = |e: &Value| match key {
            Key::Class(c) => e["class_uid"] == json!(c),
            Key::Device(h) => text(e, &["device", "hostname"]).as_deref() == Some(h),
            Key::User(u) => text(e, &["user", "name"]).as_deref() == Some(u),
            Key::Ip(ip) => {
                text(e, &["src_endpoint", "ip"]).as_deref() == Some(ip)
                    || text(e, &["dst_endpoint", "ip"]).as_deref() == Some(ip)
            }
        };
        for (from, to) in [(i64::MIN, i64::MAX), (2_000, 6_000), (5_000, 5_100), (9, 3)] {
            for limit in [1, 5, 50, 10_000] {
                let want = newest(&hit, from, to, limit);
                let got = s.find("acme", key, from, to, limit).unwrap();
                assert_eq!(uids(&got), want, "{key:?} in [{from}, {to}], limit {limit}");
                checked += want.len();
            }
        }
    }
    // Every event in a time range, whatever it is.
    for (from, to) in [(i64::MIN, i64::MAX), (2_000, 6_000), (5_000, 5_100), (9, 3)] {
        for limit in [1, 7, 50, 10_000] {
            let want = newest(&|_| true, from, to, limit);
            let got = s.latest("acme", from, to, limit).unwrap();
            assert_eq!(uids(&got), want, "all in [{from}, {to}], limit {limit}");
            checked += want.len();
        }
    }
    assert!(
        s.latest("other", i64::MIN, i64::MAX, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        checked > 1_000,
        "the searches found too little to test: {checked}"
    );
}

#[test]
fn rows_inserted_in_groups_keep_their_lines_and_repeats_inside_a_group_count_right() {
    let mut s = memory();
    let ev = |i: usize| {
        let mut e = event(&format!("g{i:03}"), i as i64);
        if i % 2 == 1 {
            e["class_uid"] = json!(4001);
            e["type_uid"] = json!(400105);
        }
        e
    };
    // Every third first, then all 100: three full groups of 32 and 4 rows alone, with
    // repeats inside every group, so stored rows and ignored ones alternate.
    let first: Vec<Value> = (0..100).filter(|i| i % 3 == 0).map(ev).collect();
    assert_eq!(send(&mut s, 1, &first, vec![]), stored(34, 0));
    let all: Vec<Value> = (0..100).map(ev).collect();
    assert_eq!(send(&mut s, 2, &all, vec![]), stored(66, 34));
    let mut q = s
        .conn
        .prepare("SELECT class_uid, count(*) FROM events GROUP BY class_uid ORDER BY 1")
        .unwrap();
    let in_table: Vec<(u32, u64)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(q);
    assert_eq!(in_table, [(3002, 50), (4001, 50)]);
    assert_eq!(s.counts_by_class().unwrap(), in_table);
    // Each row points at its own line of its chunk: every document read back is the event
    // the row indexes.
    let docs = s.latest("acme", i64::MIN, i64::MAX, 1000).unwrap();
    let mut got: Vec<(String, i64)> = docs
        .iter()
        .map(|d| {
            let uid = d["metadata"]["uid"].as_str().unwrap().to_owned();
            (uid, d["time"].as_i64().unwrap())
        })
        .collect();
    got.sort();
    let want: Vec<(String, i64)> = (0..100).map(|i| (format!("g{i:03}"), i)).collect();
    assert_eq!(got, want);
    let times: Vec<i64> = docs.iter().map(|d| d["time"].as_i64().unwrap()).collect();
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first);
}

#[test]
fn pruning_deletes_old_chunks_whole_and_keeps_counts_and_searches_right() {
    let mut s = memory();
    // Two old chunks (one with another user), one recent, one mixed (its newest event is
    // recent: it stays whole).
    let mut eve = event("o3", 30);
    eve["user"]["name"] = json!("eve");
    assert_eq!(
        send(
            &mut s,
            1,
            &[event("o1", 10), event("o2", 20)],
            vec![watermark(0, 10)]
        ),
        stored(2, 0)
    );
    assert_eq!(
        send(&mut s, 2, &[eve], vec![watermark(10, 20)]),
        stored(1, 0)
    );
    assert_eq!(
        send(&mut s, 3, &[event("n1", 5_000)], vec![watermark(20, 30)]),
        stored(1, 0)
    );
    assert_eq!(
        send(
            &mut s,
            4,
            &[event("m1", 40), event("m2", 6_000)],
            vec![watermark(30, 40)]
        ),
        stored(2, 0)
    );
    // One chunk at a time: the batch records wait until the chunks are done.
    let first = s.prune(1_000, 1).unwrap();
    assert_eq!((first.chunks, first.events, first.batches), (1, 2, 0));
    let second = s.prune(1_000, 1).unwrap();
    assert_eq!((second.chunks, second.events), (1, 1));
    // Batches committed before 1_003 (send commits at 1_000 + seq): seqs 1 and 2.
    let third = s.prune(1_003, 2).unwrap();
    assert_eq!((third.chunks, third.events, third.batches), (0, 0, 2));
    assert_eq!(s.event_count().unwrap(), 3);
    assert_eq!(s.counts_by_class().unwrap(), vec![(3002, 3)]);
    for gone in ["o1", "o2", "o3"] {
        assert_eq!(s.get_event("acme", gone).unwrap(), None, "{gone}");
    }
    for kept in ["n1", "m1", "m2"] {
        assert!(s.get_event("acme", kept).unwrap().is_some(), "{kept}");
    }
    let latest: Vec<i64> = s
        .latest("acme", 0, i64::MAX, 10)
        .unwrap()
        .iter()
        .map(|e| e["time"].as_i64().unwrap())
        .collect();
    assert_eq!(latest, [6_000, 5_000, 40]);
    assert!(
        s.find("acme", &Key::User("eve"), 0, i64::MAX, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.find("acme", &Key::User("bob"), 0, i64::MAX, 10)
            .unwrap()
            .len(),
        3
    );
    // The pruned batches' watermarks went with them; the rest make no false gap.
    assert_eq!(s.gaps("agent-1").unwrap(), vec![]);
    let marks: i64 = s
        .conn
        .query_row("SELECT count(*) FROM watermarks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(marks, 2);
    // Nothing more to do.
    assert_eq!(s.prune(1_003, 10).unwrap(), Pruned::default());
}

#[test]
fn what_many_agents_said_is_written_together() {
    let mut s = memory();
    s.register_agent(&record("agent-1")).unwrap();
    s.register_agent(&record("agent-2")).unwrap();
    let said = |t: i64, lag: i64| AgentState {
        last_seen_ms: t,
        lag_ms: lag,
        version: "1.2.3".into(),
        ..AgentState::default()
    };
    s.agents_seen(&[
        ("agent-1".into(), said(10, 5)),
        ("agent-2".into(), said(20, 7)),
        // Unknown: nothing to update, and no error for the others.
        ("agent-x".into(), said(30, 9)),
    ])
    .unwrap();
    let a1 = s.agent("agent-1").unwrap().unwrap().state.unwrap();
    let a2 = s.agent("agent-2").unwrap().unwrap().state.unwrap();
    assert_eq!((a1.last_seen_ms, a1.lag_ms), (10, 5));
    assert_eq!(
        (a2.last_seen_ms, a2.lag_ms, a2.version.as_str()),
        (20, 7, "1.2.3")
    );
    assert!(s.agent("agent-x").unwrap().is_none());
}

/// Commits a batch of no events with one watermark at `committed_ms`.
fn send_range_at(s: &mut SqliteStore, seq: u64, first: u64, end: u64, committed_ms: i64) {
    let who = peer();
    let (h, p) = encode_batch(&who.agent_id, 7, seq, &[], vec![watermark(first, end)], 100);
    let batch = decode_batch(&h, &p, &who).unwrap();
    assert_eq!(
        s.commit(&who, &h, &batch, committed_ms).unwrap(),
        stored(0, 0)
    );
}

/// Batch records go a slice at a time, and never so that the watermarks kept show a hole
/// where a batch arrived: a batch resent late (its ack lost with a connection) is
/// committed after the ones above it, so by commit time it is newer than they are.
#[test]
fn pruning_batch_records_is_sliced_and_leaves_no_false_gap() {
    let mut s = memory();
    // Five old ones, in order.
    for i in 0..5u64 {
        send_range_at(&mut s, 100 + i, i * 10, i * 10 + 10, 100 + i as i64);
    }
    // [50,60) resent late: committed at 5_000, after [60,70) at 1_000 and before [70,80)
    // at 6_000.
    send_range_at(&mut s, 2, 60, 70, 1_000);
    send_range_at(&mut s, 1, 50, 60, 5_000);
    send_range_at(&mut s, 3, 70, 80, 6_000);
    assert_eq!(s.gaps("agent-1").unwrap(), vec![]);
    let marks = |s: &SqliteStore| -> i64 {
        s.conn
            .query_row("SELECT count(*) FROM watermarks", [], |r| r.get(0))
            .unwrap()
    };
    // One retention run: prune with the same cut-off until a slice is not full.
    let run = |s: &mut SqliteStore, before: i64| -> (u64, u64) {
        let (mut deleted, mut waiting) = (0, 0);
        loop {
            let p = s.prune(before, 2).unwrap();
            assert!(p.batches + p.batches_waiting <= 2, "{p:?}");
            deleted += p.batches;
            waiting += p.batches_waiting;
            if !p.is_full_slice(2) {
                return (deleted, waiting);
            }
        }
    };
    // Before 4_500: the five old ones go, two at a time; [60,70) is due as well but
    // waits: below it lies [50,60), kept. Deleting it would leave a hole between
    // [50,60) and [70,80).
    assert_eq!(run(&mut s, 4_500), (5, 1));
    assert_eq!(marks(&s), 3);
    assert_eq!(
        s.gaps("agent-1").unwrap(),
        vec![],
        "no false hole at [60,70)"
    );
    // Before 5_500, [50,60) is due too: it goes, and in the next run what waited for it.
    assert_eq!(run(&mut s, 5_500), (1, 1));
    assert_eq!(run(&mut s, 5_501), (1, 0));
    assert_eq!(marks(&s), 1, "[70,80) (committed at 6_000) stays");
    assert_eq!(s.gaps("agent-1").unwrap(), vec![]);
    assert_eq!(s.batch_count().unwrap(), 1);
    assert_eq!(run(&mut s, 5_501), (0, 0), "nothing more to do");
}

/// A batch carrying two ranges of one stream (records skipped between them) waited on its
/// own lower range: it was never deleted, nor was any later batch of the stream, and the
/// batch and watermark records grew for ever.
#[test]
fn a_batch_with_two_ranges_of_one_stream_is_not_held_back_by_itself() {
    let mut s = memory();
    let who = peer();
    let (h, p) = encode_batch(
        &who.agent_id,
        7,
        1,
        &[],
        vec![watermark(0, 50), watermark(60, 100)],
        100,
    );
    let batch = decode_batch(&h, &p, &who).unwrap();
    assert_eq!(s.commit(&who, &h, &batch, 1_000).unwrap(), stored(0, 0));
    send_range_at(&mut s, 2, 100, 110, 2_000);
    let p = s.prune(3_000, 10).unwrap();
    assert_eq!((p.batches, p.batches_waiting), (2, 0), "{p:?}");
    assert_eq!(s.batch_count().unwrap(), 0);
}

/// An event dated in the future (a wrong clock, a year guessed wrong) was kept for ever:
/// retention went by event time alone. It now counts as dated at most a day after its
/// chunk arrived; one dated within that day keeps its own time.
#[test]
fn events_dated_in_the_future_are_pruned_a_day_after_they_arrived() {
    const DAY: i64 = FUTURE_SKEW_MS;
    let mut s = memory();
    // Committed at 1_001 and 1_002 (`send`): one a century ahead, one an hour ahead.
    let century = 100 * 365 * DAY;
    assert_eq!(
        send(&mut s, 1, &[event("far", century)], vec![]),
        stored(1, 0)
    );
    assert_eq!(
        send(&mut s, 2, &[event("near", 3_600_000)], vec![]),
        stored(1, 0)
    );
    fn before(s: &mut SqliteStore, ms: i64) -> u64 {
        let mut events = 0;
        loop {
            let p = s.prune(ms, 10).unwrap();
            events += p.events;
            if !p.is_full_slice(10) {
                return events;
            }
        }
    }
    assert_eq!(before(&mut s, 3_600_000), 0, "neither is past yet");
    assert_eq!(
        before(&mut s, 3_600_001),
        1,
        "the hour-ahead one by its own time"
    );
    assert_eq!(s.get_event("acme", "near").unwrap(), None);
    assert!(s.get_event("acme", "far").unwrap().is_some());
    assert_eq!(before(&mut s, 1_001 + DAY), 0);
    assert_eq!(
        before(&mut s, 1_001 + DAY + 1),
        1,
        "the century-ahead one at its arrival + 1 day"
    );
    assert_eq!(s.event_count().unwrap(), 0);
}

/// A store of schema 11 keeps its chunks' rows as they are (no row is rewritten, their
/// documents with them) but for those dated past now + a day, which count as arriving at
/// the migration; a chunk an older `serve` stores without `retain_time` goes by its
/// newest event time.
#[test]
fn the_migration_caps_only_chunks_dated_in_the_future() {
    let db = TempDb::new("v11-retain");
    let century = 100 * 365 * FUTURE_SKEW_MS;
    {
        let mut s = db.open();
        assert_eq!(
            send(&mut s, 1, &[event("far", century)], vec![]),
            stored(1, 0)
        );
        assert_eq!(send(&mut s, 2, &[event("old", 5)], vec![]), stored(1, 0));
        s.conn
            .execute_batch(
                "DROP INDEX chunks_retain; ALTER TABLE chunks DROP COLUMN retain_time; \
                 DROP TRIGGER agents_enrolled_signed; DROP TRIGGER agents_renewal_signed; \
                 ALTER TABLE agents DROP COLUMN last_signed_ms; PRAGMA user_version = 11;",
            )
            .unwrap();
    }
    let mut s = db.open();
    let retain: Vec<Option<i64>> = s
        .conn
        .prepare("SELECT retain_time FROM chunks ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let now = crate::io::clock::now_ms();
    assert_eq!(retain[1], None, "a chunk of the past keeps its row");
    let capped = retain[0].expect("the future one is capped");
    assert!(
        (now..=now + 2 * FUTURE_SKEW_MS).contains(&capped),
        "{capped} vs now {now}"
    );
    assert_eq!(s.prune(6, 10).unwrap().events, 1, "the old one by its time");
    assert_eq!(
        s.prune(capped + 1, 10).unwrap().events,
        1,
        "the far one by now + a day"
    );
    // An older `serve` on the migrated file stores chunks without `retain_time`.
    assert_eq!(send(&mut s, 3, &[event("new", 50)], vec![]), stored(1, 0));
    s.conn
        .execute_batch("UPDATE chunks SET retain_time = NULL")
        .unwrap();
    assert_eq!(s.prune(50, 10).unwrap().events, 0);
    assert_eq!(s.prune(51, 10).unwrap().events, 1);
}

/// Retention runs under the write lock, a slice at a time: each of its statements must
/// find its rows through an index, or every slice reads whole tables (the chunks'
/// documents included) while ingest waits.
#[test]
fn retention_reads_through_indexes_not_whole_tables() {
    let s = memory();
    s.conn
        .execute_batch("CREATE TEMP TABLE IF NOT EXISTS pruned_chunks (id INTEGER PRIMARY KEY)")
        .unwrap();
    let plan = |sql: &str| -> String {
        let mut q = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        // Parameters unbound (NULL): the plan does not depend on their values.
        let mut rows = q.raw_query();
        let mut steps = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            steps.push(r.get::<_, String>(3).unwrap());
        }
        steps.join("; ")
    };
    for sql in [
        PRUNE_CHUNKS,
        PRUNE_POSTINGS,
        PRUNE_DUE_BATCHES,
        PRUNE_WAITING,
        "DELETE FROM watermarks WHERE agent_id = ?1 AND epoch = ?2 AND seq = ?3",
    ] {
        let p = plan(sql);
        for table in ["chunks", "postings", "batches", "watermarks"] {
            assert!(!p.contains(&format!("SCAN {table}")), "{sql}\n{p}");
        }
    }
}

/// A document is read only from a chunk of the tenant searched: a row pointing at a chunk
/// id that now holds another tenant's batch (deleted by retention and its id reused
/// between a search's two reads) is an error, never the other tenant's line.
#[test]
fn a_search_never_returns_a_line_of_another_tenants_chunk() {
    let mut s = memory();
    assert_eq!(send(&mut s, 1, &[event("u1", 10)], vec![]), stored(1, 0));
    assert!(s.get_event("acme", "u1").unwrap().is_some());
    s.conn
        .execute("UPDATE chunks SET tenant = 'other'", [])
        .unwrap();
    let found = s.find("acme", &Key::User("bob"), i64::MIN, i64::MAX, 10);
    assert!(
        !matches!(&found, Ok(v) if !v.is_empty()),
        "another tenant's line: {found:?}"
    );
    assert!(!matches!(s.get_event("acme", "u1"), Ok(Some(_))));
}

/// Search entries keep a name as its text: with numeric affinity, user "0123" and user
/// "123" of one chunk were both the integer 123, one entry took the other's place, and a
/// search for "123" before the later one's time found nothing.
#[test]
fn names_that_look_like_numbers_keep_their_own_search_entries() {
    let mut s = memory();
    let named = |uid: &str, time: i64, user: &str| {
        let mut e = event(uid, time);
        e["user"] = json!({"name": user});
        e
    };
    assert_eq!(
        send(
            &mut s,
            1,
            &[
                named("a", 50, "0123"),
                named("b", 10, "123"),
                named("c", 50, "123")
            ],
            vec![]
        ),
        stored(3, 0)
    );
    let uids = |v: Vec<Value>| -> Vec<String> {
        v.iter()
            .map(|e| e["metadata"]["uid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        uids(s.find("acme", &Key::User("123"), 0, 20, 10).unwrap()),
        ["b"]
    );
    assert_eq!(
        uids(s.find("acme", &Key::User("0123"), 0, 100, 10).unwrap()),
        ["a"]
    );
}

/// A store at the current schema is opened without the write lock: the CLI's queries
/// beside a running `serve` (holding a commit or a prune slice) neither wait for it nor
/// fail after the busy timeout.
#[test]
fn opening_a_current_store_takes_no_write_lock() {
    let db = TempDb::new("read-open");
    let mut writer = db.open();
    assert_eq!(
        send(&mut writer, 1, &[event(&format!("{:032x}", 5), 1)], vec![]),
        stored(1, 0)
    );
    writer
        .conn
        .execute_batch("BEGIN IMMEDIATE; UPDATE agents SET hostname = hostname;")
        .unwrap();
    let config = SqliteConfig {
        busy_timeout: std::time::Duration::from_millis(50),
        ..SqliteConfig::default()
    };
    let reader = SqliteStore::open(&db.0, config).expect("opened beside the writer");
    assert_eq!(
        reader
            .counts_by_class()
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>(),
        1
    );
    writer.conn.execute_batch("COMMIT").unwrap();
}
