//! `aggregator.toml`.
//!
//! ```toml
//! [aggregator]
//! state_dir = "/var/lib/vedette-aggregator"   # CA, keys, events.db
//! listen = "0.0.0.0:4433"                     # QUIC (UDP)
//! cert_lifetime = "30d"                       # agent certificates (s, m, h, d);
//!                                             # agents renew in the last third
//! stall_timeout = "30s"                       # a batch or an enrollment that sends
//!                                             # nothing this long is dropped
//!
//! [store]
//! synchronous = "full"                        # or "normal": faster, may lose the last
//!                                             # commits on power loss (never on a crash)
//! retention = "90d"                           # events older than this (event time) are
//!                                             # deleted, at start and hourly; default:
//!                                             # kept for ever
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[aggregator]`.
    pub aggregator: Section,
    /// `[store]`.
    #[serde(default)]
    pub store: StoreSection,
}

/// `[aggregator]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Where the CA, keys and database live.
    pub state_dir: PathBuf,
    /// The QUIC listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Agent certificate lifetime (`90s`, `12h`, `30d`); agents renew when a third of it
    /// is left.
    #[serde(default = "default_cert_lifetime")]
    pub cert_lifetime: Spanned<String>,
    /// How long a batch stream or an enrollment may send nothing before it is dropped
    /// (`30s`); the memory it held is freed for the other agents.
    #[serde(default = "default_stall_timeout")]
    pub stall_timeout: Spanned<String>,
}

/// `[store]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// SQLite's `synchronous`: `full` (default) or `normal`.
    #[serde(default)]
    pub synchronous: Synchronous,
    /// How long events are kept (`90d`), by event time; none: for ever.
    #[serde(default)]
    pub retention: Option<Spanned<String>>,
}

/// SQLite durability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit is on disk before it is acknowledged.
    #[default]
    Full,
    /// WAL commits survive a crash of the process, not always a power loss.
    Normal,
}

fn default_listen() -> SocketAddr {
    "0.0.0.0:4433".parse().expect("a valid address")
}

fn default_cert_lifetime() -> Spanned<String> {
    Spanned::new(0..0, "30d".to_owned())
}

fn default_stall_timeout() -> Spanned<String> {
    Spanned::new(0..0, "30s".to_owned())
}

/// A config error naming the file, line, column and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid: every problem found, each on its own line as `file:line:col: what`.
    #[error("{}", .problems.iter().map(|p| format!("{path}:{}:{}: {}", p.line, p.col, p.msg)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, in the file's order.
        problems: Vec<Problem>,
    },
}

/// One thing wrong in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub col: usize,
    /// What is wrong, naming the field.
    pub msg: String,
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text` (read from `path`, named in errors). Every value that is out of its
    /// range is reported at once, at the line of its own value.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let at = |span: std::ops::Range<usize>, msg: String| {
            let (line, col) = line_col(text, span.start);
            Problem { line, col, msg }
        };
        let invalid = |problems: Vec<Problem>| ConfigError::Invalid {
            path: path.display().to_string(),
            problems,
        };
        let cfg: Self = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            invalid(vec![at(span, e.message().to_owned())])
        })?;
        let mut problems = Vec::new();
        let life = &cfg.aggregator.cert_lifetime;
        if !parse_duration_ms(life.get_ref())
            .is_some_and(|ms| (60_000..=3650 * 86_400_000).contains(&ms))
        {
            problems.push(at(
                life.span(),
                format!(
                    "aggregator.cert_lifetime: {:?}: want a duration like 30d, between 1m and 3650d",
                    life.get_ref()
                ),
            ));
        }
        let stall = &cfg.aggregator.stall_timeout;
        if !parse_duration_ms(stall.get_ref()).is_some_and(|ms| (1_000..=3_600_000).contains(&ms)) {
            problems.push(at(
                stall.span(),
                format!(
                    "aggregator.stall_timeout: {:?}: want a duration like 30s, between 1s and 1h",
                    stall.get_ref()
                ),
            ));
        }
        if let Some(r) = &cfg.store.retention
            && parse_duration_ms(r.get_ref()).is_none_or(|ms| ms < 3_600_000)
        {
            problems.push(at(
                r.span(),
                format!(
                    "store.retention: {:?}: want a duration like 90d, of an hour at least",
                    r.get_ref()
                ),
            ));
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| (p.line, p.col));
            return Err(invalid(problems));
        }
        Ok(cfg)
    }

    /// How long events are kept, ms (checked at load); `None`: for ever.
    pub fn retention_ms(&self) -> Option<i64> {
        self.store
            .retention
            .as_ref()
            .and_then(|r| parse_duration_ms(r.get_ref()))
    }

    /// The stall timeout, ms (checked at load).
    pub fn stall_ms(&self) -> u64 {
        parse_duration_ms(self.aggregator.stall_timeout.get_ref()).map_or(30_000, |ms| ms as u64)
    }

    /// Agent certificate lifetime, ms (checked at load).
    pub fn cert_lifetime_ms(&self) -> i64 {
        parse_duration_ms(self.aggregator.cert_lifetime.get_ref()).unwrap_or(30 * 86_400_000)
    }
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// Parses a duration like `90s`, `30m`, `1h`, `7d` into ms.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let mul = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mul).filter(|&ms| ms > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_and_field() {
        let p = Path::new("/etc/vedette/aggregator.toml");
        let e = Config::parse("[aggregator]\nstate_dir = \"/x\"\nlisten = \"nope\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/etc/vedette/aggregator.toml:3:10:"), "{e}");
        let e = Config::parse("[aggregator]\nstate_dir = \"/x\"\ncolour = 1\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3:1:") && e.contains("colour"), "{e}");
        let e = Config::parse(
            "[aggregator]\nstate_dir = \"/x\"\ncert_lifetime = \"1s\"\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":3:17:") && e.contains("cert_lifetime"), "{e}");
        let c = Config::parse("[aggregator]\nstate_dir = \"/x\"\n", p).unwrap();
        assert_eq!(c.cert_lifetime_ms(), 30 * 86_400_000);
        assert_eq!(c.store.synchronous, Synchronous::Full);
        assert_eq!(c.stall_ms(), 30_000);
        assert_eq!(c.retention_ms(), None);
        let c = Config::parse(
            "[aggregator]\nstate_dir = \"/x\"\n[store]\nretention = \"90d\"\n",
            p,
        )
        .unwrap();
        assert_eq!(c.retention_ms(), Some(90 * 86_400_000));
        let e = Config::parse(
            "[aggregator]\nstate_dir = \"/x\"\n[store]\nretention = \"5m\"\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":4:13:") && e.contains("store.retention"), "{e}");
        let e = Config::parse(
            "[aggregator]\nstate_dir = \"/x\"\n\nstall_timeout = \"0s\"\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":4:17:") && e.contains("stall_timeout"), "{e}");
    }

    /// Each value is located at its own line, not at the first text naming its key (a
    /// comment above it), and every bad value is reported at once.
    #[test]
    fn every_bad_value_is_reported_at_its_own_line() {
        let p = Path::new("agg.toml");
        let text = "# retention and stall_timeout and cert_lifetime are explained below\n\
                    [aggregator]\n\
                    state_dir = \"/x\"\n\
                    stall_timeout = \"2h\"\n\
                    cert_lifetime = \"forever\"\n\
                    [store]\n\
                    retention = \"1s\"\n";
        let e = Config::parse(text, p).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &e else {
            panic!("{e}")
        };
        let at: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| (p.line, p.msg.split(':').next().unwrap()))
            .collect();
        assert_eq!(
            at,
            [
                (4, "aggregator.stall_timeout"),
                (5, "aggregator.cert_lifetime"),
                (7, "store.retention")
            ]
        );
        let shown = e.to_string();
        assert_eq!(shown.lines().count(), 3, "{shown}");
        assert!(shown.lines().all(|l| l.starts_with("agg.toml:")), "{shown}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("90s"), Some(90_000));
        assert_eq!(parse_duration_ms("7d"), Some(604_800_000));
        for bad in ["", "h", "1", "1y", "-1h", "0s"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }
}
