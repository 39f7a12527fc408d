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

impl<B: ReadBackend + ?Sized> ReadBackend for Box<B> {
    fn read_at(&mut self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(file, buf, offset)
    }
}

/// Reads through an io_uring: one `IORING_OP_READ` submitted and awaited per read.
///
/// With one read in flight this saves nothing over `pread(2)` (one `io_uring_enter`
/// instead of one `pread`); it is here so the two can be measured side by side
/// (`benches/benches/tail.rs`), and as the base for submitting the reads of several
/// files at once.
#[cfg(feature = "io-uring")]
pub struct IoUringReads {
    ring: io_uring::IoUring,
}

#[cfg(feature = "io-uring")]
impl std::fmt::Debug for IoUringReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoUringReads").finish_non_exhaustive()
    }
}

#[cfg(feature = "io-uring")]
impl IoUringReads {
    /// A ring, if the kernel allows one (it may be disabled by `kernel.io_uring_disabled`
    /// or a seccomp filter).
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            ring: io_uring::IoUring::new(8)?,
        })
    }
}

#[cfg(feature = "io-uring")]
impl ReadBackend for IoUringReads {
    fn read_at(&mut self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let entry = io_uring::opcode::Read::new(
            io_uring::types::Fd(file.as_raw_fd()),
            buf.as_mut_ptr(),
            len,
        )
        .offset(offset)
        .build();
        loop {
            // SAFETY: the entry points into `buf` and at `file`, both borrowed for this
            // whole call, and the call does not return before the ring has completed the
            // one entry it holds (submit_and_wait(1), then the completion is taken), so the
            // kernel never writes to `buf` after the borrow ends.
            #[allow(unsafe_code)]
            unsafe {
                self.ring
                    .submission()
                    .push(&entry)
                    .map_err(|_| io::Error::other("io_uring submission queue full"))?;
            }
            self.ring.submit_and_wait(1)?;
            let cqe = self
                .ring
                .completion()
                .next()
                .ok_or_else(|| io::Error::other("io_uring: no completion after wait"))?;
            match cqe.result() {
                n if n >= 0 => return Ok(n as usize),
                e if -e == libc_eintr() => {}
                e => return Err(io::Error::from_raw_os_error(-e)),
            }
        }
    }
}

/// EINTR (4 on Linux).
#[cfg(feature = "io-uring")]
const fn libc_eintr() -> i32 {
    4
}

/// The backend `[agent] read_backend` asks for: `plain`, `io_uring`, or `auto` (io_uring
/// when built in and the kernel allows a ring, else plain). Returns it and its name.
pub fn choose(wanted: &str) -> io::Result<(Box<dyn ReadBackend + Send>, &'static str)> {
    match wanted {
        "plain" => Ok((Box::new(PlainReads), "plain")),
        #[cfg(feature = "io-uring")]
        "io_uring" => Ok((Box::new(IoUringReads::new()?), "io_uring")),
        #[cfg(feature = "io-uring")]
        "auto" => Ok(match IoUringReads::new() {
            Ok(r) => (Box::new(r), "io_uring"),
            Err(_) => (Box::new(PlainReads), "plain"),
        }),
        #[cfg(not(feature = "io-uring"))]
        "auto" => Ok((Box::new(PlainReads), "plain")),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "read backend {other:?} is not built in (plain, auto{})",
                if cfg!(feature = "io-uring") {
                    ", io_uring"
                } else {
                    ""
                }
            ),
        )),
    }
}
