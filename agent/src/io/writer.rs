//! The writer thread of `vedette-agent run`: the events' JSON goes to the sink (written to a
//! file or stdout, or gathered into spool batches, compressed with zstd and appended) on a
//! thread of its own, so the stage's thread normalizes the next records meanwhile, and a
//! write stalled by the kernel (dirty pages being flushed, a full spool) does not stall it.
//!
//! The stage serializes events itself and hands over bytes: an event is built and freed on
//! one thread, in one core's cache; only its JSON, written once and read once front to back,
//! crosses to the other (handing over the events themselves cost more CPU than it saved).
//!
//! Order and acknowledgements are kept exactly: the stage hands over its output in chunks,
//! in order, each with the acknowledgements of the input batches it completes (their
//! positions already computed), and the writer runs them only once the chunk's events are
//! out of the agent's hands ([`Sink::flush`]).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError, channel, sync_channel,
};
use std::thread::JoinHandle;
use std::time::Duration;

use vedette_schemas::wire::Watermark;

use super::clock;
use super::pipeline::Ack;
use super::sink::Sink;

/// What a chunk holds besides bytes, in order.
#[derive(Debug)]
pub enum Item {
    /// An event: its JSON line ends at `end` in the chunk's buffer.
    Event {
        /// End of its line (exclusive).
        end: usize,
        /// Its time, ms since the epoch (spool batches carry their time range).
        time: i64,
    },
    /// A range of a source's records was consumed (before the events it produced).
    Note(Watermark),
}

/// A run of events as JSON lines, and the acknowledgements due once they are written.
pub struct Chunk {
    /// The events' JSON lines, back to back.
    pub buf: Vec<u8>,
    /// The events and notes.
    pub items: Vec<Item>,
    /// Each with the earliest position of its source the stage still held.
    pub acks: Vec<(Ack, Option<u64>)>,
    /// Cut the spool's open batch even if it is not due (a source waits for its ack, or
    /// this is the end).
    pub force: bool,
}

impl Chunk {
    /// An empty chunk.
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            items: Vec::new(),
            acks: Vec::new(),
            force: false,
        }
    }

    /// Events in it.
    pub fn events(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Event { .. }))
            .count()
    }

    /// Whether it holds nothing to write or acknowledge.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.acks.is_empty()
    }

    /// Empties it, keeping its buffers' capacity.
    fn clear(&mut self) {
        self.buf.clear();
        self.items.clear();
        self.acks.clear();
        self.force = false;
    }
}

impl Default for Chunk {
    fn default() -> Self {
        Self::new()
    }
}

/// How the writer ended.
#[derive(Debug)]
pub struct WriterEnd {
    /// The sink's error, if it failed.
    pub error: Option<io::Error>,
    /// For a spool closed at shutdown while full: the events it did not take, those handed
    /// over after the failure included (their sources were not acknowledged).
    pub unspooled: Option<u64>,
}

/// The handle the stage keeps.
pub struct Writer {
    tx: Option<SyncSender<Chunk>>,
    /// Written chunks come back to be filled again (their buffers keep their capacity).
    spare: Receiver<Chunk>,
    failed: Arc<AtomicBool>,
    thread: Option<JoinHandle<WriterEnd>>,
}

/// Chunks queued between the stage and the writer: with one being written and one being
/// filled, both threads stay busy, and the bytes held stay bounded.
const QUEUE: usize = 1;

impl Writer {
    /// Starts the thread, which owns `sink` from now on.
    pub fn start(sink: Sink) -> io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        let (spare_tx, spare) = channel();
        let failed = Arc::new(AtomicBool::new(false));
        let f = failed.clone();
        let thread = std::thread::Builder::new()
            .name("vedette-writer".into())
            .spawn(move || write_loop(sink, &rx, &spare_tx, &f))?;
        Ok(Self {
            tx: Some(tx),
            spare,
            failed,
            thread: Some(thread),
        })
    }

    /// An empty chunk to fill, reusing a written one when there is one.
    pub fn chunk(&self) -> Chunk {
        self.spare.try_recv().unwrap_or_default()
    }

    /// Hands `chunk` over, waiting while the writer is behind (the backpressure: a full
    /// spool under the block policy stops the stage, which stops the sources). False once
    /// the writer has failed: the stage stops taking input.
    pub fn send(&self, chunk: Chunk) -> bool {
        let Some(tx) = &self.tx else { return false };
        let ok = match tx.try_send(chunk) {
            Ok(()) => true,
            Err(TrySendError::Full(c)) => tx.send(c).is_ok(),
            Err(TrySendError::Disconnected(_)) => false,
        };
        ok && !self.failed()
    }

    /// Whether the sink failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Waits for everything handed over to be written (or the failure), and how it ended.
    /// Later calls find nothing more and say so.
    pub fn finish(&mut self) -> WriterEnd {
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return WriterEnd {
                error: Some(io::Error::other("the writer had already finished")),
                unspooled: None,
            };
        };
        thread.join().unwrap_or_else(|_| WriterEnd {
            error: Some(io::Error::other("the writer thread panicked")),
            unspooled: None,
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ignored = t.join();
        }
    }
}

fn write_loop(
    mut sink: Sink,
    rx: &Receiver<Chunk>,
    spare: &Sender<Chunk>,
    failed: &AtomicBool,
) -> WriterEnd {
    loop {
        // A spool batch lingers until it fills or its time is up, whichever first.
        let next = match sink.poll_timeout() {
            Some(due) => {
                let wait = Duration::from_millis((due - clock::now_ms()).max(0) as u64);
                rx.recv_timeout(wait)
            }
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let res = match next {
            Ok(mut chunk) => {
                let res = write_chunk(&mut sink, &mut chunk);
                chunk.clear();
                let _ignored = spare.send(chunk);
                res
            }
            Err(RecvTimeoutError::Timeout) => sink.flush(false),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Err(e) = res {
            failed.store(true, Ordering::Release);
            return failed_end(&sink, rx, e);
        }
    }
    WriterEnd {
        error: None,
        unspooled: None,
    }
}

fn write_chunk(sink: &mut Sink, chunk: &mut Chunk) -> io::Result<()> {
    let mut start = 0;
    for item in chunk.items.drain(..) {
        match item {
            Item::Event { end, time } => {
                sink.write_line(&chunk.buf[start..end], time);
                start = end;
            }
            Item::Note(w) => sink.note_records(w),
        }
    }
    sink.flush(chunk.force || !chunk.acks.is_empty())?;
    for (ack, floor) in chunk.acks.drain(..) {
        ack(floor);
    }
    Ok(())
}

/// After a failure: what the stage still hands over is counted, never written, and its
/// sources never acknowledged.
fn failed_end(sink: &Sink, rx: &Receiver<Chunk>, e: io::Error) -> WriterEnd {
    let Some(mut unspooled) = sink.unspooled_at_close() else {
        // Keep the stage from blocking on a full queue until it notices.
        while rx.recv().is_ok() {}
        return WriterEnd {
            error: Some(e),
            unspooled: None,
        };
    };
    while let Ok(c) = rx.recv() {
        unspooled += c.events() as u64;
    }
    WriterEnd {
        error: Some(e),
        unspooled: Some(unspooled),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use vedette_schemas::ocsf::{Class, Event, Product};

    use super::{Item, Writer};
    use crate::core::output::write_json_line;
    use crate::io::sink::Sink;

    /// (chunk, floor, lines in the file when the ack ran), per ack.
    type Acked = Arc<Mutex<Vec<(u64, Option<u64>, usize)>>>;

    fn event(time: i64) -> Box<Event> {
        Box::new(Event::new(Class::Base, 0, time, Product::default()))
    }

    #[test]
    fn chunks_are_written_in_order_and_acknowledged_only_once_written() {
        let dir = std::env::temp_dir().join(format!("vedette-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.ndjson");
        let mut writer = Writer::start(Sink::file(&path).unwrap()).unwrap();
        let acked: Acked = Arc::default();
        for c in 0..50u64 {
            let mut chunk = writer.chunk();
            for i in 0..7 {
                let ev = event((c * 7 + i) as i64);
                write_json_line(&ev, &mut chunk.buf);
                chunk.items.push(Item::Event {
                    end: chunk.buf.len(),
                    time: ev.time,
                });
            }
            let (acked, p) = (acked.clone(), path.clone());
            // What the file holds when the ack runs: the chunk's events must be in it.
            let ack: super::Ack = Box::new(move |floor| {
                let lines = std::fs::read_to_string(&p).unwrap().lines().count();
                acked.lock().unwrap().push((c, floor, lines));
            });
            chunk.acks.push((ack, (c % 3 == 0).then_some(c)));
            assert!(writer.send(chunk));
        }
        let end = writer.finish();
        assert!(end.error.is_none() && end.unspooled.is_none());
        let acked = acked.lock().unwrap();
        assert_eq!(acked.len(), 50);
        for (i, &(c, floor, lines)) in acked.iter().enumerate() {
            assert_eq!(c, i as u64, "acknowledged in order");
            assert_eq!(floor, (c % 3 == 0).then_some(c), "floor passed through");
            assert!(
                lines >= (c as usize + 1) * 7,
                "ack {c} ran before its events were written"
            );
        }
        let times: Vec<i64> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().time)
            .collect();
        assert_eq!(times, (0..350).collect::<Vec<i64>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
