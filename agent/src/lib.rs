//! The Vedette agent: reads host logs, normalizes them to OCSF 1.8.0, and (in later stages)
//! de-duplicates, enriches and ships them.
//!
//! `core` is sans-I/O: parsers and the normalizer are plain functions and state machines
//! over bytes and the time passed in. `io` (behind the default `runtime` feature) owns
//! files, stdin and the clock.
#![warn(missing_docs)]

pub mod config;
pub mod core;
#[cfg(feature = "runtime")]
pub mod io;
