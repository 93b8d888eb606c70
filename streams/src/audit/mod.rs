//! The auditor's view of the log: filtered listing, and an independent recomputation of
//! the per-aggregate hash chain that migration 0004's trigger stores with every event.
//!
//! The chain (also in docs/audit.md): `hash = SHA-256(prev || f(global_position) ||
//! f(aggregate_type) || f(aggregate_id) || f(sequence) || f(event_type) || f(event_version)
//! || f(recorded_at as microseconds since the Unix epoch) || f(payload) || f(metadata))`,
//! where `f(x)` is the UTF-8 length of the decimal or JSON text `x` as 4 bytes big-endian
//! followed by its bytes, and `prev` is the previous event's hash in the aggregate (32 zero
//! bytes for its first event).
//!
//! The publisher also keeps a running hash over the whole log in commit order
//! (`running_n = chain_hash(running_{n-1}, event n)`, from [`GENESIS`]) and records it in
//! `global_hash_checkpoints` every so often (migration 0006); [`verify`] recomputes it from
//! the table and compares it with every checkpoint.
//!
//! Everything above lives in the database an operator controls: a superuser can delete the
//! newest events and the checkpoints, or rewrite an event and recompute every hash after it,
//! and the rest still verifies. Two copies outside it catch that: every checkpoint is also
//! an anchor on JetStream ([`crate::anchors`]), which [`verify_with`] checks the running hash
//! against like the checkpoints; and [`check_stream_anchor`] compares the log with the
//! JetStream events stream: the newest event published there must still be in the log, with
//! the same hash.
//!
//! [`chain`]: the hash function; [`listing`]: the filtered pages and the export's reads;
//! [`verify`]: recomputing the chains and the running hash, against the checkpoints, the
//! anchors and the events stream.

pub mod chain;
pub mod listing;
pub mod verify;

pub use chain::{chain_hash, GENESIS};
pub use listing::{
    list_events, read_position, sandbox_runs_of, AuditFilter, EventPage, MAX_PAGE, MAX_PAGE_BYTES,
};
pub use verify::{
    check_stream_anchor, verify, verify_anchored, verify_checkpoints, verify_with,
    CheckpointFailure, CheckpointsChecked, OnProgress, StreamAnchor, VerifyFailure, VerifyProgress,
    VerifyReport, PROGRESS_EVERY,
};
