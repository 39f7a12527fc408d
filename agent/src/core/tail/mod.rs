//! Following log files as they grow, rotate and get truncated, without losing or repeating
//! lines: the sans-I/O part. The shell (`io::tail`) globs, stats, hashes and reads; this
//! decides what to read and what a file is.

pub mod binary;
pub mod checkpoint;
pub mod compressed;
pub mod fingerprint;
pub mod lines;
pub mod links;
pub mod pattern;
pub mod rotation;
pub mod tracker;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use fingerprint::Fingerprint;
pub use lines::{AssembledLine, LineAssembler};
pub use tracker::{
    Action, DropReason, FileKey, FileObservation, Line, Notice, ReadFrom, StaleRead, Tracker,
    TrackerConfig, TrackerStats,
};
