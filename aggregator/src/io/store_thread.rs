//! The store lives on one thread of its own: SQLite is a single writer, and a commit must
//! not block the async tasks that read batches off the network. Tasks send it closures and
//! await the answer.

use std::sync::mpsc;

use tokio::sync::oneshot;

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// A handle to the store thread; clone it freely.
pub struct StoreHandle<S> {
    tx: mpsc::SyncSender<Job<S>>,
}

impl<S> Clone for StoreHandle<S> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<S> std::fmt::Debug for StoreHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreHandle")
    }
}

/// The store thread has stopped (it panicked or the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the store thread has stopped")]
pub struct StoreGone;

/// Jobs queued before senders wait: a bound, so a slow disk pushes back on the network.
const QUEUE: usize = 64;

impl<S: Send + 'static> StoreHandle<S> {
    /// Moves `store` onto a new thread; the thread ends when every handle is dropped.
    pub fn spawn(mut store: S) -> (Self, std::thread::JoinHandle<S>) {
        let (tx, rx) = mpsc::sync_channel::<Job<S>>(QUEUE);
        let join = std::thread::Builder::new()
            .name("vedette-store".into())
            .spawn(move || {
                for job in rx {
                    job(&mut store);
                }
                store
            })
            .expect("spawning the store thread");
        (Self { tx }, join)
    }

    /// Runs `f` on the store thread and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> Result<R, StoreGone> {
        let (otx, orx) = oneshot::channel();
        let job: Job<S> = Box::new(move |s| {
            // The caller may have gone away; its answer is then of no use to anyone.
            let _ignored = otx.send(f(s));
        });
        let tx = self.tx.clone();
        // A full queue blocks: off the async worker threads.
        tokio::task::spawn_blocking(move || tx.send(job))
            .await
            .map_err(|_| StoreGone)?
            .map_err(|_| StoreGone)?;
        orx.await.map_err(|_| StoreGone)
    }
}
