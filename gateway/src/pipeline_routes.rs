//! `GET /system/pipeline` (permission `read:system`): how far the publisher and the
//! projector are behind the event table, and which of them this process runs.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use auth::Permission;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use projections::ProjectorStats;
use serde_json::{json, Value};
use streams::PublisherStats;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::AppState;

/// This process's pipeline parts, for the status endpoint.
#[derive(Clone)]
pub struct PipelineInfo {
    /// The JetStream stream the publisher feeds.
    pub stream: String,
    pub publisher: Arc<PublisherStats>,
    pub projector: Arc<ProjectorStats>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/system/pipeline", get(status))
}

async fn status(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Permission::ReadSystem)?;
    let info = &state.pipeline;
    let status =
        streams::status::pipeline_status(&state.pool, &info.stream, projections::apply::PROJECTION)
            .await?;
    let (publisher, projector) = (&info.publisher, &info.projector);
    Ok(Json(json!({
        "stream": info.stream,
        "last_position": status.last_position,
        "publisher": status.publisher,
        "projector": status.projector,
        "this_process": {
            "publisher_active": publisher.active.load(Ordering::Relaxed),
            "published": publisher.published.load(Ordering::Relaxed),
            "duplicates": publisher.duplicates.load(Ordering::Relaxed),
            "projector_active": projector.active.load(Ordering::Relaxed),
            "projected": projector.projected.load(Ordering::Relaxed),
            "skipped": projector.skipped.load(Ordering::Relaxed),
        }
    })))
}
