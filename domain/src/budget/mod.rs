//! Token budgets per tenant and project.
//!
//! A budget has a limit (`total`), tokens `used` by committed calls, and tokens `reserved`
//! by open reservations. A reservation is approved only while
//! `used + reserved + estimated <= total`, so approved allocations never exceed the limit.

mod aggregate;
mod commands;
mod events;

pub use aggregate::{Budget, BudgetError, BudgetReply, Closed, Closing, OpenReservation, Totals};
pub use commands::BudgetCommand;
pub use events::{BudgetEvent, DenialReason};

/// The aggregate id of a tenant/project budget. Ids never contain '/', so it is unambiguous.
pub fn budget_aggregate_id(tenant_id: &str, project_id: &str) -> String {
    format!("{tenant_id}/{project_id}")
}

/// Default lifetime of a reservation.
pub const DEFAULT_TTL_SECONDS: u64 = 600;
/// Longest lifetime a reservation may ask for.
pub const MAX_TTL_SECONDS: u64 = 86_400;
/// Largest token amount accepted anywhere (keeps sums far from overflow).
pub const MAX_TOKENS: u64 = 1_000_000_000_000;

/// How long a budget remembers a closed reservation after the newest closing it has seen, so
/// that a repeated commit, release or expiry gets the first answer and an expired reservation
/// may still be committed late. Twice the Python client's longest retry (its final commit or
/// release retries for 60 s; other requests for 30 s), and two minutes of late commits. Measured
/// on the closing events' own times, never the wall clock, so a replay forgets the same ones
/// (ADR 020).
pub const CLOSED_RETENTION_SECONDS: i64 = 120;
/// The most closed reservations one budget remembers, whatever their age: bounds a hot budget
/// (10,000 entries are ~2 MiB; at 1,000 closings a second that is 10 s of retries).
pub const CLOSED_RETENTION_MAX: usize = 10_000;
