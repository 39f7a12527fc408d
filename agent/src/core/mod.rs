//! The sans-I/O core: envelope and message parsers, the normalizer that turns records into
//! OCSF events. Nothing here reads a clock, a file or a socket.

pub mod allowlist;
pub mod batcher;
pub mod dedup;
pub mod enrich;
pub mod envelope;
pub mod framing;
pub mod fuzzing;
pub mod journal;
pub mod normalize;
pub mod output;
pub mod parse;
pub mod peer_names;
pub mod prehashed;
pub mod spool;
pub mod tail;
pub mod text;
pub mod time;
pub mod uid;

pub use normalize::{NormalizeConfig, Normalizer, Received, Source};
