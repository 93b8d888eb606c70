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
pub mod user_account;

pub use ids::{validate_id, IdError};

/// The largest event (payload and metadata, as JSON text) the write side appends. Every
/// aggregate's input bounds keep its events below it (the largest is a dead letter's, see
/// [`dlq::MAX_PAYLOAD_BYTES`]); the event store refuses anything above it, so that every
/// event in the log can be published: the NATS server's `max_payload` must hold this plus
/// the envelope (docs/adr/013-bounded-events.md).
pub const MAX_EVENT_BYTES: usize = 2 * 1024 * 1024;

/// The PostgreSQL NOTIFY channel that wakes the tailers of the `events` table (the
/// publisher): the write side notifies on it after its commits (`commands::store`), the
/// publisher LISTENs on it (`streams::publisher`) and polls in case a notification is lost.
/// Here, like [`MAX_EVENT_BYTES`], because both ends depend on this crate and on no other
/// common one: one name, so they cannot drift apart.
pub const EVENTS_CHANNEL: &str = "events_appended";
