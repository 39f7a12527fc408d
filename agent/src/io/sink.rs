//! Where `vedette-agent run` writes events: NDJSON on stdout or appended to a file, or
//! batches into the disk spool that the shipper empties into the aggregator.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use std::sync::Arc;

use vedette_schemas::ocsf::{Event, Text};
use vedette_schemas::wire::Watermark;

use super::clock;
use super::durable::Barrier;
use super::spool::{FsyncPolicy, Spool, SpoolError};
use crate::core::batcher::{BatchConfig, Batcher};
use crate::core::output::write_json_line;

/// The output stream.
#[derive(Debug)]
enum Target {
    Stdout(io::Stdout),
    File(OutputFile),
    Spool(Box<SpoolSink>),
}

/// Events gathered into batches, each cut into the spool.
#[derive(Debug)]
struct SpoolSink {
    batcher: Batcher,
    spool: Arc<Spool>,
    agent_id: String,
    tenant: Text,
    /// The monotonic time ([`clock::monotonic_ms`]) at the last input batch or flush: when
    /// an open batch started lingering needs no finer clock, and none is read per event.
    /// Monotonic, so a step of the wall clock never holds a batch back for an hour.
    now_ms: i64,
    /// An append that failed inside `write_event`, reported by the next `flush`.
    failed: Option<io::Error>,
    /// Events of batches the spool refused because it was closed.
    unspooled: u64,
    /// The spool refused a batch because it was closed (given up waiting for space at a
    /// stop): the stage's stop is then a clean one with `unspooled` events left out,
    /// where any other append error is a failure.
    refused_closed: bool,
}

impl SpoolSink {
    /// Cuts the open batch into the spool (blocking while the spool is full under the
    /// block policy: that is the backpressure on the sources). Its creation time is the
    /// wall clock's (the aggregator reads lag and latency from it).
    fn cut(&mut self) -> io::Result<()> {
        let seq = self.spool.next_seq();
        let Some(b) = self
            .batcher
            .cut(&self.agent_id, self.spool.epoch(), seq, clock::now_ms())
        else {
            return Ok(());
        };
        self.spool.append(&b).map_err(|e| {
            if matches!(e, SpoolError::Closed) {
                // Shutting down with the spool full: these events go unspooled, their
                // sources unacknowledged (files and the journal read them again at the
                // next start; a syslog listener's are lost).
                self.unspooled += u64::from(b.header.events);
                self.refused_closed = true;
            }
            io::Error::other(format!(
                "spooling batch {seq} ({} events): {e}",
                b.header.events
            ))
        })
    }
}

/// Buffers events as NDJSON and writes them in large chunks.
#[derive(Debug)]
pub struct Sink {
    target: Target,
    buf: Vec<u8>,
    written: u64,
    /// A write of the NDJSON buffer that failed inside `write_event`, reported by the next
    /// `flush`.
    failed: Option<io::Error>,
}

/// A file or stdout sink writes its buffer out once it holds this much, even in the middle
/// of a stage batch: the stage gathers input batches up to 256 KiB of output and then takes
/// one more, so the buffer would grow to 1 MiB (doubling past its capacity), about a
/// fifteenth of the agent's peak RSS in the perf harness.
const WRITE_AT: usize = 256 * 1024;

impl Sink {
    /// Stdout.
    pub fn stdout() -> Self {
        Self::new(Target::Stdout(io::stdout()))
    }

    /// `path`, created if missing, appended to. A last line without its newline is the
    /// event being written when the agent died: it is cut off (its record was not
    /// acknowledged, so it is read and written again), or it would glue onto the next event.
    pub fn file(path: &Path) -> io::Result<Self> {
        let f = open_output(path)?;
        cut_torn_tail(&f)?;
        let f = Arc::new(f);
        Ok(Self::new(Target::File(OutputFile {
            current: Arc::new(std::sync::Mutex::new(f.clone())),
            file: f,
            path: path.to_owned(),
        })))
    }

    /// Batches into `spool`, stamped with this agent's tenant.
    pub fn spool(spool: Arc<Spool>, cfg: BatchConfig, agent_id: &str, tenant: &str) -> Self {
        Self::new(Target::Spool(Box::new(SpoolSink {
            batcher: Batcher::new(cfg),
            spool,
            agent_id: agent_id.to_owned(),
            // Leaked once per sink: every event then clones a borrowed str, not a String.
            tenant: Text::const_new(Box::leak(tenant.to_owned().into_boxed_str())),
            now_ms: clock::monotonic_ms(),
            failed: None,
            unspooled: 0,
            refused_closed: false,
        })))
    }

    fn new(target: Target) -> Self {
        Self {
            target,
            buf: Vec::with_capacity(WRITE_AT + 16 * 1024),
            written: 0,
            failed: None,
        }
    }

    /// Buffers one event.
    pub fn write_event(&mut self, ev: &mut Event) {
        let Target::Spool(s) = &mut self.target else {
            write_json_line(ev, &mut self.buf);
            if self.buf.len() >= WRITE_AT
                && self.failed.is_none()
                && let Err(e) = self.write_buf()
            {
                self.failed = Some(e);
            }
            return;
        };
        // The tenant the certificate says; the aggregator overwrites it anyway, so the
        // agent's word is a convenience, never trusted.
        ev.metadata.tenant_uid = Some(s.tenant.clone());
        let now = s.now_ms;
        s.batcher
            .push_event_with(ev.time, now, |raw| write_json_line(ev, raw));
        // Batches are cut between the stage's input batches (see `buffered`), so that a
        // source range and its events travel in one spool batch; only a runaway input
        // batch (four times the size) is cut in the middle, to bound memory.
        // (And at half the wire's payload limit: 4 x 16 MiB of incompressible lines
        // would compress to more than a batch may carry, refused by the spool for good.)
        let runaway =
            (4 * s.batcher.config().max_bytes).min(vedette_schemas::wire::MAX_PAYLOAD as usize / 2);
        let full = s.batcher.raw_len() >= runaway
            || s.batcher.events() >= 4 * s.batcher.config().max_events;
        if full
            && s.failed.is_none()
            && let Err(e) = s.cut()
        {
            s.failed = Some(e);
        }
    }

    /// Records that a range of a source's records was consumed (the spool's batches carry
    /// these; a file has no place for them).
    pub fn note_records(&mut self, w: Watermark) {
        if let Target::Spool(s) = &mut self.target {
            s.now_ms = clock::monotonic_ms();
            if s.batcher.is_full_of_ranges(&w)
                && s.failed.is_none()
                && let Err(e) = s.cut()
            {
                s.failed = Some(e);
            }
            s.batcher.note_records(w, s.now_ms);
        }
    }

    /// When buffered events are due out even if nobody asks (a spool batch's linger).
    pub fn poll_timeout(&self) -> Option<i64> {
        match &self.target {
            Target::Spool(s) => s.batcher.poll_timeout(),
            _ => None,
        }
    }

    /// Bytes buffered, not yet written (for the spool: in the open batch, which the
    /// stage cuts once it passes the batch size, between its input batches).
    pub fn buffered(&self) -> usize {
        match &self.target {
            Target::Spool(s) => s.batcher.raw_len(),
            _ => self.buf.len(),
        }
    }

    /// What a source's synced checkpoint waits for: everything this sink took so far on
    /// the disk (see `durable`). Stdout has nothing to sync; a spool told never to sync is
    /// not synced for a checkpoint either.
    pub fn barrier(&self) -> Barrier {
        match &self.target {
            Target::Stdout(_) => Barrier::none(),
            Target::File(f) => {
                let current = f.current.clone();
                Barrier::new(move || {
                    let file = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    file.sync_data()
                })
            }
            Target::Spool(s) if s.spool.fsync_policy() == FsyncPolicy::Never => Barrier::none(),
            Target::Spool(s) => {
                let spool = s.spool.clone();
                Barrier::new(move || spool.sync().map_err(io::Error::other))
            }
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// For a spool closed at shutdown (under the block policy, while full): the events
    /// it did not take, counting those still in the open batch. `None` otherwise.
    pub fn unspooled_at_close(&self) -> Option<u64> {
        match &self.target {
            Target::Spool(s) if s.refused_closed => {
                Some(s.unspooled + u64::from(s.batcher.events()))
            }
            _ => None,
        }
    }

    /// Writes what is buffered. Once this returns, a kill of the agent no longer loses
    /// those events (they are in the kernel's hands).
    /// For the spool: cuts the open batch when `force`d or due (full, or lingered), and
    /// returns once it is in the spool.
    pub fn flush(&mut self, force: bool) -> io::Result<()> {
        if let Target::Spool(s) = &mut self.target {
            if let Some(e) = s.failed.take() {
                return Err(e);
            }
            let now = clock::monotonic_ms();
            s.now_ms = now;
            if force || s.batcher.is_due(now) {
                s.cut()?;
            }
            return Ok(());
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.write_buf()
    }

    /// Writes the NDJSON buffer of a file or stdout sink (kept on failure).
    fn write_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        match &mut self.target {
            Target::Stdout(s) => {
                let mut s = s.lock();
                s.write_all(&self.buf)?;
                s.flush()?;
            }
            Target::File(f) => f.writable()?.write_all(&self.buf)?,
            Target::Spool(_) => unreachable!("a spool sink has no NDJSON buffer"),
        }
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// The events carry what the agent read from root-only logs: a new file is the agent's
/// user's and its group's (a shipper that picks it up), no one else's.
fn open_output(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .mode(0o640)
        .create(true)
        .read(true)
        .append(true)
        .open(path)
}

/// The NDJSON output file and its path.
#[derive(Debug)]
struct OutputFile {
    file: Arc<File>,
    /// The file being written, for the barrier (another thread's).
    current: Arc<std::sync::Mutex<Arc<File>>>,
    path: std::path::PathBuf,
}

impl OutputFile {
    /// The file to write to: the one at the path. logrotate (or an operator) renaming it
    /// away left the agent writing into the renamed file for ever; now a new one is opened
    /// at the path (made if rotation did not), as rsyslog does at its HUP. A copytruncate
    /// needs nothing: appends follow the cut.
    fn writable(&mut self) -> io::Result<&File> {
        use std::os::unix::fs::MetadataExt;
        let moved = match std::fs::metadata(&self.path) {
            Ok(at_path) => {
                let mine = self.file.metadata()?;
                (at_path.dev(), at_path.ino()) != (mine.dev(), mine.ino())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(e),
        };
        if moved {
            // What went into the old file is synced before the barrier turns to the new
            // one, so a checkpoint synced later does not outrun it.
            self.file.sync_data()?;
            self.file = Arc::new(open_output(&self.path)?);
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = self.file.clone();
        }
        Ok(&self.file)
    }
}

/// Truncates `f` after its last newline, when something follows it.
fn cut_torn_tail(f: &File) -> io::Result<()> {
    let len = f.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.read_exact_at(chunk, start)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            let keep = start + i as u64 + 1;
            if keep < len {
                f.set_len(keep)?;
            }
            return Ok(());
        }
        end = start;
    }
    // No newline at all: one torn event and nothing else.
    if len > 0 {
        f.set_len(0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use vedette_schemas::ocsf::{Class, Event, Product};

    #[test]
    fn a_file_sink_writes_out_past_its_buffer_size_before_any_flush() {
        let dir = std::env::temp_dir().join(format!("vedette-sink-w-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.ndjson");
        let mut s = super::Sink::file(&p).unwrap();
        let mut ev = Event::new(Class::Base, 0, 0, Product::default());
        ev.raw_data = Some("x".repeat(10_000).into());
        let mut n = 0;
        while std::fs::metadata(&p).unwrap().len() == 0 {
            s.write_event(&mut ev);
            n += 1;
            assert!(
                n <= super::WRITE_AT / 10_000 + 1,
                "nothing written after {n} events"
            );
        }
        assert!(
            s.buf.capacity() < 2 * super::WRITE_AT,
            "the buffer did not grow"
        );
        s.write_event(&mut ev);
        s.flush(true).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), n + 1);
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_spool_batch_is_cut_before_its_header_carries_more_ranges_than_the_aggregator_takes() {
        // The aggregator refuses a header over the cap; the sink never cut one (a stage
        // over thousands of files noted a range each), and the agent would have sent it
        // again for ever.
        use crate::core::batcher::{BatchConfig, decode};
        use crate::io::spool::{Spool, SpoolConfig};
        use vedette_schemas::wire::{MAX_WATERMARKS, Watermark};
        let dir = std::env::temp_dir().join(format!("vedette-sink-r-{}", std::process::id()));
        let _ignored = std::fs::remove_dir_all(&dir);
        let (spool, _) = Spool::open(&dir, SpoolConfig::default()).unwrap();
        let mut s = super::Sink::spool(spool.clone(), BatchConfig::default(), "a", "default");
        for i in 0..=MAX_WATERMARKS {
            s.note_records(Watermark {
                source: format!("/var/log/app/{i}.log"),
                stream: "dev=1,ino=2".into(),
                unit: "byte".into(),
                first: 0,
                end: 10,
                records: 1,
            });
        }
        s.flush(true).unwrap();
        let mut ranges = Vec::new();
        while let Some((_, bytes)) = spool.next_unsent().unwrap() {
            ranges.push(decode(&bytes).unwrap().0.watermarks.len());
        }
        assert_eq!(ranges, [MAX_WATERMARKS, 1]);
        drop(s);
        drop(spool);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_cut_and_whole_lines_stay() {
        let dir = std::env::temp_dir().join(format!("vedette-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (before, after) in [
            (&b"{\"a\":1}\n{\"b\":"[..], &b"{\"a\":1}\n"[..]),
            (b"{\"a\":1}\n", b"{\"a\":1}\n"),
            (b"{\"torn", b""),
            (b"", b""),
        ] {
            let p = dir.join("out.ndjson");
            std::fs::write(&p, before).unwrap();
            let mut s = super::Sink::file(&p).unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), after);
            s.buf.extend_from_slice(b"{}\n");
            s.flush(true).unwrap();
            assert!(std::fs::read(&p).unwrap().ends_with(b"\n{}\n") || after.is_empty());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
