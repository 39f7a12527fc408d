//! `[[input.*]]` and `[output]`: validated into what `vedette-agent run` starts.

use std::net::SocketAddr;
use std::path::PathBuf;

use jiff::tz::TimeZone;
use toml::Spanned;

use super::ConfigProblem;
use super::raw::{Problem, RawFileInput, RawJournaldInput, RawOutput, RawSyslogInput};
use crate::core::allowlist::Allowlist;

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
    /// Where files present at the first start are read from.
    pub read_from: ReadFrom,
    /// Zone of the files' timestamps, when not the agent's.
    pub timezone: Option<TimeZone>,
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
    },
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
}

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

/// Validates the inputs; problems go to `out`.
pub(super) fn validate(
    files: Vec<(usize, RawFileInput)>,
    syslog: Vec<(usize, RawSyslogInput)>,
    journald: Vec<(usize, RawJournaldInput)>,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> Inputs {
    let mut inputs = Inputs::default();
    for (i, f) in files {
        let at = format!("input.file[{i}]");
        if f.paths.get_ref().is_empty() || f.paths.get_ref().iter().any(String::is_empty) {
            out.push(p(
                Some(f.paths.span()),
                &format!("{at}.paths"),
                "must list at least one non-empty path".into(),
            ));
        }
        let read_from = read_from(f.read_from, &format!("{at}.read_from"), p, out);
        let timezone = zone(f.timezone, &format!("{at}.timezone"), p, out);
        inputs.files.push(FileInput {
            patterns: f.paths.into_inner(),
            read_from,
            timezone,
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
                cert.zip(key)
                    .map(|(cert, key)| SyslogProtocol::Tls { cert, key })
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
            for (v, name) in [(&s.tls_cert, "tls_cert"), (&s.tls_key, "tls_key")] {
                if let Some(v) = v {
                    out.push(p(
                        Some(v.span()),
                        &format!("{at}.{name}"),
                        "only for protocol = \"tls\"".into(),
                    ));
                }
            }
        }
        let timezone = zone(s.timezone, &format!("{at}.timezone"), p, out);
        if let (Ok(listen), Some(protocol)) = (listen, protocol) {
            inputs.syslog.push(SyslogInput {
                protocol,
                listen,
                allow,
                timezone,
                receive_buffer_bytes: s.receive_buffer_bytes.map(|b| b.into_inner() as usize),
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
                format!("{other:?}: expected \"stdout\" or \"file\""),
            ));
            None
        }
    }
}
