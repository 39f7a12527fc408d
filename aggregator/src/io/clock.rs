//! The one place the aggregator reads the wall clock.

/// Now, ms since the Unix epoch.
#[expect(
    clippy::disallowed_methods,
    reason = "the shell's one clock; cores get time passed in"
)]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Ms on a clock that only moves forward, from its first reading in this process: for
/// durations within a run (how often a connection may renew), which a step of the wall
/// clock must neither cut short nor stretch. Never persisted.
#[expect(
    clippy::disallowed_methods,
    reason = "the shell's one clock; cores get time passed in"
)]
pub fn monotonic_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}
