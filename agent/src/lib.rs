//! The Vedette agent.
#![warn(missing_docs)]
