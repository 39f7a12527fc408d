use proptest::prelude::*;

use super::*;

fn run(max: usize, start: u64, chunks: &[&[u8]], flush: bool) -> (Vec<AssembledLine>, u64) {
    let mut a = LineAssembler::new(start, max);
    let mut v = Vec::new();
    for c in chunks {
        a.push(c, &mut |l| v.push(l));
    }
    if flush {
        a.flush(&mut |l| v.push(l));
    }
    (v, a.skipped_bytes())
}

fn line(start: u64, end: u64, bytes: &[u8], truncated: bool) -> AssembledLine {
    AssembledLine {
        start,
        end,
        bytes: bytes.to_vec(),
        truncated,
    }
}

#[test]
fn lines_across_chunks_with_offsets_and_crlf() {
    let (v, _) = run(100, 10, &[b"ab", b"c\r\nde", b"\n\nf"], false);
    assert_eq!(
        v,
        [
            line(10, 15, b"abc", false),
            line(15, 18, b"de", false),
            line(18, 19, b"", false)
        ]
    );
}

#[test]
fn partial_tail_waits_then_flush_emits_it() {
    let (v, _) = run(100, 0, &[b"a\nbc"], false);
    assert_eq!(v, [line(0, 2, b"a", false)]);
    let (v, _) = run(100, 0, &[b"a\nbc"], true);
    assert_eq!(v, [line(0, 2, b"a", false), line(2, 4, b"bc", false)]);
    // Nothing pending: flush emits nothing.
    let (v, _) = run(100, 0, &[b"a\n"], true);
    assert_eq!(v, [line(0, 2, b"a", false)]);
}

#[test]
fn long_line_is_cut_flagged_and_counted_next_line_intact() {
    let (v, skipped) = run(4, 0, &[b"abcdefg", b"hij\r\nxy\n"], false);
    assert_eq!(v, [line(0, 12, b"abcd", true), line(12, 15, b"xy", false)]);
    // "efghij\r" skipped.
    assert_eq!(skipped, 7);
}

#[test]
fn a_line_of_exactly_max_with_crlf_is_not_truncated() {
    let (v, skipped) = run(4, 0, &[b"abcd\r\n", b"abcde\n"], false);
    assert_eq!(v, [line(0, 6, b"abcd", false), line(6, 12, b"abcd", true)]);
    assert_eq!(skipped, 1);
}

proptest! {
    /// However the input is chunked, lines tile the input exactly (no byte lost or repeated)
    /// and their bytes are the input's lines, cut at `max`.
    #[test]
    fn lines_tile_the_input(
        data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..400),
        cuts in proptest::collection::vec(0usize..400, 0..8),
        max in 1usize..40,
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            chunks.push(&data[prev..c]);
            prev = c;
        }
        let (v, _) = run(max, 7, &chunks, true);
        let mut at = 7u64;
        for l in &v {
            prop_assert_eq!(l.start, at);
            prop_assert!(l.end > l.start);
            let raw = &data[(l.start - 7) as usize..(l.end - 7) as usize];
            let body = raw.strip_suffix(b"\n").unwrap_or(raw);
            let body = if raw.ends_with(b"\n") { body.strip_suffix(b"\r").unwrap_or(body) } else { body };
            prop_assert_eq!(l.truncated, body.len() > max);
            prop_assert_eq!(&l.bytes[..], &body[..body.len().min(max)]);
            at = l.end;
        }
        prop_assert_eq!(at, 7 + data.len() as u64);
    }
}
