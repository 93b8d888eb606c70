//! Read-your-writes on demand: a read that names `min_position` (the `position` of a
//! command's answer) waits until the read models have applied that event, or fails with
//! 503 `not_yet_applied` and Retry-After. Shared by every read-model route; the rule itself
//! is [`projections::query::await_min_position`], which the NATS reads use too.

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
