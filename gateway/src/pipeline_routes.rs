//! `GET /system/pipeline` (permission `read:system`): how far the publisher and the
//! projector are behind the event table, and which of them this process runs.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use projections::ProjectorStats;
use serde::Serialize;
use streams::status::StageLag;
use streams::PublisherStats;

use crate::error::ApiError;
use crate::AppState;

/// This process's pipeline parts, for the status endpoint.
#[derive(Clone)]
pub struct PipelineInfo {
    pub publisher: Arc<PublisherStats>,
    pub projector: Arc<ProjectorStats>,
    /// The JetStream stream the publisher feeds, as this process's readers last found it
    /// (`/readyz` reports a stream that belongs to another deployment).
    pub events: streams::EventsStream,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/system/pipeline", get(status))
}

/// `GET /system/pipeline`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PipelineResponse {
    /// The JetStream stream the publisher feeds.
    pub stream: String,
    /// This database's deployment id, which the stream's description carries.
    pub deployment: String,
    /// The deployment the stream belongs to when it is another one (then nothing of this
    /// process publishes to it or reads from it; `/readyz` is 503).
    pub stream_owner_when_foreign: Option<String>,
    /// The highest global position appended.
    pub last_position: i64,
    pub publisher: StageLag,
    pub projector: StageLag,
    pub this_process: ThisProcess,
}

/// This process's own publisher and projector counters (since it started).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ThisProcess {
    pub publisher_active: bool,
    /// The event this process's publisher cannot publish, and why (every later event
    /// waits behind it); absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher_stuck: Option<streams::Stuck>,
    pub published: u64,
    pub duplicates: u64,
    pub projector_active: bool,
    pub projected: u64,
    pub skipped: u64,
}

#[utoipa::path(get, path = "/system/pipeline", tag = "system",
    responses((status = 200, description = "Publisher and projector lag", body = PipelineResponse)))]
pub(crate) async fn status(
    State(state): State<AppState>,
) -> Result<Json<PipelineResponse>, ApiError> {
    let info = &state.pipeline;
    let status = streams::status::pipeline_status(
        &state.pool,
        &info.events.name,
        projections::apply::PROJECTION,
    )
    .await?;
    let (publisher, projector) = (&info.publisher, &info.projector);
    Ok(Json(PipelineResponse {
        stream: info.events.name.clone(),
        deployment: info.events.deployment.clone(),
        stream_owner_when_foreign: info.events.foreign_owner(),
        last_position: status.last_position,
        publisher: status.publisher,
        projector: status.projector,
        this_process: ThisProcess {
            publisher_active: publisher.active.load(Ordering::Relaxed),
            publisher_stuck: publisher.stuck(),
            published: publisher.published.load(Ordering::Relaxed),
            duplicates: publisher.duplicates.load(Ordering::Relaxed),
            projector_active: projector.active.load(Ordering::Relaxed),
            projected: projector.projected.load(Ordering::Relaxed),
            skipped: projector.skipped.load(Ordering::Relaxed),
        },
    }))
}
