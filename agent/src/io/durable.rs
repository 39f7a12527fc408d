//! Checkpoints that survive a power loss without running ahead of the output.
//!
//! A source's checkpoint (a file offset, a journal cursor) is rewritten after every batch
//! the stage acknowledges, and synced to disk now and then. An acknowledgement means the
//! events are in the sink's hands (appended to the spool, written to the output file), not
//! that they are on the disk: under `spool_fsync = "interval"` the spool syncs on its own
//! timer. A checkpoint synced before the spool's records were would, after a power cut,
//! say "read" of lines whose batches never reached the disk, and they would be lost for
//! good (the file is not read again there). So a synced checkpoint save first passes the
//! sink's [`Barrier`]: everything the sink took so far is synced, then the checkpoint.
//!
//! The saves between synced ones are not synced on purpose (one fsync per batch would cost
//! more than the rest of the tail): they survive a crash of the agent, and on a filesystem
//! that commits data before the metadata that names it (ext4's default `data=ordered`)
//! they do not outrun the spool's earlier appends either.

use std::fmt;
use std::io;
use std::sync::Arc;

type SyncFn = dyn Fn() -> io::Result<()> + Send + Sync;

/// Makes durable everything the sink has accepted so far. Cloned into every source.
#[derive(Clone)]
pub struct Barrier(Option<Arc<SyncFn>>);

impl Barrier {
    /// A sink with nothing to sync (stdout: what the reader does with it is its own), or
    /// one told never to sync (`spool_fsync = "never"`).
    pub fn none() -> Self {
        Self(None)
    }

    /// A barrier that runs `f`.
    pub fn new(f: impl Fn() -> io::Result<()> + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// Syncs the sink.
    pub fn wait(&self) -> io::Result<()> {
        match &self.0 {
            None => Ok(()),
            Some(f) => f(),
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Barrier(sync)"
        } else {
            "Barrier(none)"
        })
    }
}

/// Decides which checkpoint saves of one source are synced, and syncs the sink first.
#[derive(Debug)]
pub struct CheckpointSync {
    barrier: Barrier,
    every_ms: i64,
    last_ms: i64,
    /// A failing barrier is said once, not at every save.
    failing: bool,
}

impl CheckpointSync {
    /// Synced saves at most every `every_ms`, counted from `now_ms`.
    pub fn new(barrier: Barrier, every_ms: i64, now_ms: i64) -> Self {
        Self {
            barrier,
            every_ms,
            last_ms: now_ms,
            failing: false,
        }
    }

    /// Whether the save at `now_ms` is to be synced: a synced save is due and the sink
    /// synced first. A sink that fails to sync makes the save an unsynced one (a crash of
    /// the agent still repeats nothing); the next due save tries again.
    pub fn sync_now(&mut self, now_ms: i64, source: &str) -> bool {
        if now_ms - self.last_ms < self.every_ms {
            return false;
        }
        self.last_ms = now_ms;
        self.sync_sink(source)
    }

    /// For the last save (the source stops): synced if the sink syncs.
    pub fn sync_final(&mut self, source: &str) -> bool {
        self.sync_sink(source)
    }

    fn sync_sink(&mut self, source: &str) -> bool {
        match self.barrier.wait() {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    eprintln!(
                        "vedette-agent: {source}: the output syncs again; checkpoints are synced again"
                    );
                }
                true
            }
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    eprintln!(
                        "vedette-agent: {source}: syncing the output failed ({e}); the checkpoint is saved without sync until it works again (a power loss could lose what was read since)"
                    );
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    #[test]
    fn a_synced_save_comes_only_after_the_sink_synced() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let mut s = CheckpointSync::new(
            Barrier::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
            1000,
            0,
        );
        assert!(!s.sync_now(999, "t"), "not due");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "no sync when not due");
        assert!(s.sync_now(1000, "t"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!s.sync_now(1500, "t"), "counted from the last synced save");
        assert!(s.sync_now(2000, "t"));
        assert!(s.sync_final("t"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_sink_that_cannot_sync_keeps_the_checkpoint_unsynced_until_it_can() {
        let fail = Arc::new(AtomicBool::new(true));
        let f = fail.clone();
        let order = Arc::new(Mutex::new(Vec::new()));
        let o = order.clone();
        let mut s = CheckpointSync::new(
            Barrier::new(move || {
                o.lock().unwrap().push("sink");
                if f.load(Ordering::SeqCst) {
                    Err(io::Error::other("EIO"))
                } else {
                    Ok(())
                }
            }),
            1000,
            0,
        );
        assert!(!s.sync_now(1000, "t"), "the sink failed: no synced save");
        assert!(!s.sync_final("t"));
        assert!(
            !s.sync_now(1500, "t"),
            "retried at the next due save, not at every save"
        );
        fail.store(false, Ordering::SeqCst);
        assert!(s.sync_now(2000, "t"));
        assert_eq!(order.lock().unwrap().len(), 3);
    }

    #[test]
    fn no_barrier_always_holds() {
        let mut s = CheckpointSync::new(Barrier::none(), 1000, 0);
        assert!(!s.sync_now(10, "t"));
        assert!(s.sync_now(1000, "t"));
        assert!(s.sync_final("t"));
    }
}
