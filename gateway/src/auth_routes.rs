//! `/auth/login`, `/auth/logout`, `/auth/me`.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{extract::State, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{Caller, ValidJson, SESSION_COOKIE};
use crate::users::check_password;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize)]
pub struct LoginResponse {
    pub token: String,
    pub role: String,
    pub permissions: Vec<String>,
    pub expires_in: i64,
}

async fn login(
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

async fn logout() -> Response {
    let mut response = Json(json!({"logged_out": true})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cp_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

async fn me(caller: Caller) -> Json<serde_json::Value> {
    let claims = caller.0;
    Json(json!({
        "username": claims.sub,
        "role": claims.role,
        "permissions": claims.permissions,
        "expires_at": claims.exp,
    }))
}
