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
    /// The `user_data` of the last read submitted: its completion, and no other, ends a
    /// read.
    tag: u64,
    /// Set when the ring failed in a way that may leave a read queued but not submitted:
    /// nothing is submitted again (it would point into a buffer long returned).
    broken: Option<String>,
    /// Test hook: this many next waits submit, then report EINTR without waiting.
    #[cfg(test)]
    interrupt_waits: u32,
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
            tag: 0,
            broken: None,
            #[cfg(test)]
            interrupt_waits: 0,
        })
    }

    /// `submit_and_wait(1)`, or the test hook's interruption.
    fn wait(&mut self) -> io::Result<usize> {
        #[cfg(test)]
        if self.interrupt_waits > 0 {
            self.interrupt_waits -= 1;
            self.ring.submit()?;
            return Err(io::Error::from_raw_os_error(libc_eintr()));
        }
        self.ring.submit_and_wait(1)
    }

    /// Waits until the completion tagged `tag` comes; its result. Completions of other
    /// tags (none is expected) are dropped. A wait cut short (EINTR: a signal, a cgroup
    /// freezer, a debugger; EAGAIN, EBUSY: the kernel short of resources) is waited again:
    /// returning then would leave the kernel a read into a buffer the caller gets back.
    fn complete(&mut self, tag: u64) -> io::Result<i32> {
        loop {
            match self.wait() {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(4 | 11 | 16)) => {
                    if e.raw_os_error() != Some(libc_eintr()) {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                Err(e) => {
                    // The ring refused the call (a bad descriptor, a torn-down ring): the
                    // entry may still sit in the queue, so the ring is not used again.
                    self.broken = Some(e.to_string());
                    return Err(e);
                }
            }
            let mut result = None;
            for cqe in self.ring.completion() {
                if cqe.user_data() == tag {
                    result = Some(cqe.result());
                }
            }
            if let Some(r) = result {
                return Ok(r);
            }
        }
    }
}

#[cfg(feature = "io-uring")]
impl ReadBackend for IoUringReads {
    fn read_at(&mut self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        if let Some(e) = &self.broken {
            return Err(io::Error::other(format!(
                "io_uring reads stopped after the ring failed: {e}"
            )));
        }
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        loop {
            self.tag = self.tag.wrapping_add(1);
            let entry = io_uring::opcode::Read::new(
                io_uring::types::Fd(file.as_raw_fd()),
                buf.as_mut_ptr(),
                len,
            )
            .offset(offset)
            .build()
            .user_data(self.tag);
            // SAFETY: the entry points into `buf` and at `file`, both borrowed for this
            // whole call. Once pushed, the call returns only after the entry's own
            // completion was taken (`complete` waits again when a wait is cut short), or
            // after the ring refused the call, in which case the entry was never taken
            // from the queue and `broken` keeps anything from being submitted again. So
            // the kernel never writes to `buf` after the borrow ends.
            #[allow(unsafe_code)]
            unsafe {
                self.ring
                    .submission()
                    .push(&entry)
                    .map_err(|_| io::Error::other("io_uring submission queue full"))?;
            }
            match self.complete(self.tag)? {
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

#[cfg(all(test, feature = "io-uring"))]
mod tests {
    use super::*;

    /// A wait cut short after the read was submitted (EINTR from `io_uring_enter`, as a
    /// stop signal or a cgroup freezer causes) is waited again: the read returns its own
    /// bytes, and the next read its own, not the completion left over from the first.
    #[test]
    fn an_interrupted_wait_still_returns_this_reads_bytes_and_leaves_nothing_behind() {
        let Ok(mut ring) = IoUringReads::new() else {
            // The kernel refuses rings here (io_uring_disabled, seccomp): `auto` reads plain.
            assert!(matches!(choose("auto"), Ok((_, "plain"))));
            return;
        };
        let path = std::env::temp_dir().join(format!("vedette-uring-{}", std::process::id()));
        std::fs::write(&path, b"0123456789abcdef").unwrap();
        let file = File::open(&path).unwrap();
        ring.interrupt_waits = 1;
        let mut buf = [0u8; 4];
        assert_eq!(ring.read_at(&file, &mut buf, 2).unwrap(), 4);
        assert_eq!(&buf, b"2345");
        let mut buf = [0u8; 6];
        assert_eq!(ring.read_at(&file, &mut buf, 10).unwrap(), 6);
        assert_eq!(&buf, b"abcdef");
        std::fs::remove_file(&path).unwrap();
    }
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
