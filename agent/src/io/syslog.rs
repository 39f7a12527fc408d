//! Syslog listeners: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425), each taking only
//! the sender networks it allows, recording each record's peer, and handing batches to the
//! normalize stage. Backpressure: a TCP or TLS connection stops reading while the stage is
//! full (the sender's window closes); UDP leaves datagrams to the kernel, which drops what
//! overflows the socket buffer and counts it, and that count is reported.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Notify, mpsc, watch};

use super::clock;
use super::pipeline::{Batch, LiveSource, StageMsg};
use crate::config::{ClientAuth, SyslogInput, SyslogProtocol};
use crate::core::Received;
use crate::core::framing::Deframer;
use crate::core::peer_names::PermittedNames;

/// Counters of one listener, readable while it runs.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Messages taken.
    pub messages: AtomicU64,
    /// Datagrams or connections refused because the sender is not allowed.
    pub refused: AtomicU64,
    /// TCP/TLS connections accepted.
    pub connections: AtomicU64,
    /// TLS handshakes that failed or timed out, and client certificates whose names are not
    /// permitted.
    pub tls_failures: AtomicU64,
    /// TCP/TLS connections closed at once because `max_connections` were open (and none
    /// had been silent for `evict_idle_ms`).
    pub over_limit: AtomicU64,
    /// TCP/TLS connections closed after `evict_idle_ms` of silence to make room for a new
    /// one when `max_connections` were open, or when their sender held
    /// `max_connections_per_sender`.
    pub evicted: AtomicU64,
    /// TCP/TLS connections closed at once because their sender already held
    /// `max_connections_per_sender` (none of them silent for `evict_idle_ms`).
    pub over_sender_limit: AtomicU64,
    /// Datagrams the kernel dropped because the socket buffer was full (UDP).
    pub kernel_drops: AtomicU64,
}

/// A bound listener, before it serves.
pub struct Bound {
    socket: Socket,
    input: SyslogInput,
    /// The address actually bound (a configured port 0 is resolved).
    pub local_addr: SocketAddr,
    tls_reload: Option<TlsReload>,
}

enum Socket {
    Udp(UdpSocket),
    /// A TLS listener takes each handshake's certificate and rules from the latest value.
    Tcp(TcpListener, Option<watch::Receiver<Tls>>),
}

/// Reloads a running TLS listener's certificate, key and client CA from their files
/// (SIGHUP after a renewal): new handshakes use them, connections already open go on.
pub struct TlsReload {
    protocol: SyslogProtocol,
    digest: u64,
    tx: watch::Sender<Tls>,
}

impl TlsReload {
    /// Reads the files again; `Ok(true)` when they changed and are in use from now on.
    /// On an error the listener keeps what it has.
    pub fn reload(&mut self) -> io::Result<bool> {
        let digest = tls_files_digest(&self.protocol)?;
        if digest == self.digest {
            return Ok(false);
        }
        let tls = Tls::load(&self.protocol)?.ok_or_else(|| io::Error::other("not TLS"))?;
        self.digest = digest;
        // Fails only when the listener has stopped, which leaves nothing to update.
        let _ignored = self.tx.send(tls);
        Ok(true)
    }
}

/// A hash of the bytes of a TLS listener's files, to tell whether they changed.
fn tls_files_digest(protocol: &SyslogProtocol) -> io::Result<u64> {
    let SyslogProtocol::Tls { cert, key, clients } = protocol else {
        return Ok(0);
    };
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for path in [Some(cert), Some(key), clients.as_ref().map(|c| &c.ca)]
        .into_iter()
        .flatten()
    {
        let bytes = std::fs::read(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.digest())
}

/// A TLS listener's handshake, and the names its client certificates must carry (empty:
/// any the CA signed, or no certificate when none is asked for).
#[derive(Clone)]
struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    names: Arc<PermittedNames>,
}

impl Tls {
    /// The handshake of `protocol`, if it is TLS, from its files.
    fn load(protocol: &SyslogProtocol) -> io::Result<Option<Self>> {
        let SyslogProtocol::Tls { cert, key, clients } = protocol else {
            return Ok(None);
        };
        Ok(Some(Self {
            acceptor: tls_acceptor(cert, key, clients.as_ref())?,
            names: Arc::new(
                clients
                    .as_ref()
                    .map(|c| c.names.clone())
                    .unwrap_or_default(),
            ),
        }))
    }
}

impl Bound {
    /// The handle that reloads a TLS listener's files while it serves (taken once).
    pub fn take_tls_reload(&mut self) -> Option<TlsReload> {
        self.tls_reload.take()
    }

    /// `udp://ADDR`, `tcp://ADDR` or `tls://ADDR`: the source's `metadata.log_source`.
    pub fn source_id(&self) -> String {
        let scheme = match self.input.protocol {
            SyslogProtocol::Udp => "udp",
            SyslogProtocol::Tcp => "tcp",
            SyslogProtocol::Tls { .. } => "tls",
        };
        format!("{scheme}://{}", self.local_addr)
    }
}

/// Binds the listener of `input` (must run inside the runtime).
pub fn bind(input: &SyslogInput) -> io::Result<Bound> {
    let addr = input.listen;
    let domain = socket2::Domain::for_address(addr);
    let mut tls_reload = None;
    let socket = match input.protocol {
        SyslogProtocol::Udp => {
            let s = socket2::Socket::new(domain, socket2::Type::DGRAM, None)?;
            if let Some(n) = input.receive_buffer_bytes {
                s.set_recv_buffer_size(n)?;
                // Linux caps it at net.core.rmem_max, and reports twice what it was asked
                // for (the doubling is its bookkeeping): a buffer smaller than configured
                // drops datagrams in bursts it was sized for, so it is said once here.
                let got = s.recv_buffer_size()? / 2;
                if got < n {
                    eprintln!(
                        "vedette-agent: udp://{addr}: receive buffer is {got} bytes, not the {n} configured (the kernel caps it at net.core.rmem_max: raise that)"
                    );
                }
            }
            s.set_nonblocking(true)?;
            s.bind(&addr.into())?;
            Socket::Udp(UdpSocket::from_std(s.into())?)
        }
        SyslogProtocol::Tcp | SyslogProtocol::Tls { .. } => {
            let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            s.set_nonblocking(true)?;
            s.bind(&addr.into())?;
            s.listen(1024)?;
            // The digest first: files replaced between the two reads are read again at
            // the next reload rather than taken for unchanged.
            let digest = tls_files_digest(&input.protocol)?;
            let tls = match Tls::load(&input.protocol)? {
                Some(tls) => {
                    let (tx, rx) = watch::channel(tls);
                    tls_reload = Some(TlsReload {
                        protocol: input.protocol.clone(),
                        digest,
                        tx,
                    });
                    Some(rx)
                }
                None => None,
            };
            Socket::Tcp(TcpListener::from_std(s.into())?, tls)
        }
    };
    let local_addr = match &socket {
        Socket::Udp(s) => s.local_addr()?,
        Socket::Tcp(l, _) => l.local_addr()?,
    };
    Ok(Bound {
        socket,
        input: input.clone(),
        local_addr,
        tls_reload,
    })
}

fn tls_acceptor(
    cert: &Path,
    key: &Path,
    clients: Option<&ClientAuth>,
) -> io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &Path, e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", what.display()),
        )
    };
    let pem_certs = |path: &Path| {
        CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| bad(path, &e))
    };
    let certs = pem_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match clients {
        None => rustls::server::WebPkiClientVerifier::no_client_auth(),
        Some(c) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in pem_certs(&c.ca)? {
                roots.add(ca).map_err(|e| bad(&c.ca, &e))?;
            }
            // Mandatory: without a certificate of this CA, no handshake.
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| bad(&c.ca, &e))?
        }
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
        })
        .map_err(|e| bad(cert, &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The names a client certificate goes by for `tls_client_names`: its DNS subject
/// alternative names, or, when it has none, its subject's common names (RFC 5425 §5.2).
/// A certificate that cannot be parsed has none (rustls already verified its chain, so
/// this does not happen in practice).
fn certificate_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let dns: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if !dns.is_empty() {
        return dns;
    }
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect()
}

/// Whether a finished handshake's client may send, and the name it proved: `None` when
/// its certificate carries none of the configured names (said in the log); the permitted
/// name, or the certificate's first when any the CA signed is taken; no name when the
/// listener asks for no certificate.
fn permitted(
    tls: &Tls,
    conn: &rustls::ServerConnection,
    peer: SocketAddr,
    stats: &ListenerStats,
) -> Option<Option<String>> {
    let Some(cert) = conn.peer_certificates().and_then(|chain| chain.first()) else {
        // rustls refused the handshake already if a certificate was required.
        return Some(None);
    };
    let names = certificate_names(cert);
    if tls.names.is_empty() {
        return Some(names.into_iter().next());
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    if let Some(name) = tls.names.permit(&refs) {
        return Some(Some(name.to_owned()));
    }
    stats.tls_failures.fetch_add(1, Relaxed);
    // Logged every time, as a failed handshake is: it is a certificate of our CA used by
    // a sender it was not made for.
    eprintln!(
        "vedette-agent: TLS client {peer}: certificate names {names:?} are not in tls_client_names, closed"
    );
    None
}

/// Bytes read from a TCP or TLS connection at a time, at first: one read is one batch
/// (~80 records of 200 B). A relay holds one buffer per sender, and most senders are
/// quiet, so a connection starts small.
const TCP_READ: usize = 16 * 1024;

/// The read size of a connection that has filled its buffer: a busy sender's reads (~330
/// records) cost fewer wake-ups and hand-offs per event (~8-10 % less CPU per event and
/// ~10 % more events/s on one TCP stream in the peer harness, for +3-4 MiB of peak RSS
/// with the events of the larger batches; benches/README.md). The events of a batch are
/// drained per record, so the read size does not set how many events are alive at once.
const TCP_READ_BUSY: usize = 64 * 1024;

/// How long a listener waits after a failed `accept` before the next.
const ACCEPT_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Reads of what a connection's socket already holds when a stop or an eviction ends it
/// (up to 64 × 64 KiB): closing it unread threw away what the kernel had acknowledged to
/// the sender, which then counted it delivered.
const DRAIN_READS: u32 = 64;

/// Most records per batch from one socket read round.
const BATCH_RECORDS: usize = 512;

/// Serves `bound` until `shutdown` turns true, sending batches of `source` to `tx`.
pub async fn serve(
    bound: Bound,
    source: LiveSource,
    max_record: usize,
    tx: mpsc::Sender<StageMsg>,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<ListenerStats>,
) {
    let allow = bound.input.allow.clone();
    let seq = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(tokio::sync::Semaphore::new(bound.input.max_connections));
    let handshake_timeout = Duration::from_millis(bound.input.handshake_timeout_ms);
    let open: Registry = Arc::default();
    let keepalive = {
        let idle = bound.input.keepalive_s;
        socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(idle))
            .with_interval(Duration::from_secs((idle / KEEPALIVE_PROBES as u64).max(1)))
            .with_retries(KEEPALIVE_PROBES)
    };
    match bound.socket {
        Socket::Udp(sock) => {
            let drops = UdpDrops::of(&sock);
            let mut drops_read_at = i64::MIN;
            let read_drops = |stats: &ListenerStats| {
                if let Some(d) = drops.as_ref().and_then(UdpDrops::read) {
                    let before = stats.kernel_drops.swap(d, Relaxed);
                    if d > before {
                        eprintln!(
                            "vedette-agent: {}: the kernel dropped {} datagram(s) (socket buffer full; {d} in all)",
                            bound.local_addr,
                            d - before
                        );
                    }
                }
            };
            // One datagram from `peer`: into `batch`, or refused.
            let take = |batch: &mut Batch, datagram: &[u8], peer: SocketAddr, now_ms: i64| {
                let peer = canonical(peer);
                if allow.allows(peer.ip()) {
                    let n = datagram.len();
                    let rx = received(&seq, now_ms, peer.ip(), n, max_record);
                    batch.push(&datagram[..n.min(max_record)], rx);
                } else {
                    refuse(&stats, peer, "datagram");
                }
            };
            let mut source = source;
            let mut buf = vec![0u8; 65536];
            loop {
                let first = tokio::select! {
                    r = sock.recv_from(&mut buf) => r,
                    _ = shutdown.changed() => {
                        // What the socket holds at the stop is taken, not left to be
                        // thrown away uncounted with the socket.
                        let mut batch = Batch::new(source.at(clock::now_ms()));
                        for _ in 0..4 * BATCH_RECORDS {
                            let Ok((n, peer)) = sock.try_recv_from(&mut buf) else {
                                break;
                            };
                            take(&mut batch, &buf[..n], peer, clock::now_ms());
                        }
                        stats.messages.fetch_add(batch.len() as u64, Relaxed);
                        if !batch.is_empty() {
                            let _gone = tx.send(StageMsg::Batch(batch)).await;
                        }
                        // The summary's count is the kernel's at the end.
                        read_drops(&stats);
                        break;
                    }
                };
                let now_ms = clock::now_ms();
                let mut batch = Batch::new(source.at(now_ms));
                let mut next = Some(first);
                // Datagrams refused and errors count too: a flood from outside the
                // allowlist (or an error that repeats) kept this loop from ever yielding,
                // holding back the allowed ones, the drop counter and a stop.
                let mut reads = 0;
                while let Some(r) = next.take() {
                    reads += 1;
                    match r {
                        Ok((n, peer)) => take(&mut batch, &buf[..n], peer, now_ms),
                        Err(e) => eprintln!("vedette-agent: {}: receive: {e}", bound.local_addr),
                    }
                    if reads < BATCH_RECORDS {
                        next = match sock.try_recv_from(&mut buf) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                            r => Some(r),
                        };
                    }
                }
                stats.messages.fetch_add(batch.len() as u64, Relaxed);
                // The kernel's table of every UDP socket is read at most once a second:
                // one read took 37 µs here with a near-empty table (more with every
                // socket on the host), more than a round of a few datagrams.
                if now_ms.saturating_sub(drops_read_at) >= DROPS_EVERY_MS {
                    drops_read_at = now_ms;
                    read_drops(&stats);
                }
                if !batch.is_empty() && tx.send(StageMsg::Batch(batch)).await.is_err() {
                    break;
                }
            }
        }
        Socket::Tcp(listener, tls) => loop {
            let (conn, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors (EMFILE) fails every accept at once: pausing
                        // keeps that from becoming a busy loop that floods the log.
                        eprintln!(
                            "vedette-agent: {}: accept: {e} (pausing {} ms)",
                            bound.local_addr,
                            ACCEPT_PAUSE.as_millis()
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(ACCEPT_PAUSE) => {}
                            _ = shutdown.changed() => break,
                        }
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let peer = canonical(peer);
            if !allow.allows(peer.ip()) {
                refuse(&stats, peer, "connection");
                drop(conn);
                continue;
            }
            // A sender at its share makes room among its own connections, or is closed:
            // the listener's places are never all one sender's.
            let mut made_room = false;
            if bound.input.max_connections_per_sender < bound.input.max_connections {
                let now = clock::monotonic_ms();
                let mut reg = lock(&open);
                if reg.held_by(peer.ip()) >= bound.input.max_connections_per_sender {
                    let own = |p: &SocketAddr| p.ip() == peer.ip();
                    match reg.evict(now, bound.input.evict_idle_ms as i64, own) {
                        Some((victim, silent_ms)) => {
                            made_room = true;
                            tally(&stats.evicted, |n| {
                                eprintln!(
                                    "vedette-agent: {}: closed the connection from {victim}, {}, to make room for {peer}: the sender holds {} connections, the listener's max_connections_per_sender ({n} closed so far)",
                                    bound.local_addr,
                                    silent_why(silent_ms),
                                    bound.input.max_connections_per_sender
                                );
                            });
                        }
                        None => {
                            drop(reg);
                            tally(&stats.over_sender_limit, |n| {
                                eprintln!(
                                    "vedette-agent: {}: closed a connection from {peer}: the sender holds {} connections, the listener's max_connections_per_sender, none silent for {} ms ({n} closed so far)",
                                    bound.local_addr,
                                    bound.input.max_connections_per_sender,
                                    bound.input.evict_idle_ms
                                );
                            });
                            drop(conn);
                            continue;
                        }
                    }
                }
            }
            let permit = match slots.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                // The place of the sender's own connection closed above comes free.
                Err(_) if made_room => None,
                Err(_) => {
                    let now = clock::monotonic_ms();
                    let evicted =
                        lock(&open).evict(now, bound.input.evict_idle_ms as i64, |_| true);
                    if let Some((victim, silent_ms)) = evicted {
                        tally(&stats.evicted, |n| {
                            eprintln!(
                                "vedette-agent: {}: closed the connection from {victim}, {}, to make room for {peer}: {} connections are open, the listener's max_connections ({n} closed so far)",
                                bound.local_addr,
                                silent_why(silent_ms),
                                bound.input.max_connections
                            );
                        });
                        // Its place comes free once its task has ended.
                        None
                    } else {
                        tally(&stats.over_limit, |n| {
                            eprintln!(
                                "vedette-agent: {}: closed a connection from {peer}: {} connections are open, the listener's max_connections, none silent for {} ms ({n} closed so far)",
                                bound.local_addr,
                                bound.input.max_connections,
                                bound.input.evict_idle_ms
                            );
                        });
                        drop(conn);
                        continue;
                    }
                }
            };
            if let Err(e) = socket2::SockRef::from(&conn).set_tcp_keepalive(&keepalive) {
                eprintln!("vedette-agent: connection from {peer}: TCP keepalive: {e}");
            }
            stats.connections.fetch_add(1, Relaxed);
            // Registered from the accept on, so that a full listener can close it during a
            // stalled TLS handshake; while it waits for a place it is no candidate (closing
            // a connection that holds no place frees none).
            let (conn_id, last_ms, close) = lock(&open).add(peer, BUSY);
            let conn_ctx = Conn {
                source: source.clone(),
                peer,
                seq: seq.clone(),
                max_record,
                tx: tx.clone(),
                shutdown: shutdown.clone(),
                stats: stats.clone(),
                last_ms,
                close,
                _registered: Registered(open.clone(), conn_id),
            };
            let slots = slots.clone();
            match &tls {
                None => {
                    tokio::spawn(async move {
                        let Some(permit) = place(permit, &slots, &conn_ctx).await else {
                            return;
                        };
                        conn_ctx.last_ms.store(clock::monotonic_ms(), Relaxed);
                        conn_ctx.read(conn).await;
                        drop(permit);
                    });
                }
                Some(tls) => {
                    let tls = tls.borrow().clone();
                    tokio::spawn(async move {
                        let Some(permit) = place(permit, &slots, &conn_ctx).await else {
                            return;
                        };
                        conn_ctx
                            .last_ms
                            .store(handshake_since(clock::monotonic_ms()), Relaxed);
                        // Closed for a newcomer, or a stop: a handshake in progress has
                        // nothing to hand over (a stop waited for it, up to the timeout).
                        let mut stop = conn_ctx.shutdown.clone();
                        let handshake = tokio::select! {
                            r = tokio::time::timeout(handshake_timeout, tls.acceptor.accept(conn)) => r,
                            () = conn_ctx.close.notified() => return,
                            _ = stop.changed() => return,
                        };
                        match handshake {
                            Ok(Ok(stream)) => {
                                let mut conn_ctx = conn_ctx;
                                conn_ctx.last_ms.store(clock::monotonic_ms(), Relaxed);
                                match permitted(&tls, stream.get_ref().1, peer, &conn_ctx.stats) {
                                    None => {}
                                    Some(name) => {
                                        if let Some(name) = name {
                                            conn_ctx.source.set_sender_name(name);
                                        }
                                        conn_ctx.read(stream).await;
                                    }
                                }
                            }
                            Ok(Err(e)) => {
                                conn_ctx.stats.tls_failures.fetch_add(1, Relaxed);
                                eprintln!("vedette-agent: TLS handshake with {peer}: {e}");
                            }
                            Err(_) => {
                                conn_ctx.stats.tls_failures.fetch_add(1, Relaxed);
                                eprintln!(
                                    "vedette-agent: TLS handshake with {peer}: not finished after {} ms, closed",
                                    handshake_timeout.as_millis()
                                );
                            }
                        }
                        drop(permit);
                    });
                }
            }
        },
    }
}

/// How often a UDP listener reads the kernel's drop counter.
const DROPS_EVERY_MS: i64 = 1000;

/// Keepalive probes before the kernel gives a silent sender up.
const KEEPALIVE_PROBES: u32 = 4;

/// How long a connection waits for the place of the one closed for it.
const EVICT_WAIT: Duration = Duration::from_secs(5);

/// The place under `max_connections` a new connection takes: its own, or the one a
/// connection closed for it frees.
async fn place(
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    slots: &Arc<tokio::sync::Semaphore>,
    conn: &Conn,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if permit.is_some() {
        return permit;
    }
    match tokio::time::timeout(EVICT_WAIT, slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => Some(p),
        _ => {
            conn.stats.over_limit.fetch_add(1, Relaxed);
            eprintln!(
                "vedette-agent: closed a connection from {}: no place came free",
                conn.peer
            );
            None
        }
    }
}

/// The connections a TCP or TLS listener is reading, for making room when it is full.
type Registry = Arc<Mutex<Open>>;

fn lock(r: &Registry) -> std::sync::MutexGuard<'_, Open> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct Open {
    next: u64,
    conns: HashMap<u64, OpenConn>,
}

struct OpenConn {
    peer: SocketAddr,
    /// When it last delivered bytes, [`clock::monotonic_ms`]; [`BUSY`] while it waits for
    /// the stage to take what it read.
    last_ms: Arc<AtomicI64>,
    close: Arc<Notify>,
}

/// `OpenConn::last_ms` of a connection waiting on the stage: never silent. One held by
/// backpressure (the stage blocked on a full spool) looked silent for as long as it
/// waited, and was the first a full listener closed, its unread bytes reset away.
const BUSY: i64 = i64::MAX;

/// `OpenConn::last_ms` of a connection in its TLS handshake since `t`
/// ([`clock::monotonic_ms`]): below zero. One in it for [`HANDSHAKE_GRACE_MS`] has
/// delivered nothing and is the first a full listener closes, before any silent one:
/// handshakes were not among the connections a full listener could close, so connections
/// opened to stall in their handshakes, one per `handshake_timeout_ms`, shut every sender
/// out. A younger one is left to finish.
fn handshake_since(t: i64) -> i64 {
    -t.max(1)
}

/// How long a TLS handshake may take before a full listener closes it for a newcomer (on a
/// network that works, a handshake takes milliseconds).
const HANDSHAKE_GRACE_MS: i64 = 1_000;

/// What a full listener weighs a connection by ([`Open::evict`]): how long it has been
/// silent, [`STALLED`] and more for a handshake stalled past the grace, below zero for one
/// that is not a candidate (waiting on the stage, or for a place, or a young handshake).
fn silence(now_ms: i64, last_ms: i64) -> i64 {
    if last_ms < 0 {
        let age = now_ms - (-last_ms);
        if age >= HANDSHAKE_GRACE_MS {
            STALLED.saturating_add(age)
        } else {
            -1
        }
    } else {
        now_ms.saturating_sub(last_ms)
    }
}

/// [`silence`] of any handshake stalled past the grace: above any real silence.
const STALLED: i64 = i64::MAX / 2;

/// Why a connection of [`silence`] `silent_ms` was closed, for the log.
fn silent_why(silent_ms: i64) -> String {
    if silent_ms >= STALLED {
        format!(
            "still in its TLS handshake after {} ms",
            silent_ms - STALLED
        )
    } else {
        format!("silent for {silent_ms} ms")
    }
}

impl Open {
    fn add(&mut self, peer: SocketAddr, now_ms: i64) -> (u64, Arc<AtomicI64>, Arc<Notify>) {
        self.next += 1;
        let (last_ms, close) = (Arc::new(AtomicI64::new(now_ms)), Arc::new(Notify::new()));
        self.conns.insert(
            self.next,
            OpenConn {
                peer,
                last_ms: last_ms.clone(),
                close: close.clone(),
            },
        );
        (self.next, last_ms, close)
    }

    /// Connections of the sender at `ip` (reading, in a handshake or waiting for a place).
    fn held_by(&self, ip: IpAddr) -> usize {
        self.conns.values().filter(|c| c.peer.ip() == ip).count()
    }

    /// Closes the connection silent longest among those whose peer is `among`, when silent
    /// for `min_ms` at least: its peer and silence.
    fn evict(
        &mut self,
        now_ms: i64,
        min_ms: i64,
        among: impl Fn(&SocketAddr) -> bool,
    ) -> Option<(SocketAddr, i64)> {
        let silences = self
            .conns
            .iter()
            .filter(|(_, c)| among(&c.peer))
            .map(|(&id, c)| (id, silence(now_ms, c.last_ms.load(Relaxed))));
        let id = longest_silence(silences, min_ms)?;
        let c = self.conns.remove(&id)?;
        c.close.notify_one();
        Some((c.peer, silence(now_ms, c.last_ms.load(Relaxed))))
    }
}

/// Of `(id, silence)`, the id silent longest, if for `min_ms` at least.
fn longest_silence(silences: impl Iterator<Item = (u64, i64)>, min_ms: i64) -> Option<u64> {
    silences
        .filter(|&(_, s)| s >= min_ms)
        .max_by_key(|&(id, s)| (s, std::cmp::Reverse(id)))
        .map(|(id, _)| id)
}

/// A peer as IPv4 when it is an IPv4 sender on a dual-stack (`[::]`) socket: recorded as
/// `::ffff:a.b.c.d`, its events named another address than the same host's on an IPv4
/// listener, and a search for `a.b.c.d` missed them.
fn canonical(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(peer.ip().to_canonical(), peer.port())
}

fn received(seq: &AtomicU64, now_ms: i64, peer: IpAddr, len: usize, max: usize) -> Received {
    Received {
        seq: seq.fetch_add(1, Relaxed) + 1,
        now_ms,
        peer: Some(peer),
        cut_from: (len > max).then_some(len as u64),
        clock_ms: None,
        incomplete: false,
    }
}

/// Counts one more on `counter` and has `say` log it, with the count so far, the first
/// time and every 1000th: every event is counted, and a flood (senders outside the
/// allowlist, connections over a limit) cannot flood the log too.
fn tally(counter: &AtomicU64, say: impl FnOnce(u64)) {
    let n = counter.fetch_add(1, Relaxed) + 1;
    if n == 1 || n.is_multiple_of(1000) {
        say(n);
    }
}

fn refuse(stats: &ListenerStats, peer: SocketAddr, what: &str) {
    tally(&stats.refused, |n| {
        eprintln!(
            "vedette-agent: refused {what} from {peer}: not in the allowlist ({n} refused so far)"
        );
    });
}

/// One TCP or TLS connection.
struct Conn {
    source: LiveSource,
    peer: SocketAddr,
    seq: Arc<AtomicU64>,
    max_record: usize,
    tx: mpsc::Sender<StageMsg>,
    shutdown: watch::Receiver<bool>,
    stats: Arc<ListenerStats>,
    /// Its entry in the listener's [`Registry`] (see [`OpenConn`]).
    last_ms: Arc<AtomicI64>,
    close: Arc<Notify>,
    /// Takes it off the registry when its task ends, however it ends.
    _registered: Registered,
}

/// Takes a connection off the [`Registry`] when its reading ends, however it ends.
struct Registered(Registry, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.0).conns.remove(&self.1);
    }
}

impl Conn {
    async fn read(mut self, mut stream: impl AsyncRead + Unpin) {
        let (last_ms, close) = (self.last_ms.clone(), self.close.clone());
        let mut framer = Deframer::new(self.max_record);
        let mut buf = vec![0u8; TCP_READ];
        // After a stop or an eviction: the reads left of what the kernel already holds.
        let mut draining: Option<u32> = None;
        loop {
            let (n, interrupted) = match &mut draining {
                Some(0) => (Ok(0), true),
                Some(left) => {
                    *left -= 1;
                    // Only what is there now: one poll, no wait.
                    match tokio::time::timeout(Duration::ZERO, stream.read(&mut buf)).await {
                        // The sender's own close: its last line is whole.
                        Ok(Ok(0)) => (Ok(0), false),
                        Ok(r) => (r, true),
                        Err(_nothing_now) => (Ok(0), true),
                    }
                }
                None => tokio::select! {
                    r = stream.read(&mut buf) => (r, false),
                    _ = self.shutdown.changed() => {
                        draining = Some(DRAIN_READS);
                        continue;
                    }
                    () = close.notified() => {
                        draining = Some(DRAIN_READS);
                        continue;
                    }
                },
            };
            let (n, interrupted) = match n {
                Ok(n) => (n, interrupted),
                // A TLS stream that ends without close_notify, or a reset: the stream was cut,
                // not closed, so a message it held unfinished may be missing its end (a
                // truncation an attacker on the path can make; RFC 8446 6.1). Such a last
                // message is kept and flagged incomplete; whole messages before it are not.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    (0, true)
                }
                Err(e) => {
                    eprintln!("vedette-agent: connection from {}: {e}", self.peer);
                    (0, true)
                }
            };
            let filled = n == buf.len();
            let now_ms = clock::now_ms();
            last_ms.store(clock::monotonic_ms(), Relaxed);
            let mut batch = Batch::new(self.source.at(now_ms));
            if n == 0 {
                if let Some((f, incomplete)) = framer.finish_as(interrupted) {
                    let rx = Received {
                        incomplete,
                        ..self.rx(now_ms, f.cut_from)
                    };
                    batch.push(f.bytes, rx);
                }
            } else {
                framer.push(&buf[..n]);
                if filled && buf.len() < TCP_READ_BUSY {
                    buf.resize(TCP_READ_BUSY, 0);
                }
                while let Some(f) = framer.poll_frame() {
                    let rx = Received {
                        seq: self.seq.fetch_add(1, Relaxed) + 1,
                        now_ms,
                        peer: Some(self.peer.ip()),
                        cut_from: f.cut_from,
                        clock_ms: None,
                        incomplete: false,
                    };
                    batch.push(f.bytes, rx);
                }
            }
            self.stats.messages.fetch_add(batch.len() as u64, Relaxed);
            if !batch.is_empty() {
                last_ms.store(BUSY, Relaxed);
                let sent = self.tx.send(StageMsg::Batch(batch)).await;
                last_ms.store(clock::monotonic_ms(), Relaxed);
                if sent.is_err() {
                    return;
                }
            }
            if n == 0 {
                return;
            }
        }
    }

    fn rx(&self, now_ms: i64, cut_from: Option<u64>) -> Received {
        Received {
            seq: self.seq.fetch_add(1, Relaxed) + 1,
            now_ms,
            peer: Some(self.peer.ip()),
            cut_from,
            clock_ms: None,
            incomplete: false,
        }
    }
}

/// The kernel's count of datagrams dropped on one UDP socket (`/proc/net/udp*`, the
/// `drops` column of the socket's row, found by its inode).
struct UdpDrops {
    inode: String,
    table: &'static str,
}

impl UdpDrops {
    fn of(sock: &UdpSocket) -> Option<Self> {
        use std::os::fd::AsRawFd;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", sock.as_raw_fd())).ok()?;
        let inode = link
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .to_owned();
        let table = match sock.local_addr().ok()? {
            SocketAddr::V4(_) => "/proc/net/udp",
            SocketAddr::V6(_) => "/proc/net/udp6",
        };
        Some(Self { inode, table })
    }

    fn read(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.table).ok()?;
        parse_udp_drops(&text, &self.inode)
    }
}

/// The `drops` column of the row of `/proc/net/udp` whose inode is `inode`.
fn parse_udp_drops(table: &str, inode: &str) -> Option<u64> {
    table.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_ascii_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        (cols.get(9) == Some(&inode)).then(|| cols.last()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    /// A full listener closes a handshake stalled past the grace first, then the longest
    /// silent; never one waiting for a place or on the stage, nor a young handshake.
    #[test]
    fn a_full_listener_closes_a_stalled_handshake_first_and_never_a_waiter() {
        let mut open = super::Open::default();
        let p: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let q: std::net::SocketAddr = "127.0.0.1:2".parse().unwrap();
        let r: std::net::SocketAddr = "127.0.0.1:3".parse().unwrap();
        open.add(p, super::BUSY);
        open.add(p, super::handshake_since(10_000));
        open.add(q, 1_000);
        open.add(r, super::handshake_since(9_500));
        let now = 10_600;
        let (first, s) = open.evict(now, 300, |_| true).expect("one to close");
        assert_eq!((first, s - super::STALLED), (r, 1_100));
        assert_eq!(open.evict(now, 300, |_| true), Some((q, 9_600)));
        assert_eq!(open.evict(now, 300, |_| true), None);
        assert_eq!(open.conns.len(), 2);
    }

    /// A connection whose batch waits for the stage (backpressure: a full spool under the
    /// block policy) is not silent, however long it waits: a full listener does not close
    /// it for a new sender. Once the stage takes the batch, its silence counts again.
    #[test]
    fn a_connection_waiting_on_the_stage_is_not_closed_as_silent() {
        use super::*;
        use tokio::io::AsyncWriteExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel(1);
            let source = crate::core::Source {
                id: "tcp:127.0.0.1:514".into(),
                uid_key: None,
                time: crate::core::time::TimeContext::new(clock::now(), jiff::tz::TimeZone::UTC),
                syslog: true,
                sender_name: None,
            };
            // The stage is busy: its queue is full.
            tx.send(StageMsg::Batch(Batch::new(Arc::new(source.clone()))))
                .await
                .unwrap();
            let open = Registry::default();
            let stats: Arc<ListenerStats> = Arc::default();
            let (_stop, shutdown) = watch::channel(false);
            let peer = "127.0.0.1:40000".parse().unwrap();
            let (id, last_ms, close) = lock(&open).add(peer, clock::monotonic_ms());
            let conn = Conn {
                source: LiveSource::new(source),
                peer,
                seq: Arc::default(),
                max_record: 1024,
                tx,
                shutdown,
                stats: stats.clone(),
                last_ms,
                close,
                _registered: Registered(open.clone(), id),
            };
            let (mut client, server) = tokio::io::duplex(4096);
            let reading = tokio::spawn(conn.read(server));
            client
                .write_all(b"<13>Jan 15 10:00:00 h app: held\n")
                .await
                .unwrap();
            // Read (counted just before the send), and waiting for room in the queue.
            while stats.messages.load(Relaxed) == 0 {
                tokio::task::yield_now().await;
            }
            let later = clock::monotonic_ms() + 3_600_000;
            assert_eq!(
                lock(&open).evict(later, 300, |_| true),
                None,
                "waiting, not silent"
            );
            // The stage takes both batches; from then on it is silent again.
            rx.recv().await.unwrap();
            let StageMsg::Batch(b) = rx.recv().await.unwrap() else {
                panic!("a batch")
            };
            assert_eq!(b.len(), 1);
            while lock(&open)
                .conns
                .values()
                .any(|c| c.last_ms.load(Relaxed) == BUSY)
            {
                tokio::task::yield_now().await;
            }
            assert!(lock(&open).evict(later, 300, |_| true).is_some());
            drop(client);
            reading.await.unwrap();
        });
    }

    #[test]
    fn the_connection_silent_longest_is_chosen_if_silent_long_enough() {
        use super::longest_silence;
        let s = [(1, 500), (2, 9_000), (3, 70_000), (4, 70_000)];
        // The longest; of two alike, the older connection.
        assert_eq!(longest_silence(s.into_iter(), 60_000), Some(3));
        assert_eq!(longest_silence(s.into_iter(), 70_001), None);
        assert_eq!(longest_silence(std::iter::empty(), 0), None);
    }

    #[test]
    fn drops_are_read_from_the_sockets_row() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1234: 0100007F:15A2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 987654 2 0000000000000000 17
 1235: 0100007F:15A3 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 111 2 0000000000000000 3
";
        assert_eq!(super::parse_udp_drops(table, "987654"), Some(17));
        assert_eq!(super::parse_udp_drops(table, "111"), Some(3));
        assert_eq!(super::parse_udp_drops(table, "5"), None);
    }
}
