//! Record readers over files and stdin: newline-framed or RFC 6587 octet-counted, gzip
//! detected by its magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// How records are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One record per line.
    Line,
    /// RFC 6587 octet counting: `LEN SP RECORD`.
    Octet,
}

/// Opens `path` (`-` is stdin), un-gzipping when the content is gzip.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path)?)
    };
    let mut r = BufReader::with_capacity(1 << 20, raw);
    let gz = r.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(r),
        ))
    } else {
        Box::new(r)
    })
}

/// Calls `f` with each record of `r` and, for a record longer than `max` (cut there, the
/// rest skipped, never buffered), its whole length.
pub fn for_each_record(
    r: &mut dyn BufRead,
    framing: Framing,
    max: usize,
    mut f: impl FnMut(&[u8], Option<u64>),
) -> io::Result<()> {
    if framing == Framing::Octet {
        return octet_records(r, max, f);
    }
    let max = max.max(1);
    let mut buf = Vec::with_capacity(4096);
    // Bytes of the current line seen so far, kept or skipped.
    let mut total = 0u64;
    loop {
        // A line whole in the reader's buffer goes to `f` from there (memchr's search, no
        // copy); one that spans refills is gathered in `buf`, up to `max`.
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            if total > 0 {
                f(&buf, (total > buf.len() as u64).then_some(total));
            }
            return Ok(());
        }
        let (take, ends) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if ends && total == 0 && take <= max + 1 {
            f(&avail[..take], None);
            r.consume(take);
            continue;
        }
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&avail[..take.min(room)]);
        total += take as u64;
        r.consume(take);
        if ends {
            // The newline is no part of the line's length.
            let len = total - 1;
            f(&buf, (len > max as u64).then_some(len));
            buf.clear();
            total = 0;
        }
    }
}

/// RFC 6587 octet-counted records, through the listeners' deframer: a record over `max`
/// is cut (the rest skipped, never buffered), a count that is no count makes the record a
/// line, and a record the input ends inside of keeps what arrived. A count was read into a
/// buffer of its size (a forged `1000000000000000` aborted the process), and a wrong one
/// ended the file's reading.
fn octet_records(
    r: &mut dyn BufRead,
    max: usize,
    mut f: impl FnMut(&[u8], Option<u64>),
) -> io::Result<()> {
    let mut d = crate::core::framing::Deframer::octet_counted(max);
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            if let Some(fr) = d.finish() {
                f(fr.bytes, fr.cut_from);
            }
            return Ok(());
        }
        let n = chunk.len();
        d.push(chunk);
        r.consume(n);
        while let Some(fr) = d.poll_frame() {
            f(fr.bytes, fr.cut_from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_whole_whatever_the_buffer_size() {
        let text = b"first line\nsecond, a longer line\n\nno newline at the end";
        let want: Vec<&[u8]> = vec![
            b"first line\n",
            b"second, a longer line\n",
            b"\n",
            b"no newline at the end",
        ];
        for cap in [1, 3, 8, 64] {
            let mut r = BufReader::with_capacity(cap, &text[..]);
            let mut got = Vec::new();
            for_each_record(&mut r, Framing::Line, 1024, |rec, cut| {
                assert_eq!(cut, None);
                got.push(rec.to_vec());
            })
            .unwrap();
            assert_eq!(got, want, "buffer of {cap}");
        }
    }

    fn records(text: &[u8], framing: Framing, max: usize) -> Vec<(Vec<u8>, Option<u64>)> {
        let mut out = Vec::new();
        for cap in [1, 5, 4096] {
            let mut r = BufReader::with_capacity(cap, text);
            let mut got = Vec::new();
            for_each_record(&mut r, framing, max, |rec, cut| {
                got.push((rec.to_vec(), cut))
            })
            .unwrap();
            if cap > 1 {
                assert_eq!(got, out, "buffer of {cap}");
            }
            out = got;
        }
        out
    }

    /// A line over the cap is cut there and its whole length said, never buffered whole
    /// (a 10 GB line held 10 GB).
    #[test]
    fn a_long_line_is_cut_with_its_length() {
        let mut text = vec![b'x'; 100];
        text.extend_from_slice(b"\nnext\n");
        assert_eq!(
            records(&text, Framing::Line, 10),
            vec![(vec![b'x'; 10], Some(100)), (b"next\n".to_vec(), None)]
        );
    }

    /// An octet count was read into a buffer of its size (a forged `1000000000000000`
    /// aborted the process), and a count that did not match ended the file's reading.
    #[test]
    fn octet_counts_are_bounded_and_a_wrong_one_loses_no_later_record() {
        // More than ten digits is no count: a line.
        assert_eq!(
            records(b"1000000000000000 <13>abc", Framing::Octet, 64),
            vec![(b"1000000000000000 <13>abc".to_vec(), None)]
        );
        // A count past the cap: what arrived, with the declared length.
        assert_eq!(
            records(b"9999999999 <13>abc", Framing::Octet, 64),
            vec![(b"<13>abc".to_vec(), Some(9_999_999_999))]
        );
        assert_eq!(
            records(b"5 <13>a\nh garbage\n7 <13>abc", Framing::Octet, 64),
            vec![
                (b"<13>a".to_vec(), None),
                (b"h garbage".to_vec(), None),
                (b"<13>abc".to_vec(), None),
            ]
        );
    }
}
