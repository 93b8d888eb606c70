//! The auditor's filtered reads of the log: pages in log order, and a person's sandbox runs.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::{PgPool, Row};

use crate::envelope::{EventEnvelope, COMMITTED, COMMIT_ORDER_DESC, SELECT_ENVELOPE};

/// Which events to list or export; every filter is optional.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub aggregate_type: Option<String>,
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub aggregate_id: Option<String>,
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub event_type: Option<String>,
    /// Who caused the event: the `user` of its metadata (a username, or a service's name).
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub actor: Option<String>,
    /// The event's number within its aggregate (with `aggregate_type` and `aggregate_id`: one
    /// event, e.g. the previous link of a chain).
    #[param(minimum = 1)]
    pub sequence: Option<i64>,
    /// Recorded at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Recorded before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Pagination: events after this global position.
    #[param(minimum = 0)]
    pub after_position: Option<i64>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Largest page, in events.
pub const MAX_PAGE: i64 = 1000;
/// Largest page, in stored bytes of payload and metadata: a page ends early past it (with at
/// least one event), so a thousand events of 2 MiB never make one 2 GiB answer.
pub const MAX_PAGE_BYTES: i64 = 8 * 1024 * 1024;

/// A page of events, and whether more may follow it.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<EventEnvelope>,
    /// The page is full (by count or by bytes): ask again after its last event.
    pub more: bool,
}

/// One page of events matching `filter`, by global position.
pub async fn list_events(pool: &PgPool, filter: &AuditFilter) -> Result<EventPage, sqlx::Error> {
    let limit = filter.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    // The page's rows first (by count), then their sizes in order, then the rows that fit.
    let sql = format!(
        "WITH limited AS (
             SELECT global_position, pg_column_size(payload) + pg_column_size(metadata) AS size
               FROM events
              WHERE ($1::text IS NULL OR aggregate_type = $1)
                AND ($2::text IS NULL OR aggregate_id = $2)
                AND ($3::text IS NULL OR event_type = $3)
                AND ($4::timestamptz IS NULL OR recorded_at >= $4)
                AND ($5::timestamptz IS NULL OR recorded_at < $5)
                AND global_position > $6
                AND ($9::text IS NULL OR metadata->>'user' = $9)
                AND ($10::bigint IS NULL OR sequence = $10)
              ORDER BY global_position
              LIMIT $7),
         sized AS (
             SELECT global_position, count(*) OVER () AS page_rows,
                    sum(size) OVER (ORDER BY global_position) - size AS bytes_before
               FROM limited)
         SELECT {SELECT_ENVELOPE}, sized.page_rows
           FROM events JOIN sized USING (global_position)
          WHERE sized.bytes_before < $8
          ORDER BY global_position"
    );
    let rows = sqlx::query(&sql)
        .bind(&filter.aggregate_type)
        .bind(&filter.aggregate_id)
        .bind(&filter.event_type)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.after_position.unwrap_or(0))
        .bind(limit)
        .bind(MAX_PAGE_BYTES)
        .bind(&filter.actor)
        .bind(filter.sequence)
        .fetch_all(pool)
        .await?;
    let page_rows: i64 = match rows.first() {
        Some(row) => row.try_get("page_rows")?,
        None => 0,
    };
    let events = rows
        .iter()
        .map(EventEnvelope::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = page_rows == limit || (events.len() as i64) < page_rows;
    Ok(EventPage { events, more })
}

/// Where a read of the log stands in commit order: the position of the newest event (in
/// commit order) whose transaction is older than every transaction still running, 0 when
/// there is none. Every event up to it in commit order has committed, so a read that starts
/// after this one (a later snapshot) sees each of them; an event it cannot see yet (one with
/// a lower position whose transaction commits later) comes after it in commit order, so a
/// client that follows the log from here (WebSocket `since`) receives it. One backward probe
/// of `events_commit_order_idx`.
pub async fn read_position(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let sql = format!(
        "SELECT COALESCE((SELECT events.global_position FROM events
                           WHERE {COMMITTED}
                           ORDER BY {COMMIT_ORDER_DESC}
                           LIMIT 1), 0)"
    );
    sqlx::query_scalar(&sql).fetch_one(pool).await
}

/// The latest runs of the code sandbox by one person (`who` of the `SandboxRun` events),
/// newest first: what `GET /sandbox/runs` shows the person themselves. One backward scan of
/// a partial index (`events_sandbox_run_who_idx`, migration 0017).
pub async fn sandbox_runs_of(
    pool: &PgPool,
    who: &str,
    limit: i64,
) -> Result<Vec<EventEnvelope>, sqlx::Error> {
    let sql = format!(
        "SELECT {SELECT_ENVELOPE} FROM events
          WHERE aggregate_type = 'SandboxRun' AND payload ->> 'who' = $1
          ORDER BY payload ->> 'who', global_position DESC
          LIMIT $2"
    );
    sqlx::query(&sql)
        .bind(who)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(EventEnvelope::from_row)
        .collect()
}
