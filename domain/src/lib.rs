//! The control plane's domain model: pure aggregates that turn commands into events.
//!
//! Nothing here performs I/O. Time and identifiers arrive inside commands, so every rule
//! is deterministic and tested with given/when/then (cqrs-es `TestFramework`).
//! The write side (`commands`) persists what these aggregates decide.
#![forbid(unsafe_code)]

pub mod breaker;
pub mod budget;
pub mod dlq;
pub mod ids;
pub mod sandbox_run;

pub use ids::{validate_id, IdError};
