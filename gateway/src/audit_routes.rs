//! `/audit/*`: the event log for auditors (permission `read:audit`): a filtered, paginated
//! listing, an NDJSON export, and a verification of the hash chains (in one answer, or
//! streamed with its progress for long logs). Access is declared in [`crate::routes::ROUTES`].

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use streams::audit::{self, AuditFilter, VerifyProgress, VerifyReport, MAX_PAGE};
use streams::EventEnvelope;

use crate::error::ApiError;
use crate::extract::ValidQuery;
use crate::read_after_write::ReadAt;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/events", get(events))
        .route("/audit/export", get(export))
        .route("/audit/verify", get(verify))
        .route("/audit/verify/stream", get(verify_stream))
}

/// A page of events; pass `next_after_position` as `after_position` for the next one. A page
/// holds at most `limit` events and ends early past 8 MiB of them (at least one event).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct EventsPage {
    events: Vec<EventEnvelope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after_position: Option<i64>,
    /// Where this read stands in commit order (also the `X-Read-Position` header): every
    /// event up to this position in commit order is committed and shown when it matches.
    /// An event with a lower position than the page's last one can commit later (positions
    /// are taken at insert, not at commit): follow the WebSocket with `since` = this to
    /// receive every event the page may not show, in commit order.
    read_position: i64,
}

fn check(filter: &AuditFilter) -> Result<(), ApiError> {
    if let Some(limit) = filter.limit {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
    }
    if filter.sequence.is_some_and(|s| s < 1) {
        return Err(ApiError::invalid("sequence", "must be at least 1"));
    }
    if filter.after_position.is_some_and(|p| p < 0) {
        return Err(ApiError::invalid("after_position", "must not be negative"));
    }
    // PostgreSQL text cannot hold NUL, and no name has control characters.
    for (field, value) in [
        ("aggregate_type", &filter.aggregate_type),
        ("aggregate_id", &filter.aggregate_id),
        ("event_type", &filter.event_type),
        ("actor", &filter.actor),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().count() > 256 || v.chars().any(char::is_control))
        {
            return Err(ApiError::invalid(
                field,
                "must be at most 256 characters without control characters",
            ));
        }
    }
    // Inside what a PostgreSQL timestamp holds, with room to spare.
    for (field, value) in [("from", filter.from), ("to", filter.to)] {
        if value.is_some_and(|t| !(1..=9999).contains(&chrono::Datelike::year(&t))) {
            return Err(ApiError::invalid(field, "must be between years 1 and 9999"));
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/audit/events", tag = "audit", params(AuditFilter),
    responses((status = 200, description = "A page of events in log order", body = EventsPage)))]
pub(crate) async fn events(
    State(state): State<AppState>,
    ValidQuery(filter): ValidQuery<AuditFilter>,
) -> Result<ReadAt<Json<EventsPage>>, ApiError> {
    check(&filter)?;
    // Before the page, in its own statement: what it covers had committed, so the page's
    // later snapshot sees it (audit::read_position).
    let read_position = audit::read_position(&state.pool).await?;
    let page = audit::list_events(&state.pool, &filter).await?;
    // Full by count, or ended early by size (audit::MAX_PAGE_BYTES): more may follow.
    let next_after_position = if page.more {
        page.events.last().map(|e| e.global_position)
    } else {
        None
    };
    Ok(ReadAt(
        Some(read_position),
        Json(EventsPage {
            events: page.events,
            next_after_position,
            read_position,
        }),
    ))
}

/// Every matching event, one JSON object per line, streamed page by page (constant memory
/// however long the log).
#[utoipa::path(get, path = "/audit/export", tag = "audit", params(AuditFilter),
    responses((status = 200, description = "Every matching event, one JSON object (an `EventEnvelope`) per line",
        content_type = "application/x-ndjson", body = String)))]
pub(crate) async fn export(
    State(state): State<AppState>,
    ValidQuery(mut filter): ValidQuery<AuditFilter>,
) -> Result<Response, ApiError> {
    check(&filter)?;
    filter.limit = Some(MAX_PAGE);
    // The first page before the status goes out: a failure then is a proper error answer,
    // not a body that breaks off.
    let first = audit::list_events(&state.pool, &filter).await?;
    let pool = state.pool.clone();
    let pages = futures::stream::unfold(Some((filter, Some(first))), move |next| {
        let pool = pool.clone();
        async move {
            let (mut filter, prefetched) = next?;
            let page = match prefetched {
                Some(page) => Ok(page),
                None => audit::list_events(&pool, &filter).await,
            };
            match page {
                Ok(audit::EventPage { events, more }) => {
                    let mut lines = Vec::new();
                    for event in &events {
                        // Serialising an envelope cannot fail (strings, numbers, raw JSON).
                        if let Ok(line) = serde_json::to_vec(event) {
                            lines.extend_from_slice(&line);
                            lines.push(b'\n');
                        }
                    }
                    let next = if more && !events.is_empty() {
                        filter.after_position = events.last().map(|e| e.global_position);
                        Some((filter, None))
                    } else {
                        None
                    };
                    Some((Ok::<Bytes, std::io::Error>(Bytes::from(lines)), next))
                }
                Err(error) => {
                    // The status is already sent: end the body early and log why.
                    tracing::error!(%error, "audit export stopped");
                    Some((Err(std::io::Error::other("audit export failed")), None))
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response())
}

#[utoipa::path(get, path = "/audit/verify", tag = "audit",
    responses((status = 200, description = "The hash chains recomputed; the first bad event, if any", body = VerifyReport)))]
pub(crate) async fn verify(State(state): State<AppState>) -> Result<Json<VerifyReport>, ApiError> {
    let js = async_nats::jetstream::new(state.nats.clone());
    let report =
        audit::verify_anchored(&state.pool, &js, &state.pipeline.events.name, &mut |_| true)
            .await?
            // Only a progress listener stops it, and this one never does.
            .ok_or_else(|| ApiError::Internal("the verification stopped by itself".into()))?;
    Ok(Json(report))
}

/// One line of `GET /audit/verify/stream`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum VerifyLine {
    /// Where the verification is (at most every 250 ms, and at the start of each phase:
    /// `chains`, `checkpoints`, then `stream`, the comparison with the events stream).
    Progress(VerifyProgress),
    /// The last line: the same report as `GET /audit/verify`.
    Result { report: Box<VerifyReport> },
    /// The last line when the verification could not finish (the status was sent already).
    Error { message: String },
}

fn ndjson(line: &VerifyLine) -> Bytes {
    let mut bytes = serde_json::to_vec(line).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// `GET /audit/verify` for long logs: the same verification, its progress streamed as NDJSON
/// lines while it runs, the report last. One request, no state kept on the server: a reader
/// that goes away stops the verification (its next progress report finds nobody listening).
#[utoipa::path(get, path = "/audit/verify/stream", tag = "audit",
    responses((status = 200, description = "NDJSON: `{\"type\":\"progress\",\"phase\",\"done\",\"total\"}` lines while it runs (at most every 250 ms), then one `{\"type\":\"result\",\"report\":{…}}` (as `GET /audit/verify`) or `{\"type\":\"error\",\"message\"}`",
        content_type = "application/x-ndjson", body = VerifyLine)))]
pub(crate) async fn verify_stream(State(state): State<AppState>) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    tokio::spawn(async move {
        let outcome = {
            let tx = &tx;
            // A full channel (a slow reader) skips a progress line; a closed one stops.
            let mut on = |p: &VerifyProgress| {
                !matches!(
                    tx.try_send(ndjson(&VerifyLine::Progress(p.clone()))),
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_))
                )
            };
            let js = async_nats::jetstream::new(state.nats.clone());
            audit::verify_anchored(&state.pool, &js, &state.pipeline.events.name, &mut on).await
        };
        let last = match outcome {
            Ok(None) => return, // the reader went away
            Ok(Some(report)) => VerifyLine::Result {
                report: Box::new(report),
            },
            Err(error) => {
                tracing::error!(%error, "audit verify stream stopped");
                VerifyLine::Error {
                    message: "the verification could not finish".into(),
                }
            }
        };
        let _ = tx.send(ndjson(&last)).await;
    });
    let lines = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|line| line.map(Ok::<Bytes, std::io::Error>))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}
