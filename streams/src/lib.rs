//! streams: moves events from PostgreSQL to JetStream.
//!
//! The `events` table is the source of truth. The [`publisher`] tails it in commit order
//! (the xid8 technique of docs/adr/002: `(transaction_id, global_position)` after the
//! checkpoint and below the oldest running transaction), publishes every event to the
//! JetStream stream (`CP_EVENTS` by default) on `<prefix>.events.<type>.<id tokens>` with
//! `Nats-Msg-Id: events/<global_position>`, and then moves its checkpoint in PostgreSQL
//! ([`checkpoint`]: its place and the running audit hash, recorded every so often).
//! A crash between the two re-publishes a few events that JetStream's duplicate window
//! drops, so every event is on the stream exactly once. One publisher is active across all
//! processes ([`singleton`]: a PostgreSQL advisory lock; a standby takes over when the
//! holder's connection dies).
//!
//! Each hash checkpoint also goes to JetStream ([`anchors`]), where `audit verify` checks the
//! log against copies the database's operator cannot change.
//!
//! [`envelope`] is the wire format shared with the projections and with auditors;
//! [`setup`] declares the stream and the consumers and creates or updates them.
#![forbid(unsafe_code)]

pub mod anchors;
pub mod audit;
pub mod checkpoint;
pub mod envelope;
pub mod publisher;
pub mod setup;
pub mod singleton;
pub mod status;

pub use checkpoint::PublisherState;
pub use envelope::{subject_for, EventEnvelope, LogPosition};
pub use publisher::{
    check_max_payload, run_publisher, PublisherConfig, PublisherStats, Stuck, MAX_MESSAGE_BYTES,
};
pub use setup::{
    ensure_events_stream, events_stream_config, load_deployment_id, EventsStream, StreamSetupError,
};
