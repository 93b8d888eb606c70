//! `/auth/login`, `/auth/logout`, `/auth/me`.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{extract::State, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ValidJson, SESSION_COOKIE};
use crate::users::check_password;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub username: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub role: String,
    pub permissions: Vec<String>,
    pub expires_in: i64,
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "A token, also set as the HttpOnly `cp_session` cookie", body = LoginResponse),
        (status = 401, description = "Wrong username or password", body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ValidJson(request): ValidJson<LoginRequest>,
) -> Result<Response, ApiError> {
    if request.username.is_empty() {
        return Err(ApiError::invalid("username", "must not be empty"));
    }
    if request.password.is_empty() || request.password.len() > 1024 {
        return Err(ApiError::invalid("password", "must be 1-1024 characters"));
    }
    let role = check_password(&state.pool, &request.username, &request.password)
        .await?
        .ok_or_else(|| ApiError::BadCredentials("wrong username or password".into()))?;
    let token = state
        .keys
        .issue(&request.username, role, chrono::Utc::now().timestamp())
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let lifetime = state.keys.lifetime_seconds();
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={lifetime}{}",
        if state.secure_cookies { "; Secure" } else { "" }
    );
    let body = LoginResponse {
        token,
        role: role.as_str().to_string(),
        permissions: role
            .permissions()
            .iter()
            .map(|p| p.as_str().to_string())
            .collect(),
        expires_in: lifetime,
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(Box::new(e)))?,
    );
    Ok(response)
}

/// `POST /auth/logout`.
#[derive(Serialize, ToSchema)]
pub struct LogoutResponse {
    pub logged_out: bool,
}

/// `GET /auth/me`: the caller's token, as the server reads it.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub username: String,
    pub role: String,
    pub permissions: Vec<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 200, description = "The session cookie is cleared", body = LogoutResponse)))]
pub(crate) async fn logout() -> Response {
    let mut response = Json(LogoutResponse { logged_out: true }).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cp_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

#[utoipa::path(get, path = "/auth/me", tag = "auth",
    responses((status = 200, description = "Who the token belongs to", body = MeResponse)))]
pub(crate) async fn me(caller: Caller) -> Json<MeResponse> {
    let claims = caller.0;
    Json(MeResponse {
        username: claims.sub,
        role: claims.role.as_str().to_string(),
        permissions: claims
            .permissions
            .iter()
            .map(|p| p.as_str().to_string())
            .collect(),
        expires_at: claims.exp,
    })
}
