//! The Vedette aggregator: QUIC ingest, the event store, detection, correlation into cases,
//! playbooks, approvals and action dispatch. So far: batch ingest ([`core::ingest`]) and the
//! embedded store behind traits ([`store`]); the agent's OCSF events (see
//! `vedette_schemas::ocsf`) are the contract they consume.
#![warn(missing_docs)]

pub mod core;
pub mod store;

pub use vedette_schemas::ocsf::OCSF_VERSION;
