//! The store lives on one thread of its own: SQLite is a single writer, and a commit must
//! not block the async tasks that read batches off the network. Tasks send it closures and
//! await the answer; batch commits have their own job kind so that those queued together
//! are committed together (group commit: one transaction and one fsync for all).

use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;
use vedette_schemas::wire::{AckOutcome, BatchHeader};

use crate::core::ingest::{DecodedBatch, Peer};
use crate::store::{Admission, EventStore, Registry, StoreError};

/// What a committed batch gets: its outcome, or the agent's refusal (revoked, unknown);
/// `Err` when nothing could be committed.
pub type Reply = Result<Result<AckOutcome, Admission>, StoreError>;

type Call<S> = Box<dyn FnOnce(&mut S) + Send>;

/// A batch to commit and where its outcome goes (`None`: the agent is revoked).
struct Commit {
    peer: Arc<Peer>,
    header: BatchHeader,
    batch: DecodedBatch,
    now_ms: i64,
    reply: oneshot::Sender<Reply>,
}

enum Job<S> {
    Call(Call<S>),
    Commit(Box<Commit>),
}

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
/// Events in one group commit at most (bounds the transaction and the reply delay).
const GROUP_EVENTS: usize = 20_000;

impl<S: EventStore + Registry + Send + 'static> StoreHandle<S> {
    /// Moves `store` onto a new thread; the thread ends when every handle is dropped.
    pub fn spawn(mut store: S) -> (Self, std::thread::JoinHandle<S>) {
        let (tx, rx) = mpsc::sync_channel::<Job<S>>(QUEUE);
        let join = std::thread::Builder::new()
            .name("vedette-store".into())
            .spawn(move || {
                let mut later: Option<Job<S>> = None;
                loop {
                    let job = match later.take() {
                        Some(j) => j,
                        None => match rx.recv() {
                            Ok(j) => j,
                            Err(_) => break,
                        },
                    };
                    match job {
                        Job::Call(f) => f(&mut store),
                        Job::Commit(first) => {
                            let mut group = vec![*first];
                            let mut events = group[0].batch.rows.len();
                            while events < GROUP_EVENTS {
                                match rx.try_recv() {
                                    Ok(Job::Commit(c)) => {
                                        events += c.batch.rows.len();
                                        group.push(*c);
                                    }
                                    Ok(other) => {
                                        later = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            commit_group(&mut store, group);
                        }
                    }
                }
                store
            })
            .expect("spawning the store thread");
        (Self { tx }, join)
    }

    async fn send(&self, job: Job<S>) -> Result<(), StoreGone> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(StoreGone),
            // A full queue blocks: off the async worker threads.
            Err(mpsc::TrySendError::Full(job)) => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(job))
                    .await
                    .map_err(|_| StoreGone)?
                    .map_err(|_| StoreGone)
            }
        }
    }

    /// Runs `f` on the store thread and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> Result<R, StoreGone> {
        let (otx, orx) = oneshot::channel();
        self.send(Job::Call(Box::new(move |s| {
            // The caller may have gone away; its answer is then of no use to anyone.
            let _ignored = otx.send(f(s));
        })))
        .await?;
        orx.await.map_err(|_| StoreGone)
    }

    /// Commits a batch, with whatever other batches are queued at the same moment; `Err`
    /// with the reason when the agent turned out to be revoked or unknown (nothing stored).
    /// Resolves once committed.
    pub async fn commit(
        &self,
        peer: Arc<Peer>,
        header: BatchHeader,
        batch: DecodedBatch,
        now_ms: i64,
    ) -> Result<Reply, StoreGone> {
        let (reply, orx) = oneshot::channel();
        self.send(Job::Commit(Box::new(Commit {
            peer,
            header,
            batch,
            now_ms,
            reply,
        })))
        .await?;
        orx.await.map_err(|_| StoreGone)
    }
}

/// One transaction for the group; revoked agents' batches are left out and told so. If
/// the transaction fails, each batch is committed again alone, and only those that fail
/// alone get the error (not acknowledged, they come again).
fn commit_group<S: EventStore + Registry>(store: &mut S, group: Vec<Commit>) {
    // Revocation takes effect at the next batch, not the next connect. A state that cannot
    // be read stores nothing (fail closed) but is no revocation either: telling the agent
    // it was revoked over a busy or failing database would be false, so its batch gets
    // the error, is not acknowledged, and comes again.
    let revoked: Vec<Result<Admission, String>> = group
        .iter()
        .map(|c| {
            store
                .admission_of(&c.peer.agent_id, &c.peer.serial)
                .map_err(|e| format!("reading whether {} is revoked: {e}", c.peer.agent_id))
        })
        .collect();
    let items: Vec<(&Peer, &BatchHeader, &DecodedBatch)> = group
        .iter()
        .zip(&revoked)
        .filter(|(_, r)| matches!(r, Ok(Admission::Active)))
        .map(|(c, _)| (&*c.peer, &c.header, &c.batch))
        .collect();
    let now = group.iter().map(|c| c.now_ms).max().unwrap_or(0);
    // One outcome per item, in order.
    let outcomes: Vec<Result<AckOutcome, StoreError>> = if items.is_empty() {
        Vec::new()
    } else {
        match store.commit_group(&items, now) {
            Ok(o) if o.len() == items.len() => o.into_iter().map(Ok).collect(),
            Ok(_) => items
                .iter()
                .map(|_| Err(StoreError::Group("no outcome for a batch".into())))
                .collect(),
            // Each alone, so that a batch the store fails on every time (its own content,
            // or its agent's) is the only one not acknowledged: in a group it failed every
            // batch queued with it, other agents' included, on every resend. Not for a
            // failure of the database itself (busy, full, I/O): each batch alone would meet
            // it again, a busy timeout per batch.
            Err(e) if items.len() > 1 && may_be_the_batchs(&e) => items
                .iter()
                .map(|item| {
                    store
                        .commit_group(std::slice::from_ref(item), now)
                        .and_then(|mut o| {
                            o.pop()
                                .ok_or_else(|| StoreError::Group("no outcome for a batch".into()))
                        })
                })
                .collect(),
            Err(e) => vec![Err(e)],
        }
    };
    drop(items);
    let mut outcomes = outcomes.into_iter();
    for (c, r) in group.into_iter().zip(revoked) {
        let answer = match r {
            Ok(Admission::Active) => match outcomes.next() {
                Some(Ok(o)) => Ok(Ok(o)),
                Some(Err(e)) => Err(e),
                None => Err(StoreError::Group("no outcome for a batch".into())),
            },
            Ok(a) => Ok(Err(a)),
            Err(why) => Err(StoreError::Group(why)),
        };
        let _ignored = c.reply.send(answer);
    }
}

/// Whether a failed commit may be due to one batch of its group rather than to the
/// database as a whole (which fails every batch alike).
fn may_be_the_batchs(e: &StoreError) -> bool {
    use rusqlite::ErrorCode as C;
    match e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => !matches!(
            f.code,
            C::DatabaseBusy
                | C::DatabaseLocked
                | C::DiskFull
                | C::SystemIoFailure
                | C::ReadOnly
                | C::CannotOpen
                | C::OutOfMemory
                | C::DatabaseCorrupt
                | C::NotADatabase
                | C::FileLockingProtocolFailed
                | C::PermissionDenied
        ),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ingest::Peer;
    use crate::core::ingest::tests::{event, peer};
    use crate::core::ingest::{decode_batch, encode_batch};
    use crate::store::sqlite::{SqliteConfig, SqliteStore};

    fn commit_of(seq: u64) -> (Commit, oneshot::Receiver<Reply>) {
        commit_by("agent-1", seq)
    }

    fn commit_by(agent: &str, seq: u64) -> (Commit, oneshot::Receiver<Reply>) {
        let who = Peer {
            agent_id: agent.into(),
            ..peer()
        };
        let (header, payload) = encode_batch(
            &who.agent_id,
            7,
            seq,
            &[event(&format!("u{seq}"), 1)],
            vec![],
            100,
        );
        let batch = decode_batch(&header, &payload, &who).expect("decode");
        let (reply, rx) = oneshot::channel();
        let commit = Commit {
            peer: Arc::new(who),
            header,
            batch,
            now_ms: 1_000,
            reply,
        };
        (commit, rx)
    }

    fn register(store: &mut SqliteStore, id: &str) {
        store
            .register_agent(&crate::store::AgentRecord {
                agent_id: id.into(),
                tenant: "acme".into(),
                hostname: "web-01".into(),
                cert_serial: "01ab".into(),
                not_after_ms: i64::MAX,
                enrolled_ms: 0,
            })
            .expect("register");
    }

    /// A batch of an agent the registry does not know (its database replaced since it
    /// enrolled) or has revoked is not stored, and the answer says which.
    #[test]
    fn batches_of_unknown_and_revoked_agents_are_refused() {
        let mut store = SqliteStore::open_in_memory(SqliteConfig::default()).expect("open");
        let (c, mut rx) = commit_of(1);
        commit_group(&mut store, vec![c]);
        assert!(matches!(rx.try_recv(), Ok(Ok(Err(Admission::Unknown)))));
        register(&mut store, "agent-1");
        let (c, mut rx) = commit_of(2);
        commit_group(&mut store, vec![c]);
        assert!(matches!(
            rx.try_recv(),
            Ok(Ok(Ok(AckOutcome::Stored { .. })))
        ));
        store.revoke_agent("agent-1", 5).expect("revoke");
        let (c, mut rx) = commit_of(3);
        commit_group(&mut store, vec![c]);
        assert!(matches!(rx.try_recv(), Ok(Ok(Err(Admission::Revoked)))));
    }

    /// A batch the store fails on every time (here a trigger refuses its agent's chunks)
    /// is the only one not acknowledged: in one transaction with others, it failed every
    /// batch queued with it, other agents' included, on every resend.
    #[test]
    fn a_batch_the_store_fails_on_fails_alone() {
        let mut store = SqliteStore::open_in_memory(SqliteConfig::default()).expect("open");
        for id in ["agent-1", "agent-2", "agent-3"] {
            register(&mut store, id);
        }
        store
            .call_sql(
                "CREATE TEMP TRIGGER poison BEFORE INSERT ON chunks \
                 WHEN NEW.agent_id = 'agent-2' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .expect("trigger");
        let (c1, mut rx1) = commit_by("agent-1", 1);
        let (c2, mut rx2) = commit_by("agent-2", 1);
        let (c3, mut rx3) = commit_by("agent-3", 1);
        commit_group(&mut store, vec![c1, c2, c3]);
        for rx in [&mut rx1, &mut rx3] {
            assert!(matches!(
                rx.try_recv(),
                Ok(Ok(Ok(AckOutcome::Stored { stored: 1, .. })))
            ));
        }
        match rx2.try_recv() {
            Ok(Err(e)) => assert!(e.to_string().contains("refused"), "{e}"),
            other => panic!("expected the store's error, got {other:?}"),
        }
    }

    /// Busy, full or failing databases fail every batch alike: no batch-by-batch retry
    /// (a busy timeout per batch); a constraint (a trigger, a batch's own data) may be one
    /// batch's.
    #[test]
    fn only_failures_that_may_be_one_batchs_are_retried_alone() {
        let fail = |code: i32| {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_IOERR,
            rusqlite::ffi::SQLITE_LOCKED,
        ] {
            assert!(!may_be_the_batchs(&fail(code)), "{code}");
        }
        assert!(may_be_the_batchs(&fail(rusqlite::ffi::SQLITE_CONSTRAINT)));
        assert!(may_be_the_batchs(&StoreError::Group("x".into())));
    }

    /// The agents table unreadable (here renamed away underneath the store): the batch is
    /// not stored and not acknowledged, and the agent is not told it was revoked (which
    /// closed its connection as revoked over a database error).
    #[test]
    fn an_unreadable_revocation_state_is_an_error_not_a_revocation() {
        let path =
            std::env::temp_dir().join(format!("vedette-store-thread-{}.db", std::process::id()));
        let mut store = SqliteStore::open(&path, SqliteConfig::default()).expect("open");
        register(&mut store, "agent-1");
        let (c, mut rx) = commit_of(1);
        commit_group(&mut store, vec![c]);
        assert!(
            matches!(
                rx.try_recv(),
                Ok(Ok(Ok(AckOutcome::Stored { stored: 1, .. })))
            ),
            "readable: stored"
        );
        let other = rusqlite::Connection::open(&path).expect("second connection");
        other
            .execute_batch("ALTER TABLE agents RENAME TO agents_away")
            .expect("rename");
        let (c, mut rx) = commit_of(2);
        commit_group(&mut store, vec![c]);
        match rx.try_recv() {
            Ok(Err(StoreError::Group(why))) => assert!(why.contains("is revoked"), "{why}"),
            other => panic!("expected an error, got {other:?}"),
        }
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            std::fs::remove_file(p).ok();
        }
    }
}
