//! Token budgets per tenant and project.
//!
//! A budget has a limit (`total`), tokens `used` by committed calls, and tokens `reserved`
//! by open reservations. A reservation is approved only while
//! `used + reserved + estimated <= total`, so approved allocations never exceed the limit.

mod aggregate;
mod commands;
mod events;

pub use aggregate::{Budget, BudgetError, BudgetReply, Closed, OpenReservation, Totals};
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
