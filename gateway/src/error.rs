//! One error type for every handler, mapped to a status and a JSON body
//! `{"error":{"code","message","field"?}}`. Internal details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use commands::CommandError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    BadCredentials(String),
    #[error("missing permission {0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large (at most {0} bytes)")]
    TooLarge(usize),
    /// Too many failed logins for this account: wait this many seconds.
    #[error("too many failed logins for this account; retry after {0} s")]
    TooManyAttempts(u64),
    /// Not now, but soon (503 with `Retry-After`).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Command(CommandError::from(error))
    }
}

/// The body of every error answer: `{"error":{"code","message","field"?}}`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`) and people (`message`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_request`, `forbidden`, `rate_limited`.
    pub code: String,
    pub message: String,
    /// The input at fault (a JSON field, query parameter, path segment or `body`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error body, for layers that answer without an [`ApiError`].
pub fn body(code: &str, message: String, field: Option<&str>) -> ErrorBody {
    ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message,
            field: field.map(str::to_string),
        },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, field, retry_after) = match &self {
            ApiError::Invalid { field, message } => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{field}: {message}"),
                Some(field.as_str()),
                None,
            ),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                self.to_string(),
                None,
                None,
            ),
            ApiError::BadCredentials(message) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                message.clone(),
                None,
                None,
            ),
            ApiError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                self.to_string(),
                None,
                None,
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone(), None, None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone(), None, None),
            ApiError::TooManyAttempts(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                self.to_string(),
                Some("username"),
                None,
            ),
            ApiError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                self.to_string(),
                Some("body"),
                None,
            ),
            ApiError::Unavailable(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                m.clone(),
                None,
                Some("1"),
            ),
            ApiError::Command(error) => {
                let (status, retry) = match error {
                    CommandError::Invalid { .. } => (StatusCode::BAD_REQUEST, None),
                    CommandError::NotFound(_) => (StatusCode::NOT_FOUND, None),
                    CommandError::OutOfScope { .. } => (StatusCode::FORBIDDEN, None),
                    CommandError::Conflict(_) => (StatusCode::CONFLICT, None),
                    CommandError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, None),
                    CommandError::Busy => (StatusCode::SERVICE_UNAVAILABLE, Some("1")),
                    CommandError::NotYetApplied(_) => (StatusCode::SERVICE_UNAVAILABLE, Some("1")),
                    CommandError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, Some("2")),
                    CommandError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
                };
                if status.is_server_error() {
                    tracing::error!(error = ?error, "command failed");
                }
                let message = match error {
                    CommandError::Invalid { field, message } => format!("{field}: {message}"),
                    other => other.public_message(),
                };
                (status, error.code(), message, error.field(), retry)
            }
            ApiError::Internal(source) => {
                let id = uuid::Uuid::new_v4();
                tracing::error!(error_id = %id, error = ?source, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("internal error (id {id})"),
                    None,
                    None,
                )
            }
        };
        let mut response = (status, Json(body(code, message, field))).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        if let ApiError::TooManyAttempts(seconds) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
