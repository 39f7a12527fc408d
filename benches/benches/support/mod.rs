//! What the benches share: the generated workloads (made once by
//! `../shared/perf/gen_workload.py`, cached under the target dir), line and frame splitting,
//! and the source the normalizer is given.
//!
//! Each bench binary includes this module and uses part of it.
#![allow(dead_code)]

use std::env;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use vedette_agent::core::Source;
use vedette_agent::core::time::TimeContext;

/// Events per workload. `VEDETTE_BENCH_LINES` overrides it (the cache is keyed by it).
pub(crate) const LINES: usize = 200_000;

/// The generator's default seed; same seed and size give byte-identical workloads.
const SEED: u32 = 42;

/// Workload formats of `gen_workload.py`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `Mmm dd hh:mm:ss host tag[pid]: msg` (auth.log style, no PRI), LF framed.
    File,
    /// `<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`, LF framed.
    Rfc3164,
    /// `<PRI>1 ts host app procid msgid sd msg`, RFC 6587 octet-counted.
    Rfc5424Octet,
}

impl Format {
    /// Short name for bench ids.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Rfc3164 => "rfc3164",
            Self::Rfc5424Octet => "rfc5424-octet",
        }
    }

    /// Records are syslog off the wire (`Source::syslog`).
    pub(crate) fn syslog(self) -> bool {
        self != Self::File
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Self::File => &["--format", "file"],
            Self::Rfc3164 => &["--format", "rfc3164"],
            Self::Rfc5424Octet => &["--format", "rfc5424", "--framing", "octet"],
        }
    }
}

/// Records as one buffer plus the span of each (without its LF or octet count).
#[derive(Debug, Default)]
pub(crate) struct Lines {
    /// The bytes, framing included, as the agent would read them.
    pub(crate) buf: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl Lines {
    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Size of the buffer in bytes (framing included).
    pub(crate) fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Each record, without framing.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.spans.iter().map(|r| &self.buf[r.clone()])
    }

    /// Each record as text (the workloads are UTF-8).
    pub(crate) fn strs(&self) -> Vec<&str> {
        self.iter()
            .map(|l| std::str::from_utf8(l).expect("workload is UTF-8"))
            .collect()
    }

    /// Appends one record, LF framed.
    pub(crate) fn push(&mut self, line: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(line);
        self.spans.push(start..self.buf.len());
        self.buf.push(b'\n');
    }

    /// Splits an LF-framed buffer.
    fn from_lf(buf: Vec<u8>) -> Self {
        let mut spans = Vec::new();
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf) {
            spans.push(start..nl);
            start = nl + 1;
        }
        if start < buf.len() {
            spans.push(start..buf.len());
        }
        Self { buf, spans }
    }

    /// Splits an RFC 6587 octet-counted buffer.
    fn from_octet(buf: Vec<u8>) -> Self {
        let spans = OctetFrames::new(&buf).map(|(r, _)| r).collect();
        Self { buf, spans }
    }
}

/// RFC 6587 octet-counted frames of a buffer: (record span, record) pairs; stops at the
/// first malformed count.
pub(crate) struct OctetFrames<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> OctetFrames<'a> {
    /// Frames of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, at: 0 }
    }
}

impl<'a> Iterator for OctetFrames<'a> {
    type Item = (Range<usize>, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.buf[self.at..];
        let sp = memchr::memchr(b' ', rest.get(..12)?)?;
        let mut n = 0usize;
        for &d in &rest[..sp] {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + usize::from(d - b'0');
        }
        let start = self.at + sp + 1;
        let end = start.checked_add(n).filter(|&e| e <= self.buf.len())?;
        self.at = end;
        Some((start..end, &self.buf[start..end]))
    }
}

/// The workload in `format`, generated on first use and cached as
/// `<target>/vedette-bench-workloads/<format>-<lines>-<seed>.log`.
pub(crate) fn workload(format: Format) -> Lines {
    let lines = env::var("VEDETTE_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LINES);
    let dir = target_dir().join("vedette-bench-workloads");
    let path = dir.join(format!("{}-{lines}-{SEED}.log", format.name()));
    if !path.exists() {
        fs::create_dir_all(&dir).expect("creating the workload cache dir");
        generate(format, lines, &path);
    }
    let buf = fs::read(&path).expect("reading the cached workload");
    let w = match format {
        Format::Rfc5424Octet => Lines::from_octet(buf),
        Format::File | Format::Rfc3164 => Lines::from_lf(buf),
    };
    assert_eq!(w.len(), lines, "{}: record count", path.display());
    w
}

/// Runs the generator into a temporary name and renames it, so a killed run leaves no
/// half-written cache.
fn generate(format: Format, lines: usize, path: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/perf/gen_workload.py");
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let status = Command::new("python3")
        .arg(&script)
        .args(["--lines", &lines.to_string(), "--seed", &SEED.to_string()])
        .args(format.args())
        .arg("--out")
        .arg(&tmp)
        .status()
        .unwrap_or_else(|e| panic!("running python3 {}: {e}", script.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
    fs::rename(&tmp, path).expect("moving the generated workload into the cache");
}

/// `$CARGO_TARGET_DIR`, else the workspace's `target/`.
fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// The source records are normalized as: a fixed reference time the day after the
/// workload's first event (its year-less timestamps resolve to January 2025), in UTC.
pub(crate) fn source(syslog: bool) -> Source {
    let reference: Timestamp = "2025-01-16T00:00:00Z".parse().expect("valid timestamp");
    Source {
        uid_key: None,
        id: "bench".into(),
        time: TimeContext::new(reference, TimeZone::UTC),
        syslog,
        sender_name: None,
    }
}

/// Which parser a workload record is for, by program and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Subject {
    /// `sshd` (auth, sessions through pam_unix).
    Sshd,
    /// `sudo` (commands, pam auth failures).
    Sudo,
    /// auditd records (`audisp-syslog`, and the kernel's `audit: type=1400` AppArmor lines).
    Auditd,
    /// Kernel firewall LOG lines (iptables / UFW / nftables).
    Netfilter,
    /// nginx access lines.
    Access,
    /// JSON application events.
    Json,
}

impl Subject {
    /// All subjects, in bench order.
    pub(crate) const ALL: [Self; 6] = [
        Self::Sshd,
        Self::Sudo,
        Self::Auditd,
        Self::Netfilter,
        Self::Access,
        Self::Json,
    ];

    /// Short name for bench ids.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sshd => "sshd",
            Self::Sudo => "sudo",
            Self::Auditd => "auditd",
            Self::Netfilter => "netfilter",
            Self::Access => "nginx-access",
            Self::Json => "json-app",
        }
    }

    /// The subject of a `file`-format workload line (`Mmm dd hh:mm:ss host tag: msg`).
    pub(crate) fn of_file_line(line: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(line).ok()?;
        // The timestamp is 15 bytes ("Jan  5 00:00:00"), then " host ".
        let rest = s.get(16..)?;
        let (_host, rest) = rest.split_once(' ')?;
        let (tag, msg) = rest.split_once(": ")?;
        let program = tag.split('[').next().unwrap_or(tag);
        Some(match program {
            "sshd" => Self::Sshd,
            "sudo" => Self::Sudo,
            "audisp-syslog" => Self::Auditd,
            "kernel" if msg.starts_with("audit:") => Self::Auditd,
            "kernel" if msg.contains("IN=") => Self::Netfilter,
            "nginx" => Self::Access,
            _ if msg.starts_with('{') => Self::Json,
            _ => return None,
        })
    }
}

/// The `file` workload split by subject, each part LF framed in its own buffer.
pub(crate) fn by_subject(w: &Lines) -> Vec<(Subject, Lines)> {
    let mut parts: Vec<(Subject, Lines)> = Subject::ALL
        .iter()
        .map(|&s| (s, Lines::default()))
        .collect();
    for line in w.iter() {
        let s = Subject::of_file_line(line)
            .unwrap_or_else(|| panic!("unclassified line {:?}", String::from_utf8_lossy(line)));
        parts[s as usize].1.push(line);
    }
    parts
}
