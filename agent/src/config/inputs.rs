//! `[[input.*]]` and `[output]`: validated into what `vedette-agent run` starts.

use std::net::SocketAddr;
use std::path::PathBuf;

use jiff::tz::TimeZone;
use toml::Spanned;

use super::ConfigProblem;
use super::raw::{Problem, RawFileInput, RawJournaldInput, RawOutput, RawSyslogInput};
use crate::core::allowlist::Allowlist;
use crate::core::peer_names::PermittedNames;
use crate::core::tail::links::SymlinkRule;

/// Every configured source.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `[[input.file]]`.
    pub files: Vec<FileInput>,
    /// `[[input.syslog]]`.
    pub syslog: Vec<SyslogInput>,
    /// `[[input.journald]]`.
    pub journald: Vec<JournaldInput>,
}

/// Where a source starts the first time it is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// From the beginning.
    Start,
    /// From the current end (only what is written from now on).
    #[default]
    End,
}

/// `[[input.file]]`.
#[derive(Debug, Clone)]
pub struct FileInput {
    /// Paths or glob patterns.
    pub patterns: Vec<String>,
    /// Patterns of paths not tailed even when `patterns` match them.
    pub exclude: Vec<String>,
    /// Where files present at the first start are read from.
    pub read_from: ReadFrom,
    /// Zone of the files' timestamps, when not the agent's.
    pub timezone: Option<TimeZone>,
    /// Which symbolic links among the matched paths are followed.
    pub symlinks: SymlinkRule,
}

/// Transport of a syslog listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogProtocol {
    /// RFC 5426.
    Udp,
    /// RFC 6587.
    Tcp,
    /// RFC 5425, with this certificate chain and key (PEM files).
    Tls {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
        /// Whom it takes, when senders must show a certificate.
        clients: Option<ClientAuth>,
    },
}

/// A TLS listener's senders must show a client certificate (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// CA certificates (PEM) a client certificate must chain to.
    pub ca: PathBuf,
    /// Names a client certificate must carry one of; empty: any the CA signed.
    pub names: PermittedNames,
}

/// `[[input.syslog]]`.
#[derive(Debug, Clone)]
pub struct SyslogInput {
    /// Transport.
    pub protocol: SyslogProtocol,
    /// Address listened on.
    pub listen: SocketAddr,
    /// Sender networks taken from.
    pub allow: Allowlist,
    /// Zone of timestamps that carry none, when not the agent's.
    pub timezone: Option<TimeZone>,
    /// UDP receive buffer asked of the kernel.
    pub receive_buffer_bytes: Option<usize>,
    /// TCP/TLS: connections served at once.
    pub max_connections: usize,
    /// TCP/TLS: connections one sender address holds at once.
    pub max_connections_per_sender: usize,
    /// TLS: how long a client has to finish its handshake, ms.
    pub handshake_timeout_ms: u64,
    /// TCP/TLS: TCP keepalive idle time, s.
    pub keepalive_s: u64,
    /// TCP/TLS: when full, a connection silent this long (ms) makes room for a new one.
    pub evict_idle_ms: u64,
}

/// Connections a TCP or TLS listener serves at once, unless configured: a relay's senders
/// keep theirs open, so the bound is high, but there is one, so that a sender opening
/// connections in a loop cannot take the agent's memory (each holds read buffers).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Connections one sender address holds at once, unless configured: `max_connections`
/// divided by this, but at least [`DEFAULT_SENDER_MIN`]. Without a share, one allowed
/// sender (a misconfigured relay, a compromised host) could hold every place and shut all
/// the others out; a share that is not tiny leaves room for several senders behind one
/// NAT address.
pub(super) const DEFAULT_SENDER_SHARE: usize = 4;

/// The least default share of one sender (or all places, when fewer): a relay with an
/// action queue per destination, or a few hosts behind one NAT address, open several.
pub(super) const DEFAULT_SENDER_MIN: usize = 16;

/// How long a TLS client has to finish its handshake, unless configured: one that never
/// does would otherwise hold its connection (and a place under the limit) forever.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// TCP keepalive idle time, unless configured: a sender that vanished without a close (a
/// host powered off, a cut link, a NAT that forgot the flow) otherwise holds its
/// connection, and a place under `max_connections`, for ever.
pub const DEFAULT_KEEPALIVE_S: u64 = 60;

/// How long a connection must have been silent to be closed for a new one when the
/// listener is full, unless configured: quiet senders keep their connections until the
/// places are needed, and connections opened only to hold places cannot shut others out.
pub const DEFAULT_EVICT_IDLE_MS: u64 = 60_000;

/// `[[input.journald]]`.
#[derive(Debug, Clone)]
pub struct JournaldInput {
    /// The `journalctl` binary.
    pub journalctl: PathBuf,
    /// Arguments selecting the journal.
    pub args: Vec<String>,
    /// Where to start without a saved cursor.
    pub read_from: ReadFrom,
}

/// `[output]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// NDJSON on stdout.
    Stdout,
    /// NDJSON appended to a file.
    File(PathBuf),
    /// Batches through the disk spool to the aggregator over QUIC.
    Aggregator(Box<ShipOutput>),
}

/// What the spool fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolFsync {
    /// Every batch before its sources are acknowledged: no loss on power failure.
    Always,
    /// At most every this many ms: a power loss may lose the batches since.
    IntervalMs(u64),
    /// Left to the kernel: survives a crash of the agent, not of the host.
    Never,
}

/// `[output] type = "aggregator"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipOutput {
    /// Overrides the enrolled server.
    pub server: Option<String>,
    /// Spool bound, bytes.
    pub spool_max_bytes: u64,
    /// `true`: drop the oldest batches when full (counted); `false`: block the sources.
    pub drop_oldest: bool,
    /// Spool durability.
    pub fsync: SpoolFsync,
    /// Largest batch before compression, bytes.
    pub batch_max_bytes: usize,
    /// How long a batch waits to fill, ms.
    pub linger_ms: i64,
    /// zstd level (default 1: see [`crate::core::batcher::DEFAULT_ZSTD_LEVEL`]).
    pub zstd_level: i32,
    /// Batches in flight.
    pub window: usize,
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// First reconnect delay, ms.
    pub backoff_min_ms: u64,
    /// Longest reconnect delay, ms.
    pub backoff_max_ms: u64,
    /// A connection silent this long is dead, ms (keep-alives go at a third of it).
    pub idle_timeout_ms: u64,
    /// At shutdown, how long to keep delivering what is spooled, ms.
    pub drain_ms: u64,
    /// How long the welcome may take, and batches be in flight with none answered, ms.
    pub answer_timeout_ms: u64,
    /// What `rejected/` may keep, bytes.
    pub rejected_max_bytes: u64,
}

impl Default for ShipOutput {
    fn default() -> Self {
        Self {
            server: None,
            spool_max_bytes: 256 << 20,
            drop_oldest: false,
            fsync: SpoolFsync::IntervalMs(1000),
            batch_max_bytes: 1 << 20,
            linger_ms: 200,
            zstd_level: crate::core::batcher::DEFAULT_ZSTD_LEVEL,
            window: 8,
            heartbeat_ms: 10_000,
            backoff_min_ms: 250,
            backoff_max_ms: 30_000,
            idle_timeout_ms: 30_000,
            drain_ms: 5_000,
            answer_timeout_ms: 120_000,
            rejected_max_bytes: 64 << 20,
        }
    }
}

fn read_from(
    v: Option<Spanned<String>>,
    field: &str,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> ReadFrom {
    match v.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("end") => ReadFrom::End,
        Some("start") => ReadFrom::Start,
        Some(other) => {
            let span = v.as_ref().map(Spanned::span);
            out.push(p(
                span,
                field,
                format!("{other:?}: expected \"start\" or \"end\""),
            ));
            ReadFrom::End
        }
    }
}

fn zone(
    v: Option<Spanned<String>>,
    field: &str,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> Option<TimeZone> {
    let v = v?;
    TimeZone::get(v.get_ref())
        .map_err(|e| out.push(p(Some(v.span()), field, e.to_string())))
        .ok()
}

/// A TLS listener's client certificate rule: `Some(None)` when senders need none, `None`
/// when the fields have problems (pushed to `out`).
fn client_auth(
    s: &RawSyslogInput,
    at: &str,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> Option<Option<ClientAuth>> {
    let names = match &s.tls_client_names {
        None => Some(PermittedNames::default()),
        Some(list) => match PermittedNames::parse(list.get_ref()) {
            Ok(names) if list.get_ref().is_empty() => {
                out.push(p(
                    Some(list.span()),
                    &format!("{at}.tls_client_names"),
                    "is empty: no certificate could ever be taken (leave it out to take any the CA signed)".into(),
                ));
                Some(names)
            }
            Ok(names) => Some(names),
            Err(e) => {
                out.push(p(
                    Some(list.span()),
                    &format!("{at}.tls_client_names"),
                    e.to_string(),
                ));
                None
            }
        },
    };
    let Some(ca) = &s.tls_client_ca else {
        if let (Some(list), Some(_)) = (&s.tls_client_names, &names) {
            out.push(p(
                Some(list.span()),
                &format!("{at}.tls_client_names"),
                "needs tls_client_ca: names are only checked on certificates the CA signed".into(),
            ));
            return None;
        }
        return names.map(|_| None);
    };
    let ca = match std::fs::metadata(ca.get_ref()) {
        Ok(_) => Some(PathBuf::from(ca.get_ref())),
        Err(e) => {
            out.push(p(
                Some(ca.span()),
                &format!("{at}.tls_client_ca"),
                format!("{}: {e}", ca.get_ref()),
            ));
            None
        }
    };
    Some(Some(ClientAuth {
        ca: ca?,
        names: names?,
    }))
}

/// Validates the inputs; problems go to `out`.
pub(super) fn validate(
    files: Vec<(usize, RawFileInput)>,
    syslog: Vec<(usize, RawSyslogInput)>,
    journald: Vec<(usize, RawJournaldInput)>,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> Inputs {
    let mut inputs = Inputs::default();
    // Each input keeps its offsets in a checkpoint file named after its `paths`: two
    // inputs with the same `paths` wrote one file, each over the other's offsets (a
    // restart read lines again), through one temporary file.
    let mut seen_paths: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, f) in files {
        let at = format!("input.file[{i}]");
        if let Some((first, _)) = seen_paths.iter().find(|(_, p)| p == f.paths.get_ref()) {
            out.push(p(
                Some(f.paths.span()),
                &format!("{at}.paths"),
                format!(
                    "the same paths as input.file[{first}]: merge the two (an input's offsets are kept under its paths)"
                ),
            ));
        }
        seen_paths.push((i, f.paths.get_ref().clone()));
        if f.paths.get_ref().is_empty() || f.paths.get_ref().iter().any(String::is_empty) {
            out.push(p(
                Some(f.paths.span()),
                &format!("{at}.paths"),
                "must list at least one non-empty path".into(),
            ));
        }
        for (field, list) in [("paths", Some(&f.paths)), ("exclude", f.exclude.as_ref())] {
            for bad in list.into_iter().flat_map(|l| l.get_ref()) {
                // An empty path is reported above.
                if let Err(why) = crate::core::tail::pattern::validate(bad)
                    && !(field == "paths" && bad.is_empty())
                {
                    let span = list.map(Spanned::span);
                    out.push(p(span, &format!("{at}.{field}"), format!("{bad:?}: {why}")));
                }
            }
        }
        let read_from = read_from(f.read_from, &format!("{at}.read_from"), p, out);
        let timezone = zone(f.timezone, &format!("{at}.timezone"), p, out);
        let symlinks = match &f.symlinks {
            None => SymlinkRule::default(),
            Some(v) => SymlinkRule::parse(v.get_ref()).unwrap_or_else(|| {
                out.push(p(
                    Some(v.span()),
                    &format!("{at}.symlinks"),
                    format!(
                        "{:?}: expected \"owner\", \"any\" or \"never\"",
                        v.get_ref()
                    ),
                ));
                SymlinkRule::default()
            }),
        };
        inputs.files.push(FileInput {
            exclude: f.exclude.map(Spanned::into_inner).unwrap_or_default(),
            patterns: f.paths.into_inner(),
            read_from,
            timezone,
            symlinks,
        });
    }
    for (i, s) in syslog {
        let at = format!("input.syslog[{i}]");
        let listen = s.listen.get_ref().parse::<SocketAddr>().map_err(|e| {
            out.push(p(
                Some(s.listen.span()),
                &format!("{at}.listen"),
                format!("{:?}: {e} (expected ADDRESS:PORT)", s.listen.get_ref()),
            ));
        });
        let allow = match &s.allow {
            None => {
                out.push(p(
                    Some(s.listen.span()),
                    &format!("{at}.allow"),
                    "missing: list the sender networks, e.g. [\"10.0.0.0/8\"] (or [\"0.0.0.0/0\", \"::/0\"] for any)".into(),
                ));
                Allowlist::default()
            }
            Some(list) => {
                let mut nets = Vec::new();
                for n in list.get_ref() {
                    // A bare address is a one-host network.
                    let parsed = n
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
                    match parsed {
                        Ok(net) => nets.push(net),
                        Err(_) => out.push(p(
                            Some(list.span()),
                            &format!("{at}.allow"),
                            format!("{n:?} is not a network (CIDR) or an address"),
                        )),
                    }
                }
                if list.get_ref().is_empty() {
                    out.push(p(
                        Some(list.span()),
                        &format!("{at}.allow"),
                        "is empty: no sender could ever send".into(),
                    ));
                }
                Allowlist(nets)
            }
        };
        let tls_file = |v: &Option<Spanned<String>>,
                        name: &str,
                        out: &mut Vec<ConfigProblem>|
         -> Option<PathBuf> {
            match v {
                None => {
                    out.push(p(
                        Some(s.protocol.span()),
                        &format!("{at}.{name}"),
                        "missing: TLS needs tls_cert and tls_key".into(),
                    ));
                    None
                }
                Some(f) => match std::fs::metadata(f.get_ref()) {
                    Ok(_) => Some(PathBuf::from(f.get_ref())),
                    Err(e) => {
                        out.push(p(
                            Some(f.span()),
                            &format!("{at}.{name}"),
                            format!("{}: {e}", f.get_ref()),
                        ));
                        None
                    }
                },
            }
        };
        let protocol = match s.protocol.get_ref().as_str() {
            "udp" => Some(SyslogProtocol::Udp),
            "tcp" => Some(SyslogProtocol::Tcp),
            "tls" => {
                let cert = tls_file(&s.tls_cert, "tls_cert", out);
                let key = tls_file(&s.tls_key, "tls_key", out);
                let clients = client_auth(&s, &at, p, out);
                cert.zip(key)
                    .zip(clients)
                    .map(|((cert, key), clients)| SyslogProtocol::Tls { cert, key, clients })
            }
            other => {
                out.push(p(
                    Some(s.protocol.span()),
                    &format!("{at}.protocol"),
                    format!("{other:?}: expected \"udp\", \"tcp\" or \"tls\""),
                ));
                None
            }
        };
        if !matches!(protocol, Some(SyslogProtocol::Tls { .. }) | None) {
            let names = s.tls_client_names.as_ref().map(Spanned::span);
            for (span, name) in [
                (s.tls_cert.as_ref().map(Spanned::span), "tls_cert"),
                (s.tls_key.as_ref().map(Spanned::span), "tls_key"),
                (s.tls_client_ca.as_ref().map(Spanned::span), "tls_client_ca"),
                (names, "tls_client_names"),
            ] {
                if let Some(span) = span {
                    out.push(p(
                        Some(span),
                        &format!("{at}.{name}"),
                        "only for protocol = \"tls\"".into(),
                    ));
                }
            }
        }
        let timezone = zone(s.timezone, &format!("{at}.timezone"), p, out);
        let mut bounded = |v: Option<Spanned<u64>>,
                           name: &str,
                           range: std::ops::RangeInclusive<u64>,
                           applies: bool,
                           only: &str| {
            let v = v?;
            let problem = if !applies {
                Some(format!("only for {only}"))
            } else if !range.contains(v.get_ref()) {
                Some(format!(
                    "must be between {} and {}",
                    range.start(),
                    range.end()
                ))
            } else {
                None
            };
            match problem {
                Some(why) => {
                    out.push(p(Some(v.span()), &format!("{at}.{name}"), why));
                    None
                }
                None => Some(v.into_inner()),
            }
        };
        // An unknown protocol is reported above; these are not judged against it.
        let stream = protocol
            .as_ref()
            .is_none_or(|p| !matches!(p, SyslogProtocol::Udp));
        let tls = protocol
            .as_ref()
            .is_none_or(|p| matches!(p, SyslogProtocol::Tls { .. }));
        let max_connections = bounded(
            s.max_connections,
            "max_connections",
            1..=65_536,
            stream,
            "protocol = \"tcp\" or \"tls\"",
        );
        let max_connections_per_sender = bounded(
            s.max_connections_per_sender,
            "max_connections_per_sender",
            1..=65_536,
            stream,
            "protocol = \"tcp\" or \"tls\"",
        );
        let handshake_timeout_ms = bounded(
            s.handshake_timeout_ms,
            "handshake_timeout_ms",
            1..=600_000,
            tls,
            "protocol = \"tls\"",
        );
        let keepalive_s = bounded(
            s.keepalive_s,
            "keepalive_s",
            1..=7_200,
            stream,
            "protocol = \"tcp\" or \"tls\"",
        );
        let evict_idle_ms = bounded(
            s.evict_idle_ms,
            "evict_idle_ms",
            1..=86_400_000,
            stream,
            "protocol = \"tcp\" or \"tls\"",
        );
        if let (Ok(listen), Some(protocol)) = (listen, protocol) {
            inputs.syslog.push(SyslogInput {
                protocol,
                listen,
                allow,
                timezone,
                receive_buffer_bytes: s.receive_buffer_bytes.map(|b| b.into_inner() as usize),
                max_connections: max_connections.map_or(DEFAULT_MAX_CONNECTIONS, |n| n as usize),
                max_connections_per_sender: max_connections_per_sender.map_or_else(
                    || {
                        let total = max_connections.map_or(DEFAULT_MAX_CONNECTIONS, |n| n as usize);
                        (total / DEFAULT_SENDER_SHARE).max(DEFAULT_SENDER_MIN.min(total))
                    },
                    |n| n as usize,
                ),
                handshake_timeout_ms: handshake_timeout_ms.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT_MS),
                keepalive_s: keepalive_s.unwrap_or(DEFAULT_KEEPALIVE_S),
                evict_idle_ms: evict_idle_ms.unwrap_or(DEFAULT_EVICT_IDLE_MS),
            });
        }
    }
    for (i, j) in journald {
        let at = format!("input.journald[{i}]");
        let read_from = read_from(j.read_from, &format!("{at}.read_from"), p, out);
        inputs.journald.push(JournaldInput {
            journalctl: j.journalctl.map_or_else(
                || PathBuf::from("journalctl"),
                |s| PathBuf::from(s.into_inner()),
            ),
            args: j.args,
            read_from,
        });
    }
    inputs
}

/// Validates `[output]`.
pub(super) fn validate_output(
    o: RawOutput,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> Option<Output> {
    if o.kind.get_ref() == "aggregator" {
        if let Some(path) = &o.path {
            out.push(p(
                Some(path.span()),
                "output.path",
                "only for type = \"file\"".into(),
            ));
        }
        return validate_ship(o, p, out).map(|s| Output::Aggregator(Box::new(s)));
    }
    for (v, f) in [
        (o.server.as_ref().map(Spanned::span), "output.server"),
        (
            o.spool_max_mb.as_ref().map(Spanned::span),
            "output.spool_max_mb",
        ),
        (
            o.spool_full.as_ref().map(Spanned::span),
            "output.spool_full",
        ),
        (
            o.spool_fsync.as_ref().map(Spanned::span),
            "output.spool_fsync",
        ),
        (
            o.batch_max_kb.as_ref().map(Spanned::span),
            "output.batch_max_kb",
        ),
        (
            o.zstd_level.as_ref().map(Spanned::span),
            "output.zstd_level",
        ),
        (
            o.rejected_max_mb.as_ref().map(Spanned::span),
            "output.rejected_max_mb",
        ),
        (
            o.spool_fsync_ms.as_ref().map(Spanned::span),
            "output.spool_fsync_ms",
        ),
        (
            o.batch_linger_ms.as_ref().map(Spanned::span),
            "output.batch_linger_ms",
        ),
        (o.window.as_ref().map(Spanned::span), "output.window"),
        (
            o.heartbeat_ms.as_ref().map(Spanned::span),
            "output.heartbeat_ms",
        ),
        (
            o.backoff_min_ms.as_ref().map(Spanned::span),
            "output.backoff_min_ms",
        ),
        (
            o.backoff_max_ms.as_ref().map(Spanned::span),
            "output.backoff_max_ms",
        ),
        (
            o.idle_timeout_ms.as_ref().map(Spanned::span),
            "output.idle_timeout_ms",
        ),
        (o.drain_ms.as_ref().map(Spanned::span), "output.drain_ms"),
        (
            o.answer_timeout_ms.as_ref().map(Spanned::span),
            "output.answer_timeout_ms",
        ),
    ] {
        if let Some(span) = v {
            out.push(p(Some(span), f, "only for type = \"aggregator\"".into()));
        }
    }
    match (o.kind.get_ref().as_str(), o.path) {
        ("stdout", None) => Some(Output::Stdout),
        ("file", Some(path)) => Some(Output::File(PathBuf::from(path.into_inner()))),
        ("file", None) => {
            out.push(p(
                Some(o.kind.span()),
                "output.path",
                "missing: type = \"file\" needs a path".into(),
            ));
            None
        }
        ("stdout", Some(path)) => {
            out.push(p(
                Some(path.span()),
                "output.path",
                "only for type = \"file\"".into(),
            ));
            None
        }
        (other, _) => {
            out.push(p(
                Some(o.kind.span()),
                "output.type",
                format!("{other:?}: expected \"stdout\", \"file\" or \"aggregator\""),
            ));
            None
        }
    }
}

/// Checks `[output] type = "aggregator"`; every problem is reported, defaults fill the rest.
fn validate_ship(o: RawOutput, p: Problem<'_>, out: &mut Vec<ConfigProblem>) -> Option<ShipOutput> {
    let mut s = ShipOutput::default();
    let before = out.len();
    let mut range = |v: Option<Spanned<u64>>, field: &str, lo: u64, hi: u64| -> Option<u64> {
        let v = v?;
        if (lo..=hi).contains(v.get_ref()) {
            Some(*v.get_ref())
        } else {
            out.push(p(
                Some(v.span()),
                field,
                format!("must be between {lo} and {hi}"),
            ));
            None
        }
    };
    let spool_span = o.spool_max_mb.as_ref().map(Spanned::span);
    if let Some(v) = range(o.spool_max_mb, "output.spool_max_mb", 1, 1 << 20) {
        s.spool_max_bytes = v << 20;
    }
    // The aggregator refuses a batch whose decoding would take more than its per-agent
    // share of memory (128 MiB); 16 MiB of events stays well within it.
    if let Some(v) = range(o.batch_max_kb, "output.batch_max_kb", 1, 16 * 1024) {
        s.batch_max_bytes = (v as usize) << 10;
    }
    if let Some(v) = range(o.batch_linger_ms, "output.batch_linger_ms", 0, 60_000) {
        s.linger_ms = v as i64;
    }
    if let Some(v) = range(o.window, "output.window", 1, 64) {
        s.window = v as usize;
    }
    if let Some(v) = range(o.heartbeat_ms, "output.heartbeat_ms", 10, 3_600_000) {
        s.heartbeat_ms = v;
    }
    if let Some(v) = range(o.backoff_min_ms, "output.backoff_min_ms", 1, 3_600_000) {
        s.backoff_min_ms = v;
    }
    if let Some(v) = range(o.backoff_max_ms, "output.backoff_max_ms", 1, 3_600_000) {
        s.backoff_max_ms = v;
    }
    if let Some(v) = range(o.idle_timeout_ms, "output.idle_timeout_ms", 100, 600_000) {
        s.idle_timeout_ms = v;
    }
    if let Some(v) = range(o.drain_ms, "output.drain_ms", 0, 600_000) {
        s.drain_ms = v;
    }
    if let Some(v) = range(
        o.answer_timeout_ms,
        "output.answer_timeout_ms",
        100,
        3_600_000,
    ) {
        s.answer_timeout_ms = v;
    }
    if let Some(v) = range(o.rejected_max_mb, "output.rejected_max_mb", 1, 1 << 20) {
        s.rejected_max_bytes = v << 20;
    }
    let fsync_ms = range(o.spool_fsync_ms, "output.spool_fsync_ms", 1, 3_600_000);
    // A batch the spool can never hold stops the stage under the block policy (and the
    // agent, which a restart would not help): the spool holds the largest batch, a
    // runaway input batch of four times the size, with room to spare.
    if s.spool_max_bytes < 5 * s.batch_max_bytes as u64 {
        out.push(p(
            spool_span,
            "output.spool_max_mb",
            format!(
                "must hold at least five batches of batch_max_kb ({} KiB): at least {} MiB",
                s.batch_max_bytes >> 10,
                (5 * s.batch_max_bytes as u64).div_ceil(1 << 20)
            ),
        ));
    }
    if let Some(l) = o.zstd_level {
        match *l.get_ref() {
            1..=19 => s.zstd_level = *l.get_ref() as i32,
            _ => out.push(p(
                Some(l.span()),
                "output.zstd_level",
                "must be between 1 and 19".into(),
            )),
        }
    }
    if let Some(f) = o.spool_full {
        match f.get_ref().as_str() {
            "block" => s.drop_oldest = false,
            "drop_oldest" => s.drop_oldest = true,
            other => out.push(p(
                Some(f.span()),
                "output.spool_full",
                format!("{other:?}: expected \"block\" or \"drop_oldest\""),
            )),
        }
    }
    match o
        .spool_fsync
        .as_ref()
        .map(|f| (f.get_ref().as_str(), f.span()))
    {
        None | Some(("interval", _)) => s.fsync = SpoolFsync::IntervalMs(fsync_ms.unwrap_or(1000)),
        Some(("always", _)) => s.fsync = SpoolFsync::Always,
        Some(("never", _)) => s.fsync = SpoolFsync::Never,
        Some((other, span)) => out.push(p(
            Some(span),
            "output.spool_fsync",
            format!("{other:?}: expected \"always\", \"interval\" or \"never\""),
        )),
    }
    if let Some(srv) = o.server {
        if srv
            .get_ref()
            .rsplit_once(':')
            .is_none_or(|(h, port)| h.is_empty() || port.parse::<u16>().is_err())
        {
            out.push(p(
                Some(srv.span()),
                "output.server",
                "expected HOST:PORT".into(),
            ));
        } else {
            s.server = Some(srv.into_inner());
        }
    }
    (out.len() == before).then_some(s)
}
