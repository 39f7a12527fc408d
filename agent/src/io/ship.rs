//! The QUIC client that empties the spool into the aggregator.
//!
//! One connection at a time, with a control stream (hello, heartbeats, certificate
//! renewal) and one bidirectional stream per batch, up to `window` batches in flight. A
//! batch leaves the spool only when the aggregator's ack says it is committed (or was
//! already); anything unacknowledged when a connection fails goes out again on the next
//! one, after a jittered exponential backoff.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use quinn::{Connection, RecvStream, SendStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use vedette_schemas::wire::{
    self, Ack, AckOutcome, Control, Heartbeat, Hello, STREAM_BATCH, STREAM_CONTROL,
};

use super::clock;
use super::identity::{self, IdentityInfo, IdentityPaths, read_frame, write_frame};
use super::spool::Spool;

/// How the shipper behaves.
#[derive(Debug, Clone)]
pub struct ShipConfig {
    /// Batches in flight at once.
    pub window: usize,
    /// Heartbeat interval.
    pub heartbeat_ms: u64,
    /// First reconnect delay; doubles per failure up to `backoff_max_ms`, with jitter.
    pub backoff_min_ms: u64,
    /// Longest reconnect delay.
    pub backoff_max_ms: u64,
    /// How long shutdown waits for acks of what is in flight.
    pub drain_ms: u64,
    /// A connection silent this long is dead.
    pub idle_timeout_ms: u64,
    /// How long the welcome may take, and how long batches may be in flight with none of
    /// them answered (progress, not each batch's own time: on a slow link the last of a
    /// window is answered long after it was handed over). QUIC's keep-alives hold a
    /// connection up while an aggregator that stopped working (a store stuck on its disk)
    /// answers nothing: past this, the connection is made again and what was in flight
    /// goes out again.
    pub answer_timeout_ms: u64,
    /// What `rejected/` may keep, bytes (see [`super::rejected`]).
    pub rejected_max_bytes: u64,
}

impl Default for ShipConfig {
    fn default() -> Self {
        Self {
            window: 8,
            heartbeat_ms: 10_000,
            backoff_min_ms: 250,
            backoff_max_ms: 30_000,
            drain_ms: 5_000,
            idle_timeout_ms: 30_000,
            answer_timeout_ms: 120_000,
            rejected_max_bytes: 64 << 20,
        }
    }
}

/// What the shipper did, for the run summary and heartbeats.
#[derive(Debug, Default)]
pub struct ShipStats {
    /// Connections established.
    pub connects: AtomicU64,
    /// Connection attempts or sessions that failed.
    pub failures: AtomicU64,
    /// Batches acknowledged as stored.
    pub acked: AtomicU64,
    /// Batches acknowledged as replays (committed before).
    pub replays: AtomicU64,
    /// Batches the aggregator refused for good (kept in `rejected/`).
    pub rejected: AtomicU64,
    /// Refused batches deleted from `rejected/` (or never written) to keep it within
    /// its bound.
    pub rejected_discarded: AtomicU64,
    /// Events the aggregator stored.
    pub events_stored: AtomicU64,
    /// Events the aggregator already had.
    pub events_duplicate: AtomicU64,
    /// Certificates renewed.
    pub renewals: AtomicU64,
    /// Batches sent again on the same connection after the aggregator reset their stream
    /// (it could not store them, and said so for that batch only).
    pub retried: AtomicU64,
    /// Bytes of acknowledged batches as sent on their streams (header frame and zstd
    /// payload; QUIC's own framing and encryption add a few percent).
    pub wire_bytes: AtomicU64,
    /// Uncompressed NDJSON bytes of those batches.
    pub raw_bytes: AtomicU64,
}

/// Extra numbers the heartbeat reports (filled by the listeners).
pub type UdpDrops = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The shipper.
pub struct Shipper {
    /// The spool it empties.
    pub spool: Arc<Spool>,
    /// Identity files.
    pub paths: IdentityPaths,
    /// Who it is.
    pub info: IdentityInfo,
    /// Behaviour.
    pub cfg: ShipConfig,
    /// Counters.
    pub stats: Arc<ShipStats>,
    /// Where refused batches are kept for an operator to look at.
    pub rejected_dir: PathBuf,
    /// Host facts for the hello.
    pub host: serde_json::Value,
    /// Kernel UDP drops, for heartbeats.
    pub udp_drops: Option<UdpDrops>,
    /// The address the current session reached, if it did.
    pub reached: std::sync::Mutex<Option<std::net::SocketAddr>>,
    /// The address the last failed session had reached: dialled last next time.
    pub avoid: std::sync::Mutex<Option<std::net::SocketAddr>>,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper")
            .field("agent", &self.info.agent_id)
            .field("server", &self.info.server)
            .finish()
    }
}

/// Close code the server uses for a revoked agent (see the aggregator's `close` module).
const CLOSE_REVOKED: u32 = 2;

/// Delay before reconnect attempt `n` (0-based): exponential, capped, with ±50% jitter so a
/// fleet that lost the aggregator together does not come back in lockstep.
pub fn backoff_ms(n: u32, min: u64, max: u64, jitter: u64) -> u64 {
    let base = min.saturating_mul(1u64 << n.min(30)).min(max);
    let half = base / 2;
    half + jitter % (base - half + 1)
}

/// Aborts its task when dropped (a session's control-stream reader ends with it).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Closes a session's connection when the session ends, however it ends: dropped at the
/// shutdown deadline too, when it would otherwise hold one of the aggregator's
/// connection slots for this agent until the idle timeout.
struct CloseOnDrop(Connection);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(0u32.into(), b"bye");
    }
}

/// Whether a batch exchange failed because the aggregator reset that stream (or stopped
/// reading it): a refusal of the one batch, not of the connection.
fn is_stream_reset(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<quinn::ReadExactError>(),
            Some(quinn::ReadExactError::ReadError(quinn::ReadError::Reset(_)))
        ) || matches!(
            c.downcast_ref::<quinn::ReadError>(),
            Some(quinn::ReadError::Reset(_))
        ) || matches!(
            c.downcast_ref::<quinn::WriteError>(),
            Some(quinn::WriteError::Stopped(_))
        )
    })
}

/// A session that stayed up this long counts as working even if it had nothing to send.
const STABLE_SESSION_MS: i64 = 30_000;

/// Whether a session that ended starts the reconnect backoff over: it delivered a batch,
/// or it was welcomed and stayed up [`STABLE_SESSION_MS`]. A welcome alone is not enough:
/// an aggregator that welcomes and then fails (an overloaded one, a batch it resets every
/// time) would have the fleet reconnect every quarter second for ever.
fn session_worked(acked: u64, acked_before: u64, welcomed: bool, lived_ms: i64) -> bool {
    acked > acked_before || (welcomed && lived_ms >= STABLE_SESSION_MS)
}

fn random_u64() -> u64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    let _ignored = ring::rand::SystemRandom::new().fill(&mut b);
    u64::from_le_bytes(b)
}

impl Shipper {
    /// Ships until `stop` turns true and the spool has nothing in flight (or the drain
    /// time is up).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let me = Arc::new(self);
        let mut failures: u32 = 0;
        loop {
            if *stop.borrow() && me.spool.stats().batches == 0 {
                return;
            }
            let connects = me.stats.connects.load(Relaxed);
            let acked = me.stats.acked.load(Relaxed);
            let started = clock::monotonic_ms();
            // Once asked to stop, a session gets the drain time to deliver what is
            // spooled, however far it got (connecting to an aggregator that is down
            // included); what it did not deliver waits in the spool for the next start.
            let drain = me.cfg.drain_ms;
            let mut stopped = stop.clone();
            let deadline = async move {
                while !*stopped.borrow_and_update() {
                    if stopped.changed().await.is_err() {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(drain)).await;
            };
            *me.reached.lock().unwrap_or_else(|p| p.into_inner()) = None;
            let r = tokio::select! {
                r = me.clone().session(stop.clone()) => r,
                () = deadline => Ok(()),
            };
            // Off the runtime: the spool's lock may be held by an append waiting for the
            // device, and the syslog listeners share this runtime.
            let sp = me.spool.clone();
            let _ignored = tokio::task::spawn_blocking(move || sp.requeue_unacked()).await;
            let worked = session_worked(
                me.stats.acked.load(Relaxed),
                acked,
                me.stats.connects.load(Relaxed) > connects,
                clock::monotonic_ms() - started,
            );
            if worked {
                failures = 0;
            }
            match r {
                Ok(()) => return,
                Err(e) => {
                    // After a session that delivered nothing, the next one dials the
                    // address it reached last: one that takes connections but does not
                    // work (a wedged aggregator) is not dialled for ever while another of
                    // the name would serve. (One that could not be reached at all was
                    // passed over by `connect_any`.) A session that worked and then ended
                    // (an aggregator restarted) keeps the order: the others may be
                    // addresses nobody serves, each costing a connect timeout. By address,
                    // not position: a resolver may order them anew each time.
                    let reached = *me.reached.lock().unwrap_or_else(|p| p.into_inner());
                    *me.avoid.lock().unwrap_or_else(|p| p.into_inner()) =
                        if worked { None } else { reached };
                    me.stats.failures.fetch_add(1, Relaxed);
                    eprintln!("vedette-agent: shipping to {}: {e:#}", me.info.server);
                    if *stop.borrow() {
                        return;
                    }
                    let wait = backoff_ms(
                        failures,
                        me.cfg.backoff_min_ms,
                        me.cfg.backoff_max_ms,
                        random_u64(),
                    );
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(wait)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    /// Connects to the server's addresses in turn, the one to avoid last, and records
    /// which one it reached.
    async fn connect(&self) -> anyhow::Result<(quinn::Endpoint, Connection)> {
        let (cert, key, ca) = self.paths.pems()?;
        let cfg = identity::events_client(
            &cert,
            &key,
            &ca,
            Duration::from_millis(self.cfg.idle_timeout_ms),
        )?;
        let (mut addrs, name) = identity::resolve(&self.info.server).await?;
        let avoid = *self.avoid.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = avoid.and_then(|a| addrs.iter().position(|&x| x == a)) {
            let a = addrs.remove(pos);
            addrs.push(a);
        }
        let (endpoint, conn, i) = identity::connect_any(
            &addrs,
            &name,
            cfg,
            Duration::from_millis(self.cfg.idle_timeout_ms),
        )
        .await?;
        *self.reached.lock().unwrap_or_else(|p| p.into_inner()) = Some(addrs[i]);
        Ok((endpoint, conn))
    }

    /// One connection's life. `Ok` only when asked to stop and the spool is drained.
    async fn session(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let (endpoint, conn) = self.connect().await?;
        let (mut ctl_send, mut ctl_recv) = conn.open_bi().await?;
        ctl_send.write_all(&[STREAM_CONTROL]).await?;
        write_frame(
            &mut ctl_send,
            &Control::Hello(Hello {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                hostname: super::host::hostname(),
                host: self.host.clone(),
                epoch: self.spool.epoch(),
            }),
        )
        .await?;
        let answer = Duration::from_millis(self.cfg.answer_timeout_ms);
        let welcome = match tokio::time::timeout(answer, read_frame::<Control>(&mut ctl_recv)).await
        {
            Ok(Ok(Control::Welcome(w))) => w,
            Ok(Ok(other)) => bail!("expected a welcome, got {other:?}"),
            Ok(Err(e)) => return Err(refusal(&conn).unwrap_or(e)),
            Err(_) => {
                conn.close(0u32.into(), b"no welcome");
                bail!("no welcome in {} ms", self.cfg.answer_timeout_ms);
            }
        };
        if welcome.agent_id != self.info.agent_id {
            bail!(
                "the aggregator sees us as {}, we are {}",
                welcome.agent_id,
                self.info.agent_id
            );
        }
        self.stats.connects.fetch_add(1, Relaxed);
        let _close = CloseOnDrop(conn.clone());
        // Aborted with the session: dropped at the shutdown deadline, the task sent
        // heartbeats on.
        let mut control = AbortOnDrop(tokio::spawn(self.clone().control(ctl_send, ctl_recv)));
        let mut in_flight: JoinSet<(u64, anyhow::Result<()>)> = JoinSet::new();
        // Batches whose stream the aggregator reset, by seq: when each is handed back to
        // the spool (after a backoff of its own), and how often it was reset.
        let mut retry_due: std::collections::BTreeMap<u64, i64> = std::collections::BTreeMap::new();
        let mut attempts: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
        let mut stopping_since: Option<i64> = None;
        // Since when batches have been in flight or waiting to be sent again with no
        // acknowledgement: a reset is an answer, but not progress (an aggregator whose
        // store fails every batch resets them all, and another address may serve).
        let mut unacked_since: Option<i64> = None;
        // Every way out goes through the cleanup after the loop: the control task holds
        // the connection open (and would renew the certificate beside the next session's).
        let result = 'session: loop {
            if *stop.borrow() && stopping_since.is_none() {
                stopping_since = Some(clock::monotonic_ms());
                // The drain time is for delivering: no batch sits out a backoff in it.
                let now = clock::monotonic_ms();
                retry_due.values_mut().for_each(|due| *due = now);
            }
            if let Some(t) = stopping_since {
                if self.spool.stats().batches == 0 && in_flight.is_empty() {
                    break Ok(());
                }
                if clock::monotonic_ms() - t > self.cfg.drain_ms as i64 {
                    break Ok(());
                }
            }
            while in_flight.len() < self.cfg.window {
                // Disk reads off the runtime's one worker, which the listeners share.
                let sp = self.spool.clone();
                let next = match tokio::task::spawn_blocking(move || sp.next_unsent()).await {
                    Ok(Ok(n)) => n,
                    // A record damaged since it was written is counted by the spool and
                    // skipped; anything else is a disk problem worth a reconnect cycle.
                    Ok(Err(e)) => break 'session Err(anyhow!("reading the spool: {e}")),
                    Err(e) => break 'session Err(anyhow!("reading the spool: {e}")),
                };
                let Some((seq, bytes)) = next else {
                    break;
                };
                let (me, conn) = (self.clone(), conn.clone());
                in_flight.spawn(async move { (seq, me.send_batch(&conn, seq, bytes).await) });
                unacked_since.get_or_insert_with(clock::monotonic_ms);
            }
            // Nothing out and nothing to send again (the last one was acknowledged, or
            // dropped or found damaged instead of being sent again): nothing is awaited.
            if in_flight.is_empty() && retry_due.is_empty() {
                unacked_since = None;
            }
            let now = clock::monotonic_ms();
            let until = |t: i64| Duration::from_millis(t.saturating_sub(now).max(0) as u64);
            let answer_due = unacked_since.map_or(Duration::from_secs(86_400), |t| {
                until(t.saturating_add(self.cfg.answer_timeout_ms as i64))
            });
            let retry_at = retry_due
                .values()
                .min()
                .map_or(Duration::from_secs(86_400), |&t| until(t));
            tokio::select! {
                // Answers first: one that is there is not lost to a timeout due at the
                // same poll.
                biased;
                Some(r) = in_flight.join_next(), if !in_flight.is_empty() => {
                    match r {
                        Ok((seq, Ok(()))) => {
                            attempts.remove(&seq);
                            unacked_since = (!in_flight.is_empty() || !retry_due.is_empty())
                                .then(clock::monotonic_ms);
                        }
                        // The aggregator gave up this batch alone (its store failed on it):
                        // the others in flight and the connection go on, and it goes out
                        // again after a backoff of its own.
                        Ok((seq, Err(e))) if is_stream_reset(&e) && conn.close_reason().is_none() => {
                            let n = attempts.entry(seq).or_insert(0);
                            // Within the drain time at the shortest; never so long that the
                            // answer timeout ends the session before it is sent again.
                            let wait = if stopping_since.is_some() {
                                self.cfg.backoff_min_ms
                            } else {
                                backoff_ms(
                                    *n,
                                    self.cfg.backoff_min_ms,
                                    self.cfg.backoff_max_ms,
                                    random_u64(),
                                )
                            }
                            .min(self.cfg.answer_timeout_ms / 2);
                            *n = n.saturating_add(1);
                            self.stats.retried.fetch_add(1, Relaxed);
                            eprintln!(
                                "vedette-agent: shipping to {}: batch {seq} not stored ({e:#}); sent again in {wait} ms",
                                self.info.server
                            );
                            retry_due.insert(seq, clock::monotonic_ms().saturating_add(wait as i64));
                        }
                        Ok((_, Err(e))) => break Err(refusal(&conn).unwrap_or(e)),
                        Err(e) => break Err(anyhow!("a batch task failed: {e}")),
                    }
                }
                () = tokio::time::sleep(retry_at), if !retry_due.is_empty() => {
                    let now = clock::monotonic_ms();
                    let due: Vec<u64> = retry_due
                        .iter()
                        .filter(|&(_, &t)| t <= now)
                        .map(|(&seq, _)| seq)
                        .collect();
                    due.iter().for_each(|seq| {
                        retry_due.remove(seq);
                    });
                    // Off the runtime: the spool's lock may be held by an append waiting
                    // for the device.
                    let sp = self.spool.clone();
                    let _ignored = tokio::task::spawn_blocking(move || {
                        due.into_iter().for_each(|seq| sp.retry(seq));
                    })
                    .await;
                }
                () = self.spool.wait_unsent(), if in_flight.len() < self.cfg.window => {}
                _ = stop.changed(), if stopping_since.is_none() => {}
                () = tokio::time::sleep(Duration::from_millis(100)), if stopping_since.is_some() => {}
                () = tokio::time::sleep(answer_due), if unacked_since.is_some() => {
                    break Err(anyhow!(
                        "no batch acknowledged in {} ms ({} in flight, {} to send again)",
                        self.cfg.answer_timeout_ms,
                        in_flight.len(),
                        retry_due.len()
                    ));
                }
                e = conn.closed() => break Err(refusal(&conn).unwrap_or_else(|| anyhow!("connection lost: {e}"))),
                // Heartbeats and renewal live there: a connection without them would go
                // on shipping until the certificate expired under it.
                r = &mut control.0 => break Err(match r {
                    Ok(Ok(())) => anyhow!("the control stream ended"),
                    Ok(Err(e)) => refusal(&conn).unwrap_or_else(|| e.context("control stream")),
                    Err(e) => anyhow!("the control task failed: {e}"),
                }),
            }
        };
        in_flight.abort_all();
        control.0.abort();
        conn.close(0u32.into(), b"bye");
        // Lets the close reach the server; bounded by the idle timeout.
        let _ignored = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        result
    }

    async fn send_batch(&self, conn: &Connection, seq: u64, bytes: Vec<u8>) -> anyhow::Result<()> {
        // A cap on one batch, however many others are answered meanwhile: a stream the
        // aggregator never answers would hold a window slot for ever. Generous, for a batch
        // queued behind a window's worth on a slow link.
        let cap = self.cfg.answer_timeout_ms.saturating_mul(10);
        let exchange = async {
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&[STREAM_BATCH]).await?;
            send.write_all(&bytes).await?;
            send.finish()?;
            read_frame::<Ack>(&mut recv)
                .await
                .with_context(|| format!("waiting for the ack of batch {seq}"))
        };
        let ack = match tokio::time::timeout(Duration::from_millis(cap), exchange).await {
            Ok(r) => r?,
            Err(_) => bail!("no answer to batch {seq} in {cap} ms"),
        };
        let header = wire::split_frame(&bytes)
            .ok()
            .flatten()
            .and_then(|(h, _)| wire::decode_frame::<wire::BatchHeader>(h).ok());
        // A batch keeps the epoch it was made in: one spooled before a reboot carries the
        // old epoch while the spool's own has moved on, and its ack echoes the old one.
        let epoch = header.as_ref().map_or(self.spool.epoch(), |h| h.epoch);
        if ack.seq != seq || ack.epoch != epoch {
            bail!(
                "ack for batch {}/{} on the stream of {epoch}/{seq}",
                ack.epoch,
                ack.seq,
            );
        }
        if !matches!(ack.outcome, AckOutcome::Rejected { .. }) {
            self.stats
                .wire_bytes
                .fetch_add(bytes.len() as u64 + 1, Relaxed);
            let raw = header.as_ref().map_or(0, |h| h.raw_len);
            self.stats.raw_bytes.fetch_add(raw, Relaxed);
        }
        match ack.outcome {
            AckOutcome::Stored {
                stored,
                duplicates,
                reused,
            } => {
                if reused {
                    eprintln!(
                        "vedette-agent: the aggregator had batch {epoch:016x}/{seq} with other content: this agent's numbering went back (its disk restored from a snapshot?); stored as new"
                    );
                }
                self.stats.acked.fetch_add(1, Relaxed);
                self.stats.events_stored.fetch_add(stored, Relaxed);
                self.stats.events_duplicate.fetch_add(duplicates, Relaxed);
            }
            AckOutcome::Replay => {
                self.stats.replays.fetch_add(1, Relaxed);
            }
            AckOutcome::Rejected { reason } => {
                self.stats.rejected.fetch_add(1, Relaxed);
                // Kept, never silently gone: an operator can look at it and resend.
                let name = format!("{epoch:016x}-{seq:020}.batch");
                let (dir, max) = (self.rejected_dir.clone(), self.cfg.rejected_max_bytes);
                let kept = tokio::task::spawn_blocking(move || {
                    super::rejected::keep(&dir, &name, &bytes, max)
                })
                .await
                .map_err(|e| anyhow!("keeping refused batch {seq}: {e}"))?;
                match kept {
                    Ok(k) => {
                        eprintln!(
                            "vedette-agent: the aggregator refused batch {seq}: {reason}; {}",
                            match &k.saved {
                                Some(p) => format!("kept in {}", p.display()),
                                None => format!(
                                    "not kept: larger alone than rejected_max_mb ({} bytes)",
                                    self.cfg.rejected_max_bytes
                                ),
                            }
                        );
                        for (p, len) in &k.discarded {
                            if k.saved.is_some() {
                                eprintln!(
                                    "vedette-agent: deleted refused batch {} ({len} bytes) to keep rejected/ within rejected_max_mb",
                                    p.display()
                                );
                            }
                        }
                        self.stats
                            .rejected_discarded
                            .fetch_add(k.discarded.len() as u64, Relaxed);
                    }
                    Err(e) => {
                        eprintln!(
                            "vedette-agent: the aggregator refused batch {seq}: {reason}; keeping it in {} failed: {e}",
                            self.rejected_dir.display()
                        );
                        self.stats.rejected_discarded.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        let sp = self.spool.clone();
        tokio::task::spawn_blocking(move || sp.ack(seq))
            .await
            .map_err(|e| anyhow!("freeing batch {seq} in the spool: {e}"))?
            .with_context(|| format!("freeing batch {seq} in the spool"))?;
        Ok(())
    }

    /// Heartbeats out; renewal when the certificate nears its end.
    async fn control(
        self: Arc<Self>,
        mut send: SendStream,
        mut recv: RecvStream,
    ) -> anyhow::Result<()> {
        // Frames are read by a task of their own and handed over a channel: a read raced
        // against the heartbeat tick was cancelled half-way whenever the tick won (quinn's
        // `read_exact` is not cancel-safe), the bytes it had read were lost, and the next
        // read misparsed the stream (a renewal's answer lost with the session).
        let (frames_tx, mut frames) = tokio::sync::mpsc::channel::<anyhow::Result<Control>>(4);
        let _reader = AbortOnDrop(tokio::spawn(async move {
            loop {
                let frame = read_frame::<Control>(&mut recv).await;
                let end = frame.is_err();
                if frames_tx.send(frame).await.is_err() || end {
                    return;
                }
            }
        }));
        let mut tick = tokio::time::interval(Duration::from_millis(self.cfg.heartbeat_ms.max(1)));
        let mut pending_key: Option<String> = None;
        // Once per connection at most: the next check is against the new certificate.
        let mut renewed = false;
        // After a renewal that could not be saved (a full disk), when to ask again: the
        // certificate must be renewed before it expires, or the agent is locked out.
        let mut retry_at = i64::MIN;
        // Read once: the certificate changes only through the renewal below.
        let (not_before, not_after) = identity::validity_ms(&self.paths.pems()?.0)?;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    write_frame(&mut send, &Control::Heartbeat(self.heartbeat())).await?;
                    if pending_key.is_none()
                        && !renewed
                        && clock::monotonic_ms() >= retry_at
                        && identity::renewal_due(not_before, not_after, clock::now_ms())
                    {
                        let (key, csr) = identity::key_and_csr()?;
                        write_frame(&mut send, &Control::Renew { csr_pem: csr }).await?;
                        pending_key = Some(key);
                    }
                }
                msg = frames.recv() => match msg.ok_or_else(|| anyhow!("the control stream's reader ended"))?? {
                    Control::Renewed { cert_pem } => {
                        let key = pending_key.take().ok_or_else(|| anyhow!("a renewed certificate nobody asked for"))?;
                        let paths = self.paths.clone();
                        let pem = cert_pem.clone();
                        let saved = tokio::task::spawn_blocking(move || paths.replace_cert(&pem, &key, clock::now_ms()))
                            .await
                            .map_err(|e| anyhow!("saving the renewed certificate: {e}"))?;
                        if let Err(e) = saved {
                            let wait = renew_retry_ms(self.cfg.heartbeat_ms);
                            retry_at = clock::monotonic_ms() + wait as i64;
                            eprintln!("vedette-agent: saving the renewed certificate failed, the current one stays in use; asking again in {wait} ms: {e:#}");
                            continue;
                        }
                        self.stats.renewals.fetch_add(1, Relaxed);
                        renewed = true;
                        eprintln!("vedette-agent: certificate renewed (valid until {} ms)", identity::validity_ms(&cert_pem)?.1);
                    }
                    Control::Error { reason } => {
                        // A renewal refused (revoked, asked too often, the CA failing) is
                        // asked again later, not at every heartbeat.
                        if pending_key.take().is_some() {
                            retry_at = clock::monotonic_ms() + renew_retry_ms(self.cfg.heartbeat_ms) as i64;
                        }
                        eprintln!("vedette-agent: the aggregator said: {reason}");
                    }
                    other => bail!("unexpected control frame {other:?}"),
                },
            }
        }
    }

    fn heartbeat(&self) -> Heartbeat {
        let s = self.spool.stats();
        let now = clock::now_ms();
        Heartbeat {
            now_ms: now,
            spool_bytes: s.bytes,
            spool_batches: s.batches,
            lag_ms: s.oldest_created_ms.map_or(0, |t| (now - t).max(0)),
            dropped_batches: s.dropped_batches,
            dropped_events: s.dropped_events,
            damaged_records: s.damaged_records,
            udp_drops: self.udp_drops.as_ref().map_or(0, |f| f()),
        }
    }
}

/// How long after a renewal that could not be saved the agent asks again: ten heartbeats,
/// at least a second.
fn renew_retry_ms(heartbeat_ms: u64) -> u64 {
    heartbeat_ms.saturating_mul(10).max(1_000)
}

/// The server's reason when it closed the connection on purpose.
fn refusal(conn: &Connection) -> Option<anyhow::Error> {
    match conn.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(c) if c.error_code == CLOSE_REVOKED.into() => {
            Some(anyhow!("the aggregator revoked this agent"))
        }
        quinn::ConnectionError::ApplicationClosed(c) => Some(anyhow!(
            "the aggregator closed the connection: {}",
            String::from_utf8_lossy(&c.reason)
        )),
        quinn::ConnectionError::ConnectionClosed(c) => {
            Some(anyhow!("the connection was refused: {c}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{STABLE_SESSION_MS, backoff_ms, session_worked};

    #[test]
    fn only_a_session_that_delivered_or_lasted_starts_the_backoff_over() {
        assert!(session_worked(5, 4, true, 10), "a batch acknowledged");
        assert!(
            session_worked(4, 4, true, STABLE_SESSION_MS),
            "up a while, idle"
        );
        assert!(
            !session_worked(4, 4, true, 200),
            "welcomed, then failed at once: the backoff grows"
        );
        assert!(
            !session_worked(4, 4, false, STABLE_SESSION_MS),
            "never welcomed"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_inside_half_to_full() {
        for j in [0, 1, 77, u64::MAX] {
            assert!((100..=200).contains(&backoff_ms(1, 100, 10_000, j)));
            assert!((5_000..=10_000).contains(&backoff_ms(20, 100, 10_000, j)));
        }
        assert_eq!(backoff_ms(0, 100, 10_000, 0), 50);
        assert_eq!(backoff_ms(3, 100, 10_000, 0), 400);
    }
}
