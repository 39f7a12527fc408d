//! Where `vedette-agent run` writes events until the QUIC sink exists: NDJSON on stdout or
//! appended to a file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use vedette_schemas::ocsf::Event;

use crate::core::output::write_json_line;

/// The output stream.
#[derive(Debug)]
enum Target {
    Stdout(io::Stdout),
    File(File),
}

/// Buffers events as NDJSON and writes them in large chunks.
#[derive(Debug)]
pub struct Sink {
    target: Target,
    buf: Vec<u8>,
    written: u64,
}

impl Sink {
    /// Stdout.
    pub fn stdout() -> Self {
        Self::new(Target::Stdout(io::stdout()))
    }

    /// `path`, created if missing, appended to.
    pub fn file(path: &Path) -> io::Result<Self> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self::new(Target::File(f)))
    }

    fn new(target: Target) -> Self {
        Self {
            target,
            buf: Vec::with_capacity(1 << 20),
            written: 0,
        }
    }

    /// Buffers one event.
    pub fn write_event(&mut self, ev: &Event) {
        write_json_line(ev, &mut self.buf);
    }

    /// Bytes buffered, not yet written.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes what is buffered. Once this returns, a kill of the agent no longer loses
    /// those events (they are in the kernel's hands).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        match &mut self.target {
            Target::Stdout(s) => {
                let mut s = s.lock();
                s.write_all(&self.buf)?;
                s.flush()?;
            }
            Target::File(f) => f.write_all(&self.buf)?,
        }
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}
