//! Fuzz bodies: each runs one parser on arbitrary bytes and checks the invariants every
//! parser keeps (no panic; every non-blank record yields an event carrying it; the event
//! serializes). The cargo-fuzz targets in `fuzz/` and the proptests in the test suite both
//! call these, so a crash found by one is a regression test in the other.
#![doc(hidden)]

use jiff::tz::TimeZone;

use super::normalize::{NormalizeConfig, Normalizer, Source};
use super::time::TimeContext;

fn source(syslog: bool) -> Source {
    Source {
        uid_key: None,
        id: "fuzz".into(),
        time: TimeContext::new(
            jiff::Timestamp::from_second(1_790_000_000).unwrap_or_default(),
            TimeZone::UTC,
        ),
        syslog,
        sender_name: None,
    }
}

fn run(lines: &[&[u8]], syslog: bool) {
    let mut n = Normalizer::new(NormalizeConfig {
        max_line_bytes: 1 << 20,
        ..NormalizeConfig::default()
    });
    let src = source(syslog);
    let mut nonblank = 0;
    for (i, l) in lines.iter().enumerate() {
        if !l.iter().all(u8::is_ascii_whitespace) {
            nonblank += 1;
        }
        n.handle_line(&src, i as u64 + 1, l, 0);
    }
    n.finish();
    let mut events = 0;
    while let Some(ev) = n.poll_event() {
        events += 1;
        assert!(
            ev.raw_data.as_deref().is_some_and(|r| !r.is_empty()),
            "event without raw_data"
        );
        serde_json::to_string(&ev).expect("event serializes");
        // What the agent ships: the writer's JSON, valid and with each key once per
        // object (the sections parsers render themselves included).
        let mut out = Vec::new();
        vedette_schemas::ocsf::WriteJson::write_json(&*ev, &mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let tape = simd_json::to_tape(&mut out).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(
            super::parse::json::no_repeated_key(tape.as_value()),
            "a key written twice: {text}"
        );
    }
    assert!(
        events >= 1 || nonblank == 0,
        "a non-blank record produced no event"
    );
}

/// The whole normalizer on one record read from a file.
pub fn normalize(data: &[u8]) {
    run(&[data], false);
}

/// The whole normalizer on one record received as syslog.
pub fn syslog(data: &[u8]) {
    run(&[data], true);
}

/// The envelope parser alone: it must never panic and must keep the message inside the line.
pub fn envelope(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let src = source(false);
    let env = super::envelope::parse(&s, &src.time);
    let start = env.msg.as_ptr() as usize;
    let base = s.as_ptr() as usize;
    assert!(env.msg.is_empty() || (start >= base && start + env.msg.len() <= base + s.len()));
}

/// A message as a given program: sshd, sudo, su, account tools, pam.
pub fn program(app: &str, data: &[u8]) {
    let mut line = format!("Nov 27 10:00:00 host {app}[42]: ").into_bytes();
    line.extend_from_slice(data);
    run(&[&line], false);
}

/// Raw auditd records, several per input (split at newlines), so joining is exercised.
pub fn auditd(data: &[u8]) {
    let lines: Vec<&[u8]> = data.split(|&c| c == b'\n').collect();
    run(&lines, false);
}

/// The RFC 6587 stream deframer: the data split at a point its first byte picks, with a
/// cap from its second; frames never exceed the cap, and framing does not depend on the
/// split (TCP delivers arbitrary pieces).
pub fn stream_framing(data: &[u8]) {
    use super::framing::Deframer;
    let (cap, split, data) = match data {
        [c, s, rest @ ..] => (usize::from(*c).max(1) * 64, usize::from(*s), rest),
        _ => (64, 0, data),
    };
    let collect = |chunks: &[&[u8]]| {
        let mut d = Deframer::new(cap);
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(f) = d.poll_frame() {
                assert!(f.bytes.len() <= cap, "frame over the cap");
                out.push((f.bytes.to_vec(), f.cut_from, f.octet_counted));
            }
        }
        if let Some(f) = d.finish() {
            assert!(f.bytes.len() <= cap, "frame over the cap");
            out.push((f.bytes.to_vec(), f.cut_from, f.octet_counted));
        }
        out
    };
    let at = split.min(data.len());
    assert_eq!(
        collect(&[&data[..at], &data[at..]]),
        collect(&[data]),
        "frames depend on how the stream was split"
    );
}

/// A `journalctl --output=json` line through the normalizer: an entry or not, one event.
pub fn journal(data: &[u8]) {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let src = source(false);
    n.handle_journal(
        &src,
        super::normalize::Received {
            seq: 1,
            ..Default::default()
        },
        data,
    );
    n.finish();
    let blank = data.iter().all(u8::is_ascii_whitespace);
    let mut events = 0;
    while let Some(ev) = n.poll_event() {
        events += 1;
        serde_json::to_string(&ev).expect("event serializes");
    }
    assert!(events == 1 || blank, "a journal line gave {events} events");
}

/// The tail's checkpoint file: decoding never panics, and what decodes encodes back to
/// something that decodes the same.
pub fn checkpoint(data: &[u8]) {
    use super::tail::checkpoint;
    let text = String::from_utf8_lossy(data);
    if let Ok(cps) = checkpoint::decode(&text) {
        let again = checkpoint::decode(&checkpoint::encode(&cps)).expect("re-decodes");
        assert_eq!(cps, again);
    }
}

/// The account files (passwd, group, shadow split at NUL bytes): any text parses, and
/// enriching an event with the result never panics.
pub fn accounts(data: &[u8]) {
    use super::enrich::accounts::AccountDb;
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let (passwd, group, shadow) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next(),
    );
    let db = AccountDb::parse(passwd, group, shadow);
    let mut ev = vedette_schemas::ocsf::Event::new(
        vedette_schemas::ocsf::Class::Authentication,
        1,
        0,
        Default::default(),
    );
    for name in passwd.lines().filter_map(|l| l.split(':').next()).take(4) {
        ev.user = Some(vedette_schemas::ocsf::User {
            name: Some(name.into()),
            ..Default::default()
        });
        db.apply(&mut ev);
    }
}

/// The baseline's saved state: decoding never panics.
pub fn baseline(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(b) = super::enrich::baseline::Baseline::decode(&text, 1000, 30) {
        let again =
            super::enrich::baseline::Baseline::decode(&b.encode(), 1000, 30).expect("re-decodes");
        assert_eq!(b.len(), again.len());
    }
}

/// The spool's segment scanner. The data is scanned as a segment as is: every byte lands in
/// exactly one record, damaged region or torn tail, in order. Then the data (after three
/// control bytes) is cut at its `;` bytes into payloads, written as a segment, and hurt by
/// one fault the control bytes pick (a flipped byte, or a cut): at most the record the
/// fault hits is lost, every other one scans back intact at its offset.
pub fn spool_segment(data: &[u8]) {
    use super::spool::{HEADER_LEN, RecordMeta, Scan, encode_header, scan};

    fn partition(s: &Scan, len: u64) {
        let mut parts: Vec<(u64, u64)> = s.records.iter().map(|r| (r.offset, r.end())).collect();
        parts.extend(s.damaged.iter().map(|d| (d.range.start, d.range.end)));
        parts.extend(s.torn_tail.iter().map(|t| (t.start, t.end)));
        parts.sort_unstable();
        let mut at = 0;
        for (start, end) in parts {
            assert_eq!(start, at, "gap or overlap");
            assert!(end > start, "empty part");
            at = end;
        }
        assert_eq!(at, len, "bytes unaccounted for");
        for w in s.damaged.windows(2) {
            assert!(
                w[0].range.end < w[1].range.start,
                "adjacent damage not merged"
            );
        }
    }

    partition(&scan(data), data.len() as u64);

    let [mode, hi, lo, rest @ ..] = data else {
        return;
    };
    let mut seg = Vec::new();
    let mut ends = Vec::new();
    for (i, p) in rest.split(|&b| b == b';').enumerate() {
        let meta = RecordMeta {
            seq: i as u64 + 1,
            events: p.len() as u32,
            created_ms: i as i64,
        };
        seg.extend_from_slice(&encode_header(&meta, p));
        seg.extend_from_slice(p);
        ends.push(seg.len() as u64);
    }
    let at = (usize::from(*hi) << 8 | usize::from(*lo)) % seg.len();
    let (bad, whole) = if mode & 1 == 0 {
        let mut b = seg.clone();
        b[at] ^= mode | 1;
        (b, ends.len() - 1)
    } else {
        (
            seg[..at].to_vec(),
            ends.iter().filter(|&&e| e <= at as u64).count(),
        )
    };
    let s = scan(&bad);
    partition(&s, bad.len() as u64);
    let intact = s
        .records
        .iter()
        .filter(|r| {
            let i = r.meta.seq as usize;
            (1..=ends.len()).contains(&i)
                && r.offset == if i == 1 { 0 } else { ends[i - 2] }
                && r.len == ends[i - 1] - r.offset
                && r.len >= HEADER_LEN as u64
        })
        .count();
    assert!(intact >= whole, "{intact} records intact, {whole} expected");
}

/// An unmapped JSON line, `{` followed by the data: the whole normalizer, then both JSON
/// paths, which must give the same event.
pub fn json(data: &[u8]) {
    let mut line = b"{".to_vec();
    line.extend_from_slice(data);
    normalize(&line);
    if let Ok(text) = std::str::from_utf8(&line) {
        let mappings = super::parse::json::probe_mappings();
        if let Err(e) = super::parse::json::paths_agree(text, &mappings) {
            panic!("the JSON paths disagree on {text:?}: {e}");
        }
    }
}
