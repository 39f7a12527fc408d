//! The I/O shell: reading files and stdin (gzip transparently), the clock, host facts.

pub mod clock;
pub mod host;
pub mod input;
pub mod tail;
