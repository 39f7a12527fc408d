//! How bytes are read: positional reads, so a handle never has a cursor to get wrong and an
//! io_uring backend (batched submissions behind a feature) can replace this one later.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Reads at an offset of an open file.
pub trait ReadBackend {
    /// Reads up to `buf.len()` bytes at `offset`; 0 means end of file.
    fn read_at(&mut self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

/// Plain `pread(2)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainReads;

impl ReadBackend for PlainReads {
    fn read_at(&mut self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}
