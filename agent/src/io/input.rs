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

/// Calls `f` with each record of `r`; the buffer is reused between records.
pub fn for_each_record(
    r: &mut dyn BufRead,
    framing: Framing,
    mut f: impl FnMut(&[u8]),
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        match framing {
            Framing::Line => {
                // A line whole in the reader's buffer goes to `f` from there (memchr's
                // search, no copy); one that spans refills is gathered in `buf`.
                let avail = match r.fill_buf() {
                    Ok(a) => a,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if avail.is_empty() {
                    return Ok(());
                }
                if let Some(i) = memchr::memchr(b'\n', avail) {
                    f(&avail[..=i]);
                    r.consume(i + 1);
                    continue;
                }
                if r.read_until(b'\n', &mut buf)? == 0 {
                    return Ok(());
                }
            }
            Framing::Octet => {
                let mut len = Vec::new();
                if r.read_until(b' ', &mut len)? == 0 {
                    return Ok(());
                }
                let digits = len.strip_suffix(b" ").unwrap_or(&len);
                let digits = digits.trim_ascii_start();
                if digits.is_empty() {
                    continue;
                }
                let n: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "octet counting: bad length {:?}",
                                String::from_utf8_lossy(digits)
                            ),
                        )
                    })?;
                buf.resize(n, 0);
                r.read_exact(&mut buf)?;
            }
        }
        f(&buf);
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
            for_each_record(&mut r, Framing::Line, |rec| got.push(rec.to_vec())).unwrap();
            assert_eq!(got, want, "buffer of {cap}");
        }
    }
}
