//! `vedette-agent`: the command line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use jiff::tz::TimeZone;
use vedette_agent::core::time::TimeContext;
use vedette_agent::core::{Normalizer, Source};
use vedette_agent::io::{clock, input};
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
        /// Files to read (gzip is detected); none or `-` reads stdin.
        files: Vec<PathBuf>,
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
        Cmd::Normalize {
            config,
            now,
            tz,
            syslog,
            framing,
            files,
        } => normalize(config, now, tz, syslog, framing, files),
    }
}

fn run(config: &std::path::Path) -> Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = vedette_agent::io::run::run(config)?;
    eprintln!(
        "vedette-agent run: {} records in {} batches, {} events",
        s.stage.records, s.stage.batches, s.stage.events
    );
    for (id, st) in &s.listeners {
        eprintln!(
            "  {id}: {} messages, {} connections, {} refused (allowlist), {} TLS failures, {} dropped by the kernel",
            st.messages.load(Relaxed),
            st.connections.load(Relaxed),
            st.refused.load(Relaxed),
            st.tls_failures.load(Relaxed),
            st.kernel_drops.load(Relaxed),
        );
    }
    Ok(())
}

fn normalize(
    config: Option<PathBuf>,
    now: Option<jiff::Timestamp>,
    tz: Option<String>,
    syslog: bool,
    framing: FramingArg,
    files: Vec<PathBuf>,
) -> Result<()> {
    let cfg = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            vedette_agent::config::parse(path, &text)?
        }
        None => Default::default(),
    };
    let tz = match tz {
        Some(z) => TimeZone::get(&z).with_context(|| format!("--tz {z}"))?,
        None => cfg.timezone.clone().unwrap_or_else(TimeZone::system),
    };
    let ncfg = vedette_agent::io::run::normalize_config(&cfg);
    let framing = match framing {
        FramingArg::Line => input::Framing::Line,
        FramingArg::Octet => input::Framing::Octet,
    };
    let files = if files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        files
    };
    let mut norm = Normalizer::new(ncfg);
    let mut out = Sink {
        out: std::io::stdout().lock(),
        buf: Vec::with_capacity(SINK_BUF + 65536),
    };
    let mut summary = Summary::default();
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
        let mut write_err = None;
        let res = input::for_each_record(&mut *reader, framing, |rec| {
            seq += 1;
            norm.handle_line(&src, seq, rec, now_ms);
            while let Some(ev) = norm.poll_event() {
                summary.add(&ev);
                if write_err.is_none()
                    && let Err(e) = out.emit(&ev)
                {
                    write_err = Some(e);
                }
            }
        });
        if let Some(e) = write_err {
            bail!("writing events: {e}");
        }
        if let Err(e) = res {
            eprintln!("vedette-agent: {id}: stopped after record {seq}: {e}");
            io_errors += 1;
        }
        // Joined events never span files.
        norm.finish();
        while let Some(ev) = norm.poll_event() {
            summary.add(&ev);
            out.emit(&ev)?;
        }
    }
    out.flush()?;
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
