//! The OCSF 1.8.0 event model.
//!
//! Identifiers and their captions (`class_uid`/`class_name`, `category_*`, `activity_*`,
//! `type_*`, `severity*`, `status*`) are never typed at call sites: an [`Event`] holds a
//! [`Class`], an activity id, a [`Severity`] and an optional [`Status`], and serialization
//! derives every number and caption from the single table in [`table`].

mod event;
mod json;
mod objects;
mod section;
pub mod table;

pub use event::{Event, Header};
pub use json::{WriteJson, write_str};
pub use objects::*;
pub use section::{JsonObject, ObjectBuilder, may_repeat, repeated};
pub use table::{Class, Severity, Status};

/// The OCSF schema version every event claims in `metadata.version`.
pub const OCSF_VERSION: &str = "1.8.0";
