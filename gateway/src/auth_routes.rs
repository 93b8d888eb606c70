//! `/auth/login`, `/auth/logout`, `/auth/me`.

use auth::Grant;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{extract::State, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{bearer_token, session_token, Caller, ValidJson, SESSION_COOKIE};
use crate::users::check_login;
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
    headers: HeaderMap,
    ValidJson(request): ValidJson<LoginRequest>,
) -> Result<Response, ApiError> {
    // A cross-site HTML form can post text/plain without a preflight; it must not be able
    // to log a victim's browser into the attacker's account.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::invalid(
            "content-type",
            "must be application/json",
        ));
    }
    if request.username.is_empty() {
        return Err(ApiError::invalid("username", "must not be empty"));
    }
    if request.password.is_empty() || request.password.len() > 1024 {
        return Err(ApiError::invalid("password", "must be 1-1024 characters"));
    }
    if let Err(retry_after) = state.failed_logins.admit(&request.username) {
        return Err(ApiError::TooManyAttempts(retry_after));
    }
    let Some(account) = check_login(&state.pool, &request.username, &request.password).await?
    else {
        state.failed_logins.failed(&request.username);
        return Err(ApiError::BadCredentials(
            "wrong username or password".into(),
        ));
    };
    state.auth.note(&request.username, account.standing);
    let session_id = uuid::Uuid::new_v4().to_string();
    let grant = Grant {
        username: &request.username,
        role: account.role,
        tenants: account.tenants.as_deref(),
        session_id: &session_id,
        version: account.standing.token_version,
    };
    let role = account.role;
    let token = state
        .auth
        .keys()
        .issue(&grant, chrono::Utc::now().timestamp())
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let lifetime = state.auth.keys().lifetime_seconds();
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
    /// The tenants the caller may see and act on; `null` for every tenant.
    pub tenants: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 200, description = "The session ends on the server (its token is refused from now on) and the cookie is cleared", body = LogoutResponse)))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer_token(&headers).or_else(|| session_token(&headers));
    if let Some(claims) = token.and_then(|t| state.auth.authenticate(t).ok()) {
        state.auth.revoke(&state.pool, &claims).await?;
    }
    let mut response = Json(LogoutResponse { logged_out: true }).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cp_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
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
        tenants: claims.tenants,
    })
}

/// Failed logins per account, beside the per-address limit of the rate-limit layer: an
/// attacker spreading guesses over many addresses still gets [`FailedLogins::LIMIT`] tries
/// per account per [`FailedLogins::WINDOW`]. Bounded: at most [`FailedLogins::MAX_ACCOUNTS`]
/// accounts are tracked at once (names seen last beyond that are not counted).
#[derive(Debug, Default)]
pub struct FailedLogins {
    seen: std::sync::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>,
}

impl FailedLogins {
    pub const LIMIT: u32 = 10;
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
    pub const MAX_ACCOUNTS: usize = 10_000;

    /// `Err(seconds to wait)` when the account used up its failures of this window.
    pub fn admit(&self, username: &str) -> Result<(), u64> {
        let seen = self.seen.lock().expect("failed logins lock poisoned");
        match seen.get(username) {
            Some((failures, since))
                if *failures >= Self::LIMIT && since.elapsed() < Self::WINDOW =>
            {
                Err((Self::WINDOW - since.elapsed()).as_secs() + 1)
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, username: &str) {
        let mut seen = self.seen.lock().expect("failed logins lock poisoned");
        if seen.len() >= Self::MAX_ACCOUNTS && !seen.contains_key(username) {
            seen.retain(|_, (_, since)| since.elapsed() < Self::WINDOW);
            if seen.len() >= Self::MAX_ACCOUNTS {
                tracing::warn!("failed-login table full; not counting {username}");
                return;
            }
        }
        let entry = seen
            .entry(username.to_string())
            .or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= Self::WINDOW {
            *entry = (0, std::time::Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_refused_after_its_failures_and_others_are_not() {
        let limits = FailedLogins::default();
        for _ in 0..FailedLogins::LIMIT {
            assert!(limits.admit("alice").is_ok());
            limits.failed("alice");
        }
        let wait = limits.admit("alice").unwrap_err();
        assert!(wait > 0 && wait <= FailedLogins::WINDOW.as_secs() + 1);
        assert!(limits.admit("bob").is_ok());
    }
}
