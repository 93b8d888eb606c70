use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a caller asks of a budget. Time and new ids come in the command so the
/// aggregate stays deterministic.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetCommand {
    /// Set (or change) the limit. Lowering below what is used or reserved is allowed.
    SetLimit {
        tenant_id: String,
        project_id: String,
        total_tokens: u64,
    },
    /// Reserve tokens before a model call. `reservation_id` is used only if a new
    /// reservation is made; an open reservation for the same task is returned instead.
    ReserveTokens {
        tenant_id: String,
        project_id: String,
        reservation_id: Uuid,
        task_id: String,
        model: String,
        estimated_tokens: u64,
        ttl_seconds: u64,
        now: DateTime<Utc>,
    },
    /// Record the tokens actually used by a reserved call.
    CommitUsage {
        reservation_id: Uuid,
        actual_tokens: u64,
        now: DateTime<Utc>,
    },
    /// Give a reservation back unused.
    ReleaseReservation {
        reservation_id: Uuid,
        now: DateTime<Utc>,
    },
    /// Release a reservation whose TTL has passed (the expiry worker sends this).
    ExpireReservation {
        reservation_id: Uuid,
        now: DateTime<Utc>,
    },
}
