//! Read-your-writes on demand: a read that names `min_position` (the `position` of a
//! command's answer) waits until the read models have applied that event, or fails with
//! 503 `not_yet_applied` and Retry-After. Shared by every read-model route.

use std::time::Duration;

use commands::CommandError;

use crate::error::ApiError;
use crate::AppState;

/// Longest wait of a `min_position` read.
pub const READ_WAIT: Duration = Duration::from_secs(5);

/// Waits for `min_position` (503 with Retry-After when it is not applied in time).
pub async fn wait_for(state: &AppState, min_position: Option<i64>) -> Result<(), ApiError> {
    let Some(position) = min_position else {
        return Ok(());
    };
    if position < 1 {
        return Err(ApiError::invalid("min_position", "must be at least 1"));
    }
    // A command's answer names a committed event: a position no event has would never be
    // applied (a client error, not a 503).
    if !projections::query::event_exists(&state.pool, position).await? {
        return Err(ApiError::invalid(
            "min_position",
            "no event has this position; pass the position of a command's answer",
        ));
    }
    let applied = projections::query::wait_until_applied(&state.pool, position, READ_WAIT).await?;
    if applied {
        Ok(())
    } else {
        Err(CommandError::NotYetApplied(position).into())
    }
}
