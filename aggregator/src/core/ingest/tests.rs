use serde_json::json;

use super::*;

/// An event shaped like the agent's sshd failures.
pub(crate) fn event(uid: &str, time: i64) -> Value {
    json!({
        "class_uid": 3002, "class_name": "Authentication", "activity_id": 1,
        "type_uid": 300201, "severity_id": 2, "status_id": 2, "time": time,
        "metadata": {
            "version": "1.8.0", "uid": uid, "log_source": "/var/log/auth.log",
            "product": {"name": "Vedette", "vendor_name": "Vedette", "version": "0.1.0"},
            "reporter": {"hostname": "web-01"}
        },
        "message": "Failed password for bob from 10.71.52.174 port 49564 ssh2",
        "device": {"hostname": "web-01", "ip": "192.0.2.10"},
        "user": {"name": "bob"},
        "src_endpoint": {"ip": "10.71.52.174", "port": 49564},
        "raw_data": "Jan 15 00:00:00 web-01 sshd[48898]: Failed password for bob"
    })
}

pub(crate) fn peer() -> Peer {
    Peer {
        agent_id: "agent-1".into(),
        tenant: "acme".into(),
        serial: "01ab".into(),
    }
}

pub(crate) fn watermark(first: u64, end: u64) -> Watermark {
    Watermark {
        source: "/var/log/auth.log".into(),
        stream: "dev=2049,ino=12,head=ab12".into(),
        unit: "byte".into(),
        first,
        end,
        records: 1,
    }
}

/// Header and payload over raw NDJSON bytes, for the tests that need bad lines.
fn raw_batch(raw: &[u8], events: u32) -> (BatchHeader, Vec<u8>) {
    let payload = zstd::bulk::compress(raw, 3).unwrap();
    let (mut h, _) = encode_batch("agent-1", 7, 1, &[], vec![], 0);
    h.events = events;
    h.raw_len = raw.len() as u64;
    h.zstd_len = payload.len() as u64;
    h.checksum = xxh3_64(raw);
    (h, payload)
}

#[test]
fn decodes_fields_and_overwrites_the_tenant_with_the_certificates() {
    let mut a = event("u1", 1_000);
    a["metadata"]["tenant_uid"] = json!("someone-else");
    let mut b = event("u2", 2_000);
    b.as_object_mut().unwrap().remove("user");
    b["actor"] = json!({"user": {"name": "carol"}});
    b["count"] = json!(41);
    b.as_object_mut().unwrap().remove("device");
    let (h, p) = encode_batch("agent-1", 7, 1, &[a, b], vec![watermark(0, 120)], 5);
    assert_eq!((h.first_time, h.last_time), (1_000, 2_000));
    let d = decode_batch(&h, &p, &peer()).unwrap();
    assert_eq!(d.watermarks, vec![watermark(0, 120)]);
    let [r1, r2] = &d.rows[..] else {
        panic!("two rows")
    };
    assert_eq!(r1.uid, "u1");
    assert_eq!(
        (r1.time_ms, r1.class_uid, r1.type_uid, r1.severity_id),
        (1_000, 3002, 300201, 2)
    );
    assert_eq!(r1.device.as_deref(), Some("web-01"));
    assert_eq!(r1.device_ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(r1.user.as_deref(), Some("bob"));
    assert_eq!(r1.src_ip.as_deref(), Some("10.71.52.174"));
    assert_eq!(r1.dst_ip, None);
    assert_eq!(r1.count, 1);
    let text = ChunkText::open(&d.chunk.data, d.chunk.raw_len).unwrap();
    assert_eq!(text.len(), 2);
    let doc = text.line(0).unwrap();
    assert_eq!(doc["metadata"]["tenant_uid"], "acme");
    assert_eq!(doc["message"], event("u1", 1_000)["message"]);
    // Absent tenant_uid is added, the actor's user is the fallback, count is kept.
    assert_eq!(r2.user.as_deref(), Some("carol"));
    assert_eq!(r2.count, 41);
    assert_eq!(r2.device, None);
    assert_eq!(text.line(1).unwrap()["metadata"]["tenant_uid"], "acme");
    assert_eq!(text.line(1).unwrap()["count"], 41);
    assert!(matches!(text.line(2), Err(DocError::NoLine(2))));
}

#[test]
fn a_batch_of_no_events_still_carries_its_watermarks_and_the_last_newline_is_optional() {
    let (h, p) = encode_batch("agent-1", 7, 1, &[], vec![watermark(0, 10)], 0);
    let d = decode_batch(&h, &p, &peer()).unwrap();
    assert!(d.rows.is_empty());
    assert_eq!(d.watermarks.len(), 1);
    let line = serde_json::to_vec(&event("u1", 1)).unwrap();
    let (h, p) = raw_batch(&line, 1);
    assert_eq!(decode_batch(&h, &p, &peer()).unwrap().rows.len(), 1);
}

#[test]
fn a_batch_claiming_another_agent_is_rejected_in_those_words() {
    let (h, p) = encode_batch("agent-2", 7, 1, &[event("u1", 1)], vec![], 0);
    let e = decode_batch(&h, &p, &peer()).unwrap_err();
    assert_eq!(
        e.outcome(),
        Some(AckOutcome::Rejected {
            reason: "claims agent agent-2, certificate says agent-1".into()
        })
    );
}

#[test]
fn a_payload_of_another_length_than_the_header_says_is_rejected() {
    let (h, mut p) = encode_batch("agent-1", 7, 1, &[event("u1", 1)], vec![], 0);
    p.push(0);
    assert!(matches!(
        decode_batch(&h, &p, &peer()),
        Err(IngestError::PayloadLength { .. })
    ));
}

#[test]
fn a_raw_length_over_the_limit_is_rejected_before_decompressing() {
    let (mut h, p) = encode_batch("agent-1", 7, 1, &[event("u1", 1)], vec![], 0);
    h.raw_len = wire::MAX_RAW + 1;
    assert_eq!(
        decode_batch(&h, &p, &peer()),
        Err(IngestError::TooLarge {
            raw_len: wire::MAX_RAW + 1
        })
    );
}

#[test]
fn a_zstd_bomb_stops_at_the_announced_raw_length() {
    // 64 MiB of zeros compress to a few KiB; the header admits 1 KiB.
    let zeros = vec![0u8; 64 << 20];
    let payload = zstd::bulk::compress(&zeros, 1).unwrap();
    let (mut h, _) = raw_batch(b"", 0);
    h.raw_len = 1024;
    h.zstd_len = payload.len() as u64;
    assert!(matches!(
        decode_batch(&h, &payload, &peer()),
        Err(IngestError::Decompress { raw_len: 1024, .. })
    ));
    // Garbage is the same refusal, not a panic.
    let (mut h, _) = raw_batch(b"", 0);
    h.raw_len = 10;
    h.zstd_len = 4;
    assert!(matches!(
        decode_batch(&h, b"junk", &peer()),
        Err(IngestError::Decompress { .. })
    ));
}

#[test]
fn a_payload_shorter_than_the_announced_raw_length_is_rejected() {
    let (mut h, p) = encode_batch("agent-1", 7, 1, &[event("u1", 1)], vec![], 0);
    h.raw_len += 10;
    assert!(matches!(
        decode_batch(&h, &p, &peer()),
        Err(IngestError::RawLength { .. })
    ));
}

#[test]
fn a_wrong_checksum_is_rejected() {
    let (mut h, p) = encode_batch("agent-1", 7, 1, &[event("u1", 1)], vec![], 0);
    h.checksum ^= 1;
    assert!(matches!(
        decode_batch(&h, &p, &peer()),
        Err(IngestError::Checksum { .. })
    ));
}

#[test]
fn a_wrong_event_count_is_rejected() {
    let (mut h, p) = encode_batch(
        "agent-1",
        7,
        1,
        &[event("u1", 1), event("u2", 2)],
        vec![],
        0,
    );
    h.events = 3;
    assert_eq!(
        decode_batch(&h, &p, &peer()),
        Err(IngestError::EventCount {
            header: 3,
            actual: 2
        })
    );
}

#[test]
fn a_malformed_line_rejects_the_batch_with_its_line_number() {
    let good = serde_json::to_string(&event("u1", 1)).unwrap();
    let mut no_uid = event("u3", 1);
    no_uid["metadata"].as_object_mut().unwrap().remove("uid");
    let mut num_uid = event("u3", 1);
    num_uid["metadata"]["uid"] = json!(12);
    let mut no_time = event("u3", 1);
    no_time.as_object_mut().unwrap().remove("time");
    let mut big_class = event("u3", 1);
    big_class["class_uid"] = json!(-1);
    let cases = [
        ("{not json".to_owned(), "not JSON"),
        ("[1,2]".to_owned(), "not a JSON object"),
        (String::new(), "not JSON"),
        (json!({"time": 1}).to_string(), "no metadata object"),
        (no_uid.to_string(), "no metadata.uid"),
        (num_uid.to_string(), "no metadata.uid"),
        (no_time.to_string(), "no integer time"),
        (big_class.to_string(), "class_uid -1 out of range"),
    ];
    for (bad, why) in cases {
        let raw = format!("{good}\n{good}\n{bad}\n{good}\n");
        let (h, p) = raw_batch(raw.as_bytes(), 4);
        match decode_batch(&h, &p, &peer()) {
            Err(IngestError::BadLine { line: 3, reason }) => {
                assert!(reason.contains(why), "{bad:?}: {reason}")
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn a_malformed_watermark_is_rejected() {
    for w in [watermark(10, 5), watermark(0, u64::MAX)] {
        let (h, p) = encode_batch("agent-1", 7, 1, &[], vec![watermark(0, 1), w], 0);
        assert!(matches!(
            decode_batch(&h, &p, &peer()),
            Err(IngestError::BadWatermark { index: 1, .. })
        ));
    }
}

#[test]
fn only_internal_errors_go_unacknowledged() {
    assert_eq!(IngestError::Internal("oom".into()).outcome(), None);
    assert!(
        IngestError::Checksum {
            header: 1,
            actual: 2
        }
        .is_peer_fault()
    );
}

/// The chunk size per event: `VEDETTE_NDJSON=/path/to/events.ndjson cargo test -p
/// vedette-aggregator chunk_size -- --ignored --nocapture` (e.g. the output of
/// `vedette-agent normalize` over the bench workloads), against the same events
/// compressed one by one (the layout of schema 1).
#[test]
#[ignore = "needs VEDETTE_NDJSON"]
fn chunk_size_on_a_real_batch() {
    let raw = std::fs::read(std::env::var("VEDETTE_NDJSON").unwrap()).unwrap();
    let mut tagged = Vec::new();
    for line in raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut v: Value = serde_json::from_slice(line).unwrap();
        v["metadata"]["tenant_uid"] = json!("acme");
        serde_json::to_writer(&mut tagged, &v).unwrap();
        tagged.push(b'\n');
    }
    let n = tagged.iter().filter(|&&b| b == b'\n').count();
    let (h, p) = raw_batch(&tagged, n as u32);
    let d = decode_batch(&h, &p, &peer()).unwrap();
    assert_eq!(d.chunk.data, p, "stored as sent");
    let one_by_one: usize = tagged
        .split(|&b| b == b'\n')
        .map(|l| zstd::bulk::compress(l, 1).unwrap().len())
        .sum();
    println!(
        "{n} events, {:.0} B JSON/event; as one chunk: {:.0} B/event; one by one: {:.0} B/event",
        tagged.len() as f64 / n as f64,
        d.chunk.data.len() as f64 / n as f64,
        one_by_one as f64 / n as f64,
    );
}

#[test]
fn a_batch_whose_lines_all_name_the_certificates_tenant_is_stored_as_sent_else_rewritten() {
    let mut own = event("u1", 1);
    own["metadata"]["tenant_uid"] = json!("acme");
    let (h, p) = encode_batch("agent-1", 7, 1, &[own.clone(), own.clone()], vec![], 0);
    let d = decode_batch(&h, &p, &peer()).unwrap();
    assert_eq!(d.chunk.data, p);
    assert_eq!(d.chunk.raw_len, h.raw_len);
    // One line of another tenant: that line rewritten, the other kept byte for byte.
    let mut other = event("u2", 2);
    other["metadata"]["tenant_uid"] = json!("evil");
    let (h, p) = encode_batch(
        "agent-1",
        7,
        2,
        &[own.clone(), other, own.clone()],
        vec![],
        0,
    );
    let d = decode_batch(&h, &p, &peer()).unwrap();
    assert_ne!(d.chunk.data, p);
    let text = zstd::bulk::decompress(&d.chunk.data, d.chunk.raw_len as usize).unwrap();
    let raw = zstd::bulk::decompress(&p, h.raw_len as usize).unwrap();
    assert_eq!(
        text.split(|&b| b == b'\n').next(),
        raw.split(|&b| b == b'\n').next()
    );
    let text = ChunkText::open(&d.chunk.data, d.chunk.raw_len).unwrap();
    assert_eq!(text.line(1).unwrap()["metadata"]["tenant_uid"], "acme");
    assert_eq!(text.line(1).unwrap()["metadata"]["uid"], "u2");
    assert_eq!(text.line(0).unwrap(), own);
    // A line after the rewritten one is kept as sent, in its place.
    assert_eq!(text.line(2).unwrap(), own);
    assert_eq!(text.len(), 3);
    assert_eq!(d.rows.len(), 3);
}

#[test]
fn a_line_that_already_names_the_certificates_tenant_is_read_with_the_same_fields() {
    let mut reader = fields::FieldReader::default();
    for mut e in [
        event("u1", 1_000),
        {
            let mut b = event("u2", 2_000);
            b.as_object_mut().unwrap().remove("user");
            b["actor"] = json!({"user": {"name": "ca\"rol"}});
            b["count"] = json!(41);
            b
        },
        {
            // Nulls read as absent; escapes are undone; other keys are not looked at.
            let mut c = event("u\\3", 3_000);
            c["device"] = json!({"hostname": "h\u{e9}\n", "ip": null});
            c["src_endpoint"] = json!(null);
            c["count"] = json!(null);
            c["unmapped"] = json!({"metadata": {"uid": "not this one"}, "time": "x"});
            c
        },
    ] {
        e["metadata"]["tenant_uid"] = json!("acme");
        let line = serde_json::to_vec(&e).unwrap();
        let fast = reader.row(&line, "acme").expect("takes the fast path");
        let mut json = Vec::new();
        let slow = row(e.clone(), "acme", &mut json).unwrap();
        assert_eq!(fast, slow);
        assert_eq!(serde_json::from_slice::<Value>(&json).unwrap(), e);
        // Another tenant in the line: not the fast path (the general one rewrites it).
        assert!(reader.row(&line, "other").is_none());
    }
}

#[test]
fn the_fast_path_declines_what_it_cannot_vouch_for() {
    let mut reader = fields::FieldReader::default();
    let good = r#"{"metadata":{"uid":"u1","tenant_uid":"acme"},"time":5,"class_uid":3002,"type_uid":300201,"severity_id":1}"#;
    assert!(reader.row(good.as_bytes(), "acme").is_some());
    for bad in [
        "[1]",
        "",
        "{",
        r#"{"metadata":{"uid":"","tenant_uid":"acme"},"time":5,"class_uid":3002,"type_uid":300201,"severity_id":1}"#,
        // A repeated indexed key: which one counts is the general path's call.
        r#"{"metadata":{"uid":"u1","tenant_uid":"acme"},"time":5,"time":6,"class_uid":3002,"type_uid":300201,"severity_id":1}"#,
        r#"{"metadata":{"uid":"u1","uid":"u2","tenant_uid":"acme"},"time":5,"class_uid":3002,"type_uid":300201,"severity_id":1}"#,
        // Wrong types and ranges.
        r#"{"metadata":{"uid":"u1","tenant_uid":"acme"},"time":5.5,"class_uid":3002,"type_uid":300201,"severity_id":1}"#,
        r#"{"metadata":{"uid":"u1","tenant_uid":"acme"},"time":5,"class_uid":3002,"type_uid":300201,"severity_id":300}"#,
        r#"{"metadata":{"uid":"u1","tenant_uid":"acme"},"time":5,"class_uid":-1,"type_uid":300201,"severity_id":1}"#,
        r#"{"metadata":{"uid":"u1","tenant_uid":"acme"},"time":5,"class_uid":3002,"type_uid":300201,"severity_id":1,"count":-2}"#,
        r#"{"metadata":{"uid":"u1","tenant_uid":"acme"},"time":5,"class_uid":3002,"type_uid":300201,"severity_id":1,"device":{"hostname":7}}"#,
        r#"{"metadata":{"uid":"u1","tenant_uid":"acme"},"time":5,"class_uid":3002,"type_uid":300201,"severity_id":1,"user":"bob"}"#,
        // A missing required member.
        r#"{"metadata":{"uid":"u1","tenant_uid":"acme"},"class_uid":3002,"type_uid":300201,"severity_id":1}"#,
    ] {
        assert!(reader.row(bad.as_bytes(), "acme").is_none(), "{bad}");
    }
    let mut invalid = good.as_bytes().to_vec();
    invalid[20] = 0xff;
    assert!(reader.row(&invalid, "acme").is_none());
    // Still reads after all that.
    assert!(reader.row(good.as_bytes(), "acme").is_some());
}

proptest::proptest! {
    /// Whatever an agent (or anyone holding a certificate) sends, decoding answers with a
    /// batch or a reason, never a panic.
    #[test]
    fn any_header_and_payload_decode_or_are_refused_never_panic(
        events in 0u32..5,
        raw_len in 0u64..4096,
        checksum: u64,
        payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        lines in proptest::collection::vec("[ -~]{0,40}", 0..4),
    ) {
        let who = peer();
        let mut d = Decoder::new().unwrap();
        let (mut h, _) = encode_batch("agent-1", 7, 1, &[], vec![], 0);
        h.events = events;
        h.raw_len = raw_len;
        h.checksum = checksum;
        h.zstd_len = payload.len() as u64;
        let _ignored = d.decode(&h, &payload, &who);
        // Well-framed payloads of arbitrary lines: the checks pass, the lines are judged.
        let raw = lines.join("\n");
        let (h, p) = raw_batch(raw.as_bytes(), lines.len() as u32);
        let _ignored = d.decode(&h, &p, &who);
    }
}

/// Lines built from the indexed keys with values of every shape (right, wrong type, null,
/// out of range, escaped, repeated), in any order, beside keys nobody indexes. Mostly
/// right, so that the fast path answers for a good share of them.
fn field_line() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let pick = |v: &'static [&'static str]| proptest::sample::select(v.to_vec());
    let ints: &'static [&str] = &[
        "5",
        "0",
        "-1",
        "255",
        "300",
        "3002",
        "4294967296",
        "5.5",
        "1e3",
        "\"5\"",
        "null",
        "18446744073709551615",
    ];
    let int = move |key: &'static str, good: &'static str| {
        prop_oneof![3 => Just(good), 1 => pick(ints)].prop_map(move |v| format!("\"{key}\":{v}"))
    };
    let metadata = prop_oneof![
        3 => Just(r#""metadata":{"uid":"u1","tenant_uid":"acme"}"#),
        1 => pick(&[
            r#""metadata":{"tenant_uid":"acme","uid":"u\n\u00e9\"2","x":[1,{"uid":"no"}]}"#,
            r#""metadata":{"uid":"","tenant_uid":"acme"}"#,
            r#""metadata":{"uid":"u1"}"#,
            r#""metadata":{"uid":"u1","tenant_uid":"other"}"#,
            r#""metadata":{"uid":7,"tenant_uid":"acme"}"#,
            r#""metadata":{"uid":"u1","uid":"u2","tenant_uid":"acme"}"#,
            r#""metadata":null"#,
        ]),
    ]
    .prop_map(str::to_owned);
    let optional = prop_oneof![
        pick(&[
            r#""device":{"hostname":"h\t1","ip":"10.0.0.1"}"#,
            r#""device":{"hostname":null}"#,
            r#""device":{"hostname":7}"#,
            r#""device":{}"#,
            r#""device":"x""#,
            r#""device":null"#,
            r#""device":{"hostname":"a","hostname":"b"}"#,
            r#""user":{"name":"bob"}"#,
            r#""user":{"name":null}"#,
            r#""user":{"name":1}"#,
            r#""user":"bob""#,
            r#""user":{}"#,
            r#""actor":{"user":{"name":"carol"}}"#,
            r#""actor":{"user":null}"#,
            r#""actor":{"user":"x"}"#,
            r#""actor":null"#,
            r#""src_endpoint":{"ip":"192.0.2.1"}"#,
            r#""dst_endpoint":{"ip":"2001:db8::1"}"#,
            r#""src_endpoint":{"ip":null}"#,
            r#""dst_endpoint":{"port":1}"#,
            r#""src_endpoint":{"ip":[1]}"#,
            r#""dst_endpoint":null"#,
            r#""count":3"#,
            r#""count":null"#,
            r#""count":-1"#,
            r#""count":1.5"#,
            r#""time":6"#,
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}".prop_map(|k| format!("\"{k}\":{{\"time\":\"x\",\"a\":[true,null,1.5]}}")),
    ];
    (
        metadata,
        int("time", "1700000000123"),
        int("class_uid", "3002"),
        int("type_uid", "300201"),
        int("severity_id", "1"),
        proptest::collection::vec(optional, 0..6),
    )
        .prop_flat_map(|(m, t, c, ty, s, extra)| {
            let mut all = vec![m, t, c, ty, s];
            all.extend(extra);
            Just(all).prop_shuffle()
        })
        .prop_map(|m| format!("{{{}}}", m.join(",")))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
    /// The fast path never answers differently from the general one: whenever it reads a
    /// row, the general path reads the same row from the same line. And no line (nor any
    /// bytes) makes it panic.
    #[test]
    fn the_fast_path_agrees_with_the_general_one_whenever_it_answers(
        line in field_line(),
        junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
    ) {
        let mut reader = fields::FieldReader::default();
        if let Some(fast) = reader.row(line.as_bytes(), "acme") {
            let value: Value = serde_json::from_str(&line).expect("the fast path read valid JSON");
            let slow = row(value, "acme", &mut Vec::new()).expect("the general path accepts it too");
            proptest::prop_assert_eq!(fast, slow);
        }
        let _ignored = reader.row(&junk, "acme");
    }
}

/// A chunk holds as many lines as the decoder counted in its batch: none for an empty
/// payload or a lone LF (the fuzz body found an empty chunk reading as one empty line).
#[test]
fn a_chunk_has_the_lines_its_batch_was_counted_with() {
    for (raw, lines) in [
        (&b""[..], 0),
        (b"\n", 0),
        (b"{\"a\":1}", 1),
        (b"{\"a\":1}\n", 1),
        (b"{\"a\":1}\n{\"b\":2}", 2),
    ] {
        let data = zstd::bulk::compress(raw, 1).unwrap();
        let text = ChunkText::open(&data, raw.len() as u64).unwrap();
        assert_eq!(text.len(), lines, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(text.is_empty(), lines == 0);
        for i in 0..lines {
            assert!(text.line(i).is_ok());
        }
        assert!(text.line(lines).is_err());
    }
}

#[test]
fn a_line_too_long_or_too_dense_to_parse_safely_rejects_the_batch_before_parsing() {
    let mut ok = event("u1", 1);
    ok["metadata"]["tenant_uid"] = json!("acme");
    let mut line = serde_json::to_vec(&ok).unwrap();
    line.push(b'\n');
    // As long as allowed, and dense (a value every 2 bytes) up to the limit: taken.
    let mut dense = event("u2", 2);
    dense["unmapped"] = Value::Array(vec![json!(0); MAX_LINE_VALUES - 100]);
    let mut raw = line.clone();
    serde_json::to_writer(&mut raw, &dense).unwrap();
    raw.push(b'\n');
    let (h, p) = raw_batch(&raw, 2);
    let b = decode_batch(&h, &p, &peer()).expect("within the limits");
    assert_eq!(b.rows.len(), 2);
    // Over the value count: refused with its line number, the count named.
    dense["unmapped"] = Value::Array(vec![json!(0); MAX_LINE_VALUES]);
    let mut raw = line.clone();
    serde_json::to_writer(&mut raw, &dense).unwrap();
    let (h, p) = raw_batch(&raw, 2);
    let e = decode_batch(&h, &p, &peer()).unwrap_err();
    assert!(
        matches!(&e, IngestError::BadLine { line: 2, reason } if reason.contains("JSON values, over the 1048576")),
        "{e}"
    );
    // Over the length: refused before its values are even counted.
    let mut long = event("u3", 3);
    long["message"] = json!("x".repeat(MAX_LINE));
    let mut raw = line;
    serde_json::to_writer(&mut raw, &long).unwrap();
    let (h, p) = raw_batch(&raw, 2);
    let e = decode_batch(&h, &p, &peer()).unwrap_err();
    assert!(
        matches!(&e, IngestError::BadLine { line: 2, reason } if reason.contains("over the 32 MiB")),
        "{e}"
    );
    assert!(e.outcome().is_some(), "the peer's fault: refused for good");
}

/// A line is stored only if it reads back: the fast path's parser (simd-json) allowed 1024
/// levels of nesting where the documents' reader (serde_json) stops at 128, so a line
/// nested deeper than that was acknowledged, stored, and then failed every search that
/// came upon it. Around the limit, each depth is either refused or read back.
#[test]
fn every_line_stored_reads_back_whatever_its_nesting() {
    for depth in 120..=140 {
        let mut e = event("u1", 1_000);
        e["metadata"]["tenant_uid"] = json!("acme");
        let text = serde_json::to_string(&e).unwrap();
        let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let line = format!(
            "{},\"unmapped\":{{\"deep\":{deep}}}}}",
            &text[..text.len() - 1]
        );
        let (h, p) = raw_batch(line.as_bytes(), 1);
        match decode_batch(&h, &p, &peer()) {
            Err(_) => assert!(depth >= 124, "refused at depth {depth}"),
            Ok(d) => {
                let text = ChunkText::open(&d.chunk.data, d.chunk.raw_len).unwrap();
                text.line(0)
                    .unwrap_or_else(|e| panic!("depth {depth} stored but unreadable: {e}"));
            }
        }
    }
}
