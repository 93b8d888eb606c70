//! `GET /governance/status`: budget use per tenant/project with a status, the open
//! breakers and the open dead letters; `GET /governance/roles`: each role's permissions
//! and rate limit (the dashboard's role filters). Both read `read:governance` (declared in
//! [`crate::routes::ROUTES`]) and come from the read models, not the event store.

use auth::Role;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use projections::governance::{self, BudgetFilter, BudgetSort};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Caller, ValidQuery};
use crate::read_after_write::{read_position, wait_for, ReadAt};
use crate::AppState;

/// Rows per page by default, and at most.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// The longest search text: a tenant, a slash and a project.
const MAX_SEARCH_CHARS: usize = 129;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/governance/status", get(status))
        .route("/governance/roles", get(roles))
}

/// Where a budget stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetStatus {
    /// Below the warning threshold.
    Ok,
    /// Used + reserved at or above the warning threshold of the limit.
    Warning,
    /// Nothing left: used + reserved at or above the limit.
    Exhausted,
    /// No limit set: every reservation is denied.
    NoBudget,
}

impl BudgetStatus {
    fn as_str(self) -> &'static str {
        match self {
            BudgetStatus::Ok => "ok",
            BudgetStatus::Warning => "warning",
            BudgetStatus::Exhausted => "exhausted",
            BudgetStatus::NoBudget => "no_budget",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            BudgetStatus::Ok,
            BudgetStatus::Warning,
            BudgetStatus::Exhausted,
            BudgetStatus::NoBudget,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// Only this tenant's projects.
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: Option<String>,
    /// Only rows with this status.
    #[param(inline)]
    pub status: Option<BudgetStatus>,
    /// Rows per page, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Only rows whose `tenant/project` contains this text, ignoring case (at most 129
    /// characters; empty: every row). The counts per status cover the search too.
    #[param(max_length = 129)]
    pub q: Option<String>,
    /// The column the rows are ordered by (default `name`: tenant, then project). Rows
    /// without the figure (no limit) come first ascending, last descending; ties are
    /// ordered by tenant and project.
    #[param(inline)]
    pub sort: Option<StatusSort>,
    /// `asc` (default) or `desc`.
    #[param(inline)]
    pub dir: Option<SortDirection>,
    /// Answer once the read models have applied the event at this position.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// What `GET /governance/status` sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusSort {
    /// Tenant, then project.
    Name,
    /// (used + reserved) / limit.
    Utilisation,
    Used,
    Reserved,
    Available,
    Limit,
}

impl From<StatusSort> for BudgetSort {
    fn from(sort: StatusSort) -> Self {
        match sort {
            StatusSort::Name => BudgetSort::Name,
            StatusSort::Utilisation => BudgetSort::Utilisation,
            StatusSort::Used => BudgetSort::Used,
            StatusSort::Reserved => BudgetSort::Reserved,
            StatusSort::Available => BudgetSort::Available,
            StatusSort::Limit => BudgetSort::Limit,
        }
    }
}

/// A sort's direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortDirection {
    Asc,
    Desc,
}

/// One tenant/project.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetRowBody {
    pub tenant_id: String,
    pub project_id: String,
    /// The limit in tokens; absent when none is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    pub used: i64,
    pub reserved: i64,
    /// What is left; absent without a limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<i64>,
    /// (used + reserved) / limit in percent (may pass 100 after a limit was lowered);
    /// absent without a limit or with a limit of 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilisation_percent: Option<f64>,
    pub status: BudgetStatus,
}

/// Budgets per status, over the tenant filter and the search only (not the status).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct StatusCounts {
    pub ok: i64,
    pub warning: i64,
    pub exhausted: i64,
    pub no_budget: i64,
}

/// A breaker that is not letting every call through.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenBreaker {
    pub name: String,
    /// `OPEN`, `HALF_OPEN` or `FORCED_OPEN`.
    pub state: String,
    pub failures: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GovernanceStatus {
    /// A budget is `warning` from this share of its limit (`GOVERNANCE_WARNING_PERCENT`).
    pub warning_threshold_percent: f64,
    pub rows: Vec<BudgetRowBody>,
    /// Rows matching the filter, over every page.
    pub matching: i64,
    pub counts: StatusCounts,
    /// Breakers guard dependencies shared by every tenant, so they are listed once here
    /// rather than per row.
    pub open_breakers: Vec<OpenBreaker>,
    /// Dead letters not resolved yet (`read_dlq`); like breakers, not per tenant: a dead
    /// letter is a message on a subject.
    pub open_dlq_entries: i64,
    /// The read models' contiguous watermark this answer stands at (also the
    /// `X-Read-Position` header): every event up to this position in commit order is
    /// applied to it; 0 before the first event, null while not known. Follow the WebSocket
    /// with `since` = this to receive every event the answer does not show yet.
    pub read_position: Option<i64>,
}

#[utoipa::path(get, path = "/governance/status", tag = "governance", params(StatusQuery),
    responses((status = 200, description = "Budget use per tenant/project, open breakers and dead letters", body = GovernanceStatus)))]
pub(crate) async fn status(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(query): ValidQuery<StatusQuery>,
) -> Result<ReadAt<Json<GovernanceStatus>>, ApiError> {
    if let Some(tenant) = &query.tenant_id {
        domain::validate_id(tenant).map_err(|e| ApiError::invalid("tenant_id", e.to_string()))?;
        caller.may_see("tenant_id", tenant)?;
    }
    let scope = caller.0.scope().to_list();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid("offset", "must not be negative"));
    }
    if let Some(q) = &query.q {
        if q.chars().count() > MAX_SEARCH_CHARS {
            return Err(ApiError::invalid(
                "q",
                format!("at most {MAX_SEARCH_CHARS} characters"),
            ));
        }
        // PostgreSQL text cannot hold NUL, and no id holds a control character.
        if q.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "q",
                "must not contain control characters",
            ));
        }
    }
    wait_for(&state, query.min_position).await?;
    let read_position = read_position(&state).await?;
    let ratio = state.overview.warning_ratio;
    let filter = BudgetFilter {
        tenant_id: query.tenant_id.clone(),
        status: query.status.map(|s| s.as_str().to_string()),
        scope,
        search: query.q.clone(),
        sort: query.sort.map_or(BudgetSort::Name, BudgetSort::from),
        descending: query.dir == Some(SortDirection::Desc),
        limit,
        offset,
    };
    let (rows, matching) = governance::budget_rows(&state.pool, ratio, &filter).await?;
    let mut counts = StatusCounts::default();
    for (status, n) in governance::status_counts(&state.pool, ratio, &filter).await? {
        match status.as_str() {
            "ok" => counts.ok = n,
            "warning" => counts.warning = n,
            "exhausted" => counts.exhausted = n,
            _ => counts.no_budget = n,
        }
    }
    // From the breakers' read model, like the rest of this page (a moment behind the log).
    let open_breakers = projections::breakers::open_breakers(&state.pool)
        .await?
        .into_iter()
        .map(|(name, state, failures)| OpenBreaker {
            name,
            state,
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
        })
        .collect();
    let rows = rows
        .into_iter()
        .map(|row| {
            let spent = row.used.saturating_add(row.reserved);
            BudgetRowBody {
                available: row.total.map(|t| t.saturating_sub(spent).max(0)),
                utilisation_percent: row
                    .total
                    .filter(|t| *t > 0)
                    .map(|t| (spent as f64 * 1000.0 / t as f64).round() / 10.0),
                status: BudgetStatus::parse(&row.status).unwrap_or(BudgetStatus::NoBudget),
                tenant_id: row.tenant_id,
                project_id: row.project_id,
                limit: row.total,
                used: row.used,
                reserved: row.reserved,
            }
        })
        .collect();
    Ok(ReadAt(
        read_position,
        Json(GovernanceStatus {
            warning_threshold_percent: (ratio * 1000.0).round() / 10.0,
            rows,
            matching,
            counts,
            open_breakers,
            open_dlq_entries: governance::open_dlq_entries(&state.pool).await?,
            read_position,
        }),
    ))
}

/// One role.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleBody {
    pub role: String,
    pub permissions: Vec<String>,
    /// Requests per minute per user of this role (`RATE_LIMITS`).
    pub rate_limit_per_minute: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolesResponse {
    pub roles: Vec<RoleBody>,
}

#[utoipa::path(get, path = "/governance/roles", tag = "governance",
    responses((status = 200, description = "Every role with its permissions and rate limit", body = RolesResponse)))]
pub(crate) async fn roles(State(state): State<AppState>) -> Json<RolesResponse> {
    Json(RolesResponse {
        roles: Role::ALL
            .into_iter()
            .map(|role| RoleBody {
                role: role.as_str().to_string(),
                permissions: role
                    .permissions()
                    .iter()
                    .map(|p| p.as_str().to_string())
                    .collect(),
                rate_limit_per_minute: state.overview.role_limits.get(&role).copied().unwrap_or(60),
            })
            .collect(),
    })
}
