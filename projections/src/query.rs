//! Reads of the read models, and read-your-writes on demand.
//!
//! Every read answers the read models' contiguous watermark it stands at
//! ([`read_position`], migrations/0018_projection_watermark.sql): the event such that it and
//! every event before it in commit order are applied. A client that follows the log from
//! there (WebSocket `since`) gets every event its read does not show yet, and none of those
//! before it again.

use std::time::Duration;

use sqlx::{PgExecutor, PgPool, Row};
use tokio::time::Instant;

use crate::apply::PROJECTION;

/// The read models' contiguous watermark: the global position of the event (in commit
/// order) such that it and every event before it are applied; 0 before the first event;
/// `None` while it is not known (nothing projected since the migration that added it, or a
/// process of an earlier version projects).
///
/// Read it BEFORE the rows it goes with, in its own statement (or in theirs): what it
/// covers is applied for good (a batch never un-applies, and a replay rebuilds at least up
/// to it under a lock that readers wait for), so rows read afterwards show at least that
/// much. They may show more (events after it, applied since or by the batch ahead): a
/// client following the log from it receives those again, which the dashboard's handlers
/// take as a reason to read again, never as something to add twice.
pub async fn read_position<'e>(executor: impl PgExecutor<'e>) -> Result<Option<i64>, sqlx::Error> {
    let position: Option<Option<i64>> =
        sqlx::query_scalar("SELECT watermark_position FROM projection_checkpoints WHERE name = $1")
            .bind(PROJECTION)
            .fetch_optional(executor)
            .await?;
    Ok(position.flatten())
}

/// A budget as the read model has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetState {
    pub tenant_id: String,
    pub project_id: String,
    pub total: u64,
    pub used: u64,
    pub reserved: u64,
    pub available: u64,
    pub open_reservations: u64,
    /// The global position of the last event applied to this budget.
    pub last_position: i64,
    /// The watermark this read stands at ([`read_position`]).
    pub read_position: Option<i64>,
}

fn uint(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The budget `aggregate_id`, or `None` while no limit is set for it.
pub async fn budget_state(
    pool: &PgPool,
    aggregate_id: &str,
) -> Result<Option<BudgetState>, sqlx::Error> {
    // The watermark in the same statement (one snapshot, no extra round trip: services
    // ask for this over NATS before their calls).
    let row = sqlx::query(
        "SELECT b.tenant_id, b.project_id, b.total, b.used, b.reserved, b.last_position,
                (SELECT count(*) FROM read_reservations r
                  WHERE r.aggregate_id = b.aggregate_id AND r.status = 'open') AS open,
                (SELECT watermark_position FROM projection_checkpoints WHERE name = $2) AS read_position
           FROM read_budgets b
          WHERE b.aggregate_id = $1 AND b.total IS NOT NULL",
    )
    .bind(aggregate_id)
    .bind(PROJECTION)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let total = uint(row.try_get::<Option<i64>, _>(2)?.unwrap_or(0));
    let used = uint(row.try_get(3)?);
    let reserved = uint(row.try_get(4)?);
    Ok(Some(BudgetState {
        tenant_id: row.try_get(0)?,
        project_id: row.try_get(1)?,
        total,
        used,
        reserved,
        available: total.saturating_sub(used.saturating_add(reserved)),
        open_reservations: uint(row.try_get(6)?),
        last_position: row.try_get(5)?,
        read_position: row.try_get(7)?,
    }))
}

/// Has the event at `position` been applied to the read models, and every event before it
/// in commit order (the watermark has reached it)? While the watermark is not known, only
/// the event's own aggregate is asked (events are applied in sequence per aggregate, so
/// that covers the aggregate's earlier events). False for a position that does not exist
/// (yet).
pub async fn is_applied(pool: &PgPool, position: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (
            SELECT 1 FROM events e
              LEFT JOIN projection_checkpoints c ON c.name = $2
             WHERE e.global_position = $1
               AND CASE WHEN c.watermark_tx IS NOT NULL
                        THEN (e.transaction_id, e.global_position) <= (c.watermark_tx, c.watermark_position)
                        ELSE EXISTS (
                            SELECT 1 FROM projection_versions v
                             WHERE v.aggregate_type = e.aggregate_type
                               AND v.aggregate_id = e.aggregate_id
                               AND v.version >= e.sequence)
                   END)",
    )
    .bind(position)
    .bind(PROJECTION)
    .fetch_one(pool)
    .await
}

/// Is there an event at `position`? (Positions of rolled-back appends stay unused, and a
/// position past the end does not exist yet: waiting for either would never end.)
pub async fn event_exists(pool: &PgPool, position: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE global_position = $1)")
        .bind(position)
        .fetch_one(pool)
        .await
}

/// Waits up to `timeout` until the event at `position` is applied; returns whether it is.
pub async fn wait_until_applied(
    pool: &PgPool,
    position: i64,
    timeout: Duration,
) -> Result<bool, sqlx::Error> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if is_applied(pool, position).await? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// What a read that names `min_position` (read-your-writes) may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinPosition {
    /// No position named, or its event is applied: read.
    Ready,
    /// Not a position a command's answer could carry (a client error; the text says why).
    Invalid(&'static str),
    /// Its event exists but was not applied within the wait: try again shortly.
    NotYetApplied(i64),
}

/// The one read-your-writes rule of every read (HTTP and NATS): waits up to `wait` for the
/// event at `min_position` to be applied.
pub async fn await_min_position(
    pool: &PgPool,
    min_position: Option<i64>,
    wait: Duration,
) -> Result<MinPosition, sqlx::Error> {
    let Some(position) = min_position else {
        return Ok(MinPosition::Ready);
    };
    if position < 1 {
        return Ok(MinPosition::Invalid("must be at least 1"));
    }
    // A command's answer names a committed event: a position no event has would never be
    // applied (a client error, not a 503).
    if !event_exists(pool, position).await? {
        return Ok(MinPosition::Invalid(
            "no event has this position; pass the position of a command's answer",
        ));
    }
    Ok(if wait_until_applied(pool, position, wait).await? {
        MinPosition::Ready
    } else {
        MinPosition::NotYetApplied(position)
    })
}

/// An open reservation as `read_reservations` has it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenReservation {
    pub reservation_id: uuid::Uuid,
    pub task_id: String,
    pub model: String,
    pub allocated: i64,
    pub reserved_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Up to `limit` open reservations of budget `aggregate_id`, the soonest to expire first,
/// and how many are open in all.
pub async fn open_reservations(
    pool: &PgPool,
    aggregate_id: &str,
    limit: i64,
) -> Result<(Vec<OpenReservation>, i64), sqlx::Error> {
    let items = sqlx::query_as(
        "SELECT reservation_id, task_id, model, allocated, reserved_at, expires_at
           FROM read_reservations
          WHERE aggregate_id = $1 AND status = 'open'
          ORDER BY expires_at, reservation_id
          LIMIT $2",
    )
    .bind(aggregate_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let open = sqlx::query_scalar(
        "SELECT count(*) FROM read_reservations WHERE aggregate_id = $1 AND status = 'open'",
    )
    .bind(aggregate_id)
    .fetch_one(pool)
    .await?;
    Ok((items, open))
}

/// A budget's totals at the end of a minute (`read_budget_usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub minute: chrono::DateTime<chrono::Utc>,
    pub total: Option<i64>,
    pub used: i64,
    pub reserved: i64,
}

/// The usage rows of budget `aggregate_id` from minute `from` on (oldest first), led by
/// the last row before `from` when there is one (the state the window starts in).
pub async fn budget_usage(
    pool: &PgPool,
    aggregate_id: &str,
    from: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<UsageRow>, sqlx::Error> {
    sqlx::query_as(
        "(SELECT minute, total, used, reserved FROM read_budget_usage
           WHERE aggregate_id = $1 AND minute < $2 ORDER BY minute DESC LIMIT 1)
         UNION ALL
         (SELECT minute, total, used, reserved FROM read_budget_usage
           WHERE aggregate_id = $1 AND minute >= $2 ORDER BY minute)
         ORDER BY minute",
    )
    .bind(aggregate_id)
    .bind(from)
    .fetch_all(pool)
    .await
}
