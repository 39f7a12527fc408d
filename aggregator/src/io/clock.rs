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
