//! `vedette-agent run`: the configured sources feed the normalize stage, which writes to the
//! configured output. SIGTERM or SIGINT stops the sources, lets the stage write everything
//! they handed over, and exits; SIGHUP reloads the config (a config with problems is
//! reported and the running one kept).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use jiff::tz::TimeZone;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::durable::Barrier;
use super::files::{self, FileSource};
use super::identity::IdentityPaths;
use super::journald::{self, JournaldSource};
use super::pipeline::{Edge, LiveSource, Reconfigure, StageMsg, StageStats, run_stage};
use super::ship::{ShipConfig, ShipStats, Shipper, UdpDrops};
use super::sink::Sink;
use super::spool::{FsyncPolicy, FullPolicy, Spool, SpoolConfig, SpoolStats};
use super::syslog::{self, ListenerStats};
use super::{clock, host};
use crate::config::{
    self, Config, FileInput, JournaldInput, Output, ShipOutput, SpoolFsync, SyslogInput,
};
use crate::core::batcher::BatchConfig;
use crate::core::dedup::Metrics as DedupMetrics;
use crate::core::enrich::baseline::Baseline;
use crate::core::time::TimeContext;
use crate::core::{NormalizeConfig, Normalizer, Source};

/// Batches the stage may have queued before sources wait (each up to a few hundred
/// records).
const STAGE_QUEUE: usize = 4;

/// Where checkpoints live unless `[agent] state_dir` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vedette-agent";

/// Reads and validates the config file. A file every user may write is refused, as
/// logrotate refuses one: whoever edits it chooses what the agent (root, as a rule) reads
/// and where it sends it.
pub fn load(path: &Path) -> Result<Config> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o002 != 0 {
        anyhow::bail!(
            "{} is writable by every user (mode {:o}): whoever can edit it chooses what the agent reads and where it sends it; chmod o-w it",
            path.display(),
            mode & 0o777
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(config::parse(path, &text)?)
}

/// The normalizer's settings from the agent config.
pub fn normalize_config(cfg: &Config) -> NormalizeConfig {
    let mut n = NormalizeConfig {
        reporter_hostname: cfg.hostname.clone().unwrap_or_else(host::hostname),
        json: cfg.json.clone(),
        ..NormalizeConfig::default()
    };
    if let Some(m) = cfg.max_line_bytes {
        n.max_line_bytes = m;
    }
    if let Some(ms) = cfg.audit_timeout_ms {
        n.audit_timeout_ms = ms;
    }
    n
}

/// What a run did, for the summary on stderr.
#[derive(Debug)]
pub struct RunSummary {
    /// The stage's counters.
    pub stage: StageStats,
    /// What dedup folded, when on.
    pub dedup: Option<DedupMetrics>,
    /// Each listener's counters, by source id.
    pub listeners: Vec<(String, Arc<ListenerStats>)>,
    /// What went to the aggregator, when that is the output.
    pub shipped: Option<ShipSummary>,
}

/// Each listener's counters, by source id.
type Listeners = Vec<(String, Arc<ListenerStats>)>;

/// The aggregator output's end state.
#[derive(Debug)]
pub struct ShipSummary {
    /// The shipper's counters.
    pub stats: Arc<ShipStats>,
    /// The spool's, at exit.
    pub spool: SpoolStats,
}

/// The aggregator output, running.
struct Shipping {
    spool: Arc<Spool>,
    stats: Arc<ShipStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    drain_ms: u64,
}

/// What the hello tells the aggregator about this host (read once at start; the events
/// carry the live facts): its name, OS and kernel, and the agent's asset tags.
fn hello_facts() -> serde_json::Value {
    let (os_name, os_version) = std::fs::read_to_string("/etc/os-release")
        .map(|t| crate::core::enrich::host::parse_os_release(&t))
        .unwrap_or((None, None));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|k| k.trim().to_owned());
    serde_json::json!({
        "hostname": host::hostname(),
        "os_name": os_name,
        "os_version": os_version,
        "kernel": kernel,
        "arch": std::env::consts::ARCH,
    })
}

/// Opens the spool and starts the shipper; returns the sink that feeds them.
fn start_shipping(
    ship: &ShipOutput,
    state_dir: &Path,
    rt: &tokio::runtime::Runtime,
    udp_drops: UdpDrops,
) -> Result<(Sink, Shipping)> {
    let paths = IdentityPaths::new(state_dir);
    let mut info = paths.info()?;
    if let Some(s) = &ship.server {
        info.server = s.clone();
    }
    let spool_cfg = SpoolConfig {
        max_bytes: ship.spool_max_bytes,
        segment_bytes: (ship.spool_max_bytes / 8).clamp(64 << 10, 8 << 20),
        fsync: match ship.fsync {
            SpoolFsync::Always => FsyncPolicy::Always,
            SpoolFsync::IntervalMs(ms) => FsyncPolicy::IntervalMs(ms),
            SpoolFsync::Never => FsyncPolicy::Never,
        },
        when_full: if ship.drop_oldest {
            FullPolicy::DropOldest
        } else {
            FullPolicy::Block
        },
    };
    let dir = state_dir.join("spool");
    let (spool, report) =
        Spool::open_in_boot(&dir, spool_cfg, super::spool::current_boot_id().as_deref())
            .with_context(|| format!("opening the spool {}", dir.display()))?;
    if report.new_boot {
        eprintln!(
            "vedette-agent: spool {}: last written before a reboot; new batches take a new epoch ({:016x}), so none can be mistaken for one sent before",
            dir.display(),
            spool.epoch()
        );
    }
    if report.state_unsaved || report.acks_not_compacted {
        eprintln!(
            "vedette-agent: spool {}: the disk is full; started with the spool's state in memory (written with the first batch that finds room)",
            dir.display()
        );
    }
    eprintln!(
        "vedette-agent: spool {}: {} batches waiting ({} bytes), next batch {}; damage skipped: {} records ({} bytes), torn tail cut: {} bytes",
        dir.display(),
        report.batches,
        report.bytes,
        report.next_seq,
        report.damaged_records,
        report.damaged_bytes,
        report.truncated_bytes
    );
    let sink = Sink::spool(
        spool.clone(),
        BatchConfig {
            max_bytes: ship.batch_max_bytes,
            linger_ms: ship.linger_ms,
            zstd_level: ship.zstd_level,
            ..BatchConfig::default()
        },
        &info.agent_id,
        &info.tenant,
    );
    let stats = Arc::new(ShipStats::default());
    let cfg = ShipConfig {
        window: ship.window,
        heartbeat_ms: ship.heartbeat_ms,
        backoff_min_ms: ship.backoff_min_ms,
        backoff_max_ms: ship.backoff_max_ms,
        idle_timeout_ms: ship.idle_timeout_ms,
        drain_ms: ship.drain_ms,
        answer_timeout_ms: ship.answer_timeout_ms,
        rejected_max_bytes: ship.rejected_max_bytes,
    };
    let drain_ms = cfg.drain_ms;
    let shipper = Shipper {
        spool: spool.clone(),
        paths,
        host: hello_facts(),
        info,
        cfg,
        stats: stats.clone(),
        rejected_dir: state_dir.join("rejected"),
        udp_drops: Some(udp_drops),
        reached: Default::default(),
        avoid: Default::default(),
    };
    let (stop, stop_rx) = watch::channel(false);
    let task = rt.spawn(shipper.run(stop_rx));
    // The interval policy's flushes: appends never wait for the device themselves (they
    // hold the spool's lock), so this and the sources' checkpoint barriers are what flush.
    if let SpoolFsync::IntervalMs(ms) = ship.fsync {
        let sp = spool.clone();
        rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(ms));
            loop {
                tick.tick().await;
                let sp = sp.clone();
                match tokio::task::spawn_blocking(move || sp.sync()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("vedette-agent: syncing the spool: {e}"),
                    Err(_) => return,
                }
            }
        });
    }
    Ok((
        sink,
        Shipping {
            spool,
            stats,
            stop,
            task,
            drain_ms,
        },
    ))
}

/// Runs the agent with the config at `path` until SIGTERM or SIGINT.
pub fn run(path: &Path) -> Result<RunSummary> {
    let cfg = load(path)?;
    if let Some((old, new)) = super::limits::raise_open_files() {
        eprintln!(
            "vedette-agent: open files: soft limit raised from {old} to {new} (the hard limit); tailed files stay open until drained"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("vedette-io")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let state_dir = cfg
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    if let Some(mode) = super::private::exposed(&state_dir) {
        eprintln!(
            "vedette-agent: warning: the state dir {} is open to other users (mode {mode:o}): its spool and files hold copies of what the agent reads; chmod 700 it",
            state_dir.display()
        );
    }
    // Every listener this run started (a reload adds to it); heartbeats read it.
    let listener_stats: Arc<std::sync::Mutex<Listeners>> = Arc::default();
    let mut shipping = None;
    let mut sink = match cfg.output.clone().unwrap_or(Output::Stdout) {
        Output::Stdout => Sink::stdout(),
        Output::File(p) => {
            Sink::file(&p).with_context(|| format!("opening the output {}", p.display()))?
        }
        Output::Aggregator(ship) => {
            let ls = listener_stats.clone();
            let drops: UdpDrops = Arc::new(move || {
                ls.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .iter()
                    .map(|(_, s)| s.kernel_drops.load(std::sync::atomic::Ordering::Relaxed))
                    .sum()
            });
            let (sink, sh) = start_shipping(&ship, &state_dir, &rt, drops)?;
            shipping = Some(sh);
            sink
        }
    };
    let norm = Normalizer::new(normalize_config(&cfg));
    let key = if cfg.redaction.is_some() {
        redaction_key(&state_dir).context("the redaction key")?
    } else {
        Vec::new()
    };
    let baseline = match cfg.enrich.baseline_days {
        None => None,
        Some(days) => {
            super::private::create_dir(&state_dir)
                .with_context(|| format!("creating the state dir {}", state_dir.display()))?;
            let path = state_dir.join("baseline");
            let max = cfg.enrich.baseline_max;
            let b = match std::fs::read_to_string(&path) {
                Ok(text) => Baseline::decode(&text, max, days).unwrap_or_else(|e| {
                    // A damaged baseline costs first-seen accuracy, never the agent's start.
                    eprintln!(
                        "vedette-agent: {}: {e}; starting a new baseline (the old file is kept as .bad)",
                        path.display()
                    );
                    let _ignored = std::fs::rename(&path, path.with_extension("bad"));
                    Baseline::new(max, days)
                }),
                Err(_) => Baseline::new(max, days),
            };
            Some((b, path))
        }
    };
    let edge = Edge {
        baseline,
        dedup: cfg.dedup.clone(),
        redaction: cfg.redaction.clone(),
        key,
        accounts: cfg
            .enrich
            .accounts_check_ms
            .map(|ms| super::accounts::AccountWatcher::new(cfg.enrich.root.clone(), ms)),
        host: cfg.enrich.host_check_ms.map(|ms| {
            (
                super::hostfacts::HostWatcher::new(
                    cfg.enrich.root.clone(),
                    cfg.enrich.ip_command.clone(),
                    ms,
                ),
                cfg.asset.clone(),
            )
        }),
        maintenance: cfg.maintenance.clone(),
        // The live processes are the real host's whatever root the files are read under
        // (a fixture root holds no running processes).
        processes: cfg
            .enrich
            .processes
            .then(|| super::procfs::ProcReader::new(PathBuf::from("/"))),
        local_host: normalize_config(&cfg).reporter_hostname,
    };
    let (tx, rx) = mpsc::channel(STAGE_QUEUE);
    let mut sources = Sources::new(state_dir.clone(), sink.barrier(), listener_stats.clone());
    let guard = rt.enter();
    // Before any input starts (and says so): a SIGHUP or SIGTERM from then on is ours, not
    // the default action that kills the process.
    let signals = Signals::install().context("installing signal handlers")?;
    sources.start(&cfg, &tx).context("starting the inputs")?;
    drop(guard);
    // At shutdown a stage blocked on a full spool (block policy, aggregator away) is let
    // go after the drain time: what it held is not acknowledged to its sources, so files
    // and the journal read it again at the next start.
    let unblock = shipping.as_ref().map(|s| (s.spool.clone(), s.drain_ms));
    let (stage_ended, stage_end) = tokio::sync::oneshot::channel::<()>();
    let control = rt.spawn(control(
        path.to_owned(),
        cfg.clone(),
        signals,
        sources,
        tx,
        unblock,
        stage_end,
    ));
    let staged = run_stage(rx, norm, edge, &mut sink, rt.handle()).context("writing events");
    // A stage that stopped on its own (its sink failed: a disk error, the output's
    // filesystem full) takes nothing more: the inputs stop and the agent exits with the
    // error, for its supervisor to see and restart it, instead of running on idle with
    // healthy heartbeats while nothing is read.
    let _ignored = stage_ended.send(());
    rt.block_on(control).context("the control task")?;
    let shipped = match shipping {
        None => None,
        Some(sh) => {
            // What is in the spool goes out for up to the drain time; the rest waits on
            // disk for the next start.
            let _ignored = sh.stop.send(true);
            rt.block_on(sh.task).context("the shipper task")?;
            if let Err(e) = sh.spool.sync() {
                eprintln!("vedette-agent: syncing the spool: {e}");
            }
            Some(ShipSummary {
                stats: sh.stats,
                spool: sh.spool.stats(),
            })
        }
    };
    let (stage, dedup) = staged?;
    let mut listeners = listener_stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    listeners.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(RunSummary {
        stage,
        dedup,
        listeners,
        shipped,
    })
}

/// Waits for signals; owns the sources and the last sender of the stage's channel, so the
/// stage ends exactly when the sources it stopped have handed over everything.
async fn control(
    path: PathBuf,
    mut current: Config,
    mut signals: Signals,
    mut sources: Sources,
    tx: mpsc::Sender<StageMsg>,
    unblock: Option<(Arc<Spool>, u64)>,
    mut stage_end: tokio::sync::oneshot::Receiver<()>,
) {
    // What the sections a reload cannot apply are, as long as the agent runs.
    let started = current.clone();
    // The state dir the agent runs on: a reload that names another takes effect at the
    // next start.
    let state_dir = current
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    loop {
        tokio::select! {
            _ = signals.term.recv() => break,
            _ = signals.int.recv() => break,
            _ = &mut stage_end => {
                eprintln!("vedette-agent: the stage stopped; stopping the inputs");
                break;
            }
            _ = signals.hup.recv() => match load(&path) {
                Err(e) => eprintln!("vedette-agent: reload refused, the running config stays: {e:#}"),
                Ok(cfg) => {
                    // A reload can wait on the stage (its queue full, an input stopping
                    // until its batches are acknowledged) as long as the stage waits on a
                    // full spool: a stop meanwhile ends it where it is, as it ends any wait.
                    let reload = async {
                        let key = match cfg.redaction {
                            Some(_) => match redaction_key(&state_dir) {
                                Ok(k) => Some(k),
                                Err(e) => {
                                    eprintln!(
                                        "vedette-agent: reload refused, the running config stays: the redaction key: {e:#}"
                                    );
                                    return true;
                                }
                            },
                            None => None,
                        };
                        if tx.send(stage_config(&cfg, key.clone())).await.is_err() {
                            return false;
                        }
                        if let Err(e) = sources.reload(&current, &cfg, &tx).await {
                            eprintln!("vedette-agent: reload refused: {e:#}");
                            // The stage goes back to the settings of the inputs that run.
                            return tx.send(stage_config(&current, key)).await.is_ok();
                        }
                        let later = restart_only(&started, &cfg);
                        if later.is_empty() {
                            eprintln!("vedette-agent: config reloaded from {}", path.display());
                        } else {
                            eprintln!(
                                "vedette-agent: config reloaded from {}; {} changed and take(s) effect at the next start",
                                path.display(),
                                later.join(", ")
                            );
                        }
                        current = cfg;
                        true
                    };
                    let go_on = tokio::select! {
                        go_on = reload => go_on,
                        _ = signals.term.recv() => false,
                        _ = signals.int.recv() => false,
                    };
                    if !go_on {
                        break;
                    }
                }
            },
        }
    }
    // Started before the sources stop: a tail blocked handing a batch to a stage that is
    // itself blocked on a full spool stops only once the spool lets go. Only a wait for
    // space is given up: with room, the last batches are spooled as ever.
    if let Some((spool, ms)) = unblock {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            spool.stop_waiting();
        });
    }
    sources.stop_all().await;
}

/// The key redaction hashes with, made on first use (`state_dir/redaction.key`).
fn redaction_key(state_dir: &Path) -> Result<Vec<u8>> {
    super::private::create_dir(state_dir)
        .with_context(|| format!("creating the state dir {}", state_dir.display()))?;
    super::keys::load_or_create(&state_dir.join("redaction.key"))
        .with_context(|| format!("{}", state_dir.join("redaction.key").display()))
}

/// The stage's part of `cfg`, with the redaction key when redaction is on.
fn stage_config(cfg: &Config, key: Option<Vec<u8>>) -> StageMsg {
    StageMsg::Reconfigure(Box::new(Reconfigure {
        normalize: normalize_config(cfg),
        dedup: cfg.dedup.clone(),
        redaction: cfg.redaction.clone(),
        key,
    }))
}

/// The signals `run` handles.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers (inside the runtime).
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// A running listener.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    id: String,
    /// A TLS listener's files, read again at each reload.
    tls: Option<syslog::TlsReload>,
}

/// The running sources, keyed by their config so a reload restarts only what changed (a
/// listener whose config stayed keeps its socket: nothing sent meanwhile is lost).
struct Sources {
    listeners: HashMap<String, Running>,
    files: HashMap<String, FileSource>,
    journals: HashMap<String, JournaldSource>,
    /// Listeners started so far (each start keys its uids apart).
    starts: u64,
    /// The counters of every listener started, for heartbeats and the run's summary: a
    /// listener a reload starts (or restarts) counts too, where only those of the first
    /// start were read.
    all_listeners: Arc<std::sync::Mutex<Listeners>>,
    /// Where checkpoints are, for the agent's whole run: the inputs a reload starts keep
    /// their checkpoints there (a `state_dir` changed by a reload takes effect at the next
    /// start, or they would start afresh in the new one).
    state_dir: PathBuf,
    /// Keys the uids of records from listeners, whose counters restart with the agent.
    run_nonce: String,
    /// The sink's: what checkpoints wait for before they are synced.
    barrier: Barrier,
}

impl Sources {
    fn new(
        state_dir: PathBuf,
        barrier: Barrier,
        all_listeners: Arc<std::sync::Mutex<Listeners>>,
    ) -> Self {
        let now = clock::now();
        let nonce = xxhash_rust::xxh3::xxh3_64(
            format!("{}:{}", now.as_nanosecond(), std::process::id()).as_bytes(),
        );
        Self {
            listeners: HashMap::new(),
            files: HashMap::new(),
            journals: HashMap::new(),
            starts: 0,
            all_listeners,
            state_dir,
            run_nonce: format!("{nonce:016x}"),
            barrier,
        }
    }

    /// Starts every input of `cfg` not running yet (inside the runtime).
    fn start(&mut self, cfg: &Config, tx: &mpsc::Sender<StageMsg>) -> Result<()> {
        let state_dir = self.state_dir.clone();
        let mut failed: Vec<anyhow::Error> = Vec::new();
        if !cfg.inputs.files.is_empty() || !cfg.inputs.journald.is_empty() {
            super::private::create_dir(&state_dir)
                .with_context(|| format!("creating the state dir {}", state_dir.display()))?;
        }
        for (i, input) in cfg.inputs.journald.iter().enumerate() {
            let key = journal_key(input, cfg);
            if self.journals.contains_key(&key) {
                continue;
            }
            let tz = cfg.timezone.clone().unwrap_or_else(TimeZone::system);
            let max_line = max_record(cfg);
            let j = journald::spawn(
                input,
                &state_dir,
                tz,
                max_line,
                tx.clone(),
                self.barrier.clone(),
            )
            .with_context(|| format!("input.journald[{i}]"));
            let j = match j {
                Ok(j) => j,
                Err(e) => {
                    failed.push(e);
                    continue;
                }
            };
            eprintln!("vedette-agent: reading the journal: {}", j.name);
            self.journals.insert(key, j);
        }
        if !cfg.inputs.files.is_empty() {
            let poll = Duration::from_millis(cfg.poll_interval_ms.unwrap_or(250));
            for (i, input) in cfg.inputs.files.iter().enumerate() {
                let key = file_key(input, cfg);
                if self.files.contains_key(&key) {
                    continue;
                }
                let tz = input
                    .timezone
                    .clone()
                    .or_else(|| cfg.timezone.clone())
                    .unwrap_or_else(TimeZone::system);
                let backend = cfg.read_backend.as_deref().unwrap_or("auto");
                let f = files::spawn(
                    input,
                    backend,
                    &state_dir,
                    max_record(cfg),
                    tz,
                    poll,
                    tx.clone(),
                    self.barrier.clone(),
                )
                .with_context(|| format!("input.file[{i}]"));
                let f = match f {
                    Ok(f) => f,
                    Err(e) => {
                        failed.push(e);
                        continue;
                    }
                };
                eprintln!("vedette-agent: tailing {}", f.name);
                self.files.insert(key, f);
            }
        }
        for (i, input) in cfg.inputs.syslog.iter().enumerate() {
            let key = listener_key(input, cfg);
            if self.listeners.contains_key(&key) {
                continue;
            }
            let bound = syslog::bind(input).with_context(|| {
                format!(
                    "input.syslog[{i}]: listening on {}{}",
                    input.listen,
                    bind_hint(input.listen)
                )
            });
            let mut bound = match bound {
                Ok(b) => b,
                Err(e) => {
                    failed.push(e);
                    continue;
                }
            };
            let tls = bound.take_tls_reload();
            let id = bound.source_id();
            let tz = input
                .timezone
                .clone()
                .or_else(|| cfg.timezone.clone())
                .unwrap_or_else(TimeZone::system);
            let source = Source {
                id: id.clone(),
                // Each start of a listener counts its records from 1 again: a restart by a
                // reload must not give its records the uids of the ones before it.
                uid_key: Some(format!("{id}#{}#{}", self.run_nonce, self.starts)),
                time: TimeContext::new(clock::now(), tz),
                syslog: true,
                sender_name: None,
            };
            self.starts += 1;
            let (stop, stop_rx) = watch::channel(false);
            let stats = Arc::new(ListenerStats::default());
            self.all_listeners
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((id.clone(), stats.clone()));
            eprintln!("vedette-agent: listening on {id}");
            let task = tokio::spawn(syslog::serve(
                bound,
                LiveSource::new(source),
                max_record(cfg),
                tx.clone(),
                stop_rx,
                stats.clone(),
            ));
            self.listeners.insert(
                key,
                Running {
                    stop,
                    task,
                    id,
                    tls,
                },
            );
        }
        // Every input that can start does (a reload's rollback puts back all it can); the
        // error names each that did not.
        let mut failed = failed.into_iter();
        match (failed.next(), failed.len()) {
            (None, _) => Ok(()),
            (Some(e), 0) => Err(e),
            (Some(e), more) => Err(e.context(format!(
                "and {more} more input(s) did not start: {}",
                failed
                    .map(|e| format!("{e:#}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    }

    /// Stops what `cfg` no longer has, starts what it adds. If something of `cfg` does not
    /// start (a port taken, a certificate that does not load), the inputs go back to `old`
    /// (which ran): what `cfg` started stops, what it stopped starts again from its
    /// checkpoints, and the error says so.
    async fn reload(
        &mut self,
        old: &Config,
        cfg: &Config,
        tx: &mpsc::Sender<StageMsg>,
    ) -> Result<()> {
        self.stop_unlike(cfg).await;
        // A listener whose config stayed takes renewed certificates (same paths, new
        // files) without closing a connection.
        for r in self.listeners.values_mut() {
            let Some(tls) = &mut r.tls else { continue };
            match tls.reload() {
                Ok(true) => eprintln!("vedette-agent: {}: TLS certificate and key reloaded", r.id),
                Ok(false) => {}
                Err(e) => eprintln!(
                    "vedette-agent: {}: keeping the TLS certificate in use, the files do not load: {e}",
                    r.id
                ),
            }
        }
        let Err(e) = self.start(cfg, tx) else {
            return Ok(());
        };
        self.stop_unlike(old).await;
        match self.start(old, tx) {
            Ok(()) => Err(e.context("the new inputs did not start; the previous ones run again")),
            Err(e2) => Err(e.context(format!(
                "the new inputs did not start, nor did all the previous ones again: {e2:#}"
            ))),
        }
    }

    /// Stops the running inputs `cfg` does not have (by key).
    async fn stop_unlike(&mut self, cfg: &Config) {
        let keep: Vec<String> = cfg
            .inputs
            .journald
            .iter()
            .map(|j| journal_key(j, cfg))
            .collect();
        for k in gone(&self.journals, &keep) {
            if let Some(j) = self.journals.remove(&k) {
                stop_journal(j).await;
            }
        }
        let keep: Vec<String> = cfg.inputs.files.iter().map(|f| file_key(f, cfg)).collect();
        for k in gone(&self.files, &keep) {
            if let Some(f) = self.files.remove(&k) {
                stop_files(f).await;
            }
        }
        let keep: Vec<String> = cfg
            .inputs
            .syslog
            .iter()
            .map(|l| listener_key(l, cfg))
            .collect();
        for k in gone(&self.listeners, &keep) {
            if let Some(r) = self.listeners.remove(&k) {
                stop(r).await;
            }
        }
    }

    async fn stop_all(&mut self) {
        for (_, j) in self.journals.drain() {
            stop_journal(j).await;
        }
        for (_, f) in self.files.drain() {
            stop_files(f).await;
        }
        for (_, r) in self.listeners.drain() {
            stop(r).await;
        }
    }
}

/// Stops a file input off the runtime's thread: it waits for the stage's acknowledgements.
async fn stop_files(f: FileSource) {
    let name = f.name.clone();
    if tokio::task::spawn_blocking(move || f.stop()).await.is_err() {
        eprintln!("vedette-agent: file input {name}: stopping failed");
    }
    eprintln!("vedette-agent: stopped tailing {name}");
}

async fn stop_journal(j: JournaldSource) {
    let name = j.name.clone();
    if tokio::task::spawn_blocking(move || j.stop()).await.is_err() {
        eprintln!("vedette-agent: {name}: stopping failed");
    }
    eprintln!("vedette-agent: stopped reading the journal: {name}");
}

async fn stop(r: Running) {
    // Fails only when the task has already ended, which is what stopping wants.
    let _ignored = r.stop.send(true);
    if let Err(e) = r.task.await {
        eprintln!("vedette-agent: {}: stopped abnormally: {e}", r.id);
    }
    eprintln!("vedette-agent: stopped {}", r.id);
}

/// What to do when binding `addr` fails for want of privilege: syslog's ports (514, 601,
/// 6514) are below 1024.
fn bind_hint(addr: std::net::SocketAddr) -> &'static str {
    if addr.port() != 0 && addr.port() < 1024 && !rustix::process::geteuid().is_root() {
        " (a port below 1024 needs root or CAP_NET_BIND_SERVICE: AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit)"
    } else {
        ""
    }
}

/// The running inputs (keyed by their config) a reloaded config no longer has.
fn gone<V>(running: &HashMap<String, V>, keep: &[String]) -> Vec<String> {
    running
        .keys()
        .filter(|k| !keep.contains(k))
        .cloned()
        .collect()
}

/// The longest record an input keeps (`[agent] max_line_bytes`).
fn max_record(cfg: &Config) -> usize {
    cfg.max_line_bytes.unwrap_or(64 * 1024)
}

// An input's key is its own section and the `[agent]` settings it was started with: a
// reload that changes one of those restarts it (files and the journal resume from their
// checkpoints), where keying by the section alone left it running on the old value.

fn listener_key(input: &SyslogInput, cfg: &Config) -> String {
    format!("{input:?}|{}|{:?}", max_record(cfg), cfg.timezone)
}

fn file_key(input: &FileInput, cfg: &Config) -> String {
    format!(
        "{input:?}|{}|{:?}|{:?}|{:?}",
        max_record(cfg),
        cfg.timezone,
        cfg.poll_interval_ms,
        cfg.read_backend
    )
}

fn journal_key(input: &JournaldInput, cfg: &Config) -> String {
    format!("{input:?}|{}|{:?}", max_record(cfg), cfg.timezone)
}

/// The sections a reload does not apply (the sink, the shipper and the edge stage's
/// enrichment are built once, at start), when `new` changes them.
fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut v = Vec::new();
    let changed =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    if changed(&old.state_dir, &new.state_dir) {
        v.push("[agent] state_dir");
    }
    // Events carry the new name at once; the edge stage tells this host's events from
    // relayed ones by the name it started with.
    if old.hostname != new.hostname {
        v.push("[agent] hostname (for enrichment)");
    }
    if changed(&old.output, &new.output) {
        v.push("[output]");
    }
    if changed(&old.enrich, &new.enrich) {
        v.push("[enrich]");
    }
    if changed(&old.asset, &new.asset) {
        v.push("[asset]");
    }
    if changed(&old.maintenance, &new.maintenance) {
        v.push("[[maintenance]]");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::restart_only;
    use crate::config::parse;
    use std::path::Path;

    const BASE: &str = "[agent]\nhostname = \"a\"\nstate_dir = \"/s\"\n[enrich]\nroot = \"/\"\n[asset]\nowner = \"ops\"\n[[maintenance]]\nname = \"w\"\ndays = [\"thu\"]\nfrom = \"09:00\"\nto = \"10:00\"\n[output]\ntype = \"stdout\"\n";

    /// A reload applies the inputs and the edge stage's settings; what it cannot apply is
    /// named, so an operator who changed it knows it waits for a restart.
    #[test]
    fn a_reload_names_what_takes_effect_only_at_the_next_start() {
        let old = parse(Path::new("a.toml"), BASE).unwrap();
        assert!(restart_only(&old, &old).is_empty());
        for (from, to, named) in [
            (
                "hostname = \"a\"",
                "hostname = \"b\"",
                "[agent] hostname (for enrichment)",
            ),
            (
                "state_dir = \"/s\"",
                "state_dir = \"/t\"",
                "[agent] state_dir",
            ),
            (
                "type = \"stdout\"",
                "type = \"file\"\npath = \"/o\"",
                "[output]",
            ),
            ("root = \"/\"", "root = \"/r\"", "[enrich]"),
            ("owner = \"ops\"", "owner = \"sec\"", "[asset]"),
            ("to = \"10:00\"", "to = \"11:00\"", "[[maintenance]]"),
        ] {
            let text = BASE.replace(from, to);
            assert_ne!(text, BASE, "{from}");
            let new = parse(Path::new("a.toml"), &text).unwrap();
            assert_eq!(restart_only(&old, &new), [named], "{from} -> {to}");
        }
    }
}
