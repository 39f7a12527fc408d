//! End-to-end tests of the real binaries.
//!
//! Every test here runs the built `vedette-agent normalize` over third-party corpora in
//! `../shared/corpus` and checks the output against `docs/ocsf-mapping.md` (the contract)
//! and against the corpora's own expectations. Run with
//! `cargo test -p vedette-tests -- --nocapture` to see the per-file summaries.

mod support;

mod auditd_auparse;
mod crowdsec_hub;
mod enrich_accounts;
mod fold;
mod fuzz_props;
mod golden;
mod live_files;
mod live_journald;
mod live_syslog;
mod loghub_openssh;
mod ocsf_validate;
mod redaction;
mod run_config;
mod ship_delivery;
mod ship_identity;
mod ship_limits;
mod ship_search;
mod ship_spool;
mod syslog_vectors;
