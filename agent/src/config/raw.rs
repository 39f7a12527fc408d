//! The config file as written, before validation.

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigProblem;

/// Makes a located problem: (span, dotted field, message).
pub type Problem<'a> = &'a dyn Fn(Option<std::ops::Range<usize>>, &str, String) -> ConfigProblem;

/// The file as written.
///
/// Each section, and each element (kept with its index in the file), of an array of tables, is deserialized on its own (see
/// [`read`]), so a mistake in one does not hide the mistakes in the others.
#[derive(Debug, Default)]
pub struct RawConfig {
    /// Agent settings.
    pub agent: RawAgent,
    /// JSON mappings, tried in order.
    pub json_mapping: Vec<(usize, RawJsonMapping)>,
    /// `[[input.file]]`.
    pub file_inputs: Vec<(usize, RawFileInput)>,
    /// `[[input.syslog]]`.
    pub syslog_inputs: Vec<(usize, RawSyslogInput)>,
    /// `[[input.journald]]`.
    pub journald_inputs: Vec<(usize, RawJournaldInput)>,
    /// `[output]`.
    pub output: Option<RawOutput>,
    /// `[dedup]`.
    pub dedup: Option<RawDedup>,
    /// `[redaction]`.
    pub redaction: Option<RawRedaction>,
    /// `[enrich]`.
    pub enrich: Option<RawEnrich>,
    /// `[asset]`.
    pub asset: Option<RawAsset>,
    /// `[[maintenance]]`.
    pub maintenance: Vec<(usize, RawMaintenance)>,
}

/// `[agent]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    /// This host's name in `metadata.reporter` (default: the kernel's host name).
    pub hostname: Option<String>,
    /// Longest record kept, in bytes; longer ones are cut and flagged (default 65536).
    pub max_line_bytes: Option<Spanned<u64>>,
    /// Zone of timestamps that carry none (IANA name; default: the host's zone).
    pub timezone: Option<Spanned<String>>,
    /// Where checkpoints live (`vedette-agent run`; default `/var/lib/vedette-agent`).
    pub state_dir: Option<Spanned<String>>,
    /// How often files are checked for new bytes, in ms (default 250).
    pub poll_interval_ms: Option<Spanned<u64>>,
    /// How long an auditd event without its end record waits for more records, in ms
    /// (default 2000, auditd's own `end_of_event_timeout`).
    pub audit_timeout_ms: Option<Spanned<u64>>,
    /// How files are read: `auto` (io_uring where built in and the kernel allows it, else
    /// plain reads; the default), `plain` or `io_uring`.
    pub read_backend: Option<Spanned<String>>,
}

/// `[[json_mapping]]`: normalizes an app's or an EDR's JSON without code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonMapping {
    /// Name, reported as `metadata.event_code`.
    pub name: String,
    /// JSON path → value; the mapping applies when all are equal.
    #[serde(rename = "match", default)]
    pub matches: toml::Table,
    /// OCSF class: `authentication`, `account_change`, `process_activity`,
    /// `file_activity`, `network_activity`, `http_activity`, `dns_activity`, `base_event`,
    /// or the class uid.
    pub class: Spanned<toml::Value>,
    /// Activity id within the class (default 0).
    pub activity_id: Option<Spanned<u8>>,
    /// Fixed status: `success`, `failure`, `unknown`, `other`.
    pub status: Option<Spanned<String>>,
    /// Fixed severity: `informational`, `low`, `medium`, `high`, `critical`, `fatal`.
    pub severity: Option<Spanned<String>>,
    /// OCSF path → JSON path.
    pub fields: Option<Spanned<std::collections::BTreeMap<Spanned<String>, toml::Value>>>,
}

/// `[[input.file]]`: files to tail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileInput {
    /// Paths or glob patterns (`*`, `?`, `[...]` in the file name).
    pub paths: Spanned<Vec<String>>,
    /// Patterns of paths not to tail even when `paths` match them: a pattern without a `/`
    /// is matched against the file name (`*.gz`), one with, against the whole path.
    pub exclude: Option<Spanned<Vec<String>>>,
    /// Where to start in files present at the first start: `start` or `end` (default
    /// `end`). Files that appear later are always read from their start.
    pub read_from: Option<Spanned<String>>,
    /// Zone of the files' timestamps (default: `[agent] timezone`).
    pub timezone: Option<Spanned<String>>,
    /// Symbolic links among the matched paths: `owner` (default: followed when root or
    /// the target file's owner made them), `any` or `never`.
    pub symlinks: Option<Spanned<String>>,
}

/// `[[input.syslog]]`: a syslog listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslogInput {
    /// `udp`, `tcp` or `tls`.
    pub protocol: Spanned<String>,
    /// Address and port, e.g. `0.0.0.0:514`.
    pub listen: Spanned<String>,
    /// Sender networks (CIDR) taken from; required, so an open listener is a choice
    /// (`["0.0.0.0/0", "::/0"]`).
    pub allow: Option<Spanned<Vec<String>>>,
    /// TLS: the server certificate chain (PEM).
    pub tls_cert: Option<Spanned<String>>,
    /// TLS: the server key (PEM).
    pub tls_key: Option<Spanned<String>>,
    /// TLS: take only senders whose client certificate chains to one of these CA
    /// certificates (PEM); without it, a sender needs no certificate.
    pub tls_client_ca: Option<Spanned<String>>,
    /// TLS: names (DNS, or `*.domain` for one label) a client certificate must carry one
    /// of; needs `tls_client_ca`.
    pub tls_client_names: Option<Spanned<Vec<String>>>,
    /// Zone of timestamps that carry none (default: `[agent] timezone`).
    pub timezone: Option<Spanned<String>>,
    /// UDP: the socket receive buffer asked of the kernel, in bytes.
    pub receive_buffer_bytes: Option<Spanned<u64>>,
    /// TCP/TLS: connections served at once (default 1024); one more is closed at once and
    /// counted.
    pub max_connections: Option<Spanned<u64>>,
    /// TCP/TLS: connections one sender address holds at once (default a quarter of
    /// `max_connections`, at least 16 or all of them); one more is closed at once and counted, unless one
    /// of its own has been silent for `evict_idle_ms`.
    pub max_connections_per_sender: Option<Spanned<u64>>,
    /// TLS: how long a client has to finish its handshake, ms (default 10000).
    pub handshake_timeout_ms: Option<Spanned<u64>>,
    /// TCP/TLS: seconds a connection may be silent before the kernel probes the sender
    /// (TCP keepalive; default 60); a sender gone without a close is found dead after
    /// about twice this.
    pub keepalive_s: Option<Spanned<u64>>,
    /// TCP/TLS: when `max_connections` are open, a connection silent this long (ms,
    /// default 60000) is closed to make room for a new one.
    pub evict_idle_ms: Option<Spanned<u64>>,
}

/// `[[input.journald]]`: the systemd journal, read through `journalctl`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJournaldInput {
    /// The `journalctl` binary (default `journalctl` on `PATH`).
    pub journalctl: Option<Spanned<String>>,
    /// Extra arguments selecting the journal, e.g. `["--directory", "/var/log/journal"]`
    /// or `["--file", "x.journal"]`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Where to start the first time, without a saved cursor: `start` or `end`
    /// (default `end`).
    pub read_from: Option<Spanned<String>>,
}

/// `[dedup]`: edge de-duplication in `vedette-agent run` (on by default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDedup {
    /// Fold repeats (default true).
    pub enabled: Option<bool>,
    /// Window length in seconds (default 10).
    pub window_seconds: Option<Spanned<u64>>,
    /// Most fingerprints tracked at once (default 10000); past it events pass unfolded.
    pub max_tracked: Option<Spanned<u64>>,
    /// Per class (`authentication`, `network_activity` …): the OCSF paths that define "the
    /// same behaviour", replacing the defaults.
    pub fields: Option<Spanned<toml::Table>>,
}

/// `[redaction]`: secrets replaced by a keyed hash before events leave the host (on by
/// default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedaction {
    /// Redact at all (default true).
    pub enabled: Option<bool>,
    /// Failed logins whose user name looks like a password (default true).
    pub user_names: Option<bool>,
    /// URL query parameters named like tokens (default true).
    pub token_params: Option<bool>,
    /// Regular expressions (Rust `regex` syntax); a match, or its first capture group, is
    /// redacted wherever it appears in the event.
    pub patterns: Option<Spanned<Vec<String>>>,
}

/// `[enrich]`: facts the agent adds about its own host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnrich {
    /// The root the host's files are read under (default `/`).
    pub root: Option<String>,
    /// User enrichment from /etc/passwd, /etc/group, /etc/shadow (default true).
    pub accounts: Option<bool>,
    /// How often the account files are checked for changes, seconds (default 30).
    pub accounts_check_seconds: Option<Spanned<u64>>,
    /// Device enrichment with this host's facts (default true).
    pub host: Option<bool>,
    /// How often the host's facts are gathered again, seconds (default 30).
    pub host_check_seconds: Option<Spanned<u64>>,
    /// The command printing the interfaces as JSON (default `["ip", "-j", "addr", "show"]`).
    pub ip_command: Option<Vec<String>>,
    /// Process enrichment from /proc for events that name a live pid (default true).
    pub processes: Option<bool>,
    /// The first-seen baseline of (host, user, source address) for Authentication, in days
    /// (default 30; 0 turns it off).
    pub baseline_days: Option<Spanned<u32>>,
    /// Most pairs the baseline keeps (default 50000).
    pub baseline_max: Option<Spanned<u64>>,
}

/// `[[maintenance]]`: a maintenance window of this host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    /// Name, as events carry it.
    pub name: String,
    /// Weekdays it starts on (`mon` … `sun`).
    pub days: Spanned<Vec<String>>,
    /// Start, `HH:MM`.
    pub from: Spanned<String>,
    /// End, `HH:MM` (at or before `from`: the next day).
    pub to: Spanned<String>,
    /// Zone of the times (default: `[agent] timezone`, else the host's).
    pub timezone: Option<Spanned<String>>,
}

/// `[asset]`: tags of this host, added to the events about it.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAsset {
    /// Owner (person or team).
    pub owner: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Business unit.
    pub business_unit: Option<String>,
    /// Criticality tier.
    pub criticality: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Free labels.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// `[output]`: where `vedette-agent run` writes events.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// `stdout` or `file`.
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// `file`: the NDJSON file events are appended to.
    pub path: Option<Spanned<String>>,
    /// `aggregator`: `HOST:PORT`, overriding the one enrolled with.
    pub server: Option<Spanned<String>>,
    /// `aggregator`: spool bound, MiB (default 256).
    pub spool_max_mb: Option<Spanned<u64>>,
    /// `aggregator`: when the spool is full, `block` the sources (default) or
    /// `drop_oldest` (counted).
    pub spool_full: Option<Spanned<String>>,
    /// `aggregator`: `always` (every batch), `interval` (default) or `never`.
    pub spool_fsync: Option<Spanned<String>>,
    /// `aggregator`: the fsync interval of `interval`, ms (default 1000).
    pub spool_fsync_ms: Option<Spanned<u64>>,
    /// `aggregator`: largest batch before compression, KiB (default 1024).
    pub batch_max_kb: Option<Spanned<u64>>,
    /// `aggregator`: how long a batch waits to fill, ms (default 200).
    pub batch_linger_ms: Option<Spanned<u64>>,
    /// `aggregator`: zstd level (default 3).
    pub zstd_level: Option<Spanned<i64>>,
    /// `aggregator`: batches in flight (default 8).
    pub window: Option<Spanned<u64>>,
    /// `aggregator`: heartbeat interval, ms (default 10000).
    pub heartbeat_ms: Option<Spanned<u64>>,
    /// `aggregator`: first reconnect delay, ms (default 250).
    pub backoff_min_ms: Option<Spanned<u64>>,
    /// `aggregator`: longest reconnect delay, ms (default 30000).
    pub backoff_max_ms: Option<Spanned<u64>>,
    /// `aggregator`: a connection silent this long is dead, ms (default 30000).
    pub idle_timeout_ms: Option<Spanned<u64>>,
    /// `aggregator`: at shutdown, how long to keep delivering what is spooled, ms
    /// (default 5000).
    pub drain_ms: Option<Spanned<u64>>,
    /// `aggregator`: how long the welcome may take, and batches may be in flight with none
    /// answered, before the connection is given up and made again, ms (default 120000).
    pub answer_timeout_ms: Option<Spanned<u64>>,
    /// `aggregator`: what `state_dir/rejected/` may keep of batches the aggregator
    /// refused, MiB (default 64); past it the oldest are deleted (counted).
    pub rejected_max_mb: Option<Spanned<u64>>,
}

/// Reads `text` section by section. Problems of every section come back together, each
/// with its place; a TOML syntax error stops at the first one (what follows it is not
/// TOML).
pub fn read(text: &str, problem: Problem<'_>) -> (RawConfig, Vec<ConfigProblem>) {
    let mut raw = RawConfig::default();
    let mut problems = Vec::new();
    let root = match DeTable::parse(text) {
        Ok(t) => t.into_inner(),
        Err(e) => return (raw, vec![problem(e.span(), "-", e.message().to_owned())]),
    };
    for (key, value) in root {
        let name = key.get_ref().as_ref();
        match name {
            "agent" => {
                if let Some(a) = section(value, name, &mut problems, problem) {
                    raw.agent = a;
                }
            }
            "json_mapping" => raw.json_mapping = elements(value, name, &mut problems, problem),
            "output" => raw.output = section(value, name, &mut problems, problem),
            "dedup" => raw.dedup = section(value, name, &mut problems, problem),
            "redaction" => raw.redaction = section(value, name, &mut problems, problem),
            "enrich" => raw.enrich = section(value, name, &mut problems, problem),
            "asset" => raw.asset = section(value, name, &mut problems, problem),
            "maintenance" => raw.maintenance = elements(value, name, &mut problems, problem),
            "input" => {
                let span = value.span();
                let DeValue::Table(t) = value.into_inner() else {
                    problems.push(problem(Some(span), name, "must be a table".into()));
                    continue;
                };
                for (k, v) in t {
                    let field = format!("input.{}", k.get_ref());
                    match k.get_ref().as_ref() {
                        "file" => raw.file_inputs = elements(v, &field, &mut problems, problem),
                        "syslog" => raw.syslog_inputs = elements(v, &field, &mut problems, problem),
                        "journald" => {
                            raw.journald_inputs = elements(v, &field, &mut problems, problem);
                        }
                        _ => problems.push(problem(
                            Some(k.span()),
                            &field,
                            "unknown input kind; expected `file`, `syslog` or `journald`".into(),
                        )),
                    }
                }
            }
            _ => problems.push(problem(
                Some(key.span()),
                name,
                "unknown section; expected `agent`, `input`, `output`, `dedup`, `redaction`, `enrich`, `asset`, `maintenance` or `json_mapping`"
                    .into(),
            )),
        }
    }
    (raw, problems)
}

fn section<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    field: &str,
    problems: &mut Vec<ConfigProblem>,
    problem: Problem<'_>,
) -> Option<T> {
    let span = value.span();
    T::deserialize(toml::de::ValueDeserializer::from(value))
        .map_err(|e| {
            problems.push(problem(
                e.span().or(Some(span)),
                field,
                e.message().to_owned(),
            ));
        })
        .ok()
}

fn elements<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    field: &str,
    problems: &mut Vec<ConfigProblem>,
    problem: Problem<'_>,
) -> Vec<(usize, T)> {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        problems.push(problem(
            Some(span),
            field,
            format!("must be an array of tables (`[[{field}]]`)"),
        ));
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| Some((i, section(v, &format!("{field}[{i}]"), problems, problem)?)))
        .collect()
}
