//! `/budget/*`: limits, reservations, commits, releases and state.

use auth::Permission;
use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use commands::api::{
    CommitRequest, CommitResponse, LimitResponse, ReleaseRequest, ReleaseResponse, ReserveRequest,
    ReserveResponse, SetLimitRequest, StateRequest, StateResponse,
};
use commands::store::Actor;

use crate::error::ApiError;
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

async fn set_limit(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(request): ValidJson<SetLimitRequest>,
) -> Result<Json<LimitResponse>, ApiError> {
    caller.require(Permission::AdminBudget)?;
    Ok(Json(
        state
            .budgets
            .api_set_limit(request, &actor(&caller))
            .await?,
    ))
}

async fn reserve(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(request): ValidJson<ReserveRequest>,
) -> Result<Json<ReserveResponse>, ApiError> {
    caller.require(Permission::WriteBudget)?;
    Ok(Json(
        state.budgets.api_reserve(request, &actor(&caller)).await?,
    ))
}

async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(request): ValidJson<CommitRequest>,
) -> Result<Json<CommitResponse>, ApiError> {
    caller.require(Permission::WriteBudget)?;
    Ok(Json(
        state.budgets.api_commit(request, &actor(&caller)).await?,
    ))
}

async fn release(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(request): ValidJson<ReleaseRequest>,
) -> Result<Json<ReleaseResponse>, ApiError> {
    caller.require(Permission::WriteBudget)?;
    Ok(Json(
        state.budgets.api_release(request, &actor(&caller)).await?,
    ))
}

async fn state(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(request): ValidQuery<StateRequest>,
) -> Result<Json<StateResponse>, ApiError> {
    caller.require(Permission::ReadBudget)?;
    Ok(Json(state.budget_reads.state(request).await?))
}
