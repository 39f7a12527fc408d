//! The Vedette aggregator: enrollment and identity, QUIC ingest, the event store. Detection,
//! correlation into cases, playbooks, approvals and action dispatch come next; the agent's
//! OCSF events (see `vedette_schemas::ocsf`) are the contract they consume.
#![warn(missing_docs)]

pub use vedette_schemas::ocsf::OCSF_VERSION;

/// The name of OCSF class `uid` (`Authentication`), for the classes the agent emits.
pub fn ocsf_class_name(uid: u32) -> Option<&'static str> {
    vedette_schemas::ocsf::Class::from_uid(uid).map(vedette_schemas::ocsf::Class::name)
}

pub mod config;
pub mod core;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
#[cfg(feature = "runtime")]
pub mod io;
#[cfg(feature = "runtime")]
pub mod store;
