use proptest::prelude::*;

use super::*;

/// A segment of `payloads` as records with seqs from 1; the offsets of the records.
fn segment(payloads: &[Vec<u8>]) -> (Vec<u8>, Vec<u64>) {
    let mut seg = Vec::new();
    let mut offsets = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        offsets.push(seg.len() as u64);
        let meta = RecordMeta {
            seq: i as u64 + 1,
            events: i as u32 * 10,
            created_ms: 1_700_000_000_000 + i as i64,
        };
        seg.extend_from_slice(&encode_header(&meta, p));
        seg.extend_from_slice(p);
    }
    (seg, offsets)
}

fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{{\"batch\":{i}}}").repeat(i + 1).into_bytes())
        .collect()
}

/// Every byte is in exactly one record, damaged region or the torn tail, in order.
fn assert_partition(s: &Scan, len: u64) {
    let mut parts: Vec<(u64, u64)> = s.records.iter().map(|r| (r.offset, r.end())).collect();
    parts.extend(s.damaged.iter().map(|d| (d.range.start, d.range.end)));
    parts.extend(s.torn_tail.iter().map(|t| (t.start, t.end)));
    parts.sort();
    let mut at = 0;
    for (start, end) in parts {
        assert_eq!(start, at, "gap or overlap in {s:?}");
        assert!(end > start);
        at = end;
    }
    assert_eq!(at, len);
}

#[test]
fn records_scan_back_with_their_metadata() {
    let ps = payloads(4);
    let (seg, offsets) = segment(&ps);
    let s = scan(&seg);
    assert!(s.damaged.is_empty() && s.torn_tail.is_none());
    assert_eq!(s.records.len(), 4);
    for (i, r) in s.records.iter().enumerate() {
        assert_eq!(r.offset, offsets[i]);
        assert_eq!(r.meta.seq, i as u64 + 1);
        assert_eq!(r.meta.events, i as u32 * 10);
        assert_eq!(r.meta.created_ms, 1_700_000_000_000 + i as i64);
        let p = r.payload();
        assert_eq!(&seg[p.start as usize..p.end as usize], &ps[i][..]);
    }
    assert_eq!(scan(&[]), Scan::default());
}

#[test]
fn a_cut_inside_the_last_record_is_a_torn_tail() {
    let (seg, offsets) = segment(&payloads(3));
    for cut in offsets[2] as usize + 1..seg.len() {
        let s = scan(&seg[..cut]);
        assert_eq!(s.records.len(), 2, "cut at {cut}");
        assert!(s.damaged.is_empty());
        assert_eq!(s.torn_tail, Some(offsets[2]..cut as u64));
        assert_eq!(s.valid_len(cut as u64), offsets[2]);
    }
}

#[test]
fn a_flipped_byte_in_the_middle_record_loses_exactly_it() {
    let (seg, offsets) = segment(&payloads(3));
    for at in offsets[1]..offsets[2] {
        let mut bad = seg.clone();
        bad[at as usize] ^= 0x10;
        let s = scan(&bad);
        let seqs: Vec<u64> = s.records.iter().map(|r| r.meta.seq).collect();
        assert_eq!(seqs, [1, 3], "flip at {at}");
        assert_eq!(
            s.damaged,
            vec![Damage {
                range: offsets[1]..offsets[2]
            }]
        );
        assert_eq!(s.damaged_bytes(), offsets[2] - offsets[1]);
        assert!(s.torn_tail.is_none());
    }
}

#[test]
fn a_magic_inside_a_damaged_payload_is_skipped() {
    // The middle payload carries the magic (and a whole record's header) in its bytes.
    let mut inner = Vec::new();
    inner.extend_from_slice(b"junk");
    inner.extend_from_slice(&encode_header(
        &RecordMeta {
            seq: 99,
            events: 1,
            created_ms: 0,
        },
        b"not this",
    ));
    inner.extend_from_slice(b"more junk");
    let (seg, offsets) = segment(&[b"one".to_vec(), inner, b"three".to_vec()]);
    let mut bad = seg.clone();
    bad[offsets[1] as usize + 20] ^= 1;
    let s = scan(&bad);
    let seqs: Vec<u64> = s.records.iter().map(|r| r.meta.seq).collect();
    assert_eq!(seqs, [1, 3]);
    assert_eq!(s.damaged.len(), 1, "one region, one damaged record");
    assert_partition(&s, bad.len() as u64);
}

#[test]
fn garbage_at_the_end_is_damage_not_a_torn_tail() {
    let (mut seg, _) = segment(&payloads(2));
    let valid = seg.len() as u64;
    seg.extend_from_slice(&[0; 100]);
    let s = scan(&seg);
    assert_eq!(s.records.len(), 2);
    assert_eq!(
        s.damaged,
        vec![Damage {
            range: valid..valid + 100
        }]
    );
    assert_eq!(s.torn_tail, None);
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Any truncation or any single flipped byte of a segment of N records keeps at least
    /// N-1 records intact at their offsets, and the scan accounts for every byte.
    #[test]
    fn one_fault_costs_at_most_one_record(
        ps in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..8),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        truncate in any::<bool>(),
    ) {
        let (seg, offsets) = segment(&ps);
        let at = at.index(seg.len());
        let bad = if truncate {
            seg[..at].to_vec()
        } else {
            let mut b = seg.clone();
            b[at] ^= flip;
            b
        };
        let s = scan(&bad);
        assert_partition(&s, bad.len() as u64);
        let intact = s
            .records
            .iter()
            .filter(|r| offsets.iter().position(|&o| o == r.offset).is_some_and(|i| r.meta.seq == i as u64 + 1))
            .count();
        // A cut loses the record it falls in and, of course, those after it.
        let whole = if truncate {
            (0..ps.len()).filter(|&i| offsets[i] + (HEADER_LEN + ps[i].len()) as u64 <= at as u64).count()
        } else {
            ps.len() - 1
        };
        prop_assert!(intact >= whole, "{intact} of {} intact: {s:?}", ps.len());
        prop_assert!(s.damaged.len() + usize::from(s.torn_tail.is_some()) <= 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let s = scan(&data);
        assert_partition(&s, data.len() as u64);
    }
}
