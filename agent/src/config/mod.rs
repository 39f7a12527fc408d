//! The agent config file (TOML). `normalize --config FILE` reads the same file as the
//! agent. Parsed as `Raw` with serde, then validated into the types the core uses; every
//! problem is reported with file, line and field, all at once.

use std::path::{Path, PathBuf};

use toml::Spanned;
use vedette_schemas::ocsf::{Class, Severity, Status};

pub use raw::RawConfig;

use crate::core::parse::json::{JsonMapping, JsonMappings, path, path_is_mappable};

mod edge;
mod inputs;
pub mod raw;

pub use inputs::{
    ClientAuth, DEFAULT_EVICT_IDLE_MS, DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_KEEPALIVE_S,
    DEFAULT_MAX_CONNECTIONS, FileInput, Inputs, JournaldInput, Output, ReadFrom, ShipOutput,
    SpoolFsync, SyslogInput, SyslogProtocol,
};

/// One problem in a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// The field, dotted.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.field,
            self.message
        )
    }
}

/// Every problem of a config file.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the config:\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<ConfigProblem>);

/// The validated config.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `[agent] hostname`.
    pub hostname: Option<String>,
    /// `[agent] max_line_bytes`.
    pub max_line_bytes: Option<usize>,
    /// `[agent] timezone`.
    pub timezone: Option<jiff::tz::TimeZone>,
    /// The JSON mappings.
    pub json: JsonMappings,
    /// `[agent] state_dir`.
    pub state_dir: Option<PathBuf>,
    /// `[agent] poll_interval_ms`.
    pub poll_interval_ms: Option<u64>,
    /// `[agent] audit_timeout_ms`.
    pub audit_timeout_ms: Option<i64>,
    /// `[agent] read_backend`: `auto`, `plain` or `io_uring`.
    pub read_backend: Option<String>,
    /// `[[input.*]]`.
    pub inputs: Inputs,
    /// `[output]`.
    pub output: Option<Output>,
    /// `[dedup]`: `None` when disabled.
    pub dedup: Option<crate::core::dedup::DedupConfig>,
    /// `[redaction]`: `None` when disabled.
    pub redaction: Option<crate::core::enrich::redact::RedactConfig>,
    /// `[enrich]`.
    pub enrich: Enrich,
    /// `[asset]`.
    pub asset: crate::core::enrich::host::AssetTags,
    /// `[[maintenance]]`.
    pub maintenance: Vec<crate::core::enrich::maintenance::MaintenanceWindow>,
}

/// `[enrich]`: what the agent adds about its own host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrich {
    /// The root the host's files are read under (`/`; tests point it at a fixture tree).
    pub root: PathBuf,
    /// User enrichment from the account database, re-read when it changed (checked every
    /// `accounts_check_ms`); `None` when off.
    pub accounts_check_ms: Option<i64>,
    /// Device enrichment with this host's facts, gathered every `host_check_ms`; `None`
    /// when off.
    pub host_check_ms: Option<i64>,
    /// The command printing the interfaces as JSON.
    pub ip_command: Vec<String>,
    /// Process enrichment from /proc (`run` only: a replayed file's pids are stale).
    pub processes: bool,
    /// First-seen baseline window in days; `None` when off.
    pub baseline_days: Option<u32>,
    /// Most pairs the baseline keeps.
    pub baseline_max: usize,
}

impl Default for Enrich {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/"),
            accounts_check_ms: Some(30_000),
            host_check_ms: Some(30_000),
            ip_command: ["ip", "-j", "addr", "show"].map(String::from).to_vec(),
            processes: true,
            baseline_days: Some(30),
            baseline_max: 50_000,
        }
    }
}

/// A class by its config name (`authentication`, `account_change`, `process_activity`,
/// `file_activity`, `network_activity`, `http_activity`, `dns_activity`, `base_event`).
pub fn class_named(name: &str) -> Option<Class> {
    Some(match name {
        "authentication" => Class::Authentication,
        "account_change" => Class::AccountChange,
        "process_activity" => Class::ProcessActivity,
        "file_activity" => Class::FileActivity,
        "network_activity" => Class::NetworkActivity,
        "http_activity" => Class::HttpActivity,
        "dns_activity" => Class::DnsActivity,
        "base_event" => Class::Base,
        _ => return None,
    })
}

/// Largest `[agent] max_line_bytes`.
pub const MAX_LINE_BYTES: u64 = 1 << 20;

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, col)
}

/// Parses and validates config `text` read from `file`.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let problem = |span: Option<std::ops::Range<usize>>, field: &str, message: String| {
        let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
        ConfigProblem {
            file: file.to_owned(),
            line,
            column,
            field: field.to_owned(),
            message,
        }
    };
    let (raw, mut problems) = raw::read(text, &problem);
    let RawConfig {
        agent,
        json_mapping,
        file_inputs,
        syslog_inputs,
        journald_inputs,
        output,
        dedup,
        redaction,
        enrich,
        asset,
        maintenance,
    } = raw;
    let mut cfg = Config {
        hostname: agent.hostname,
        ..Config::default()
    };
    if let Some(m) = agent.max_line_bytes {
        // At most 1 MiB: an event carries its line a few times over (raw data, message,
        // escaped), and the aggregator takes events of up to 32 MiB.
        if !(256..=MAX_LINE_BYTES).contains(m.get_ref()) {
            problems.push(problem(
                Some(m.span()),
                "agent.max_line_bytes",
                format!("must be between 256 and {MAX_LINE_BYTES}"),
            ));
        } else {
            cfg.max_line_bytes = Some(*m.get_ref() as usize);
        }
    }
    if let Some(tz) = agent.timezone {
        match jiff::tz::TimeZone::get(tz.get_ref()) {
            Ok(z) => cfg.timezone = Some(z),
            Err(e) => problems.push(problem(Some(tz.span()), "agent.timezone", e.to_string())),
        }
    }
    if let Some(d) = agent.state_dir {
        cfg.state_dir = Some(PathBuf::from(d.into_inner()));
    }
    // Intervals in ms: at least 1, at most a minute.
    let mut interval = |v: Option<toml::Spanned<u64>>, field: &str| {
        let v = v?;
        if (1..=60_000).contains(v.get_ref()) {
            Some(*v.get_ref())
        } else {
            problems.push(problem(
                Some(v.span()),
                field,
                "must be between 1 and 60000".into(),
            ));
            None
        }
    };
    cfg.poll_interval_ms = interval(agent.poll_interval_ms, "agent.poll_interval_ms");
    cfg.audit_timeout_ms =
        interval(agent.audit_timeout_ms, "agent.audit_timeout_ms").map(|ms| ms as i64);
    if let Some(b) = agent.read_backend {
        if matches!(b.get_ref().as_str(), "auto" | "plain" | "io_uring") {
            cfg.read_backend = Some(b.into_inner());
        } else {
            problems.push(problem(
                Some(b.span()),
                "agent.read_backend",
                format!(
                    "{:?}: expected \"auto\", \"plain\" or \"io_uring\"",
                    b.get_ref()
                ),
            ));
        }
    }
    cfg.inputs = inputs::validate(
        file_inputs,
        syslog_inputs,
        journald_inputs,
        &problem,
        &mut problems,
    );
    cfg.output = output.and_then(|o| inputs::validate_output(o, &problem, &mut problems));
    cfg.dedup = edge::validate(dedup, &problem, &mut problems);
    cfg.redaction = edge::validate_redaction(redaction, &problem, &mut problems);
    cfg.enrich = edge::validate_enrich(enrich, &problem, &mut problems);
    cfg.maintenance =
        edge::validate_maintenance(maintenance, cfg.timezone.clone(), &problem, &mut problems);
    let asset = asset.unwrap_or_default();
    cfg.asset = crate::core::enrich::host::AssetTags {
        owner: asset.owner,
        organization: asset.organization,
        business_unit: asset.business_unit,
        criticality: asset.criticality,
        environment: asset.environment,
        labels: asset.labels,
    };
    for (i, m) in json_mapping {
        let at = format!("json_mapping[{i}]");
        let class = match m.class.get_ref() {
            toml::Value::String(s) => class_named(s),
            toml::Value::Integer(n) => u32::try_from(*n).ok().and_then(Class::from_uid),
            _ => None,
        };
        let Some(class) = class else {
            problems.push(problem(
                Some(m.class.span()),
                &format!("{at}.class"),
                format!("unknown class {}", m.class.get_ref()),
            ));
            continue;
        };
        let activity_id = m.activity_id.as_ref().map_or(0, |a| *a.get_ref());
        if class.activity_name(activity_id).is_none() {
            let span = m.activity_id.as_ref().map(|a| a.span());
            problems.push(problem(
                span,
                &format!("{at}.activity_id"),
                format!("class {} has no activity {activity_id}", class.name()),
            ));
        }
        let status = m.status.as_ref().and_then(|s| {
            let v = match s.get_ref().to_ascii_lowercase().as_str() {
                "success" => Some(Status::Success),
                "failure" => Some(Status::Failure),
                "unknown" => Some(Status::Unknown),
                "other" => Some(Status::Other),
                _ => None,
            };
            if v.is_none() {
                problems.push(problem(
                    Some(s.span()),
                    &format!("{at}.status"),
                    format!("unknown status {:?}", s.get_ref()),
                ));
            }
            v
        });
        let severity = m.severity.as_ref().and_then(|s| {
            let v = Severity::ALL
                .iter()
                .copied()
                .find(|x| x.caption().eq_ignore_ascii_case(s.get_ref()));
            if v.is_none() {
                problems.push(problem(
                    Some(s.span()),
                    &format!("{at}.severity"),
                    format!("unknown severity {:?}", s.get_ref()),
                ));
            }
            v
        });
        let mut fields = Vec::new();
        for (ocsf, src) in m.fields.map(Spanned::into_inner).unwrap_or_default() {
            // Each problem at its own key's line, not the table's.
            let fields_span = ocsf.span();
            let ocsf = ocsf.into_inner();
            let p = path(&ocsf);
            let Some(src) = src.as_str() else {
                problems.push(problem(
                    Some(fields_span.clone()),
                    &format!("{at}.fields.{ocsf}"),
                    "the JSON path must be a string".into(),
                ));
                continue;
            };
            let time = matches!(ocsf.as_str(), "time" | "start_time" | "end_time");
            if crate::core::parse::json::agent_owned(&p) {
                problems.push(problem(
                    Some(fields_span.clone()),
                    &format!("{at}.fields.{ocsf}"),
                    "the agent sets this attribute (the event's identity, tenant, source, product or raw line); a log line cannot".into(),
                ));
                continue;
            }
            if !time && !path_is_mappable(&p) {
                problems.push(problem(
                    Some(fields_span.clone()),
                    &format!("{at}.fields.{ocsf}"),
                    "not an OCSF attribute path Vedette's model holds".into(),
                ));
                continue;
            }
            fields.push((p, path(src)));
        }
        // Without a match a mapping applies to every JSON line of every source: a line
        // `{"user":"root"}` from any application became a logon by root.
        if m.matches.is_empty() {
            problems.push(problem(
                Some(m.class.span()),
                &format!("{at}.match"),
                "a mapping needs a match (JSON path = value): without one it applies to every JSON line of every source".into(),
            ));
        }
        for (k, v) in &m.matches {
            if matches!(v, toml::Value::Datetime(_)) {
                problems.push(problem(
                    Some(m.class.span()),
                    &format!("{at}.match.{k}"),
                    "a TOML date-time never equals a JSON value: write it as a string".into(),
                ));
            }
        }
        let matches = m
            .matches
            .into_iter()
            .map(|(k, v)| {
                (
                    path(&k),
                    serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
                )
            })
            .collect();
        cfg.json.0.push(JsonMapping {
            name: m.name,
            matches,
            class,
            activity_id,
            status,
            severity,
            fields,
        });
    }
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mapping's fields as a table of their own: each problem names its own key's line,
    /// not the table header's (a mapping of twenty fields said line 9 for each).
    #[test]
    fn field_problems_name_their_own_lines() {
        let text = "[[json_mapping]]\nname = \"x\"\nclass = \"authentication\"\nactivity_id = 1\nmatch = { event = \"login\" }\n[json_mapping.fields]\n\"time\" = \"ts\"\n\"user.nam\" = \"user\"\n\"metadata.uid\" = \"id\"\n";
        let err = parse(Path::new("agent.toml"), text).unwrap_err();
        let mut got: Vec<(usize, &str)> =
            err.0.iter().map(|p| (p.line, p.field.as_str())).collect();
        got.sort();
        assert_eq!(
            got,
            [
                (8, "json_mapping[0].fields.user.nam"),
                (9, "json_mapping[0].fields.metadata.uid"),
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line_and_field() {
        let text = r#"[agent]
timezone = "Mars/Olympus"
max_line_bytes = 10
audit_timeout_ms = 0

[[json_mapping]]
name = "x"
class = "authentication"
activity_id = 42
match = { event = "login" }
fields = { "user.nam" = "user" }
"#;
        let err = parse(Path::new("agent.toml"), text).unwrap_err();
        let got: Vec<(usize, &str)> = err.0.iter().map(|p| (p.line, p.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (3, "agent.max_line_bytes"),
                (2, "agent.timezone"),
                (4, "agent.audit_timeout_ms"),
                (9, "json_mapping[0].activity_id"),
                (11, "json_mapping[0].fields.user.nam"),
            ]
        );
        assert!(
            err.to_string()
                .starts_with("5 problem(s) in the config:\nagent.toml:3:")
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let err = parse(Path::new("a.toml"), "[agent]\nhostnme = \"x\"\n").unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].line, 2);
        assert!(err.0[0].message.contains("hostnme"), "{}", err.0[0].message);
    }

    /// Peers report the first mistake, the user fixes it, restarts, meets the next: one run
    /// must list them all, typos in field names included.
    #[test]
    fn mistakes_in_several_sections_come_back_together() {
        let text = r#"[agent]
poll_interval_ms = 0

[[input.syslog]]
protocol = "udp"
listen = "0.0.0.0:99999"
allow = ["10.0.0.0/8"]

[[input.file]]
pathz = ["/var/log/auth.log"]

[[input.syslog]]
protocol = "tls"
listen = "[::]:6514"
allow = ["10.0.0.0/33"]
tls_cert = "/nonexistent/cert.pem"
tls_key = "/nonexistent/key.pem"

[output]
type = "kafka"
"#;
        let err = parse(Path::new("/etc/vedette/agent.toml"), text).unwrap_err();
        let got: Vec<(usize, &str)> = err.0.iter().map(|p| (p.line, p.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (10, "input.file[0]"),
                (2, "agent.poll_interval_ms"),
                (6, "input.syslog[0].listen"),
                (15, "input.syslog[1].allow"),
                (16, "input.syslog[1].tls_cert"),
                (17, "input.syslog[1].tls_key"),
                (20, "output.type"),
            ],
            "{err}"
        );
        assert!(err.0[0].message.contains("pathz"), "{}", err.0[0].message);
        assert!(
            err.to_string()
                .contains("/etc/vedette/agent.toml:20:8: output.type"),
            "{err}"
        );
    }

    /// A pattern the tail could not use (an unclosed `[`) was only found when the input
    /// started; now the config names it with its line, in `paths` and in `exclude`.
    #[test]
    fn unusable_tail_patterns_are_config_problems() {
        let text = "[[input.file]]\npaths = [\"/var/log/[a*.log\"]\nexclude = [\"*.gz\", \"x[\"]\n";
        let err = parse(Path::new("a.toml"), text).unwrap_err();
        let got: Vec<(usize, &str)> = err.0.iter().map(|p| (p.line, p.field.as_str())).collect();
        assert_eq!(
            got,
            vec![(2, "input.file[0].paths"), (3, "input.file[0].exclude")],
            "{err}"
        );
        assert!(err.0[1].message.contains("\"x[\""), "{err}");
        let ok = parse(
            Path::new("a.toml"),
            "[[input.file]]\npaths = [\"/var/log/auth.log*\"]\nexclude = [\"*.gz\"]\n",
        )
        .unwrap();
        assert_eq!(ok.inputs.files[0].exclude, ["*.gz"]);
    }

    #[test]
    fn connection_limits_are_checked_against_the_protocol() {
        let text = "[[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:1\"\nallow = [\"127.0.0.1\"]\nmax_connections = 0\nmax_connections_per_sender = 0\nhandshake_timeout_ms = 5\n[[input.syslog]]\nprotocol = \"udp\"\nlisten = \"127.0.0.1:1\"\nallow = [\"127.0.0.1\"]\nmax_connections = 10\nkeepalive_s = 0\nevict_idle_ms = 5\n";
        let err = parse(Path::new("a.toml"), text).unwrap_err();
        let got: Vec<(usize, &str, &str)> = err
            .0
            .iter()
            .map(|p| (p.line, p.field.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    5,
                    "input.syslog[0].max_connections",
                    "must be between 1 and 65536"
                ),
                (
                    6,
                    "input.syslog[0].max_connections_per_sender",
                    "must be between 1 and 65536"
                ),
                (
                    7,
                    "input.syslog[0].handshake_timeout_ms",
                    "only for protocol = \"tls\""
                ),
                (
                    12,
                    "input.syslog[1].max_connections",
                    "only for protocol = \"tcp\" or \"tls\""
                ),
                (
                    13,
                    "input.syslog[1].keepalive_s",
                    "only for protocol = \"tcp\" or \"tls\""
                ),
                (
                    14,
                    "input.syslog[1].evict_idle_ms",
                    "only for protocol = \"tcp\" or \"tls\""
                ),
            ],
            "{err}"
        );
        let ok = parse(
            Path::new("a.toml"),
            "[[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:1\"\nallow = [\"127.0.0.1\"]\n",
        )
        .unwrap();
        let s = &ok.inputs.syslog[0];
        assert_eq!(
            (
                s.max_connections,
                s.max_connections_per_sender,
                s.handshake_timeout_ms,
                s.keepalive_s,
                s.evict_idle_ms
            ),
            (1024, 256, 10_000, 60, 60_000)
        );
        // The sender's share follows a configured total, and is never zero.
        let share = |extra: &str| {
            let text = format!(
                "[[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:1\"\nallow = [\"127.0.0.1\"]\n{extra}"
            );
            parse(Path::new("a.toml"), &text).unwrap().inputs.syslog[0].max_connections_per_sender
        };
        assert_eq!(share("max_connections = 400\n"), 100);
        assert_eq!(share("max_connections = 40\n"), 16);
        assert_eq!(share("max_connections = 3\n"), 3);
        assert_eq!(
            share("max_connections = 3\nmax_connections_per_sender = 1\n"),
            1
        );
        assert_eq!(
            share("max_connections = 3\nmax_connections_per_sender = 3\n"),
            3
        );
    }

    #[test]
    fn two_file_inputs_may_not_share_their_paths() {
        let text = "[[input.file]]\npaths = [\"/var/log/c/*.log\"]\nexclude = [\"/var/log/c/b.log\"]\n[[input.file]]\npaths = [\"/var/log/c/*.log\"]\nexclude = [\"/var/log/c/a.log\"]\n";
        let err = parse(Path::new("a.toml"), text).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].field, "input.file[1].paths");
        assert_eq!(err.0[0].line, 5);
    }

    #[test]
    fn the_symlink_rule_is_one_of_three() {
        let err = parse(
            Path::new("a.toml"),
            "[[input.file]]\npaths = [\"/var/log/*.log\"]\nsymlinks = \"follow\"\n",
        )
        .unwrap_err();
        assert_eq!(err.0[0].line, 3, "{err}");
        assert_eq!(err.0[0].field, "input.file[0].symlinks", "{err}");
        assert!(
            err.0[0].message.contains("\"owner\", \"any\" or \"never\""),
            "{err}"
        );
        let ok = parse(
            Path::new("a.toml"),
            "[[input.file]]\npaths = [\"/a\"]\n[[input.file]]\npaths = [\"/b\"]\nsymlinks = \"any\"\n",
        )
        .unwrap();
        use crate::core::tail::links::SymlinkRule;
        assert_eq!(ok.inputs.files[0].symlinks, SymlinkRule::Owner);
        assert_eq!(ok.inputs.files[1].symlinks, SymlinkRule::Any);
    }

    #[test]
    fn client_certificate_rules_are_checked() {
        let exists = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let tls = format!(
            "protocol = \"tls\"\nlisten = \"127.0.0.1:1\"\nallow = [\"127.0.0.1\"]\ntls_cert = \"{exists}\"\ntls_key = \"{exists}\"\n"
        );
        let text = format!(
            "[[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:1\"\nallow = [\"127.0.0.1\"]\ntls_client_ca = \"{exists}\"\n\
             [[input.syslog]]\n{tls}tls_client_names = [\"relay.example.com\"]\n\
             [[input.syslog]]\n{tls}tls_client_ca = \"{exists}\"\ntls_client_names = [\"*.ok.example.com\", \"bad name\"]\n\
             [[input.syslog]]\n{tls}tls_client_ca = \"/nonexistent/ca.pem\"\ntls_client_names = []\n"
        );
        let err = parse(Path::new("a.toml"), &text).unwrap_err();
        let got: Vec<(usize, &str)> = err.0.iter().map(|p| (p.line, p.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (5, "input.syslog[0].tls_client_ca"),
                (12, "input.syslog[1].tls_client_names"),
                (20, "input.syslog[2].tls_client_names"),
                (28, "input.syslog[3].tls_client_names"),
                (27, "input.syslog[3].tls_client_ca"),
            ],
            "{err}"
        );
        let says = |i: usize, what: &str| {
            assert!(
                err.0[i].message.contains(what),
                "{}: {err}",
                err.0[i].message
            );
        };
        says(0, "only for protocol = \"tls\"");
        says(1, "needs tls_client_ca");
        says(2, "\"bad name\": is not a DNS name");
        says(3, "is empty");
        says(4, "/nonexistent/ca.pem");
        let ok = parse(
            Path::new("a.toml"),
            &format!(
                "[[input.syslog]]\n{tls}tls_client_ca = \"{exists}\"\ntls_client_names = [\"*.hosts.example.com\"]\n"
            ),
        )
        .unwrap();
        let SyslogProtocol::Tls {
            clients: Some(clients),
            ..
        } = &ok.inputs.syslog[0].protocol
        else {
            panic!("{:?}", ok.inputs.syslog[0].protocol)
        };
        assert_eq!(clients.ca, Path::new(exists));
        assert_eq!(
            clients.names.permit(&["a.hosts.example.com"]),
            Some("a.hosts.example.com")
        );
    }

    #[test]
    fn inputs_and_output_are_read() {
        let cfg = parse(
            Path::new("a.toml"),
            "[agent]\nstate_dir = \"/tmp/s\"\n[[input.file]]\npaths = [\"/var/log/*.log\"]\nread_from = \"start\"\n[[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:5514\"\nallow = [\"127.0.0.1\", \"::1/128\"]\n[output]\ntype = \"file\"\npath = \"/tmp/out.ndjson\"\n",
        )
        .unwrap();
        assert_eq!(cfg.inputs.files[0].read_from, ReadFrom::Start);
        assert_eq!(cfg.inputs.syslog[0].protocol, SyslogProtocol::Tcp);
        assert!(
            cfg.inputs.syslog[0]
                .allow
                .allows("127.0.0.1".parse().unwrap())
        );
        assert!(
            !cfg.inputs.syslog[0]
                .allow
                .allows("127.0.0.2".parse().unwrap())
        );
        assert_eq!(cfg.output, Some(Output::File("/tmp/out.ndjson".into())));
        assert_eq!(cfg.state_dir, Some(PathBuf::from("/tmp/s")));
    }

    #[test]
    fn lines_and_batches_are_bounded_by_what_the_aggregator_takes() {
        let ok = parse(
            Path::new("a.toml"),
            "[agent]\nmax_line_bytes = 1048576\n[output]\ntype = \"aggregator\"\nbatch_max_kb = 16384\n",
        )
        .unwrap();
        assert_eq!(ok.max_line_bytes, Some(1 << 20));
        let e = parse(
            Path::new("a.toml"),
            "[agent]\nmax_line_bytes = 1048577\n[output]\ntype = \"aggregator\"\nbatch_max_kb = 16385\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a.toml:2")
                && e.contains("agent.max_line_bytes: must be between 256 and 1048576"),
            "{e}"
        );
        assert!(
            e.contains("a.toml:5")
                && e.contains("output.batch_max_kb: must be between 1 and 16384"),
            "{e}"
        );
    }

    #[test]
    fn the_spool_holds_several_of_the_largest_batches() {
        // A batch larger than the spool stopped the agent under the block policy, at
        // every restart again.
        let cfg = |spool: u64, batch: u64| {
            parse(
                Path::new("a.toml"),
                &format!(
                    "[output]\ntype = \"aggregator\"\nspool_max_mb = {spool}\nbatch_max_kb = {batch}\n"
                ),
            )
        };
        assert!(cfg(5, 1024).is_ok());
        let e = cfg(4, 1024).unwrap_err().to_string();
        assert!(
            e.contains("a.toml:3")
                && e.contains(
                    "output.spool_max_mb: must hold at least five batches of batch_max_kb (1024 KiB): at least 5 MiB"
                ),
            "{e}"
        );
        assert!(cfg(1, 64).is_ok());
    }

    #[test]
    fn the_rejected_bound_is_read_checked_and_only_for_the_aggregator() {
        let ship = |extra: &str| {
            parse(
                Path::new("a.toml"),
                &format!("[output]\ntype = \"aggregator\"\n{extra}"),
            )
        };
        let Some(Output::Aggregator(o)) = ship("").unwrap().output else {
            panic!("not an aggregator output")
        };
        assert_eq!(o.rejected_max_bytes, 64 << 20);
        let Some(Output::Aggregator(o)) = ship("rejected_max_mb = 2\n").unwrap().output else {
            panic!("not an aggregator output")
        };
        assert_eq!(o.rejected_max_bytes, 2 << 20);
        let e = ship("rejected_max_mb = 0\n").unwrap_err().to_string();
        assert!(
            e.contains("a.toml:3") && e.contains("output.rejected_max_mb: must be between"),
            "{e}"
        );
        let e = parse(
            Path::new("a.toml"),
            "[output]\ntype = \"stdout\"\nrejected_max_mb = 2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("output.rejected_max_mb: only for type = \"aggregator\""),
            "{e}"
        );
        // The shipper's timings too: set on a stdout output they were ignored silently.
        let e = parse(
            Path::new("a.toml"),
            "[output]\ntype = \"stdout\"\nwindow = 4\nanswer_timeout_ms = 500\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a.toml:3") && e.contains("output.window: only for type = \"aggregator\""),
            "{e}"
        );
        assert!(
            e.contains("a.toml:4")
                && e.contains("output.answer_timeout_ms: only for type = \"aggregator\""),
            "{e}"
        );
        let Some(Output::Aggregator(o)) = ship("answer_timeout_ms = 500\n").unwrap().output else {
            panic!("not an aggregator output")
        };
        assert_eq!(o.answer_timeout_ms, 500);
        let e = ship("answer_timeout_ms = 5\n").unwrap_err().to_string();
        assert!(
            e.contains("output.answer_timeout_ms: must be between"),
            "{e}"
        );
    }

    #[test]
    fn dedup_is_on_by_default_and_configurable() {
        let on = parse(Path::new("a.toml"), "").unwrap();
        assert_eq!(on.dedup.map(|d| d.window_ms), Some(10_000));
        let off = parse(Path::new("a.toml"), "[dedup]\nenabled = false\n").unwrap();
        assert!(off.dedup.is_none());
        let custom = parse(
            Path::new("a.toml"),
            "[dedup]\nwindow_seconds = 60\n[dedup.fields]\nauthentication = [\"src_endpoint.ip\"]\n",
        )
        .unwrap()
        .dedup
        .unwrap();
        assert_eq!(custom.window_ms, 60_000);
        assert_eq!(custom.fields[&Class::Authentication].len(), 1);
        let err = parse(
            Path::new("a.toml"),
            "[dedup]\nwindow_seconds = 0\n[dedup.fields]\nauthentication = [\"user.nmae\"]\nspaceship = []\n",
        )
        .unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "dedup.window_seconds",
                "dedup.fields.authentication",
                "dedup.fields.spaceship"
            ]
        );
        assert!(err.0.iter().all(|p| p.line > 0), "{err}");
    }

    #[test]
    fn the_sample_configs_are_valid() {
        for (name, text) in [
            (
                "run-demo.toml",
                include_str!("../../../samples/run-demo.toml"),
            ),
            (
                "vedette-agent.toml",
                include_str!("../../../samples/vedette-agent.toml"),
            ),
        ] {
            if let Err(e) = parse(Path::new(name), text) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn a_listener_without_an_allowlist_is_refused() {
        let err = parse(
            Path::new("a.toml"),
            "[[input.syslog]]\nprotocol = \"udp\"\nlisten = \"0.0.0.0:514\"\n",
        )
        .unwrap_err();
        assert_eq!(err.0[0].field, "input.syslog[0].allow");
    }

    #[test]
    fn a_valid_mapping_is_kept() {
        let cfg = parse(
            Path::new("a.toml"),
            "[[json_mapping]]\nname = \"m\"\nclass = 3002\nactivity_id = 1\nstatus = \"failure\"\nmatch = { event = \"login_failed\" }\nfields = { \"user.name\" = \"user\", \"time\" = \"ts\" }\n",
        )
        .unwrap();
        assert_eq!(cfg.json.0.len(), 1);
        assert_eq!(cfg.json.0[0].class, Class::Authentication);
        assert_eq!(cfg.json.0[0].fields.len(), 2);
    }
}
