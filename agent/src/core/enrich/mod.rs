//! Edge enrichment: what the agent adds to an event before it ships (issue "edge stage").
//! So far: redaction of secrets that users and clients put where logs record them.

pub mod accounts;
pub mod baseline;
pub mod host;
pub mod maintenance;
pub mod process;
pub mod redact;
