//! The one place that reads the wall clock.

/// Now, as a `jiff::Timestamp`.
#[expect(clippy::disallowed_methods, reason = "the shell's single clock")]
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    now().as_millisecond()
}

/// Ms on a clock that only moves forward, counted from its first reading in this process:
/// for durations within a run (a rotated file's grace, a copy's hold, how often a
/// checkpoint is synced), which a step of the wall clock (NTP, an operator) must neither
/// cut short nor stretch. Never persisted.
pub fn monotonic_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    #[expect(clippy::disallowed_methods, reason = "the shell's single clock")]
    let start = *START.get_or_init(std::time::Instant::now);
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}
