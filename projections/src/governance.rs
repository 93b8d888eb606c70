//! Read-model queries for the operator's overview (`GET /governance/status`, `GET /stats`):
//! budget use per tenant/project with a status, totals, open dead letters, and the event
//! rate from the event table. Everything is computed in one query each, from tables the
//! projector keeps (`read_budgets`, `read_dlq`) or from the log's newest rows.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

/// The four statuses of a budget, from its limit and use.
pub const STATUSES: [&str; 4] = ["ok", "warning", "exhausted", "no_budget"];

/// One tenant/project.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRow {
    pub tenant_id: String,
    pub project_id: String,
    /// `None`: no limit set (the row exists because of a denial, an expiry, ...).
    pub total: Option<i64>,
    pub used: i64,
    pub reserved: i64,
    pub status: String,
}

/// Which rows, in which order, and how many.
#[derive(Debug, Clone, Default)]
pub struct BudgetFilter {
    pub tenant_id: Option<String>,
    /// The caller's tenants (`None`: every tenant): rows outside are never shown or counted.
    pub scope: Option<Vec<String>>,
    pub status: Option<String>,
    /// Only rows whose `tenant/project` contains this text, ignoring case.
    pub search: Option<String>,
    pub sort: BudgetSort,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// The column the rows are ordered by. Ties (and rows without the figure, which come
/// first ascending and last descending) are ordered by tenant and project, so pages never
/// overlap or skip a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BudgetSort {
    /// Tenant, then project.
    #[default]
    Name,
    /// (used + reserved) / limit; none without a limit above 0.
    Utilisation,
    Used,
    Reserved,
    /// limit - used - reserved, at least 0; none without a limit.
    Available,
    /// The limit; none without one.
    Limit,
}

impl BudgetSort {
    /// The `ORDER BY` of this sort: fixed SQL per variant, nothing from the request.
    fn order_by(self, descending: bool) -> String {
        let (dir, nulls) = if descending {
            ("DESC", "NULLS LAST")
        } else {
            ("ASC", "NULLS FIRST")
        };
        let figure = match self {
            BudgetSort::Name => return format!("tenant_id {dir}, project_id {dir}"),
            BudgetSort::Utilisation => {
                "CASE WHEN total > 0 THEN (used + reserved)::float8 / total END"
            }
            BudgetSort::Used => "used",
            BudgetSort::Reserved => "reserved",
            // GREATEST skips NULLs: without the CASE a budget with no limit would sort as 0.
            BudgetSort::Available => {
                "CASE WHEN total IS NOT NULL THEN GREATEST(total - used - reserved, 0) END"
            }
            BudgetSort::Limit => "total",
        };
        format!("{figure} {dir} {nulls}, tenant_id, project_id")
    }
}

/// The search as the queries compare it (`tenant/project` in lower case contains it).
fn search_text(search: Option<&str>) -> Option<String> {
    search
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
}

/// The rows a filter's tenant, scope and search let through (`$2` tenant, `$3` scope,
/// `$4` search), with their status (`$1` the warning ratio).
fn matching_sql() -> String {
    format!(
        "SELECT tenant_id, project_id, total, used, reserved, {STATUS_SQL} AS status
           FROM read_budgets
          WHERE ($2::text IS NULL OR tenant_id = $2)
            AND ($3::text[] IS NULL OR tenant_id = ANY($3))
            AND ($4::text IS NULL OR strpos(lower(tenant_id || '/' || project_id), $4) > 0)"
    )
}

/// SQL for a row's status; `$1` is the warning ratio (0.8 for 80 %).
const STATUS_SQL: &str = "CASE WHEN total IS NULL THEN 'no_budget'
                               WHEN used + reserved >= total THEN 'exhausted'
                               WHEN (used + reserved)::float8 >= $1 * total THEN 'warning'
                               ELSE 'ok' END";

/// The matching rows (in the filter's order) and how many match in all.
pub async fn budget_rows(
    pool: &PgPool,
    warning_ratio: f64,
    filter: &BudgetFilter,
) -> Result<(Vec<BudgetRow>, i64), sqlx::Error> {
    let search = search_text(filter.search.as_deref());
    let sql = format!(
        "WITH b AS ({matching})
         SELECT tenant_id, project_id, total, used, reserved, status, count(*) OVER () AS matching
           FROM b
          WHERE ($5::text IS NULL OR status = $5)
          ORDER BY {order}
          LIMIT $6 OFFSET $7",
        matching = matching_sql(),
        order = filter.sort.order_by(filter.descending),
    );
    let rows = sqlx::query(&sql)
        .bind(warning_ratio)
        .bind(filter.tenant_id.as_deref())
        .bind(filter.scope.as_deref())
        .bind(search.as_deref())
        .bind(filter.status.as_deref())
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(pool)
        .await?;
    let matching = match rows.first() {
        Some(row) => row.try_get("matching")?,
        // Past the last page the window count is gone: count on its own.
        None if filter.offset > 0 => {
            let sql = format!(
                "SELECT count(*) FROM ({matching}) b WHERE ($5::text IS NULL OR status = $5)",
                matching = matching_sql()
            );
            sqlx::query_scalar(&sql)
                .bind(warning_ratio)
                .bind(filter.tenant_id.as_deref())
                .bind(filter.scope.as_deref())
                .bind(search.as_deref())
                .bind(filter.status.as_deref())
                .fetch_one(pool)
                .await?
        }
        None => 0,
    };
    let rows = rows
        .iter()
        .map(|row| {
            Ok(BudgetRow {
                tenant_id: row.try_get("tenant_id")?,
                project_id: row.try_get("project_id")?,
                total: row.try_get("total")?,
                used: row.try_get("used")?,
                reserved: row.try_get("reserved")?,
                status: row.try_get("status")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((rows, matching))
}

/// Budgets by status (for the summary) among the rows the filter's tenant, scope and
/// search let through; its status, sort and page do not apply.
pub async fn status_counts(
    pool: &PgPool,
    warning_ratio: f64,
    filter: &BudgetFilter,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT status, count(*) FROM ({matching}) b GROUP BY status",
        matching = matching_sql()
    );
    sqlx::query_as(&sql)
        .bind(warning_ratio)
        .bind(filter.tenant_id.as_deref())
        .bind(filter.scope.as_deref())
        .bind(search_text(filter.search.as_deref()).as_deref())
        .fetch_all(pool)
        .await
}

/// Sums over every budget with a limit (of the scope's tenants; `None`: all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetTotals {
    pub budgets: i64,
    pub total: i64,
    pub used: i64,
    pub reserved: i64,
}

pub async fn budget_totals(
    pool: &PgPool,
    scope: Option<&[String]>,
) -> Result<BudgetTotals, sqlx::Error> {
    let row = sqlx::query(
        "SELECT count(*) AS budgets, COALESCE(sum(total), 0)::bigint AS total,
                COALESCE(sum(used), 0)::bigint AS used, COALESCE(sum(reserved), 0)::bigint AS reserved
           FROM read_budgets
          WHERE total IS NOT NULL AND ($1::text[] IS NULL OR tenant_id = ANY($1))",
    )
    .bind(scope)
    .fetch_one(pool)
    .await?;
    Ok(BudgetTotals {
        budgets: row.try_get("budgets")?,
        total: row.try_get("total")?,
        used: row.try_get("used")?,
        reserved: row.try_get("reserved")?,
    })
}

/// Used, reserved and limit per tenant (summed over its projects; the limit over those that
/// have one), for the `/metrics` gauges.
pub async fn tenant_use(pool: &PgPool) -> Result<Vec<(String, i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, COALESCE(sum(used), 0)::bigint, COALESCE(sum(reserved), 0)::bigint,
                COALESCE(sum(total), 0)::bigint
           FROM read_budgets GROUP BY tenant_id ORDER BY tenant_id",
    )
    .fetch_all(pool)
    .await
}

/// Dead letters not resolved yet (`read_dlq`).
pub async fn open_dlq_entries(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM read_dlq WHERE NOT resolved")
        .fetch_one(pool)
        .await
}

/// How many of the newest events the per-minute series looks at, at most: the query
/// walks the `global_position` index backwards instead of scanning the whole log.
pub const EVENT_WINDOW: i64 = 200_000;

/// One minute of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMinute {
    pub minute: DateTime<Utc>,
    /// Events recorded in the minute, of every kind.
    pub events: i64,
    /// Dead letters captured: new entries, and requeued messages that died again.
    pub dlq_captured: i64,
    /// Dead letters resolved (by a person or a redrive job).
    pub dlq_resolved: i64,
}

/// Events recorded per minute over the last `minutes` minutes, the current one included
/// (oldest first, minutes without events left out), among the newest [`EVENT_WINDOW`]
/// events; with the dead letters captured and resolved in each, counted from the same
/// rows (the entries' events, so a recapture counts and nothing depends on a read model).
pub async fn events_per_minute(
    pool: &PgPool,
    minutes: i32,
) -> Result<Vec<EventMinute>, sqlx::Error> {
    let rows: Vec<(DateTime<Utc>, i64, i64, i64)> = sqlx::query_as(
        "SELECT date_trunc('minute', recorded_at) AS minute, count(*),
                count(*) FILTER (WHERE aggregate_type = 'DlqEntry'
                                   AND event_type IN ('DlqEntryCaptured', 'DlqEntryRecaptured')),
                count(*) FILTER (WHERE aggregate_type = 'DlqEntry'
                                   AND event_type = 'DlqEntryResolved')
           FROM (SELECT recorded_at, aggregate_type, event_type
                   FROM events ORDER BY global_position DESC LIMIT $2) e
          WHERE recorded_at >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
          GROUP BY 1 ORDER BY 1",
    )
    .bind(minutes)
    .bind(EVENT_WINDOW)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(minute, events, dlq_captured, dlq_resolved)| EventMinute {
            minute,
            events,
            dlq_captured,
            dlq_resolved,
        })
        .collect())
}
