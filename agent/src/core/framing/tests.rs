use proptest::prelude::*;

use super::*;

/// (bytes, cut_from, octet_counted) of every frame, `finish` included.
type Out = Vec<(Vec<u8>, Option<u64>, bool)>;

fn frames(chunks: &[&[u8]], max: usize) -> Out {
    let mut d = Deframer::new(max);
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        while let Some(f) = d.poll_frame() {
            out.push((f.bytes.to_vec(), f.cut_from, f.octet_counted));
        }
    }
    if let Some(f) = d.finish() {
        out.push((f.bytes.to_vec(), f.cut_from, f.octet_counted));
    }
    out
}

fn whole(s: &[u8], max: usize) -> Out {
    frames(&[s], max)
}

fn plain(v: &[&str], octet: bool) -> Out {
    v.iter()
        .map(|s| (s.as_bytes().to_vec(), None, octet))
        .collect()
}

#[test]
fn octet_counted_frames_may_hold_newlines() {
    let (a, b) = ("<13>1 - - - - - a\nb", "<13>1 - - - - - abc");
    let s = format!("{} {a}{} {b}", a.len(), b.len());
    assert_eq!(
        whole(s.as_bytes(), 1024),
        plain(&["<13>1 - - - - - a\nb", "<13>1 - - - - - abc"], true)
    );
}

#[test]
fn newline_frames_and_a_last_frame_without_newline() {
    let s = b"<13>one\n<13>two\r\n\n<13>three";
    let out = whole(s, 1024);
    assert_eq!(out, plain(&["<13>one", "<13>two\r", "<13>three"], false));
}

#[test]
fn framing_is_told_apart_frame_by_frame_until_a_line() {
    let s = b"9 <13>octet<13>lf one\n9 <13>octet\n";
    assert_eq!(
        whole(s, 1024),
        vec![
            (b"<13>octet".to_vec(), None, true),
            (b"<13>lf one".to_vec(), None, false),
            (b"9 <13>octet".to_vec(), None, false),
        ]
    );
}

/// A message with a newline in it, relayed as is, puts its second line at a frame's
/// start: `9999999999 <13>…` there was read as a count, and the connection's next ten
/// gigabytes (the messages in them) went into one cut frame. A connection that has sent a
/// line sends lines; a count must also be followed by a whole `<PRI>`.
#[test]
fn a_line_that_reads_like_a_count_on_a_line_framed_connection_is_a_line() {
    let mut s = b"<13>app: user said:\n9999999999 <13>see above\n".to_vec();
    for i in 0..3 {
        s.extend_from_slice(format!("<13>sshd[{i}]: Failed password\n").as_bytes());
    }
    let out = whole(&s, 1024);
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(out[1].0, b"9999999999 <13>see above");
    assert!(out.iter().all(|(_, cut, octet)| cut.is_none() && !octet));
    // A count without a whole PRI after it is no count, even first.
    assert_eq!(
        whole(b"12 <html><body>\n<13>x\n", 1024),
        plain(&["12 <html><body>", "<13>x"], false)
    );
}

#[test]
fn digits_without_a_space_are_a_message_not_a_count() {
    assert_eq!(
        whole(b"123abc\n42\n", 1024),
        plain(&["123abc", "42"], false)
    );
    // More than ten digits is no count either.
    assert_eq!(
        whole(b"12345678901 x\n", 1024),
        plain(&["12345678901 x"], false)
    );
}

#[test]
fn separators_between_frames_are_skipped() {
    let s = b"5 <13>a\n\r\n\x005 <13>b\n";
    assert_eq!(whole(s, 1024), plain(&["<13>a", "<13>b"], true));
}

#[test]
fn long_octet_frame_is_cut_and_the_next_frame_is_intact() {
    let mut body = b"<13>".to_vec();
    body.resize(5000, b'x');
    let mut s = format!("{} ", body.len()).into_bytes();
    s.extend_from_slice(&body);
    s.extend_from_slice(b"5 <13>z");
    let out = whole(&s, 100);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], (body[..100].to_vec(), Some(5000), true));
    assert_eq!(out[1], (b"<13>z".to_vec(), None, true));
}

#[test]
fn long_lf_frame_is_cut_with_its_full_length() {
    let mut s = vec![b'y'; 3000];
    s.extend_from_slice(b"\n<13>next\n");
    // Fed in small pieces, so the frame outgrows the cap before its LF arrives.
    let chunks: Vec<&[u8]> = s.chunks(64).collect();
    let out = frames(&chunks, 100);
    assert_eq!(out[0], (vec![b'y'; 100], Some(3000), false));
    assert_eq!(out[1], (b"<13>next".to_vec(), None, false));
    assert_eq!(out.len(), 2);
    // All in one piece: the same.
    assert_eq!(whole(&s, 100), out);
}

#[test]
fn stream_ending_inside_an_octet_frame_keeps_what_arrived() {
    let out = whole(b"20 <13>only part", 1024);
    assert_eq!(out, vec![(b"<13>only part".to_vec(), Some(20), true)]);
    let mut d = Deframer::new(1024);
    d.push(b"20 <13>only part");
    assert!(d.poll_frame().is_none());
    assert!(d.finish().is_some());
    assert_eq!(d.stats().incomplete, 1);
}

#[test]
fn buffer_stays_bounded_while_skipping_a_huge_frame() {
    let mut d = Deframer::new(1000);
    d.push(b"999999999 ");
    for _ in 0..1000 {
        d.push(&[b'a'; 4096]);
        assert!(d.poll_frame().is_none());
        assert!(d.buffered() <= 1000 + 4096, "{}", d.buffered());
    }
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    let frame = prop_oneof![
        "[<>a-z0-9 \r]{0,40}".prop_map(|m| format!("{m}\n").into_bytes()),
        proptest::collection::vec(any::<u8>(), 1..60).prop_map(|m| {
            let mut v = format!("{} ", m.len()).into_bytes();
            v.extend(m);
            v
        }),
    ];
    proptest::collection::vec(frame, 0..12).prop_map(|v| v.concat())
}

proptest! {
    /// TCP delivers a stream in arbitrary pieces: the frames must not depend on them.
    #[test]
    fn frames_do_not_depend_on_how_the_stream_is_split(
        s in stream(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        max in 8usize..80,
    ) {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(s.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for &c in &at {
            chunks.push(&s[prev..c]);
            prev = c;
        }
        chunks.push(&s[prev..]);
        prop_assert_eq!(frames(&chunks, max), whole(&s, max));
    }

    /// Arbitrary bytes never panic, and no frame exceeds the cap.
    #[test]
    fn any_bytes_frame_within_the_cap(s in proptest::collection::vec(any::<u8>(), 0..400), max in 1usize..64) {
        for (bytes, cut, _) in whole(&s, max) {
            prop_assert!(bytes.len() <= max);
            if let Some(n) = cut {
                prop_assert!(n >= bytes.len() as u64);
            }
        }
    }
}

/// A message without PRI that starts with a number and a space is a line, not a count: read
/// as a count, `1500 drops` made the deframer wait for 1500 bytes and merge the messages
/// after it into one event, unflagged.
#[test]
fn a_number_and_a_space_without_a_syslog_message_after_it_is_a_line() {
    assert_eq!(
        whole(b"1500 drops on eth0\n<13>next\n", 1024),
        vec![
            (b"1500 drops on eth0".to_vec(), None, false),
            (b"<13>next".to_vec(), None, false),
        ]
    );
    assert_eq!(
        whole(b"1500 drops on eth0\n", 1024),
        plain(&["1500 drops on eth0"], false)
    );
    assert_eq!(whole(b"7 <13>abc", 1024), plain(&["<13>abc"], true));
    // Split after the count's space: it waits for the byte that decides.
    for cut in 1..12 {
        let s = b"1500 drops\n<13>x\n";
        let mut d = Deframer::new(1024);
        let mut out = Vec::new();
        for part in [&s[..cut], &s[cut..]] {
            d.push(part);
            while let Some(f) = d.poll_frame() {
                out.push(f.bytes.to_vec());
            }
        }
        assert_eq!(
            out,
            [b"1500 drops".to_vec(), b"<13>x".to_vec()],
            "cut at {cut}"
        );
    }
}

/// A line arriving a byte at a time is searched for its LF once, not from its start at
/// every byte (quadratic: a sender dripping a long line could keep a core busy).
#[test]
fn a_line_dripped_a_byte_at_a_time_is_searched_once() {
    let line = vec![b'a'; 50_000];
    let mut d = Deframer::new(1 << 20);
    for &b in &line {
        d.push(&[b]);
        assert!(d.poll_frame().is_none());
        assert_eq!(d.lf_scanned, d.buffered());
    }
    d.push(b"\n");
    let f = d.poll_frame().expect("the line");
    assert_eq!(f.bytes, &line[..]);
    assert_eq!(d.lf_scanned, 0);
}

/// A last line without its LF: whole when the sender closed, unfinished when this end cut
/// the stream (a stop, an eviction); an octet frame cut short says so either way.
#[test]
fn a_last_line_is_unfinished_only_when_this_end_cut_the_stream() {
    for interrupted in [false, true] {
        let mut d = Deframer::new(1024);
        d.push(b"<13>a\n<13>half");
        assert_eq!(
            d.poll_frame().map(|f| f.bytes.to_vec()),
            Some(b"<13>a".to_vec())
        );
        assert!(d.poll_frame().is_none());
        let (f, incomplete) = d.finish_as(interrupted).expect("the last line");
        assert_eq!(
            (f.bytes, f.cut_from, incomplete),
            (&b"<13>half"[..], None, interrupted)
        );
        assert_eq!(d.stats().incomplete, u64::from(interrupted));
        let mut d = Deframer::new(1024);
        d.push(b"20 <13>short");
        let (f, incomplete) = d.finish_as(interrupted).expect("the frame");
        assert_eq!(
            (f.bytes, f.cut_from, incomplete),
            (&b"<13>short"[..], Some(20), false)
        );
        // A line past the cap: cut at the sender's close from the length seen; cut off by
        // this end, of a length nobody knows.
        let mut d = Deframer::new(4);
        d.push(b"<13>long line");
        assert!(d.poll_frame().is_none());
        let (f, incomplete) = d.finish_as(interrupted).expect("the line");
        let seen = (!interrupted).then_some(13);
        assert_eq!(
            (f.bytes, f.cut_from, incomplete),
            (&b"<13>"[..], seen, interrupted)
        );
    }
}
