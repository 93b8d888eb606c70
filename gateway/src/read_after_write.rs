//! Read-your-writes on demand: a read that names `min_position` (the `position` of a
//! command's answer) waits until the read models have applied that event, or fails with
//! 503 `not_yet_applied` and Retry-After. Shared by every read-model route; the rule itself
//! is [`projections::query::await_min_position`], which the NATS reads use too.
//!
//! And where a read stands: every read of the read models (and of the log, `/audit/events`)
//! answers the position it stands at, in the `X-Read-Position` header and as
//! `read_position` in its body ([`ReadAt`]), for a client to follow the log from there
//! (WebSocket `since`) and miss nothing its read did not show.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use commands::CommandError;
use projections::query::{await_min_position, MinPosition};

use crate::error::ApiError;
use crate::AppState;

/// Waits for `min_position` up to `MIN_POSITION_WAIT_MS` (503 with Retry-After when it is
/// not applied in time).
pub async fn wait_for(state: &AppState, min_position: Option<i64>) -> Result<(), ApiError> {
    match await_min_position(&state.pool, min_position, state.read_wait).await? {
        MinPosition::Ready => Ok(()),
        MinPosition::Invalid(why) => Err(ApiError::invalid("min_position", why)),
        MinPosition::NotYetApplied(position) => Err(CommandError::NotYetApplied(position).into()),
    }
}

/// The header that names where a read stands (absent while that is not known).
pub const READ_POSITION_HEADER: &str = "x-read-position";

/// The routes whose 200 answers carry [`READ_POSITION_HEADER`] and a `read_position` field
/// (the OpenAPI document declares the header from this list).
pub const READ_POSITION_ROUTES: &[(&str, &str)] = &[
    ("get", "/budget/state"),
    ("get", "/budget/reservations"),
    ("get", "/budget/usage"),
    ("get", "/governance/status"),
    ("get", "/dlq"),
    ("get", "/dlq/groups"),
    ("get", "/dlq/{id}"),
    ("get", "/stats"),
    ("get", "/audit/events"),
];

/// Where the read models stand, read before the rows that go with it (why that order is
/// safe: [`projections::query::read_position`]).
pub async fn read_position(state: &AppState) -> Result<Option<i64>, ApiError> {
    Ok(projections::query::read_position(&state.pool).await?)
}

/// An answer and the position its read stands at, sent as [`READ_POSITION_HEADER`].
pub struct ReadAt<T>(pub Option<i64>, pub T);

impl<T: IntoResponse> IntoResponse for ReadAt<T> {
    fn into_response(self) -> Response {
        let ReadAt(position, answer) = self;
        let mut response = answer.into_response();
        if let Some(position) = position {
            response
                .headers_mut()
                .insert(READ_POSITION_HEADER, HeaderValue::from(position));
        }
        response
    }
}
