use super::*;

fn wm(source: &str, first: u64, end: u64) -> Watermark {
    Watermark {
        source: source.into(),
        stream: "dev=1,ino=2".into(),
        unit: "byte".into(),
        first,
        end,
        records: 1,
    }
}

#[test]
fn a_batch_round_trips_through_decode() {
    let mut b = Batcher::new(BatchConfig::default());
    b.push_event(b"{\"time\":20}\n", 20, 1000);
    b.push_event(b"{\"time\":10}", 10, 1001);
    b.note_records(wm("/var/log/auth.log", 0, 40), 1001);
    let batch = b.cut("agent-1", 7, 3, 1500).unwrap();
    assert!(b.is_empty());
    let (h, raw) = decode(&batch.bytes).unwrap();
    assert_eq!(h, batch.header);
    assert_eq!(raw, b"{\"time\":20}\n{\"time\":10}\n");
    assert_eq!((h.epoch, h.seq, h.events), (7, 3, 2));
    assert_eq!((h.first_time, h.last_time, h.created_ms), (10, 20, 1500));
    assert_eq!(h.checksum, xxh3_64(&raw));
    assert_eq!(h.watermarks, vec![wm("/var/log/auth.log", 0, 40)]);
    assert!(
        b.cut("agent-1", 7, 4, 1600).is_none(),
        "empty batcher cuts nothing"
    );
}

#[test]
fn contiguous_ranges_of_one_stream_merge_and_others_do_not() {
    let mut b = Batcher::new(BatchConfig::default());
    b.note_records(wm("a", 0, 10), 0);
    b.note_records(wm("b", 5, 6), 0);
    b.note_records(wm("a", 10, 25), 0);
    b.note_records(wm("a", 30, 31), 0); // a gap: a new range
    let mut other_stream = wm("a", 31, 40);
    other_stream.stream = "dev=1,ino=3".into();
    b.note_records(other_stream.clone(), 0);
    let h = b.cut("x", 1, 1, 0).unwrap().header;
    let mut merged = wm("a", 0, 25);
    merged.records = 2;
    assert_eq!(
        h.watermarks,
        vec![merged, wm("b", 5, 6), wm("a", 30, 31), other_stream]
    );
}

#[test]
fn a_batch_is_cut_before_it_carries_more_ranges_than_the_wire_allows() {
    // The aggregator refuses a header with more; the batcher never built one, whatever
    // the number of sources (a glob over thousands of files).
    let mut b = Batcher::new(BatchConfig::default());
    for i in 0..wire::MAX_WATERMARKS {
        let w = wm(&format!("/var/log/app/{i}.log"), 0, 10);
        assert!(!b.is_full_of_ranges(&w), "range {i}");
        b.note_records(w, 0);
    }
    let last = wm(
        &format!("/var/log/app/{}.log", wire::MAX_WATERMARKS - 1),
        10,
        20,
    );
    assert!(
        !b.is_full_of_ranges(&last),
        "a continued range takes no room"
    );
    b.note_records(last, 0);
    assert!(b.is_full_of_ranges(&wm("/var/log/app/new.log", 0, 10)));
    assert!(
        b.is_full_of_ranges(&wm("/var/log/app/0.log", 11, 20)),
        "a range after a gap needs room of its own"
    );
    let h = b.cut("x", 1, 1, 0).unwrap().header;
    assert_eq!(h.watermarks.len(), wire::MAX_WATERMARKS);
    assert!(!b.is_full_of_ranges(&wm("/var/log/app/new.log", 0, 10)));
}

#[test]
fn a_batch_is_cut_before_its_ranges_outgrow_a_header_frame() {
    // 4,096 sources named by long paths took more than the 1 MiB a frame may: the
    // aggregator could not read the header, and the batch was sent again for ever.
    let mut b = Batcher::new(BatchConfig::default());
    let long = |i: usize| {
        let mut w = wm(
            &format!("/srv/{}/\"quoted\"/{i}.log", "d".repeat(300)),
            0,
            10,
        );
        w.first = u64::MAX / 2;
        w.end = u64::MAX;
        w.records = u64::MAX;
        w
    };
    let mut n = 0;
    while !b.is_full_of_ranges(&long(n)) {
        b.note_records(long(n), 0);
        n += 1;
    }
    assert!(n < wire::MAX_WATERMARKS, "{n}");
    let batch = b.cut("x", 1, 1, 0).unwrap();
    let frame = batch.bytes.len() - batch.header.zstd_len as usize;
    assert!(frame <= wire::MAX_FRAME, "{frame} bytes of header");
    assert!(
        frame > MAX_RANGES_BYTES / 2,
        "the cap is not far below: {frame}"
    );
    assert_eq!(decode(&batch.bytes).unwrap().0.watermarks.len(), n);
    assert!(!b.is_full_of_ranges(&long(n)));
}

#[test]
fn records_without_events_still_make_a_batch() {
    let mut b = Batcher::new(BatchConfig::default());
    b.note_records(wm("a", 0, 100), 50);
    assert_eq!(b.poll_timeout(), Some(250));
    assert!(!b.is_due(249));
    assert!(b.is_due(250));
    let batch = b.cut("x", 1, 9, 260).unwrap();
    let (h, raw) = decode(&batch.bytes).unwrap();
    assert_eq!(
        (h.events, h.raw_len, h.first_time, h.last_time),
        (0, 0, 0, 0)
    );
    assert!(raw.is_empty());
    assert_eq!(h.watermarks.len(), 1);
}

#[test]
fn due_by_events_bytes_or_linger() {
    let cfg = BatchConfig {
        max_bytes: 100,
        max_events: 3,
        linger_ms: 10,
        zstd_level: 1,
    };
    let mut b = Batcher::new(cfg);
    assert_eq!(b.poll_timeout(), None);
    assert!(!b.is_due(i64::MAX), "an empty batch is never due");
    for i in 0..2 {
        b.push_event(b"{}\n", 0, 5 + i);
    }
    assert_eq!(
        b.poll_timeout(),
        Some(15),
        "linger runs from the first item"
    );
    assert!(!b.is_due(14));
    b.push_event(b"{}\n", 0, 7);
    assert!(b.is_due(7), "full by events");
    b.cut("x", 1, 1, 7).unwrap();
    assert_eq!(b.poll_timeout(), None);
    b.push_event(&[b'x'; 98], 0, 20); // 99 bytes with the added newline
    assert!(!b.is_due(20));
    b.push_event(b"y", 0, 20);
    assert!(b.is_due(20), "full by bytes");
    assert!(b.is_due(30), "and by linger");
}

#[test]
fn buffers_are_reused_across_batches() {
    let mut b = Batcher::new(BatchConfig::default());
    let line = br#"{"class_uid":3002,"message":"Accepted publickey for alice"}"#;
    for seq in 1..=3 {
        for _ in 0..1000 {
            b.push_event(line, 1, 0);
        }
        let batch = b.cut("x", 1, seq, 0).unwrap();
        let (h, raw) = decode(&batch.bytes).unwrap();
        assert_eq!(h.events, 1000);
        assert_eq!(raw.len(), 1000 * (line.len() + 1));
        assert!(h.zstd_len < h.raw_len / 10, "repetitive lines compress");
    }
    assert!(b.raw.capacity() >= 1000 * line.len());
}

#[test]
fn decode_rejects_every_kind_of_damage() {
    let mut b = Batcher::new(BatchConfig::default());
    b.push_event(b"{\"a\":1}\n", 1, 0);
    let good = b.cut("x", 1, 1, 0).unwrap();
    let frame_len = good.bytes.len() - good.header.zstd_len as usize;

    assert!(matches!(
        decode(&good.bytes[..2]),
        Err(DecodeError::ShortHeader)
    ));
    assert!(matches!(
        decode(&good.bytes[..good.bytes.len() - 1]),
        Err(DecodeError::PayloadLen { .. })
    ));
    let mut longer = good.bytes.clone();
    longer.push(0);
    assert!(matches!(
        decode(&longer),
        Err(DecodeError::PayloadLen { .. })
    ));

    let reencode = |h: &BatchHeader| {
        let mut out = Vec::new();
        wire::encode_frame(h, &mut out);
        out.extend_from_slice(&good.bytes[frame_len..]);
        out
    };
    let mut h = good.header.clone();
    h.checksum ^= 1;
    assert!(matches!(
        decode(&reencode(&h)),
        Err(DecodeError::Checksum { .. })
    ));
    let mut h = good.header.clone();
    h.raw_len -= 1;
    assert!(matches!(
        decode(&reencode(&h)),
        Err(DecodeError::RawLen { .. })
    ));
    let mut h = good.header.clone();
    h.raw_len += 1;
    assert!(matches!(
        decode(&reencode(&h)),
        Err(DecodeError::RawLen { .. })
    ));
    let mut h = good.header.clone();
    h.events = 2;
    assert!(matches!(
        decode(&reencode(&h)),
        Err(DecodeError::Events { .. })
    ));
    let mut h = good.header.clone();
    h.raw_len = wire::MAX_RAW + 1;
    assert!(matches!(
        decode(&reencode(&h)),
        Err(DecodeError::TooLarge { .. })
    ));

    let mut flipped = good.bytes.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x40;
    assert!(decode(&flipped).is_err());
}

#[test]
fn a_zstd_bomb_stops_at_the_announced_length() {
    let zeros = vec![0u8; 8 << 20];
    let payload = zstd::bulk::compress(&zeros, 3).unwrap();
    let h = BatchHeader {
        agent_id: "x".into(),
        epoch: 1,
        seq: 1,
        events: 0,
        first_time: 0,
        last_time: 0,
        created_ms: 0,
        raw_len: 10,
        zstd_len: payload.len() as u64,
        checksum: 0,
        watermarks: Vec::new(),
    };
    let mut bytes = Vec::new();
    wire::encode_frame(&h, &mut bytes);
    bytes.extend_from_slice(&payload);
    match decode(&bytes) {
        Err(DecodeError::RawLen { header: 10, actual }) => assert_eq!(actual, 11),
        other => panic!("{other:?}"),
    }
}
