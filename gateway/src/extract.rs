//! Extractors that turn bad input into a 400 naming the field (never axum's plain-text
//! rejections), and the authenticated caller.

use auth::{Claims, Permission};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::{AppState, MAX_BODY_BYTES};

/// The name of the HttpOnly session cookie set by `/auth/login`.
pub const SESSION_COOKIE: &str = "cp_session";

/// A JSON body parsed with field-level errors.
pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(MAX_BODY_BYTES)
            } else {
                ApiError::invalid("body", rejection.body_text())
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid("body", "a JSON body is required"));
        }
        Ok(ValidJson(commands::api::parse(&bytes)?))
    }
}

/// A query string parsed with field-level errors.
pub struct ValidQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ValidQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = error.into_inner().to_string();
                let field = if path == "." || path == "?" {
                    message
                        .split('`')
                        .nth(1)
                        .map(str::to_string)
                        .unwrap_or_else(|| "query".into())
                } else {
                    path
                };
                ApiError::invalid(field, message)
            })
    }
}

/// The authenticated caller: a verified token from `Authorization: Bearer` or the
/// session cookie.
pub struct Caller(pub Claims);

impl Caller {
    /// Refuses with 403 unless the caller's token carries `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.0.has(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(permission.as_str()))
        }
    }

    pub fn username(&self) -> &str {
        &self.0.sub
    }

    /// Refuses (403 naming `field`) a tenant outside the caller's tenants.
    pub fn may_see(&self, field: &str, tenant: &str) -> Result<(), ApiError> {
        Ok(self.actor().may_act_on(field, tenant)?)
    }

    /// The caller as the write side records it, limited to the caller's tenants.
    pub fn actor(&self) -> commands::store::Actor {
        commands::store::Actor::new(self.username(), "http").scoped(self.0.scope())
    }
}

/// The claims of the request's token (bearer first, then the session cookie), verified by
/// the rate-limit layer ([`crate::hardening`]) so the layers inside need not verify the
/// token again. Only server code can put it in a request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedClaims(pub Claims);

/// The token of `Authorization: Bearer <token>`, if any.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The value of the session cookie, if any.
pub(crate) fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Verified already by the route table's layer (`routes::enforce`).
        if let Some(claims) = parts.extensions.get::<Claims>() {
            return Ok(Caller(claims.clone()));
        }
        if let Some(VerifiedClaims(claims)) = parts.extensions.get::<VerifiedClaims>() {
            return Ok(Caller(claims.clone()));
        }
        let state = AppState::from_ref(state);
        let token = bearer_token(&parts.headers)
            .or_else(|| session_token(&parts.headers))
            .ok_or(ApiError::Unauthenticated)?;
        Ok(Caller(state.auth.authenticate(token)?))
    }
}
