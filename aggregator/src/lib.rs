//! The Vedette aggregator: enrollment and identity, QUIC ingest, the event store. Detection,
//! correlation into cases, playbooks, approvals and action dispatch come next; the agent's
//! OCSF events (see `vedette_schemas::ocsf`) are the contract they consume.
#![warn(missing_docs)]

pub use vedette_schemas::ocsf::OCSF_VERSION;

pub mod config;
pub mod core;
pub mod identity;
pub mod io;
pub mod store;
