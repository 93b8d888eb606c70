//! The one error type of the HTTP layer and its mapping to status codes. Every error body is
//! `{"error":{"code","message","field"}}`; nothing internal (engine text, panics) reaches a
//! client: unexpected failures are logged with a request id and answered opaquely.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The body is not the JSON we accept (syntax, types, unknown fields): 400.
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// Well-formed but not acceptable (unknown language, limits exceeded): 422.
    Invalid {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// The body exceeds the server's size limit: 413.
    TooLarge { message: String },
    /// No token, or one that does not verify: 401.
    Unauthorized { message: String },
    /// A valid token without the needed permission: 403.
    Forbidden { message: String },
    /// Every runner is busy and the queue is full: 429 with Retry-After.
    QueueFull { retry_after_secs: u64 },
    /// The container engine or the runtime image is not available, or the queue wait ran
    /// out: 503 with Retry-After.
    Unavailable {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    /// Anything unexpected: 500, with the id under which it was logged.
    Internal { request_id: String },
}

impl ApiError {
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code,
            message: message.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code, also used as a metrics label.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Invalid { code, .. }
            | ApiError::Unavailable { code, .. } => code,
            ApiError::TooLarge { .. } => "body_too_large",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::QueueFull { .. } => "queue_full",
            ApiError::Internal { .. } => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let (message, field, retry_after) = match self {
            ApiError::BadRequest { message, field, .. }
            | ApiError::Invalid { message, field, .. } => (message, field, None),
            ApiError::TooLarge { message }
            | ApiError::Unauthorized { message }
            | ApiError::Forbidden { message } => (message, None, None),
            ApiError::QueueFull { retry_after_secs } => (
                "every runner is busy and the queue is full; retry later".to_string(),
                None,
                Some(retry_after_secs),
            ),
            ApiError::Unavailable {
                message,
                retry_after_secs,
                ..
            } => (message, None, Some(retry_after_secs)),
            ApiError::Internal { request_id } => (
                format!("internal error (request id {request_id})"),
                None,
                None,
            ),
        };
        let body = json!({"error": {"code": code, "message": message, "field": field}});
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
