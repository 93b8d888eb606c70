//! `/budget/*`: limits, reservations, commits, releases and state. Who may call each
//! route is declared in [`crate::routes::ROUTES`].

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use commands::api::{
    CommitRequest, CommitResponse, LimitResponse, ReleaseRequest, ReleaseResponse, ReserveRequest,
    ReserveResponse, SetLimitRequest, StateRequest, StateResponse,
};
use domain::budget::budget_aggregate_id;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ValidJson, ValidQuery};
use crate::read_after_write::{read_position, wait_for, ReadAt};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/budget/limit", put(set_limit))
        .route("/budget/request", post(reserve))
        .route("/budget/commit", post(commit))
        .route("/budget/release", post(release))
        .route("/budget/state", get(state))
        .route("/budget/reservations", get(reservations))
        .route("/budget/usage", get(usage))
}

#[utoipa::path(put, path = "/budget/limit", tag = "budget", request_body = SetLimitRequest,
    responses((status = 200, description = "The budget's totals after the change", body = LimitResponse)))]
pub(crate) async fn set_limit(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(request): ValidJson<SetLimitRequest>,
) -> Result<Json<LimitResponse>, ApiError> {
    Ok(Json(
        state
            .budgets
            .api_set_limit(request, &caller.actor())
            .await?,
    ))
}

#[utoipa::path(post, path = "/budget/request", tag = "budget", request_body = ReserveRequest,
    responses((status = 200, description = "Approved or denied (`approved`); a denial is recorded too", body = ReserveResponse)))]
pub(crate) async fn reserve(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(request): ValidJson<ReserveRequest>,
) -> Result<Json<ReserveResponse>, ApiError> {
    Ok(Json(
        state.budgets.api_reserve(request, &caller.actor()).await?,
    ))
}

#[utoipa::path(post, path = "/budget/commit", tag = "budget", request_body = CommitRequest,
    responses(
        (status = 200, description = "The usage recorded (the same answer when repeated)", body = CommitResponse),
        (status = 404, description = "Unknown reservation", body = ErrorBody),
        (status = 409, description = "Released, or committed with another amount", body = ErrorBody)))]
pub(crate) async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(request): ValidJson<CommitRequest>,
) -> Result<Json<CommitResponse>, ApiError> {
    Ok(Json(
        state.budgets.api_commit(request, &caller.actor()).await?,
    ))
}

#[utoipa::path(post, path = "/budget/release", tag = "budget", request_body = ReleaseRequest,
    responses(
        (status = 200, description = "Released (idempotent)", body = ReleaseResponse),
        (status = 404, description = "Unknown reservation", body = ErrorBody),
        (status = 409, description = "Already committed", body = ErrorBody)))]
pub(crate) async fn release(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(request): ValidJson<ReleaseRequest>,
) -> Result<Json<ReleaseResponse>, ApiError> {
    Ok(Json(
        state.budgets.api_release(request, &caller.actor()).await?,
    ))
}

#[utoipa::path(get, path = "/budget/state", tag = "budget", params(StateRequest),
    responses(
        (status = 200, description = "The budget as the read model holds it", body = StateResponse),
        (status = 404, description = "No limit was ever set for this tenant/project", body = ErrorBody)))]
pub(crate) async fn state(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(request): ValidQuery<StateRequest>,
) -> Result<ReadAt<Json<StateResponse>>, ApiError> {
    caller.may_see("tenant_id", &request.tenant_id)?;
    let answer = state.budget_reads.state(request).await?;
    Ok(ReadAt(answer.read_position, Json(answer)))
}

/// Which budget, and optionally which write to wait for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReservationsQuery {
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: String,
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub project_id: String,
    /// Reservations per answer, 1-1000 (default 100), the soonest to expire first.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Answer once the read model has applied the event at this position.
    #[serde(default)]
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// An open reservation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenReservationBody {
    pub reservation_id: Uuid,
    pub task_id: String,
    pub model: String,
    pub allocated: i64,
    pub reserved_at: DateTime<Utc>,
    /// When the expiry worker releases it unless it is committed or released first.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationsResponse {
    pub tenant_id: String,
    pub project_id: String,
    pub items: Vec<OpenReservationBody>,
    /// Open reservations in all (`items` holds at most `limit` of them).
    pub open: i64,
    /// The read models' contiguous watermark this answer stands at (also the
    /// `X-Read-Position` header): every event up to this position in commit order is
    /// applied to it; 0 before the first event, null while not known. Follow the WebSocket
    /// with `since` = this to receive every event the answer does not show yet.
    pub read_position: Option<i64>,
}

fn budget_id(tenant_id: &str, project_id: &str) -> Result<String, ApiError> {
    domain::validate_id(tenant_id).map_err(|e| ApiError::invalid("tenant_id", e.to_string()))?;
    domain::validate_id(project_id).map_err(|e| ApiError::invalid("project_id", e.to_string()))?;
    Ok(budget_aggregate_id(tenant_id, project_id))
}

/// The open reservations of one budget, from the read model.
#[utoipa::path(get, path = "/budget/reservations", tag = "budget", params(ReservationsQuery),
    responses((status = 200, description = "Open reservations, the soonest to expire first", body = ReservationsResponse)))]
pub(crate) async fn reservations(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(query): ValidQuery<ReservationsQuery>,
) -> Result<ReadAt<Json<ReservationsResponse>>, ApiError> {
    let id = budget_id(&query.tenant_id, &query.project_id)?;
    caller.may_see("tenant_id", &query.tenant_id)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    wait_for(&state, query.min_position).await?;
    let read_position = read_position(&state).await?;
    let (rows, open) = projections::query::open_reservations(&state.pool, &id, limit).await?;
    Ok(ReadAt(
        read_position,
        Json(ReservationsResponse {
            tenant_id: query.tenant_id,
            project_id: query.project_id,
            items: rows
                .into_iter()
                .map(|r| OpenReservationBody {
                    reservation_id: r.reservation_id,
                    task_id: r.task_id,
                    model: r.model,
                    allocated: r.allocated,
                    reserved_at: r.reserved_at,
                    expires_at: r.expires_at,
                })
                .collect(),
            open,
            read_position,
        }),
    ))
}

/// The longest window of `GET /budget/usage`: a day of minutes.
const MAX_USAGE_MINUTES: i64 = 1440;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: String,
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub project_id: String,
    /// The window: this many minutes up to now, 1-1440 (default 60), one point each.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1440)]
    pub minutes: Option<i64>,
    /// Answer once the read model has applied the event at this position.
    #[serde(default)]
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// The budget's totals at the end of one minute.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsagePointBody {
    /// The minute's start.
    pub at: DateTime<Utc>,
    /// The limit; absent while none is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    pub used: i64,
    pub reserved: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageResponse {
    pub tenant_id: String,
    pub project_id: String,
    /// Always 60: one point per minute.
    pub bucket_seconds: u32,
    /// Oldest first; minutes before the budget existed have no point.
    pub points: Vec<UsagePointBody>,
    /// Tokens used per hour over the window.
    pub burn_rate_tokens_per_hour: f64,
    /// When used + reserved reaches the limit at that rate (now when it already has);
    /// null without a limit, without burn or beyond ten years.
    pub projected_exhaustion_at: Option<DateTime<Utc>>,
    /// The read models' contiguous watermark this answer stands at (also the
    /// `X-Read-Position` header): every event up to this position in commit order is
    /// applied to it; 0 before the first event, null while not known. Follow the WebSocket
    /// with `since` = this to receive every event the answer does not show yet.
    pub read_position: Option<i64>,
}

/// A budget's used and reserved tokens per minute, its burn rate and when it runs out.
#[utoipa::path(get, path = "/budget/usage", tag = "budget", params(UsageQuery),
    responses((status = 200, description = "One point per minute of the window", body = UsageResponse)))]
pub(crate) async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(query): ValidQuery<UsageQuery>,
) -> Result<ReadAt<Json<UsageResponse>>, ApiError> {
    let id = budget_id(&query.tenant_id, &query.project_id)?;
    caller.may_see("tenant_id", &query.tenant_id)?;
    let minutes = query.minutes.unwrap_or(60);
    if !(1..=MAX_USAGE_MINUTES).contains(&minutes) {
        return Err(ApiError::invalid(
            "minutes",
            format!("must be between 1 and {MAX_USAGE_MINUTES}"),
        ));
    }
    wait_for(&state, query.min_position).await?;
    let now = Utc::now();
    let this_minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let from = this_minute - TimeDelta::minutes(minutes - 1);
    let read_position = read_position(&state).await?;
    let rows = projections::query::budget_usage(&state.pool, &id, from).await?;
    let usage = projections::usage::series(&rows, from, now);
    Ok(ReadAt(
        read_position,
        Json(UsageResponse {
            tenant_id: query.tenant_id,
            project_id: query.project_id,
            bucket_seconds: 60,
            points: usage
                .points
                .into_iter()
                .map(|p| UsagePointBody {
                    at: p.at,
                    total: p.total,
                    used: p.used,
                    reserved: p.reserved,
                })
                .collect(),
            burn_rate_tokens_per_hour: usage.burn_rate_per_hour,
            projected_exhaustion_at: usage.projected_exhaustion_at,
            read_position,
        }),
    ))
}
