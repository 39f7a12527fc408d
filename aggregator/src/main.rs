//! `vedette-aggregator`: init, enrollment tokens, agents, serve.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use vedette_aggregator::config::{Config, Synchronous, parse_duration_ms};
use vedette_aggregator::core::postings::Key;
use vedette_aggregator::identity::Token;
use vedette_aggregator::identity::authority::valid_tenant;
use vedette_aggregator::identity::token::secret_hash;
use vedette_aggregator::io::clock::now_ms;
use vedette_aggregator::io::server::Server;
use vedette_aggregator::io::state::{self, StatePaths};
use vedette_aggregator::io::store_thread::StoreHandle;
use vedette_aggregator::io::tls::server_config;
use vedette_aggregator::store::sqlite::{self, SqliteConfig, SqliteStore};
use vedette_aggregator::store::{EventStore, Pruned, Registry, TokenInfo, TokenRevocation};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_CONFIG: &str = "/etc/vedette/aggregator.toml";

#[derive(Parser)]
#[command(name = "vedette-aggregator", version, about = "Vedette aggregator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where the state dir is: named directly, or read from the config.
#[derive(clap::Args)]
struct StateArgs {
    /// The config file (its `[aggregator] state_dir`).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// The state dir, overriding the config's.
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

impl StateArgs {
    fn dir(&self) -> anyhow::Result<PathBuf> {
        match &self.state_dir {
            Some(d) => Ok(d.clone()),
            None => Ok(Config::load(&self.config)?.aggregator.state_dir),
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the CA, the server certificate and the action-signing key.
    Init {
        /// The state dir to create.
        #[arg(long)]
        state_dir: PathBuf,
        /// A DNS name or IP address agents use to reach this aggregator (repeatable;
        /// localhost and the loopback addresses are always included).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// One-time enrollment tokens.
    EnrollToken {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Enrolled agents.
    Agents {
        #[command(subcommand)]
        cmd: AgentsCmd,
    },
    /// Serve agents over QUIC.
    Serve {
        /// The config file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print what arrived (events per class, per second) every this many seconds.
        #[arg(long)]
        report_every: Option<u64>,
    },
    /// Events stored, per class.
    Stats {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Ranges of sources that never arrived.
    Gaps {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Delete events older than a duration (by event time), now; `serve` does it at start
    /// and hourly for `[store] retention`.
    Prune {
        #[command(flatten)]
        state: StateArgs,
        /// How old (`90d`, `12h`).
        #[arg(long)]
        older_than: String,
    },
    /// Stored events, newest first, one JSON object per line: all of them in the time
    /// range, or those with a class, host, user or address.
    Events {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        key: SearchKey,
        /// The tenant searched.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Only events this recent (`90s`, `30m`, `1h`, `7d`); all when absent.
        #[arg(long)]
        since: Option<String>,
        /// At most this many (1 to 10,000: every hit and its document are held in memory
        /// before the first is printed).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=10_000))]
        limit: u16,
    },
}

/// What `events` looks for: at most one of these (none: every event).
#[derive(clap::Args)]
#[group(required = false, multiple = false)]
struct SearchKey {
    /// An OCSF class_uid (e.g. 3002, Authentication).
    #[arg(long)]
    class: Option<u32>,
    /// A host (`device.hostname`).
    #[arg(long)]
    host: Option<String>,
    /// A user (`user.name`, else `actor.user.name`).
    #[arg(long)]
    user: Option<String>,
    /// An address, as source or destination.
    #[arg(long)]
    ip: Option<String>,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Make a token; prints it.
    Create {
        #[command(flatten)]
        state: StateArgs,
        /// How long it stays valid (`90s`, `30m`, `1h`, `7d`).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The tenant the agent joins.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// List tokens: id, tenant, and whether each is open, used (by which agent), expired
    /// or revoked. Secrets are not kept, so they cannot be shown.
    List {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Revoke a token that was not used yet (one that leaked): enrolling with it is
    /// refused from now on.
    Revoke {
        #[command(flatten)]
        state: StateArgs,
        /// The token's id (the part after `vdt1.`), or the whole token.
        token: String,
    },
}

#[derive(Subcommand)]
enum AgentsCmd {
    /// List enrolled agents.
    List {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Revoke an agent: its certificate is refused from its next batch on.
    Revoke {
        #[command(flatten)]
        state: StateArgs,
        /// The agent id (`agt-…`).
        id: String,
    },
}

fn open_store(dir: &Path, sync: Synchronous) -> anyhow::Result<SqliteStore> {
    let paths = StatePaths::new(dir);
    paths.create_private_db()?;
    let p = paths.db();
    let cfg = SqliteConfig {
        synchronous: match sync {
            Synchronous::Full => sqlite::Synchronous::Full,
            Synchronous::Normal => sqlite::Synchronous::Normal,
        },
        ..SqliteConfig::default()
    };
    SqliteStore::open(&p, cfg).with_context(|| format!("opening {}", p.display()))
}

/// The store of an existing state dir: the commands other than `init` and `serve` never
/// create one (a mistyped `--state-dir` made an empty store there and reported "no gaps",
/// "events: 0", a token nobody's aggregator knows).
fn open_existing_store(dir: &Path) -> anyhow::Result<SqliteStore> {
    let p = StatePaths::new(dir).db();
    if !p.is_file() {
        anyhow::bail!(
            "no store at {}: not an aggregator's state dir (`vedette-aggregator init` makes one)",
            p.display()
        );
    }
    open_store(dir, Synchronous::Full)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Init { state_dir, names } => {
            let out = state::init(&state_dir, &names, now_ms())?;
            // Creates the database and its schema now, so a bad dir fails here.
            open_store(&state_dir, Synchronous::Full)?;
            let ca_end = StatePaths::new(&state_dir).authority()?.not_after_ms()?;
            let ca_end = time::OffsetDateTime::from_unix_timestamp(ca_end / 1000)
                .map_or_else(|_| format!("{ca_end} ms"), |t| t.date().to_string());
            println!(
                "initialized {}\nCA fingerprint (SHA-256): {}\nCA valid until: {ca_end} (nothing renews a CA: plan its successor before then)\nserver names: {}",
                state_dir.display(),
                out.fingerprint,
                out.names.join(", ")
            );
        }
        Cmd::EnrollToken {
            cmd: TokenCmd::Create { state, ttl, tenant },
        } => {
            let Some(ttl_ms) = parse_duration_ms(&ttl) else {
                bail!("--ttl {ttl}: use a number and a unit, like 90s, 30m, 1h or 7d");
            };
            // A token is a door open to whoever holds it: a year at most (a longer one
            // also overflowed the expiry into the past).
            const MAX_TTL_MS: i64 = 366 * 86_400_000;
            if ttl_ms > MAX_TTL_MS {
                bail!("--ttl {ttl}: at most 366d");
            }
            if !valid_tenant(&tenant) {
                bail!(
                    "--tenant {tenant}: use 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)"
                );
            }
            let dir = state.dir()?;
            let ca = StatePaths::new(&dir).authority()?;
            let token = Token::generate(ca.fingerprint());
            let mut store = open_existing_store(&dir)?;
            let now = now_ms();
            store.create_token(
                &token.id,
                secret_hash(&token.secret),
                &tenant,
                now + ttl_ms,
                now,
            )?;
            println!("{}", token.encode());
        }
        Cmd::EnrollToken {
            cmd: TokenCmd::List { state },
        } => {
            let store = open_existing_store(&state.dir()?)?;
            let now = now_ms();
            for t in store.list_tokens()? {
                println!(
                    "{}\ttenant={}\tcreated={}\texpires={}\t{}",
                    t.id,
                    shown(&t.tenant),
                    utc(t.created_ms),
                    utc(t.expires_ms),
                    token_state(&t, now)
                );
            }
        }
        Cmd::EnrollToken {
            cmd: TokenCmd::Revoke { state, token },
        } => {
            let id = token_id(&token)?;
            let mut store = open_existing_store(&state.dir()?)?;
            match store.revoke_token(&id, now_ms())? {
                TokenRevocation::Revoked => println!("revoked token {id}"),
                TokenRevocation::Unknown => bail!("no token {id}"),
                TokenRevocation::Used { agent_id } => bail!(
                    "token {id} was already used by {agent_id}: revoke the agent instead \
                     (`vedette-aggregator agents revoke {agent_id}`)"
                ),
            }
        }
        Cmd::Agents {
            cmd: AgentsCmd::List { state },
        } => {
            let store = open_existing_store(&state.dir()?)?;
            for a in store.list_agents()? {
                let r = &a.record;
                let seen = a.state.as_ref().map_or(0, |s| s.last_seen_ms);
                println!(
                    "{}\ttenant={}\thost={}\tcert_serial={}\tnot_after_ms={}\tlast_seen_ms={seen}\t{}",
                    r.agent_id,
                    shown(&r.tenant),
                    shown(&r.hostname),
                    r.cert_serial,
                    r.not_after_ms,
                    match a.revoked_ms {
                        Some(t) => format!("revoked_ms={t}"),
                        None => "active".to_owned(),
                    }
                );
            }
        }
        Cmd::Agents {
            cmd: AgentsCmd::Revoke { state, id },
        } => {
            let mut store = open_existing_store(&state.dir()?)?;
            if !store.revoke_agent(&id, now_ms())? {
                bail!("no agent {id}");
            }
            println!("revoked {id}");
        }
        Cmd::Stats { state } => {
            let store = open_existing_store(&state.dir()?)?;
            let by_class = store.counts_by_class()?;
            let total: u64 = by_class.iter().map(|(_, n)| n).sum();
            println!("events: {total}");
            for (class, n) in by_class {
                println!("  {class} {}: {n}", class_name(class));
            }
        }
        Cmd::Events {
            state,
            key,
            tenant,
            since,
            limit,
        } => {
            let key = match (&key.class, &key.host, &key.user, &key.ip) {
                (Some(c), ..) => Some(Key::Class(*c)),
                (_, Some(h), ..) => Some(Key::Device(h)),
                (_, _, Some(u), _) => Some(Key::User(u)),
                (.., Some(ip)) => Some(Key::Ip(ip)),
                _ => None,
            };
            let from_ms = match &since {
                None => i64::MIN,
                Some(s) => match parse_duration_ms(s) {
                    Some(ms) => now_ms().saturating_sub(ms),
                    None => bail!("--since {s}: use a number and a unit, like 90s, 30m, 1h or 7d"),
                },
            };
            // Up to a day ahead of now: an agent's events dated in the future (a clock set
            // wrong, or a compromised agent's on purpose) would otherwise be the "latest"
            // and fill every result, hiding the real ones.
            let to_ms = now_ms().saturating_add(86_400_000);
            let store = open_existing_store(&state.dir()?)?;
            let found = match &key {
                Some(key) => store.find(&tenant, key, from_ms, to_ms, limit.into())?,
                None => store.latest(&tenant, from_ms, to_ms, limit.into())?,
            };
            for e in found {
                println!("{}", shown_json(&e.to_string()));
            }
        }
        Cmd::Prune { state, older_than } => {
            let age = parse_duration_ms(&older_than).with_context(|| {
                format!("--older-than {older_than:?}: want a duration like 90d")
            })?;
            let mut store = open_existing_store(&state.dir()?)?;
            let before = now_ms() - age;
            let mut total = Pruned::default();
            loop {
                let p = store.prune(before, PRUNE_SLICE)?;
                add_pruned(&mut total, p);
                if !p.is_full_slice(PRUNE_SLICE) {
                    break;
                }
            }
            println!(
                "pruned {} events ({} chunks) and {} batch records older than {older_than}{}",
                total.events,
                total.chunks,
                total.batches,
                waiting_note(total.batches_waiting)
            );
        }
        Cmd::Gaps { state } => {
            let store = open_existing_store(&state.dir()?)?;
            let mut any = false;
            for a in store.list_agents()? {
                for g in store.gaps(&a.record.agent_id)? {
                    any = true;
                    println!(
                        "{}\t{}\t{}\t{} [{}, {}) missing",
                        a.record.agent_id,
                        shown(&g.source),
                        shown(&g.stream),
                        shown(&g.unit),
                        g.first,
                        g.end
                    );
                }
            }
            if !any {
                println!("no gaps");
            }
        }
        Cmd::Serve {
            config,
            report_every,
        } => serve(&config, report_every)?,
    }
    Ok(())
}

fn serve(config: &Path, report_every: Option<u64>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let paths = StatePaths::new(&cfg.aggregator.state_dir);
    if let Some(mode) = paths.exposed() {
        eprintln!(
            "vedette-aggregator: warning: the state dir {} is open to other users (mode {mode:o}): it holds every agent's events; chmod 700 it",
            paths.dir.display()
        );
    }
    if let Some(what) = state::finish_interrupted_renewal(&paths.dir)? {
        eprintln!("vedette-aggregator: {what}");
    }
    renew_server_cert(&paths.dir);
    let authority = paths.authority()?;
    let ca_end = authority.not_after_ms()?;
    warn_ca_expiry(ca_end);
    let (chain, key) = paths.server_pem()?;
    let server_cfg = server_config(&chain, &key, authority.cert_pem())?;
    let store = open_store(&cfg.aggregator.state_dir, cfg.store.synchronous)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let endpoint = quinn::Endpoint::server(server_cfg, cfg.aggregator.listen)
            .with_context(|| format!("listening on {} (UDP)", cfg.aggregator.listen))?;
        let local: SocketAddr = endpoint.local_addr()?;
        // Tests and the demo read this line to learn the port when `listen` asks for 0.
        println!("vedette-aggregator: listening on {local}");
        let (handle, join) = StoreHandle::spawn(store);
        let server = Arc::new(Server {
            store: handle.clone(),
            authority: Arc::new(authority),
            cert_lifetime_ms: cfg.cert_lifetime_ms(),
            memory: vedette_aggregator::io::server::memory_budget(),
            agent_memory: std::sync::Mutex::default(),
            agent_connections: Arc::default(),
            stall: std::time::Duration::from_millis(cfg.stall_ms()),
            enrollments: Arc::new(tokio::sync::Semaphore::new(
                vedette_aggregator::io::server::MAX_ENROLLMENTS,
            )),
            seen: std::sync::Mutex::default(),
        });
        let seen_flusher = tokio::spawn(server.clone().flush_seen_every(SEEN_FLUSH));
        let accept = tokio::spawn(server.clone().run(endpoint.clone()));
        let renewer = tokio::spawn(renew_periodically(
            paths.clone(),
            endpoint.clone(),
            server.authority.cert_pem().to_owned(),
            ca_end,
        ));
        let pruner = cfg
            .retention_ms()
            .map(|age| tokio::spawn(prune_periodically(handle.clone(), age)));
        let reporter = report_every
            .filter(|&s| s > 0)
            .map(|secs| tokio::spawn(report(handle.clone(), Duration::from_secs(secs))));
        shutdown_signal().await?;
        endpoint.close(
            quinn::VarInt::from_u32(vedette_aggregator::io::server::close::SHUTDOWN),
            b"shutting down",
        );
        accept.abort();
        renewer.abort();
        seen_flusher.abort();
        // What agents said last is kept.
        server.flush_seen().await;
        if let Some(p) = pruner {
            p.abort();
        }
        if let Some(r) = reporter {
            r.abort();
        }
        // Bounded: a peer that does not answer the close is forgotten after the idle time.
        let _ignored = tokio::time::timeout(Duration::from_secs(5), endpoint.wait_idle()).await;
        drop(server);
        drop(handle);
        // Commits in progress finish; the thread ends when the last handle is gone (a
        // connection task still holding one is cut off when the runtime drops).
        let joined = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking(move || join.join()),
        )
        .await;
        match joined {
            Ok(Ok(Ok(_))) => {}
            Ok(_) => anyhow::bail!("the store thread panicked"),
            Err(_) => eprintln!("vedette-aggregator: the store was still busy at exit"),
        }
        eprintln!("vedette-aggregator: stopped");
        anyhow::Ok(())
    })
}

/// How often a running aggregator looks at its server certificate's expiry.
const CERT_CHECK: Duration = Duration::from_secs(3600);

/// Renews the server certificate if it is due, saying so; `true` when it did. A failure
/// is said and left for the next look: the certificate in use stays.
fn renew_server_cert(dir: &Path) -> bool {
    match state::renew_server_if_due(dir, now_ms()) {
        Ok(None) => false,
        Ok(Some(r)) => {
            eprintln!(
                "vedette-aggregator: renewed the server certificate for {} (it expired or was to expire at {} ms, the new one at {} ms)",
                r.names.join(", "),
                r.old_not_after_ms,
                r.not_after_ms
            );
            true
        }
        Err(e) => {
            eprintln!(
                "vedette-aggregator: renewing the server certificate failed, the one in use stays: {e:#}"
            );
            false
        }
    }
}

/// Renews the server certificate when it comes due while serving (an aggregator runs for
/// years, its certificate for 825 days): new handshakes get the new one, open
/// connections go on.
/// Says what [`ca_expiry_warning`] says, if anything.
fn warn_ca_expiry(ca_end_ms: i64) {
    if let Some(w) = vedette_aggregator::identity::authority::ca_expiry_warning(ca_end_ms, now_ms())
    {
        eprintln!("vedette-aggregator: warning: {w}");
    }
}

async fn renew_periodically(
    paths: StatePaths,
    endpoint: quinn::Endpoint,
    ca_pem: String,
    ca_end_ms: i64,
) {
    let mut tick = tokio::time::interval(CERT_CHECK);
    tick.tick().await;
    let mut checks: u64 = 0;
    loop {
        tick.tick().await;
        checks += 1;
        // Daily: an aggregator that runs for months keeps saying it.
        if checks.is_multiple_of(24) {
            warn_ca_expiry(ca_end_ms);
        }
        let dir = paths.dir.clone();
        let Ok(true) = tokio::task::spawn_blocking(move || renew_server_cert(&dir)).await else {
            continue;
        };
        let loaded = paths
            .server_pem()
            .and_then(|(chain, key)| server_config(&chain, &key, &ca_pem));
        match loaded {
            Ok(cfg) => endpoint.set_server_config(Some(cfg)),
            Err(e) => eprintln!(
                "vedette-aggregator: serving the renewed certificate failed, the one in use stays: {e:#}"
            ),
        }
    }
}

/// Prints the events per class and the rate since the last report.
/// How often what agents said (hellos, heartbeats) is written, all agents in one
/// transaction.
const SEEN_FLUSH: Duration = Duration::from_secs(1);

/// Chunks a prune deletes per transaction: ingest waits for one slice at most.
const PRUNE_SLICE: usize = 1000;

/// How often `serve` prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

fn add_pruned(total: &mut Pruned, p: Pruned) {
    total.chunks += p.chunks;
    total.events += p.events;
    total.batches += p.batches;
    total.batches_waiting += p.batches_waiting;
}

/// What a retention run says of the batch records it kept past their age.
fn waiting_note(waiting: u64) -> String {
    if waiting == 0 {
        String::new()
    } else {
        format!(
            "; {waiting} batch records of that age kept for now (a range below theirs in the same stream arrived later; they go once it does)"
        )
    }
}

/// Deletes events older than `age_ms` at start and every [`PRUNE_EVERY`], a slice at a
/// time, so batches commit in between.
async fn prune_periodically(store: StoreHandle<SqliteStore>, age_ms: i64) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        let before = now_ms() - age_ms;
        let mut total = Pruned::default();
        loop {
            match store.call(move |s| s.prune(before, PRUNE_SLICE)).await {
                Ok(Ok(p)) => {
                    add_pruned(&mut total, p);
                    if !p.is_full_slice(PRUNE_SLICE) {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    eprintln!("vedette-aggregator: pruning: {e}");
                    break;
                }
                Err(_) => return,
            }
        }
        if total != Pruned::default() {
            eprintln!(
                "vedette-aggregator: retention: deleted {} events ({} chunks) and {} batch records older than {}{}",
                total.events,
                total.chunks,
                total.batches,
                if age_ms % 86_400_000 == 0 {
                    format!("{} days", age_ms / 86_400_000)
                } else {
                    format!("{} s", age_ms / 1000)
                },
                waiting_note(total.batches_waiting)
            );
        }
    }
}

async fn report(store: StoreHandle<SqliteStore>, every: Duration) {
    let mut last: u64 = 0;
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Ok(Ok(by_class)) = store.call(|s| s.counts_by_class()).await else {
            return;
        };
        let total: u64 = by_class.iter().map(|(_, n)| n).sum();
        // Quiet while nothing arrives.
        if total == last {
            continue;
        }
        let rate = (total - last.min(total)) as f64 / every.as_secs_f64();
        last = total;
        let classes: Vec<String> = by_class
            .iter()
            .map(|&(c, n)| format!("{}={n}", class_name(c)))
            .collect();
        println!("events {total} (+{rate:.0}/s): {}", classes.join(", "));
    }
}

/// The id of a token named by its id or by the whole token string.
fn token_id(arg: &str) -> anyhow::Result<String> {
    let arg = arg.trim();
    if arg.starts_with("vdt1.") {
        return Ok(Token::parse(arg)?.id);
    }
    match vedette_aggregator::identity::token::unhex::<8>(arg) {
        Some(_) => Ok(arg.to_ascii_lowercase()),
        None => bail!("{arg}: not a token id (16 hex digits) nor a token (vdt1.…)"),
    }
}

/// A token's state as `enroll-token list` says it, at `now_ms`.
fn token_state(t: &TokenInfo, now_ms: i64) -> String {
    match (&t.used, t.revoked_ms) {
        (Some(u), _) => format!(
            "used={}\tagent={}\thost={}",
            utc(u.at_ms),
            u.agent_id,
            u.hostname
        ),
        (None, Some(at)) => format!("revoked={}", utc(at)),
        (None, None) if now_ms >= t.expires_ms => "expired".to_owned(),
        (None, None) => "open".to_owned(),
    }
}

/// A time in milliseconds as RFC 3339 UTC (to the second), or the number if out of range.
fn utc(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{ms} ms"),
    }
}

/// An OCSF class's name, or its number when it is not one we emit.
fn class_name(uid: u32) -> String {
    vedette_aggregator::ocsf_class_name(uid).map_or_else(|| format!("class {uid}"), str::to_owned)
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// `s` for a terminal: what an agent sent (a source path, a host name) may hold control
/// characters, and ESC, CR or a C1 CSI rewrites what an analyst sees (erases the lines
/// before, prints a fake "no gaps"); bidi overrides reorder it. Each such character is
/// written as `\u{…}`.
fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(unsafe_for_terminal) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_for_terminal(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A JSON document for a terminal: serde_json escapes C0 controls, not DEL, C1 controls
/// or bidi overrides, which are written as JSON escapes (the line stays the same JSON).
fn shown_json(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(unsafe_for_terminal) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_for_terminal(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn unsafe_for_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod terminal_tests {
    use super::{shown, shown_json};

    /// What an agent sent reaches an analyst's terminal through `gaps`, `agents list`
    /// and `events`: its control characters and bidi overrides are written escaped.
    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert_eq!(shown("/var/log/auth.log"), "/var/log/auth.log");
        assert_eq!(
            shown("x\u{1b}[2K\rno gaps\u{9b}1A\u{202e}"),
            "x\\u{1b}[2K\\u{d}no gaps\\u{9b}1A\\u{202e}"
        );
        let json = "{\"m\":\"a\u{7f}b\u{9b}c\u{2066}\"}";
        let safe = shown_json(json);
        assert_eq!(safe, "{\"m\":\"a\\u007fb\\u009bc\\u2066\"}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["m"], "a\u{7f}b\u{9b}c\u{2066}");
    }
}
