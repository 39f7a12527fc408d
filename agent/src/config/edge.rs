//! `[dedup]`, `[redaction]` and `[enrich]`: validated into the edge stage's configs.

use std::collections::HashMap;

use super::ConfigProblem;
use super::Enrich;
use super::raw::{Problem, RawDedup, RawEnrich, RawMaintenance, RawRedaction};
use crate::core::dedup::{DedupConfig, fingerprint};
use crate::core::enrich::maintenance::{MaintenanceWindow, parse_day, parse_hhmm};
use crate::core::enrich::redact::RedactConfig;

/// `None` when `enabled = false`; the defaults when the section is absent.
pub(super) fn validate(
    raw: Option<RawDedup>,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> Option<DedupConfig> {
    let Some(raw) = raw else {
        return Some(DedupConfig::default());
    };
    let mut cfg = DedupConfig::default();
    if let Some(w) = raw.window_seconds {
        match *w.get_ref() {
            1..=3600 => cfg.window_ms = *w.get_ref() as i64 * 1000,
            _ => out.push(p(
                Some(w.span()),
                "dedup.window_seconds",
                "must be between 1 and 3600".into(),
            )),
        }
    }
    if let Some(m) = raw.max_tracked {
        match *m.get_ref() {
            1..=10_000_000 => cfg.max_tracked = *m.get_ref() as usize,
            _ => out.push(p(
                Some(m.span()),
                "dedup.max_tracked",
                "must be between 1 and 10000000".into(),
            )),
        }
    }
    let mut fields = HashMap::new();
    let span = raw.fields.as_ref().map(toml::Spanned::span);
    for (class, paths) in raw
        .fields
        .map(toml::Spanned::into_inner)
        .unwrap_or_default()
    {
        let at = format!("dedup.fields.{class}");
        let Some(c) = super::class_named(&class) else {
            out.push(p(span.clone(), &at, format!("unknown class {class:?}")));
            continue;
        };
        let Some(list) = paths.as_array() else {
            out.push(p(span.clone(), &at, "must be a list of OCSF paths".into()));
            continue;
        };
        let mut fs = Vec::new();
        for path in list {
            match path.as_str().and_then(fingerprint::field) {
                Some(f) => fs.push(f),
                None => out.push(p(
                    span.clone(),
                    &at,
                    format!(
                        "{path} is not a path dedup can group by; one of: {}",
                        fingerprint::FIELDS
                            .iter()
                            .map(|(p, _)| *p)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
        fields.insert(c, fs);
    }
    cfg.fields = fields;
    raw.enabled.unwrap_or(true).then_some(cfg)
}

/// `None` when `enabled = false`; the built-in rules when the section is absent.
pub(super) fn validate_redaction(
    raw: Option<RawRedaction>,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> Option<RedactConfig> {
    let Some(raw) = raw else {
        return Some(RedactConfig::default());
    };
    let mut cfg = RedactConfig {
        secret_user_names: raw.user_names.unwrap_or(true),
        token_params: raw.token_params.unwrap_or(true),
        patterns: Vec::new(),
    };
    if let Some(list) = raw.patterns {
        for pat in list.get_ref() {
            match regex::Regex::new(pat) {
                Ok(re) => cfg.patterns.push(re),
                Err(e) => out.push(p(
                    Some(list.span()),
                    "redaction.patterns",
                    format!("{pat:?} is not a valid regular expression: {e}"),
                )),
            }
        }
    }
    raw.enabled.unwrap_or(true).then_some(cfg)
}

/// The defaults when the section is absent.
pub(super) fn validate_enrich(
    raw: Option<RawEnrich>,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> Enrich {
    let mut e = Enrich::default();
    let Some(raw) = raw else { return e };
    if let Some(root) = raw.root {
        e.root = root.into();
    }
    if let Some(s) = raw.accounts_check_seconds {
        match *s.get_ref() {
            1..=60 => e.accounts_check_ms = Some(*s.get_ref() as i64 * 1000),
            _ => out.push(p(
                Some(s.span()),
                "enrich.accounts_check_seconds",
                "must be between 1 and 60 (a change must be seen within a minute)".into(),
            )),
        }
    }
    if raw.accounts == Some(false) {
        e.accounts_check_ms = None;
    }
    if let Some(s) = raw.host_check_seconds {
        match *s.get_ref() {
            1..=60 => e.host_check_ms = Some(*s.get_ref() as i64 * 1000),
            _ => out.push(p(
                Some(s.span()),
                "enrich.host_check_seconds",
                "must be between 1 and 60 (an address change must be seen within a minute)".into(),
            )),
        }
    }
    if raw.host == Some(false) {
        e.host_check_ms = None;
    }
    if let Some(c) = raw.ip_command {
        e.ip_command = c;
    }
    if raw.processes == Some(false) {
        e.processes = false;
    }
    if let Some(d) = raw.baseline_days {
        e.baseline_days = (*d.get_ref() > 0).then_some(*d.get_ref());
    }
    if let Some(m) = raw.baseline_max {
        match *m.get_ref() {
            1..=10_000_000 => e.baseline_max = *m.get_ref() as usize,
            _ => out.push(p(
                Some(m.span()),
                "enrich.baseline_max",
                "must be between 1 and 10000000".into(),
            )),
        }
    }
    e
}

/// `[[maintenance]]` windows; a window with a problem is left out (and the problem said).
pub(super) fn validate_maintenance(
    raw: Vec<(usize, RawMaintenance)>,
    agent_tz: Option<jiff::tz::TimeZone>,
    p: Problem<'_>,
    out: &mut Vec<ConfigProblem>,
) -> Vec<MaintenanceWindow> {
    let mut windows = Vec::new();
    for (i, m) in raw {
        let at = format!("maintenance[{i}]");
        let before = out.len();
        let mut days = [false; 7];
        for d in m.days.get_ref() {
            match parse_day(d) {
                Some(i) => days[i] = true,
                None => out.push(p(
                    Some(m.days.span()),
                    &format!("{at}.days"),
                    format!("{d:?} is not a weekday (mon … sun)"),
                )),
            }
        }
        let time = |v: &toml::Spanned<String>, field: &str, out: &mut Vec<ConfigProblem>| {
            parse_hhmm(v.get_ref()).unwrap_or_else(|| {
                out.push(p(
                    Some(v.span()),
                    &format!("{at}.{field}"),
                    format!("{:?} is not a time (HH:MM)", v.get_ref()),
                ));
                0
            })
        };
        let from_min = time(&m.from, "from", out);
        let to_min = time(&m.to, "to", out);
        let tz = match &m.timezone {
            Some(z) => jiff::tz::TimeZone::get(z.get_ref()).unwrap_or_else(|e| {
                out.push(p(Some(z.span()), &format!("{at}.timezone"), e.to_string()));
                jiff::tz::TimeZone::UTC
            }),
            None => agent_tz.clone().unwrap_or_else(jiff::tz::TimeZone::system),
        };
        if out.len() == before {
            windows.push(MaintenanceWindow {
                name: m.name,
                days,
                from_min,
                to_min,
                tz,
            });
        }
    }
    windows
}
