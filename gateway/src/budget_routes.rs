//! `/budget/*`: limits, reservations, commits, releases and state. Who may call each
//! route is declared in [`crate::routes::ROUTES`].

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use commands::api::{
    CommitRequest, CommitResponse, LimitResponse, ReleaseRequest, ReleaseResponse, ReserveRequest,
    ReserveResponse, SetLimitRequest, StateRequest, StateResponse,
};
use commands::store::Actor;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ValidJson, ValidQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/budget/limit", put(set_limit))
        .route("/budget/request", post(reserve))
        .route("/budget/commit", post(commit))
        .route("/budget/release", post(release))
        .route("/budget/state", get(state))
}

fn actor(caller: &Caller) -> Actor {
    Actor::new(caller.username(), "http")
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
            .api_set_limit(request, &actor(&caller))
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
        state.budgets.api_reserve(request, &actor(&caller)).await?,
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
        state.budgets.api_commit(request, &actor(&caller)).await?,
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
        state.budgets.api_release(request, &actor(&caller)).await?,
    ))
}

#[utoipa::path(get, path = "/budget/state", tag = "budget", params(StateRequest),
    responses(
        (status = 200, description = "The budget as the read model holds it", body = StateResponse),
        (status = 404, description = "No limit was ever set for this tenant/project", body = ErrorBody)))]
pub(crate) async fn state(
    State(state): State<AppState>,
    ValidQuery(request): ValidQuery<StateRequest>,
) -> Result<Json<StateResponse>, ApiError> {
    Ok(Json(state.budget_reads.state(request).await?))
}
