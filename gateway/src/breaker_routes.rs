//! `/circuit-breakers`: the list, one breaker, its configuration and the admin overrides.
//! Who may call each route is declared in [`crate::routes::ROUTES`].

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::breaker_api::{
    AdminAction, BreakerBody, ChangeResponse, ConfigRequest, ListResponse, NameRequest,
    OverrideRequest, ResetAllResponse, TransitionKind, TransitionsResponse,
};
use serde::Deserialize;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ValidJson, ValidQuery};
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
        .route("/circuit-breakers/{name}/transitions", get(transitions))
}

/// `GET /circuit-breakers/{name}/transitions` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TransitionsQuery {
    /// Transitions in the answer, newest first, 1-100 (default 10).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `all` (default), `openings` (each opening with its cause) or `overrides` (operators'
    /// resets, forced openings and disablings, with who and why).
    #[serde(default)]
    #[param(inline)]
    pub kind: Option<TransitionKind>,
}

#[utoipa::path(get, path = "/circuit-breakers/{name}/transitions", tag = "breakers", params(("name" = String, Path, description = "Breaker name", pattern = r"^[A-Za-z0-9_.-]{1,64}$"), TransitionsQuery),
    responses((status = 200, description = "The breaker's latest state changes, newest first (none for a name without events)", body = TransitionsResponse)))]
pub(crate) async fn transitions(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ValidQuery(query): ValidQuery<TransitionsQuery>,
) -> Result<Json<TransitionsResponse>, ApiError> {
    let name = name_of(path)?;
    let limit = query.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    Ok(Json(TransitionsResponse {
        transitions: state
            .breakers
            .transitions(&name, query.kind.unwrap_or_default(), limit)
            .await?,
    }))
}

/// The `{name}` segment, validated like every breaker name (400 naming `name`).
fn name_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = path.map_err(|rejection| ApiError::invalid("name", rejection.body_text()))?;
    domain::breaker::validate_breaker_name(&name)
        .map_err(|e| ApiError::invalid("name", e.to_string()))?;
    Ok(name)
}

#[utoipa::path(get, path = "/circuit-breakers", tag = "breakers",
    responses((status = 200, description = "Every breaker by name", body = ListResponse)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<ListResponse>, ApiError> {
    Ok(Json(state.breakers.api_list().await?))
}

#[utoipa::path(get, path = "/circuit-breakers/{name}", tag = "breakers", params(("name" = String, Path, description = "Breaker name", pattern = r"^[A-Za-z0-9_.-]{1,64}$")),
    responses(
        (status = 200, description = "One breaker in full", body = BreakerBody),
        (status = 404, description = "No such breaker", body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<BreakerBody>, ApiError> {
    let name = name_of(path)?;
    Ok(Json(state.breakers.api_status(NameRequest { name }).await?))
}

#[utoipa::path(put, path = "/circuit-breakers/{name}", tag = "breakers", params(("name" = String, Path, description = "Breaker name", pattern = r"^[A-Za-z0-9_.-]{1,64}$")), request_body = ConfigRequest,
    responses((status = 200, description = "The breaker after the change", body = ChangeResponse)))]
pub(crate) async fn configure(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ValidJson(request): ValidJson<ConfigRequest>,
) -> Result<Json<ChangeResponse>, ApiError> {
    let name = name_of(path)?;
    Ok(Json(
        state
            .breakers
            .api_configure(&name, request, &caller.actor())
            .await?,
    ))
}

/// The optional `{"reason"}` of an override: no body, `null`, or the object (400 naming
/// the field).
fn reason_of(body: Result<Bytes, BytesRejection>) -> Result<Option<String>, ApiError> {
    let body = body.map_err(|rejection| ApiError::invalid("body", rejection.body_text()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let request: Option<OverrideRequest> = commands::api::parse(&body)?;
    Ok(request.unwrap_or_default().reason()?)
}

async fn admin(
    state: AppState,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    action: AdminAction,
) -> Result<Json<ChangeResponse>, ApiError> {
    let name = name_of(path)?;
    Ok(Json(
        state
            .breakers
            .api_admin(&name, action, &caller.actor())
            .await?,
    ))
}

#[utoipa::path(post, path = "/circuit-breakers/{name}/reset", tag = "breakers", params(("name" = String, Path, description = "Breaker name", pattern = r"^[A-Za-z0-9_.-]{1,64}$")),
    responses(
        (status = 200, description = "Closed again, failures cleared", body = ChangeResponse),
        (status = 404, description = "No such breaker", body = ErrorBody)))]
pub(crate) async fn reset(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ChangeResponse>, ApiError> {
    admin(state, caller, path, AdminAction::Reset).await
}

#[utoipa::path(post, path = "/circuit-breakers/{name}/force_open", tag = "breakers", params(("name" = String, Path, description = "Breaker name", pattern = r"^[A-Za-z0-9_.-]{1,64}$")),
    request_body(content = Option<OverrideRequest>, description = "Optional: why (kept in the event)"),
    responses(
        (status = 200, description = "Held open until a reset", body = ChangeResponse),
        (status = 404, description = "No such breaker", body = ErrorBody)))]
pub(crate) async fn force_open(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ChangeResponse>, ApiError> {
    let reason = reason_of(body)?;
    admin(state, caller, path, AdminAction::ForceOpen { reason }).await
}

#[utoipa::path(post, path = "/circuit-breakers/{name}/disable", tag = "breakers", params(("name" = String, Path, description = "Breaker name", pattern = r"^[A-Za-z0-9_.-]{1,64}$")),
    request_body(content = Option<OverrideRequest>, description = "Optional: why (kept in the event)"),
    responses(
        (status = 200, description = "Switched off until a reset", body = ChangeResponse),
        (status = 404, description = "No such breaker", body = ErrorBody)))]
pub(crate) async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ChangeResponse>, ApiError> {
    let reason = reason_of(body)?;
    admin(state, caller, path, AdminAction::Disable { reason }).await
}

#[utoipa::path(post, path = "/circuit-breakers/reset_all", tag = "breakers",
    responses((status = 200, description = "The names that were reset", body = ResetAllResponse)))]
pub(crate) async fn reset_all(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ResetAllResponse>, ApiError> {
    Ok(Json(state.breakers.api_reset_all(&caller.actor()).await?))
}
