//! Vedette's contracts. For now: the typed OCSF 1.8.0 model of the event classes the agent
//! emits. Wire frames, action and rollback-token types join this crate as those parts land.
#![warn(missing_docs)]

pub mod ocsf;
