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
