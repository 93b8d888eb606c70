//! `/sandbox/*`: the sandbox service (docs/sandbox.md) reached through the control plane's
//! origin, so the dashboard needs no CORS opening and keeps its cookie session and CSRF
//! rule. The gateway checks the session (revocations included) and `execute:code` (route
//! table), then forwards the request with a sandbox token it mints for the caller
//! (`auth::SANDBOX_AUDIENCE`, one minute, same user, role, tenants and session): the sandbox
//! checks it again and audits the run under the caller's name. The sandbox refuses session
//! tokens, so a revoked session cannot go around the gateway to it. Bodies pass through
//! unchanged, in both directions.
//!
//! `GET /sandbox/runs` is the control plane's own: the caller's recent runs, read from the
//! audit log (the `SandboxRun` events the sandbox's reports became). Only the caller's own,
//! so it needs `execute:code`, not `read:audit`.

use auth::Permission;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ValidQuery};
use crate::AppState;

/// Largest body forwarded: the sandbox's own limits (64 KiB of code and of stdin by
/// default) with room for JSON escapes; the sandbox answers 413 past its limits.
pub const MAX_EXECUTE_BYTES: usize = 512 * 1024;

/// How long a run may take through the proxy: the sandbox's longest timeout (30 s by
/// default) plus its queue wait (30 s), and a margin.
const EXECUTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(75);

static CLIENT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(EXECUTE_TIMEOUT)
        .connect_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("a client without TLS settings builds")
});

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sandbox/languages", get(languages))
        .route("/sandbox/runs", get(runs))
        .route(
            "/sandbox/execute",
            post(execute).layer(DefaultBodyLimit::max(MAX_EXECUTE_BYTES)),
        )
}

/// `POST /sandbox/execute`: as the sandbox's `POST /execute` takes it.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SandboxExecuteRequest {
    /// The program.
    pub code: String,
    /// A language of `GET /sandbox/languages`.
    pub language: String,
    /// Wall-clock seconds, at most the sandbox's `max_timeout`.
    pub timeout: Option<f64>,
    /// Text fed to the program's standard input.
    pub stdin: Option<String>,
    /// Memory limit, at most the sandbox's `max_memory_mb`.
    pub memory_mb: Option<u64>,
}

/// The run, whatever the program did.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SandboxExecuteResponse {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
    pub duration_ms: u64,
    pub timed_out: bool,
    pub truncated: bool,
    pub oom_killed: bool,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SandboxLanguage {
    pub name: String,
    pub image: String,
}

/// The limits every run has unless it asks for less.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SandboxLimits {
    pub default_timeout: f64,
    pub max_timeout: f64,
    pub default_memory_mb: u64,
    pub max_memory_mb: u64,
    pub cpus: f64,
    pub pids_limit: i64,
    pub max_code_bytes: u64,
    pub max_stdin_bytes: u64,
    pub max_output_bytes: u64,
}

/// `GET /sandbox/languages`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SandboxLanguages {
    pub languages: Vec<SandboxLanguage>,
    pub limits: SandboxLimits,
}

/// `GET /sandbox/runs` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Runs in the answer, newest first, 1-100 (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// One of the caller's runs, as the sandbox reported it (without the code itself).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SandboxRunBody {
    /// The event's place in the audit log.
    pub position: i64,
    /// The report's id (the `SandboxRun` aggregate).
    pub id: String,
    /// When the run ended (the sandbox's clock).
    pub at: String,
    pub language: String,
    pub code_sha256: String,
    pub code_bytes: u64,
    pub duration_ms: u64,
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub truncated: bool,
    /// `ok`, `exit_nonzero`, `timeout`, `oom` or `error`.
    pub outcome: String,
}

/// `GET /sandbox/runs`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SandboxRunsResponse {
    /// Newest first.
    pub runs: Vec<SandboxRunBody>,
}

#[utoipa::path(get, path = "/sandbox/runs", tag = "sandbox", params(RunsQuery),
    responses((status = 200, description = "The caller's own latest runs, newest first, from the audit log (a run shows once the sandbox's report is recorded, normally within a second)", body = SandboxRunsResponse)))]
pub(crate) async fn runs(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(query): ValidQuery<RunsQuery>,
) -> Result<axum::Json<SandboxRunsResponse>, ApiError> {
    caller.require(Permission::ExecuteCode)?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    let events = streams::audit::sandbox_runs_of(&state.pool, caller.username(), limit).await?;
    let runs = events
        .into_iter()
        .filter_map(|event| {
            // Every recorded run passed the domain's checks; one that does not parse is
            // skipped rather than failing the list.
            let report: domain::sandbox_run::SandboxRunReport =
                serde_json::from_str(event.payload.get()).ok()?;
            Some(SandboxRunBody {
                position: event.global_position,
                id: report.id,
                at: report.at,
                language: report.language,
                code_sha256: report.code_sha256,
                code_bytes: report.code_bytes,
                duration_ms: report.duration_ms,
                exit_code: report.exit_code,
                timed_out: report.timed_out,
                oom_killed: report.oom_killed,
                truncated: report.truncated,
                outcome: report.outcome,
            })
        })
        .collect();
    Ok(axum::Json(SandboxRunsResponse { runs }))
}

fn base(state: &AppState) -> Result<&str, ApiError> {
    state
        .sandbox_url
        .as_deref()
        .map(|b| b.trim_end_matches('/'))
        .ok_or_else(|| {
            ApiError::Unavailable("no sandbox service is configured (SANDBOX_URL)".into())
        })
}

/// The sandbox's answer, passed on: status, body, and `Retry-After` when it says when.
async fn pass_on(answer: Result<reqwest::Response, reqwest::Error>) -> Result<Response, ApiError> {
    let answer = answer.map_err(|error| {
        tracing::warn!(%error, "the sandbox service did not answer");
        ApiError::Unavailable("the sandbox service did not answer".into())
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let retry_after = answer.headers().get(header::RETRY_AFTER).cloned();
    let body = answer.bytes().await.map_err(|error| {
        tracing::warn!(%error, "the sandbox service's answer broke off");
        ApiError::Unavailable("the sandbox service's answer broke off".into())
    })?;
    let mut response = (status, Body::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(value) = retry_after {
        headers.insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/sandbox/languages", tag = "sandbox",
    responses(
        (status = 200, description = "The sandbox's languages and limits", body = SandboxLanguages),
        (status = 503, description = "No sandbox configured, or it does not answer", body = ErrorBody)))]
pub(crate) async fn languages(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(Permission::ExecuteCode)?;
    let url = format!("{}/languages", base(&state)?);
    pass_on(CLIENT.get(url).send().await).await
}

#[utoipa::path(post, path = "/sandbox/execute", tag = "sandbox", request_body = SandboxExecuteRequest,
    responses(
        (status = 200, description = "The run (the program's exit code says how it went)", body = SandboxExecuteResponse),
        (status = 413, description = "The body is larger than the sandbox's limits", body = ErrorBody),
        (status = 422, description = "A field outside the sandbox's limits (`field` names it)", body = ErrorBody),
        (status = 429, description = "Every runner busy and the queue full (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "No sandbox configured, it does not answer, or no runner freed up in time", body = ErrorBody)))]
pub(crate) async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ExecuteCode)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(MAX_EXECUTE_BYTES)
        } else {
            ApiError::invalid("body", rejection.body_text())
        }
    })?;
    if body.is_empty() {
        return Err(ApiError::invalid("body", "a JSON body is required"));
    }
    let token = state
        .auth
        .keys()
        .issue_for(
            &caller.0,
            auth::SANDBOX_AUDIENCE,
            auth::SANDBOX_TOKEN_SECONDS,
            chrono::Utc::now().timestamp(),
        )
        .map_err(|error| ApiError::Internal(Box::new(error)))?;
    let url = format!("{}/execute", base(&state)?);
    let answer = CLIENT
        .post(url)
        .bearer_auth(token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    pass_on(answer).await
}
