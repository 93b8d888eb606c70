//! `/dlq`: the dead-letter queue — capture, list, show, resolve (with requeue), requeue an
//! edited payload, and redrive.
//! Who may call each route is declared in [`crate::routes::ROUTES`] (the handlers check it
//! again, which costs nothing).
//! Reads come from the `read_dlq` read model (eventually consistent: pass a command's
//! `position` as `min_position` to read your own write); writes go to [`DlqService`].

use auth::Permission;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use commands::dlq_api::{
    payload_value, CaptureRequest, EditedBody, EntryBody, EntryResponse, ListResponse,
    RequeueEditedRequest, ResolveRequest, MAX_CAPTURE_BYTES,
};
use commands::dlq_redrive::{
    RedriveAction, RedriveJob, RedriveOutcome, RedriveRequest, RedriveResults, MAX_RESULTS_LIMIT,
};
use domain::dlq::{
    decode_payload, payload_base64, sha256_hex, validate_entry_id, Encoding, HistoryItem,
};
use projections::dlq::{DlqFilter, DlqRow};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ValidJson, ValidQuery};
use crate::read_after_write::{read_position, wait_for, ReadAt};
use crate::AppState;

/// Most entries one page lists.
pub const MAX_LIMIT: i64 = 500;
const DEFAULT_LIMIT: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/dlq",
            get(list)
                // A capture carries a whole message: up to 1 MiB, base64-encoded.
                .post(capture)
                .layer(DefaultBodyLimit::max(MAX_CAPTURE_BYTES)),
        )
        // Static segments win over `{id}`: no entry can be shown as `redrive`.
        .route("/dlq/groups", get(groups))
        .route("/dlq/redrive", post(start_redrive))
        .route("/dlq/redrive/{job}", get(show_redrive))
        .route("/dlq/redrive/{job}/cancel", post(cancel_redrive))
        .route("/dlq/redrive/{job}/pause", post(pause_redrive))
        .route("/dlq/redrive/{job}/resume", post(resume_redrive))
        .route("/dlq/redrive/{job}/results", get(redrive_results))
        .route("/dlq/{id}", get(show))
        .route("/dlq/{id}/resolve", post(resolve))
        // An edited payload is a whole message, like a capture's.
        .route(
            "/dlq/{id}/requeue_edited",
            post(requeue_edited).layer(DefaultBodyLimit::max(MAX_CAPTURE_BYTES)),
        )
}

/// The `{id}` segment, validated like every entry id (400 naming `id`).
fn id_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|rejection| ApiError::invalid("id", rejection.body_text()))?;
    validate_entry_id(&id).map_err(|e| ApiError::invalid("id", e.to_string()))?;
    Ok(id)
}

#[utoipa::path(post, path = "/dlq", tag = "dlq", request_body = CaptureRequest,
    responses(
        (status = 201, description = "Captured", body = EntryResponse),
        (status = 200, description = "Already captured (same id or stream sequence): nothing changed", body = EntryResponse)))]
pub(crate) async fn capture(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<EntryResponse>), ApiError> {
    caller.require(Permission::WriteDlq)?;
    let request: CaptureRequest = message_body(body)?;
    let answer = state.dlq.api_capture(request, &caller.actor()).await?;
    let status = if answer.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)))
}

/// A body that carries a whole message (a capture, an edited payload): up to
/// `MAX_CAPTURE_BYTES` (413 past it), JSON, a bad field named (400).
fn message_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(MAX_CAPTURE_BYTES)
        } else {
            ApiError::invalid("body", rejection.body_text())
        }
    })?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("body", "a JSON body is required"));
    }
    Ok(commands::api::parse_limited(&bytes, MAX_CAPTURE_BYTES)?)
}

/// `GET /dlq` query: every condition optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub resolved: Option<bool>,
    /// The exact original subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// A case-insensitive part of the error text.
    #[serde(default)]
    pub error_contains: Option<String>,
    /// Entries created at or after this instant (RFC 3339).
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Entries created at or before this instant (RFC 3339).
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// Entries per page, 1-500 (default 50); a page also ends early past 8 MiB of payloads
    /// and headers (at least one entry): go on from `offset` + the entries received.
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[serde(default)]
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Answer once the read model has applied the event at this position.
    #[serde(default)]
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

fn text_filter(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() => Err(ApiError::invalid(field, "must not be empty")),
        Some(v) if v.len() > 512 => Err(ApiError::invalid(field, "must be at most 512 bytes")),
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::invalid(
            field,
            "must not contain control characters",
        )),
        other => Ok(other),
    }
}

/// Instants PostgreSQL can store (years 1-9999).
fn instant_filter(
    field: &'static str,
    value: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    use chrono::Datelike;
    match value {
        Some(t) if !(1..=9999).contains(&t.year()) => Err(ApiError::invalid(
            field,
            "must be between the years 1 and 9999",
        )),
        other => Ok(other),
    }
}

/// The filter of a list or of groups, validated (400 naming the field).
pub fn filter_of(
    resolved: Option<bool>,
    subject: Option<String>,
    error_contains: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<DlqFilter, ApiError> {
    let since = instant_filter("since", since)?;
    let until = instant_filter("until", until)?;
    if let (Some(since), Some(until)) = (since, until) {
        if until < since {
            return Err(ApiError::invalid("until", "must not be before since"));
        }
    }
    Ok(DlqFilter {
        resolved,
        subject: text_filter("subject", subject)?,
        error_contains: text_filter("error_contains", error_contains)?,
        since,
        until,
    })
}

/// The `limit` of a list, 1 to `MAX_LIMIT` (400 naming `limit`).
fn limit_of(limit: Option<i64>, default: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok(limit)
}

#[utoipa::path(get, path = "/dlq", tag = "dlq", params(ListQuery),
    responses((status = 200, description = "A page of entries, oldest first, and how many match", body = ListResponse)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(query): ValidQuery<ListQuery>,
) -> Result<ReadAt<Json<ListResponse>>, ApiError> {
    caller.require(Permission::ReadDlq)?;
    let limit = limit_of(query.limit, DEFAULT_LIMIT)?;
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid("offset", "must not be negative"));
    }
    let filter = filter_of(
        query.resolved,
        query.subject,
        query.error_contains,
        query.since,
        query.until,
    )?;
    wait_for(&state, query.min_position).await?;
    let read_position = read_position(&state).await?;
    let (rows, total) = projections::dlq::list(&state.pool, &filter, limit, offset).await?;
    Ok(ReadAt(
        read_position,
        Json(ListResponse {
            items: rows.into_iter().map(|row| body_of(row, false)).collect(),
            total,
            read_position,
        }),
    ))
}

/// `GET /dlq/groups` query: the list's filters (open entries only), every one optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GroupsQuery {
    /// The exact original subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// A case-insensitive part of the error text.
    #[serde(default)]
    pub error_contains: Option<String>,
    /// Entries created at or after this instant (RFC 3339).
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Entries created at or before this instant (RFC 3339).
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// Groups in the answer, 1-500 (default 100), largest first.
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Answer once the read model has applied the event at this position.
    #[serde(default)]
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// Open entries that failed the same way.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DlqGroupBody {
    pub original_subject: String,
    pub error: String,
    /// Open entries in the group.
    pub count: i64,
    /// When its oldest entry was captured.
    pub first_seen: DateTime<Utc>,
    /// When its newest entry was captured or recaptured.
    pub last_seen: DateTime<Utc>,
}

/// `GET /dlq/groups`: the groups, largest first, and how many groups match in all.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DlqGroupsResponse {
    pub groups: Vec<DlqGroupBody>,
    pub total: i64,
    /// The read models' contiguous watermark this answer stands at (also the
    /// `X-Read-Position` header): every event up to this position in commit order is
    /// applied to it; 0 before the first event, null while not known. Follow the WebSocket
    /// with `since` = this to receive every event the answer does not show yet.
    pub read_position: Option<i64>,
}

#[utoipa::path(get, path = "/dlq/groups", tag = "dlq", params(GroupsQuery),
    responses((status = 200, description = "Open entries grouped by original subject and error text, largest group first", body = DlqGroupsResponse)))]
pub(crate) async fn groups(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(query): ValidQuery<GroupsQuery>,
) -> Result<ReadAt<Json<DlqGroupsResponse>>, ApiError> {
    caller.require(Permission::ReadDlq)?;
    let limit = limit_of(query.limit, 100)?;
    let filter = filter_of(
        Some(false),
        query.subject,
        query.error_contains,
        query.since,
        query.until,
    )?;
    wait_for(&state, query.min_position).await?;
    let read_position = read_position(&state).await?;
    let (groups, total) = projections::dlq::groups(&state.pool, &filter, limit).await?;
    Ok(ReadAt(
        read_position,
        Json(DlqGroupsResponse {
            groups: groups
                .into_iter()
                .map(|g| DlqGroupBody {
                    original_subject: g.original_subject,
                    error: g.error,
                    count: g.count,
                    first_seen: g.first_seen,
                    last_seen: g.last_seen,
                })
                .collect(),
            total,
            read_position,
        }),
    ))
}

/// `GET /dlq/{id}`: the entry, and where the read stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryShown {
    #[serde(flatten)]
    pub entry: EntryBody,
    /// The read models' contiguous watermark this answer stands at (also the
    /// `X-Read-Position` header): every event up to this position in commit order is
    /// applied to it; 0 before the first event, null while not known. Follow the WebSocket
    /// with `since` = this to receive every event the answer does not show yet.
    pub read_position: Option<i64>,
}

/// `GET /dlq/{id}` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// Answer once the read model has applied the event at this position.
    #[serde(default)]
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

#[utoipa::path(get, path = "/dlq/{id}", tag = "dlq", params(("id" = String, Path, description = "Entry id", pattern = r"^[A-Za-z0-9_.:-]{1,160}$"), ShowQuery),
    responses(
        (status = 200, description = "The entry with its payload, headers and history", body = EntryShown),
        (status = 404, description = "No such entry", body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ValidQuery(query): ValidQuery<ShowQuery>,
) -> Result<ReadAt<Json<EntryShown>>, ApiError> {
    caller.require(Permission::ReadDlq)?;
    let id = id_of(path)?;
    wait_for(&state, query.min_position).await?;
    let read_position = read_position(&state).await?;
    match projections::dlq::get(&state.pool, &id).await? {
        Some(row) => Ok(ReadAt(
            read_position,
            Json(EntryShown {
                entry: body_of(row, true),
                read_position,
            }),
        )),
        None => Err(ApiError::NotFound(format!("no dead-letter entry '{id}'"))),
    }
}

#[utoipa::path(post, path = "/dlq/{id}/resolve", tag = "dlq", params(("id" = String, Path, description = "Entry id", pattern = r"^[A-Za-z0-9_.:-]{1,160}$")), request_body = ResolveRequest,
    responses(
        (status = 200, description = "Resolved (and requeued when asked)", body = EntryResponse),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 409, description = "Already resolved", body = ErrorBody)))]
pub(crate) async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ValidJson(request): ValidJson<ResolveRequest>,
) -> Result<Json<EntryResponse>, ApiError> {
    caller.require(Permission::WriteDlq)?;
    let id = id_of(path)?;
    Ok(Json(
        state.dlq.api_resolve(&id, request, &caller.actor()).await?,
    ))
}

#[utoipa::path(post, path = "/dlq/{id}/requeue_edited", tag = "dlq", params(("id" = String, Path, description = "Entry id", pattern = r"^[A-Za-z0-9_.:-]{1,160}$")), request_body = RequeueEditedRequest,
    responses(
        (status = 200, description = "The edited payload was published on the original subject with the entry's headers; the edit (SHA-256 of both payloads, who) and the resolution are recorded; the captured payload stays readable", body = EntryResponse),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 409, description = "Already resolved", body = ErrorBody),
        (status = 413, description = "Body over 1.5 MiB", body = ErrorBody)))]
pub(crate) async fn requeue_edited(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EntryResponse>, ApiError> {
    caller.require(Permission::WriteDlq)?;
    let id = id_of(path)?;
    let request: RequeueEditedRequest = message_body(body)?;
    Ok(Json(
        state
            .dlq
            .api_requeue_edited(&id, request, &caller.actor())
            .await?,
    ))
}

fn encoding_of(text: &str) -> Encoding {
    match text {
        "text" => Encoding::Text,
        "base64" => Encoding::Base64,
        _ => Encoding::Json,
    }
}

/// A read-model row as the API shows it; `full` adds headers and history.
pub fn body_of(row: DlqRow, full: bool) -> EntryBody {
    let encoding = encoding_of(&row.encoding);
    let edited = match (full, row.edited) {
        (true, Some(edit)) => {
            let edit_encoding = encoding_of(&edit.encoding);
            Some(EditedBody {
                payload: payload_value(edit_encoding, &edit.payload),
                encoding: edit_encoding,
                payload_base64: payload_base64(edit_encoding, &edit.payload),
                sha256: edit.sha256,
                original_sha256: decode_payload(encoding, &row.payload)
                    .map(|b| sha256_hex(&b))
                    .unwrap_or_default(),
                edited_by: edit.edited_by,
                edited_at: edit.edited_at,
            })
        }
        _ => None,
    };
    let (headers, history) = if full {
        (
            serde_json::from_value(row.headers).ok(),
            serde_json::from_value::<Vec<HistoryItem>>(row.history).ok(),
        )
    } else {
        (None, None)
    };
    EntryBody {
        payload_base64: full.then(|| payload_base64(encoding, &row.payload)),
        payload: payload_value(encoding, &row.payload),
        id: row.id,
        original_subject: row.original_subject,
        encoding,
        error: row.error,
        attempts: u64::try_from(row.attempts).unwrap_or(0),
        created_at: row.created_at,
        resolved: row.resolved,
        resolved_at: row.resolved_at,
        resolved_by: row.resolved_by,
        note: row.note,
        requeue_count: u32::try_from(row.requeue_count).unwrap_or(0),
        stream: row.stream,
        consumer: row.consumer,
        stream_seq: row.stream_seq.and_then(|s| u64::try_from(s).ok()),
        headers,
        history,
        edited,
    }
}

/// The `{job}` segment: a UUID (400 naming `job`).
fn job_of(path: Result<Path<String>, PathRejection>) -> Result<uuid::Uuid, ApiError> {
    let Path(job) = path.map_err(|rejection| ApiError::invalid("job", rejection.body_text()))?;
    job.parse()
        .map_err(|_| ApiError::invalid("job", "must be a UUID"))
}

#[utoipa::path(post, path = "/dlq/redrive", tag = "dlq", request_body = RedriveRequest,
    responses((status = 202, description = "The job, running", body = RedriveJob)))]
pub(crate) async fn start_redrive(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(request): ValidJson<RedriveRequest>,
) -> Result<(StatusCode, Json<RedriveJob>), ApiError> {
    caller.require(Permission::WriteDlq)?;
    let job = state.redrive.start(request, &caller.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[utoipa::path(get, path = "/dlq/redrive/{job}", tag = "dlq", params(("job" = String, Path, description = "Redrive job id (UUID)")),
    responses(
        (status = 200, description = "The job's progress", body = RedriveJob),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub(crate) async fn show_redrive(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RedriveJob>, ApiError> {
    caller.require(Permission::ReadDlq)?;
    let job = job_of(path)?;
    Ok(Json(state.redrive.get(job).await?))
}

#[utoipa::path(post, path = "/dlq/redrive/{job}/cancel", tag = "dlq", params(("job" = String, Path, description = "Redrive job id (UUID)")),
    responses(
        (status = 200, description = "Cancelled (from running or paused); an entry being moved still finishes", body = RedriveJob),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job already ended", body = ErrorBody)))]
pub(crate) async fn cancel_redrive(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RedriveJob>, ApiError> {
    steer(state, caller, path, RedriveAction::Cancel).await
}

#[utoipa::path(post, path = "/dlq/redrive/{job}/pause", tag = "dlq", params(("job" = String, Path, description = "Redrive job id (UUID)")),
    responses(
        (status = 200, description = "Paused: no further entry moves until it is resumed", body = RedriveJob),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not running", body = ErrorBody)))]
pub(crate) async fn pause_redrive(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RedriveJob>, ApiError> {
    steer(state, caller, path, RedriveAction::Pause).await
}

#[utoipa::path(post, path = "/dlq/redrive/{job}/resume", tag = "dlq", params(("job" = String, Path, description = "Redrive job id (UUID)")),
    responses(
        (status = 200, description = "Running again from where it stopped", body = RedriveJob),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not paused", body = ErrorBody)))]
pub(crate) async fn resume_redrive(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RedriveJob>, ApiError> {
    steer(state, caller, path, RedriveAction::Resume).await
}

/// Pause, resume, cancel: the same request with another action.
async fn steer(
    state: AppState,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    action: RedriveAction,
) -> Result<Json<RedriveJob>, ApiError> {
    caller.require(Permission::WriteDlq)?;
    let job = job_of(path)?;
    Ok(Json(
        state.redrive.steer(job, action, &caller.actor()).await?,
    ))
}

/// `GET /dlq/redrive/{job}/results` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// Only entries with this outcome.
    #[serde(default)]
    pub outcome: Option<RedriveOutcome>,
    /// Results after this `n` (the previous page's `next_after`); default: from the start.
    #[serde(default)]
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Results per page, 1-1000 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/dlq/redrive/{job}/results", tag = "dlq", params(("job" = String, Path, description = "Redrive job id (UUID)"), ResultsQuery),
    responses(
        (status = 200, description = "What the job did with each entry, in its order: moved (with the requeue's message id), skipped or failed, and why", body = RedriveResults),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub(crate) async fn redrive_results(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ValidQuery(query): ValidQuery<ResultsQuery>,
) -> Result<Json<RedriveResults>, ApiError> {
    caller.require(Permission::ReadDlq)?;
    let job = job_of(path)?;
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid("after", "must not be negative"));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_RESULTS_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_RESULTS_LIMIT}"),
        ));
    }
    Ok(Json(
        state
            .redrive
            .results(job, query.outcome, after, limit)
            .await?,
    ))
}
