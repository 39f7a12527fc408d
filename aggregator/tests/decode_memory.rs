//! The memory a batch is charged against the server's budget before its payload is read
//! ([`memory_charge`], from the header alone) covers what decoding it holds at its peak,
//! measured here with a counting allocator, for the batch shapes that cost the most per
//! byte: ordinary OCSF events, the smallest lines that still make a row with every indexed
//! field, and lines the aggregator must parse whole and rewrite (no tenant).
//!
//! One test in this binary: the heap profiler is process-wide.

use serde_json::{Value, json};
use vedette_aggregator::core::ingest::{
    Peer, SMALL_LINE, decode_batch, encode_batch, line_parse_bytes, memory_charge,
};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const TENANT: &str = "acme";

/// An sshd failure as the agent writes it (~1.7 KB), `i` making it distinct.
fn ocsf(i: usize, tenant: Option<&str>) -> Value {
    let mut e = json!({
        "class_uid": 3002, "class_name": "Authentication", "category_uid": 3,
        "category_name": "Identity & Access Management", "activity_id": 1,
        "activity_name": "Logon", "type_uid": 300201, "type_name": "Authentication: Logon",
        "severity_id": 2, "severity": "Low", "status_id": 2, "status": "Failure",
        "time": 1_768_435_200_000_i64 + i as i64, "timezone_offset": 0,
        "metadata": {
            "version": "1.8.0",
            "product": {"name": "Vedette", "vendor_name": "Vedette", "version": "0.1.0"},
            "uid": format!("{i:032x}"), "original_time": "Jan 15 00:00:00",
            "log_source": "/var/log/auth.log", "log_provider": "sshd", "log_name": "sshd",
            "log_format": "file", "event_code": "sshd.failed", "reporter": {"hostname": "vm"},
            "profiles": ["host"], "sequence": i
        },
        "message": format!("Failed password for bob from 10.71.{}.{} port 49564 ssh2", i % 250, i % 199),
        "status_detail": "Failed password",
        "device": {"hostname": "web-02", "type_id": 0, "type": "Unknown"},
        "actor": {"process": {"pid": 48898, "name": "sshd"}},
        "user": {"name": "bob"}, "auth_protocol_id": 99, "auth_protocol": "password",
        "logon_type_id": 10, "logon_type": "Remote Interactive", "is_remote": true,
        "service": {"name": "sshd"},
        "src_endpoint": {"ip": format!("10.71.{}.{}", i % 250, i % 199), "port": 49564},
        "dst_endpoint": {"ip": "10.0.0.1", "port": 22},
        "observables": [
            {"name": "device.hostname", "type_id": 1, "type": "Hostname", "value": "web-02"},
            {"name": "src_endpoint.ip", "type_id": 2, "type": "IP Address", "value": "10.71.52.174"},
            {"name": "user.name", "type_id": 4, "type": "User Name", "value": "bob"}
        ],
        "raw_data": format!("Jan 15 00:00:00 web-02 sshd[48898]: Failed password for bob from 10.71.52.174 port 49564 ssh2 #{i}"),
        "unmapped": {"syslog": {"procid": "48898"}}
    });
    if let Some(t) = tenant {
        e["metadata"]["tenant_uid"] = t.into();
    }
    e
}

/// The smallest line that makes a row with every indexed string set (one byte each, so
/// each is its own allocation): the most row per byte of text.
fn tiny(i: usize, tenant: Option<&str>) -> Value {
    let mut e = json!({
        "metadata": {"uid": format!("{i:x}")},
        "time": 1, "class_uid": 0, "type_uid": 0, "severity_id": 0,
        "device": {"hostname": "h", "ip": "1"}, "user": {"name": "u"},
        "src_endpoint": {"ip": "s"}, "dst_endpoint": {"ip": "d"}
    });
    if let Some(t) = tenant {
        e["metadata"]["tenant_uid"] = t.into();
    }
    e
}

/// An event whose message is `n` bytes.
fn long_message(n: usize, tenant: Option<&str>) -> Value {
    let mut e = ocsf(0, tenant);
    e["message"] = "x".repeat(n).into();
    e
}

/// An event whose indexed strings (host, address, user, uid) are `n` bytes each: rows
/// whose strings live on the heap, as much as the text they come from.
fn long_indexed(i: usize, n: usize, tenant: Option<&str>) -> Value {
    let mut e = tiny(i, tenant);
    let long = |c: char| format!("{i:08x}{}", c.to_string().repeat(n));
    e["metadata"]["uid"] = long('u').into();
    e["device"] = json!({"hostname": long('h'), "ip": long('i')});
    e["user"] = json!({"name": long('n')});
    e["src_endpoint"] = json!({"ip": long('s')});
    e["dst_endpoint"] = json!({"ip": long('d')});
    e
}

/// An event carrying `n` bytes of the densest JSON there is (`[0,0,…]`: a value every two
/// bytes), the most parser memory per byte of text.
fn dense(n: usize, tenant: Option<&str>) -> Value {
    let mut e = tiny(0, tenant);
    e["unmapped"] = Value::Array(vec![Value::from(0); n / 2]);
    e
}

/// Decodes `events` as one batch: the peak of what decoding allocates, plus the payload the
/// server holds meanwhile, and what it is allowed: the batch's charge, plus the bound on
/// parsing its biggest line when that is over `SMALL_LINE` (parsed alone, server-wide).
fn measure(name: &str, events: &[Value]) -> (u64, u64) {
    let (header, payload) = encode_batch("agent-1", 1, 1, events, vec![], 0);
    let who = Peer {
        agent_id: "agent-1".into(),
        tenant: TENANT.into(),
        serial: "01ab".into(),
    };
    // Counts only what is allocated from here on, its peak included.
    let profiler = dhat::Profiler::builder().testing().build();
    let decoded = decode_batch(&header, &payload, &who).expect("a good batch");
    let peak = dhat::HeapStats::get().max_bytes as u64 + payload.len() as u64;
    assert_eq!(decoded.rows.len(), events.len());
    drop(decoded);
    drop(profiler);
    let big = events
        .iter()
        .map(|e| serde_json::to_vec(e).expect("serializes"))
        .filter(|l| l.len() > SMALL_LINE)
        .map(|l| line_parse_bytes(&l))
        .max()
        .unwrap_or(0);
    let charge = memory_charge(&header) + big;
    eprintln!(
        "{name}: {} events, raw {} B, zstd {} B: peak {peak} B, charged {charge} B ({:.2}x)",
        header.events,
        header.raw_len,
        header.zstd_len,
        charge as f64 / peak as f64
    );
    (peak, charge)
}

#[test]
fn the_charge_of_a_batch_covers_what_decoding_it_holds() {
    let shapes: Vec<(&str, Vec<Value>)> = vec![
        (
            "ocsf 1 MiB",
            (0..600).map(|i| ocsf(i, Some(TENANT))).collect(),
        ),
        (
            "ocsf 8 MiB",
            (0..4800).map(|i| ocsf(i, Some(TENANT))).collect(),
        ),
        (
            "ocsf, no tenant (rewritten)",
            (0..600).map(|i| ocsf(i, None)).collect(),
        ),
        (
            "tiny lines",
            (0..20_000).map(|i| tiny(i, Some(TENANT))).collect(),
        ),
        (
            "tiny lines, no tenant",
            (0..20_000).map(|i| tiny(i, None)).collect(),
        ),
        ("one event", vec![ocsf(0, Some(TENANT))]),
        (
            "long indexed strings, no tenant",
            (0..2_000).map(|i| long_indexed(i, 200, None)).collect(),
        ),
        ("a 1 MiB message", vec![long_message(1 << 20, Some(TENANT))]),
        (
            "a 1 MiB message, no tenant",
            vec![long_message(1 << 20, None)],
        ),
        (
            "a dense line just under SMALL_LINE",
            vec![dense(SMALL_LINE - 400, Some(TENANT))],
        ),
        (
            "a dense line just under SMALL_LINE, no tenant",
            vec![dense(SMALL_LINE - 400, None)],
        ),
        (
            "dense small lines, no tenant",
            (0..60).map(|_| dense(SMALL_LINE - 400, None)).collect(),
        ),
        ("a dense 256 KiB line", vec![dense(1 << 18, Some(TENANT))]),
        (
            "a dense 256 KiB line, no tenant",
            vec![dense(1 << 18, None)],
        ),
    ];
    let mut over = Vec::new();
    for (name, events) in &shapes {
        let (peak, charge) = measure(name, events);
        if peak > charge {
            over.push(format!("{name}: peak {peak} B over the charge {charge} B"));
        }
    }
    assert!(over.is_empty(), "{over:#?}");
}
