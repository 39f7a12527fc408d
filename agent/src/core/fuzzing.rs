//! Fuzz bodies: each runs one parser on arbitrary bytes and checks the invariants every
//! parser keeps (no panic; every non-blank record yields an event carrying it; the event
//! serializes). The cargo-fuzz targets in `fuzz/` and the proptests in the test suite both
//! call these, so a crash found by one is a regression test in the other.
#![doc(hidden)]

use jiff::tz::TimeZone;

use super::normalize::{NormalizeConfig, Normalizer, Source};
use super::time::TimeContext;

fn source(syslog: bool) -> Source {
    Source {
        uid_key: None,
        id: "fuzz".into(),
        time: TimeContext::new(
            jiff::Timestamp::from_second(1_790_000_000).unwrap_or_default(),
            TimeZone::UTC,
        ),
        syslog,
    }
}

fn run(lines: &[&[u8]], syslog: bool) {
    let mut n = Normalizer::new(NormalizeConfig {
        max_line_bytes: 1 << 20,
        ..NormalizeConfig::default()
    });
    let src = source(syslog);
    let mut nonblank = 0;
    for (i, l) in lines.iter().enumerate() {
        if !l.iter().all(u8::is_ascii_whitespace) {
            nonblank += 1;
        }
        n.handle_line(&src, i as u64 + 1, l, 0);
    }
    n.finish();
    let mut events = 0;
    while let Some(ev) = n.poll_event() {
        events += 1;
        assert!(
            ev.raw_data.as_deref().is_some_and(|r| !r.is_empty()),
            "event without raw_data"
        );
        serde_json::to_string(&ev).expect("event serializes");
    }
    assert!(
        events >= 1 || nonblank == 0,
        "a non-blank record produced no event"
    );
}

/// The whole normalizer on one record read from a file.
pub fn normalize(data: &[u8]) {
    run(&[data], false);
}

/// The whole normalizer on one record received as syslog.
pub fn syslog(data: &[u8]) {
    run(&[data], true);
}

/// The envelope parser alone: it must never panic and must keep the message inside the line.
pub fn envelope(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let src = source(false);
    let env = super::envelope::parse(&s, &src.time);
    let start = env.msg.as_ptr() as usize;
    let base = s.as_ptr() as usize;
    assert!(env.msg.is_empty() || (start >= base && start + env.msg.len() <= base + s.len()));
}

/// A message as a given program: sshd, sudo, su, account tools, pam.
pub fn program(app: &str, data: &[u8]) {
    let mut line = format!("Nov 27 10:00:00 host {app}[42]: ").into_bytes();
    line.extend_from_slice(data);
    run(&[&line], false);
}

/// Raw auditd records, several per input (split at newlines), so joining is exercised.
pub fn auditd(data: &[u8]) {
    let lines: Vec<&[u8]> = data.split(|&c| c == b'\n').collect();
    run(&lines, false);
}
