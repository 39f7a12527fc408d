//! Vedette's contracts: the typed OCSF 1.8.0 model of the event classes the agent emits,
//! and the agent ↔ aggregator wire protocol. Action and rollback-token types join this
//! crate as those parts land.
#![warn(missing_docs)]

pub mod ocsf;
pub mod wire;
