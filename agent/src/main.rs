//! `vedette-agent`: the command line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use jiff::tz::TimeZone;
use vedette_agent::core::dedup::{Dedup, DedupConfig};
use vedette_agent::core::enrich::baseline::Baseline;
use vedette_agent::core::enrich::host::AssetTags;
use vedette_agent::core::enrich::maintenance::{self, MaintenanceWindow};
use vedette_agent::core::enrich::redact::Redactor;
use vedette_agent::core::time::TimeContext;
use vedette_agent::core::{Normalizer, Source};
use vedette_agent::io::accounts::AccountWatcher;
use vedette_agent::io::hostfacts::HostWatcher;
use vedette_agent::io::{clock, input, keys};
use vedette_schemas::ocsf::{Class, Event};

#[derive(Parser)]
#[command(
    name = "vedette-agent",
    version,
    about = "Vedette agent: host logs to OCSF"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum FramingArg {
    Line,
    Octet,
}

#[derive(Subcommand)]
enum Cmd {
    /// Enroll with an aggregator: make this agent's key, get its certificate signed with a
    /// one-time token (which also pins the aggregator's CA).
    Enroll {
        /// The aggregator, `HOST:PORT`.
        #[arg(long)]
        server: String,
        /// The token from `vedette-aggregator enroll-token create`. On the command line it
        /// is readable by every local user (`/proc/PID/cmdline`) while enrollment runs, and
        /// stays in shell history: prefer `--token-file`.
        #[arg(
            long,
            required_unless_present = "token_file",
            conflicts_with = "token_file"
        )]
        token: Option<String>,
        /// A file holding the token (`-`: standard input), e.g. one only root may read.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Agent config file (its `[agent] state_dir` holds the identity).
        #[arg(long, conflicts_with = "state_dir")]
        config: Option<PathBuf>,
        /// State dir, when there is no config.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// The disk spool of batches waiting for the aggregator.
    Spool {
        #[command(subcommand)]
        cmd: SpoolCmd,
    },
    /// Run the agent: the config's inputs (files, journald, syslog listeners) normalized to
    /// its output, until SIGTERM; SIGHUP reloads the config.
    Run {
        /// Agent config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Normalize log files (or stdin) to OCSF NDJSON on stdout; a summary goes to stderr.
    Normalize {
        /// Agent config file (JSON mappings, host name, zone, line cap).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Reference time for year-less timestamps (RFC 3339); default: each file's mtime.
        #[arg(long)]
        now: Option<jiff::Timestamp>,
        /// Zone of timestamps without one (IANA name); default: config, then the host's.
        #[arg(long)]
        tz: Option<String>,
        /// Read records as syslog messages off the wire (a missing PRI is an RFC violation).
        #[arg(long)]
        syslog: bool,
        /// How records are delimited.
        #[arg(long, value_enum, default_value = "line")]
        framing: FramingArg,
        /// Fold repeats of one behaviour (edge dedup) on the events' own timestamps: each
        /// first sighting, then one summary per window with `count`, `start_time`,
        /// `end_time`.
        #[arg(long)]
        fold: bool,
        /// Fold window, seconds.
        #[arg(long, default_value_t = 10, requires = "fold")]
        window: u32,
        /// Files to read (gzip is detected); none or `-` reads stdin.
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SpoolCmd {
    /// Read every segment and report what is waiting and what is damaged (read-only; exits
    /// 1 when damage is found).
    Verify {
        /// Agent config file (its `[agent] state_dir` holds the spool).
        #[arg(long, conflicts_with = "state_dir")]
        config: Option<PathBuf>,
        /// State dir, when there is no config.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

#[derive(Default)]
struct Summary {
    events: u64,
    per_class: BTreeMap<&'static str, u64>,
    /// file → (events, base fallbacks)
    per_file: BTreeMap<String, (u64, u64)>,
    parse_errors: u64,
}

impl Summary {
    fn add(&mut self, ev: &Event) {
        self.events += 1;
        *self.per_class.entry(ev.class().name()).or_default() += 1;
        let src = ev.metadata.log_source.as_deref().unwrap_or_default();
        // One lookup for a file already seen (nearly every event).
        let base = u64::from(ev.class() == Class::Base);
        match self.per_file.get_mut(src) {
            Some(f) => {
                f.0 += 1;
                f.1 += base;
            }
            None => {
                self.per_file.insert(src.to_owned(), (1, base));
            }
        }
        if ev
            .unmapped
            .as_ref()
            .and_then(|u| u.vedette.as_ref())
            .is_some_and(|v| v.parse_error.is_some())
        {
            self.parse_errors += 1;
        }
    }
}

/// Events are built from dozens of small strings: mimalloc serves them markedly cheaper
/// than glibc's allocator (see `benches/README.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SINK_BUF: usize = 1 << 20;

/// NDJSON on stdout, written in large chunks.
struct Sink {
    out: std::io::StdoutLock<'static>,
    buf: Vec<u8>,
}

impl Sink {
    fn emit(&mut self, ev: &Event) -> std::io::Result<()> {
        vedette_agent::core::output::write_json_line(ev, &mut self.buf);
        if self.buf.len() >= SINK_BUF {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Run { config } => run(&config),
        Cmd::Enroll {
            server,
            token,
            token_file,
            config,
            state_dir,
        } => {
            let token = match (token, token_file) {
                (Some(t), _) => t,
                (None, Some(path)) => read_token(&path)?,
                (None, None) => anyhow::bail!("--token or --token-file is needed"),
            };
            enroll(&server, &token, config, state_dir)
        }
        Cmd::Spool {
            cmd: SpoolCmd::Verify { config, state_dir },
        } => {
            let dir = state_dir_of(config, state_dir)?.join("spool");
            let report = vedette_agent::io::spool::verify(&dir)
                .with_context(|| format!("verifying {}", dir.display()))?;
            print!("{report}");
            if !report.is_clean() {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Normalize {
            config,
            now,
            tz,
            syslog,
            framing,
            fold,
            window,
            files,
        } => normalize(
            config,
            now,
            tz,
            syslog,
            framing,
            fold.then(|| DedupConfig {
                window_ms: i64::from(window) * 1000,
                ..DedupConfig::default()
            }),
            files,
        ),
    }
}

/// The state dir named directly, or by a config, or the default.
fn state_dir_of(config: Option<PathBuf>, state_dir: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match (config, state_dir) {
        (_, Some(d)) => d,
        (Some(c), None) => vedette_agent::io::run::load(&c)?
            .state_dir
            .unwrap_or_else(|| PathBuf::from(vedette_agent::io::run::DEFAULT_STATE_DIR)),
        (None, None) => PathBuf::from(vedette_agent::io::run::DEFAULT_STATE_DIR),
    })
}

/// The token in `path` (`-`: standard input), without surrounding whitespace.
fn read_token(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the token from standard input")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the token from {}", path.display()))?;
    }
    let token = text.trim();
    anyhow::ensure!(!token.is_empty(), "{}: no token in it", path.display());
    Ok(token.to_owned())
}

fn enroll(
    server: &str,
    token: &str,
    config: Option<PathBuf>,
    state_dir: Option<PathBuf>,
) -> Result<()> {
    let dir = state_dir_of(config, state_dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let host = vedette_agent::io::host::hostname();
    let info = rt.block_on(vedette_agent::io::identity::enroll(
        &dir, server, token, &host,
    ))?;
    println!(
        "enrolled as {} (tenant {}) with {}; identity in {}",
        info.agent_id,
        info.tenant,
        info.server,
        dir.join("identity").display()
    );
    Ok(())
}

fn run(config: &std::path::Path) -> Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = vedette_agent::io::run::run(config)?;
    eprintln!(
        "vedette-agent run: {} records in {} batches, {} events",
        s.stage.records, s.stage.batches, s.stage.events
    );
    if s.stage.unspooled > 0 {
        eprintln!(
            "  stopped with the spool full: {} events not spooled; those of files and the journal are read again at the next start (their checkpoints stayed before them), those of syslog listeners are lost (a sender has nothing to read again)",
            s.stage.unspooled
        );
    }
    if let Some(sh) = &s.shipped {
        let st = &sh.stats;
        eprintln!(
            "  shipped: {} batches stored ({} events new, {} already stored), {} replays, {} refused ({} deleted past rejected_max_mb), {} sent again after a reset, {} connections ({} failed); spool: {} batches waiting ({} bytes), {} dropped ({} events) when full, {} damaged records",
            st.acked.load(Relaxed),
            st.events_stored.load(Relaxed),
            st.events_duplicate.load(Relaxed),
            st.replays.load(Relaxed),
            st.rejected.load(Relaxed),
            st.rejected_discarded.load(Relaxed),
            st.retried.load(Relaxed),
            st.connects.load(Relaxed),
            st.failures.load(Relaxed),
            sh.spool.batches,
            sh.spool.bytes,
            sh.spool.dropped_batches,
            sh.spool.dropped_events,
            sh.spool.damaged_records
        );
        let (wire, raw) = (st.wire_bytes.load(Relaxed), st.raw_bytes.load(Relaxed));
        eprintln!(
            "  wire: {wire} bytes of batches for {raw} bytes of NDJSON (compression {:.1}x)",
            raw as f64 / wire.max(1) as f64
        );
    }
    if let Some(m) = &s.dedup {
        eprintln!(
            "  dedup: {} in, {} out (reduction {:.2}x), {} repeats folded into {} summaries, {} past the memory bound",
            m.events_in,
            m.events_out,
            m.reduction_ratio(),
            m.folded,
            m.summaries,
            m.untracked
        );
    }
    for (id, st) in &s.listeners {
        eprintln!(
            "  {id}: {} messages, {} connections, {} refused (allowlist), {} closed (max_connections), {} closed (max_connections_per_sender), {} silent ones closed for new ones, {} TLS failures, {} dropped by the kernel",
            st.messages.load(Relaxed),
            st.connections.load(Relaxed),
            st.refused.load(Relaxed),
            st.over_limit.load(Relaxed),
            st.over_sender_limit.load(Relaxed),
            st.evicted.load(Relaxed),
            st.tls_failures.load(Relaxed),
            st.kernel_drops.load(Relaxed),
        );
    }
    Ok(())
}

/// Where normalized events go: through the optional fold, counted, to stdout.
struct Output {
    sink: Sink,
    summary: Summary,
    redactor: Option<Redactor>,
    /// User enrichment, and this host's name (only events about it are enriched).
    accounts: Option<AccountWatcher>,
    /// This host's name.
    local_host: String,
    /// This host's maintenance windows.
    maintenance: Vec<MaintenanceWindow>,
    /// The first-seen baseline (in memory: a replay is not the host's history).
    baseline: Option<Baseline>,
    /// Device enrichment with this host's facts and asset tags.
    host: Option<(HostWatcher, AssetTags)>,
    fold: Option<Dedup>,
    write_err: Option<std::io::Error>,
}

impl Output {
    fn take(&mut self, mut ev: Box<Event>) {
        if let Some(r) = &mut self.redactor {
            r.apply(&mut ev);
        }
        // This host's facts only for events about this host (not relayed, device = us).
        let about = vedette_agent::io::pipeline::is_about(&ev, &self.local_host);
        if about {
            if let Some(w) = &mut self.accounts {
                w.db(ev.time).apply(&mut ev);
            }
            if let Some((w, tags)) = &mut self.host {
                w.facts(ev.time).apply(tags, &mut ev);
            }
            if self.fold.is_some() {
                maintenance::apply(&self.maintenance, &mut ev);
            }
        }
        if let Some(b) = &mut self.baseline {
            b.check(&mut ev, vedette_agent::io::clock::now_ms());
        }
        let ev = match &mut self.fold {
            None => Some(ev),
            Some(d) => {
                // Windows run on the events' own time, so a replay folds as it would have
                // live; summaries of windows that ended come out first.
                d.handle_timeout(ev.time);
                while let Some(s) = d.poll_event() {
                    Self::write(&mut self.sink, &mut self.summary, &mut self.write_err, &s);
                }
                d.handle_event(ev.time, ev)
            }
        };
        if let Some(ev) = ev {
            Self::write(&mut self.sink, &mut self.summary, &mut self.write_err, &ev);
        }
    }

    fn finish(&mut self) {
        if let Some(d) = &mut self.fold {
            d.flush();
            while let Some(s) = d.poll_event() {
                Self::write(&mut self.sink, &mut self.summary, &mut self.write_err, &s);
            }
        }
    }

    fn write(
        sink: &mut Sink,
        summary: &mut Summary,
        write_err: &mut Option<std::io::Error>,
        ev: &Event,
    ) {
        summary.add(ev);
        if write_err.is_none()
            && let Err(e) = sink.emit(ev)
        {
            *write_err = Some(e);
        }
    }
}

fn normalize(
    config: Option<PathBuf>,
    now: Option<jiff::Timestamp>,
    tz: Option<String>,
    syslog: bool,
    framing: FramingArg,
    fold: Option<DedupConfig>,
    files: Vec<PathBuf>,
) -> Result<()> {
    let cfg = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            vedette_agent::config::parse(path, &text)?
        }
        // The defaults of every section (the edge stage's included).
        None => vedette_agent::config::parse(std::path::Path::new("(defaults)"), "")?,
    };
    let tz = match tz {
        Some(z) => TimeZone::get(&z).with_context(|| format!("--tz {z}"))?,
        None => cfg.timezone.clone().unwrap_or_else(TimeZone::system),
    };
    let ncfg = vedette_agent::io::run::normalize_config(&cfg);
    let ncfg_host = ncfg.reporter_hostname.clone();
    let framing = match framing {
        FramingArg::Line => input::Framing::Line,
        FramingArg::Octet => input::Framing::Octet,
    };
    let files = if files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        files
    };
    let max_record = ncfg.max_line_bytes;
    let mut norm = Normalizer::new(ncfg);
    let mut out = Output {
        sink: Sink {
            out: std::io::stdout().lock(),
            buf: Vec::with_capacity(SINK_BUF + 65536),
        },
        summary: Summary::default(),
        // The edge stage (--fold): redaction, then dedup, as in `run`.
        redactor: match (&fold, cfg.redaction.clone()) {
            (Some(_), Some(rc)) => {
                let key = match &cfg.state_dir {
                    Some(dir) => keys::load_or_create(&dir.join("redaction.key"))
                        .context("the redaction key")?,
                    None => keys::random_key()?,
                };
                Some(Redactor::new(rc, &key))
            }
            _ => None,
        },
        accounts: match (&fold, cfg.enrich.accounts_check_ms) {
            (Some(_), Some(ms)) => Some(AccountWatcher::new(cfg.enrich.root.clone(), ms)),
            _ => None,
        },
        local_host: ncfg_host.clone(),
        maintenance: cfg.maintenance.clone(),
        baseline: match (&fold, cfg.enrich.baseline_days) {
            (Some(_), Some(days)) => Some(Baseline::new(cfg.enrich.baseline_max, days)),
            _ => None,
        },
        host: match (&fold, cfg.enrich.host_check_ms) {
            (Some(_), Some(ms)) => Some((
                HostWatcher::new(cfg.enrich.root.clone(), cfg.enrich.ip_command.clone(), ms),
                cfg.asset.clone(),
            )),
            _ => None,
        },
        fold: fold.map(Dedup::new),
        write_err: None,
    };
    let mut io_errors = 0u64;
    for path in &files {
        let id = if path.as_os_str() == "-" {
            "stdin".to_owned()
        } else {
            path.display().to_string()
        };
        let reference = match now {
            Some(t) => t,
            None => std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| jiff::Timestamp::try_from(m).ok())
                .unwrap_or_else(clock::now),
        };
        let src = Source {
            uid_key: None,
            id: id.clone(),
            time: TimeContext::new(reference, tz.clone()),
            syslog,
            sender_name: None,
        };
        let mut reader = match input::open(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("vedette-agent: {id}: {e}");
                io_errors += 1;
                continue;
            }
        };
        let mut seq = 0u64;
        // Records without a time of their own are stamped with when they were read; with
        // `--now` that is the given instant, so the output is reproducible.
        let now_ms = now.map_or_else(clock::now_ms, |t| t.as_millisecond());
        let res = input::for_each_record(&mut *reader, framing, max_record, |rec, cut_from| {
            seq += 1;
            let rx = vedette_agent::core::Received {
                seq,
                now_ms,
                cut_from,
                ..Default::default()
            };
            norm.handle_received(&src, rx, rec);
            while let Some(ev) = norm.poll_event() {
                out.take(ev);
            }
        });
        if let Some(e) = out.write_err.take() {
            bail!("writing events: {e}");
        }
        if let Err(e) = res {
            eprintln!("vedette-agent: {id}: stopped after record {seq}: {e}");
            io_errors += 1;
        }
        // Joined events never span files.
        norm.finish();
        while let Some(ev) = norm.poll_event() {
            out.take(ev);
        }
    }
    out.finish();
    if let Some(e) = out.write_err.take() {
        bail!("writing events: {e}");
    }
    out.sink.flush()?;
    let summary = out.summary;
    let st = norm.stats();
    eprintln!(
        "vedette-agent normalize: {} records read ({} blank, {} truncated, {} not UTF-8), {} events, {} with parse errors, {} I/O errors",
        st.lines,
        st.empty,
        st.truncated,
        st.invalid_utf8,
        summary.events,
        summary.parse_errors,
        io_errors
    );
    for (class, n) in &summary.per_class {
        eprintln!("  {class:<22} {n}");
    }
    if let Some(d) = &out.fold {
        let m = d.metrics();
        eprintln!(
            "  folded: {} events in, {} out (reduction {:.2}x), {} repeats in {} summaries, {} past the memory bound",
            m.events_in,
            m.events_out,
            m.reduction_ratio(),
            m.folded,
            m.summaries,
            m.untracked
        );
        for (class, c) in &m.per_class {
            eprintln!("    {class:<22} {} in, {} out", c.events_in, c.events_out);
        }
    }
    eprintln!("  Base Event fallbacks per file:");
    for (file, (events, base)) in &summary.per_file {
        let pct = if *events == 0 {
            0.0
        } else {
            100.0 * *base as f64 / *events as f64
        };
        eprintln!("    {base:>6} of {events:>6} ({pct:5.1}%)  {file}");
    }
    if io_errors > 0 {
        bail!("{io_errors} input(s) could not be read completely");
    }
    Ok(())
}
