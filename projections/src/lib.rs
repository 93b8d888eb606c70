//! projections: read models in PostgreSQL, fed from the JetStream events stream.
//!
//! The [`projector`] reads the stream with a durable pull consumer and applies each batch
//! in one PostgreSQL transaction together with the per-aggregate versions and its
//! checkpoint ([`apply::apply_batch`]); it acknowledges after the commit, so a redelivery
//! finds the versions already moved and changes nothing. Per aggregate, events are applied
//! strictly in sequence order: one that arrives early makes the projector read the missing
//! ones from the event table. [`replay`] rebuilds every read model from the event table
//! with the same code. [`query`] answers reads, optionally waiting until a given event is
//! applied (`min_position`, read-your-writes on demand).
#![forbid(unsafe_code)]

pub mod apply;
pub mod breakers;
pub mod budgets;
mod copy;
pub mod dlq;
pub mod governance;
pub mod projector;
pub mod query;
pub mod replay;
pub mod usage;

pub use projector::{run_projector, ProjectorStats};

/// Why a batch could not be applied. The batch is retried; nothing was half-applied.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the event at position {0} has an unreadable payload: {1}")]
    Payload(i64, #[source] serde_json::Error),
    #[error("JetStream: {0}")]
    Nats(String),
    #[error("another projection wrote the same aggregates at the same time; retried")]
    Concurrent,
}
