//! The I/O shell: files and stdin (gzip transparently), tailing, syslog listeners, the
//! normalize stage and its sink, `run`, the clock, host facts.

pub mod accounts;
mod acks;
pub mod clock;
pub mod durable;
pub mod files;
pub mod host;
pub mod hostfacts;
pub mod identity;
pub mod input;
pub mod journald;
pub mod keys;
pub mod limits;
mod persist;
pub mod pipeline;
pub mod private;
pub mod procfs;
pub mod rejected;
pub mod run;
pub mod ship;
pub mod sink;
pub mod spool;
pub mod syslog;
pub mod tail;
