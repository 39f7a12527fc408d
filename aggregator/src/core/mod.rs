//! The sans-I/O core: plain functions and state machines over bytes, events and time
//! passed in. The `io` shell (QUIC server, store thread) owns sockets, files and clocks.

pub mod ingest;
pub mod ipfilter;
pub mod postings;
