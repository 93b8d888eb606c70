//! `/circuit-breakers`: the list, one breaker, its configuration and the admin overrides.

use auth::Permission;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::breaker_api::{
    AdminAction, BreakerBody, ChangeResponse, ConfigRequest, ListResponse, NameRequest,
    ResetAllResponse,
};
use commands::store::Actor;

use crate::error::ApiError;
use crate::extract::{Caller, ValidJson};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/circuit-breakers", get(list))
        // A static segment wins over `{name}`: no breaker can be configured as `reset_all`.
        .route("/circuit-breakers/reset_all", post(reset_all))
        .route("/circuit-breakers/{name}", get(show).put(configure))
        .route("/circuit-breakers/{name}/reset", post(reset))
        .route("/circuit-breakers/{name}/force_open", post(force_open))
        .route("/circuit-breakers/{name}/disable", post(disable))
}

fn actor(caller: &Caller) -> Actor {
    Actor::new(caller.username(), "http")
}

/// The `{name}` segment, validated like every breaker name (400 naming `name`).
fn name_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = path.map_err(|rejection| ApiError::invalid("name", rejection.body_text()))?;
    domain::breaker::validate_breaker_name(&name)
        .map_err(|e| ApiError::invalid("name", e.to_string()))?;
    Ok(name)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ListResponse>, ApiError> {
    caller.require(Permission::ReadBreakers)?;
    Ok(Json(state.breakers.api_list().await?))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<BreakerBody>, ApiError> {
    caller.require(Permission::ReadBreakers)?;
    let name = name_of(path)?;
    Ok(Json(state.breakers.api_status(NameRequest { name }).await?))
}

async fn configure(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ValidJson(request): ValidJson<ConfigRequest>,
) -> Result<Json<ChangeResponse>, ApiError> {
    caller.require(Permission::WriteBreakers)?;
    let name = name_of(path)?;
    Ok(Json(
        state
            .breakers
            .api_configure(&name, request, &actor(&caller))
            .await?,
    ))
}

async fn admin(
    state: AppState,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    action: AdminAction,
) -> Result<Json<ChangeResponse>, ApiError> {
    caller.require(Permission::AdminResetBreakers)?;
    let name = name_of(path)?;
    Ok(Json(
        state
            .breakers
            .api_admin(&name, action, &actor(&caller))
            .await?,
    ))
}

async fn reset(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ChangeResponse>, ApiError> {
    admin(state, caller, path, AdminAction::Reset).await
}

async fn force_open(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ChangeResponse>, ApiError> {
    admin(state, caller, path, AdminAction::ForceOpen).await
}

async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ChangeResponse>, ApiError> {
    admin(state, caller, path, AdminAction::Disable).await
}

async fn reset_all(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ResetAllResponse>, ApiError> {
    caller.require(Permission::AdminResetBreakers)?;
    Ok(Json(state.breakers.api_reset_all(&actor(&caller)).await?))
}
