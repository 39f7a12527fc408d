//! The Vedette aggregator: QUIC ingest, the event store, detection, correlation into cases,
//! playbooks, approvals and action dispatch. Nothing of it exists yet beyond this crate; the
//! agent's OCSF events (see `vedette_schemas::ocsf`) are the contract it will consume.
#![warn(missing_docs)]

pub use vedette_schemas::ocsf::OCSF_VERSION;
