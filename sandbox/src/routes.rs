//! The HTTP surface: `POST /execute`, `GET /languages`, `GET /healthz`, `GET /metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::{Claims, Permission, TokenKeys};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::admission::Admission;
use crate::audit::{sha256_hex, AuditEvent, Auditor};
use crate::config::Config;
use crate::error::ApiError;
use crate::executor::{EngineError, Execution, Executor, Job};
use crate::metrics::Metrics;

/// Shared state of one service instance; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub keys: TokenKeys,
    pub executor: Arc<Executor>,
    pub admission: Arc<Admission>,
    pub metrics: Arc<Metrics>,
    pub auditor: Arc<Auditor>,
}

pub fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    // JSON escapes can make a string up to 6× longer (\u0000); anything larger is refused
    // before it is read.
    let body_limit = 6 * (limits.max_code_bytes + limits.max_stdin_bytes) + 4096;
    Router::new()
        .route("/execute", post(execute))
        .route("/languages", get(languages))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"code": "not_found", "message": "no such route", "field": null}})),
    )
        .into_response()
}

/// Request count and latency per route.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .http_requests
        .with_label_values(&[&method, &endpoint, response.status().as_str()])
        .inc();
    state
        .metrics
        .http_seconds
        .with_label_values(&[&endpoint])
        .observe(started.elapsed().as_secs_f64());
    response
}

fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    needed: Permission,
) -> Result<Claims, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized {
            message: "missing bearer token (Authorization: Bearer <token>)".into(),
        })?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized {
            message: "the Authorization header must be 'Bearer <token>'".into(),
        })?;
    let claims = state
        .keys
        .verify(token)
        .map_err(|_| ApiError::Unauthorized {
            message: "invalid or expired token".into(),
        })?;
    if !claims.has(needed) {
        return Err(ApiError::Forbidden {
            message: format!("this requires the '{}' permission", needed.as_str()),
        });
    }
    Ok(claims)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteRequest {
    code: String,
    language: String,
    /// Seconds; fractions allowed.
    timeout: Option<f64>,
    stdin: Option<String>,
    memory_mb: Option<u64>,
}

/// JSON syntax → 400; wrong shape (missing, mistyped or unknown field) → 422 naming the field.
fn parse(body: &[u8]) -> Result<ExecuteRequest, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest {
                code: "invalid_json",
                message: format!("the body is not valid JSON: {inner}"),
                field: None,
            };
        }
        let path = e.path().to_string();
        let text = inner.to_string();
        // serde names a missing or unknown field in backticks and leaves the path at ".".
        let field = if path == "." {
            text.split('`').nth(1).map(str::to_string)
        } else {
            Some(path)
        };
        let message = match text.find(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        ApiError::Invalid {
            code: "invalid_field",
            message,
            field,
        }
    })
}

fn validate(config: &Config, request: ExecuteRequest) -> Result<Job, ApiError> {
    let limits = &config.limits;
    let runtime = config
        .languages
        .get(&request.language)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = config.languages.keys().map(String::as_str).collect();
            ApiError::invalid(
                "unknown_language",
                "language",
                format!(
                    "unknown language '{}'; available: {}",
                    request.language.chars().take(64).collect::<String>(),
                    known.join(", ")
                ),
            )
        })?;
    if request.code.trim().is_empty() {
        return Err(ApiError::invalid(
            "empty_code",
            "code",
            "code must not be empty",
        ));
    }
    if request.code.len() > limits.max_code_bytes {
        return Err(ApiError::invalid(
            "code_too_large",
            "code",
            format!(
                "code is {} bytes; the limit is {}",
                request.code.len(),
                limits.max_code_bytes
            ),
        ));
    }
    if request.code.contains('\0') {
        return Err(ApiError::invalid(
            "invalid_code",
            "code",
            "code must not contain NUL characters",
        ));
    }
    let timeout = match request.timeout {
        None => limits.default_timeout,
        Some(t) if !t.is_finite() || t <= 0.0 => {
            return Err(ApiError::invalid(
                "invalid_timeout",
                "timeout",
                "timeout must be a positive number of seconds",
            ))
        }
        Some(t) if t > limits.max_timeout.as_secs_f64() => {
            return Err(ApiError::invalid(
                "timeout_too_large",
                "timeout",
                format!(
                    "timeout {t} s exceeds the maximum of {} s",
                    limits.max_timeout.as_secs()
                ),
            ))
        }
        Some(t) => Duration::from_secs_f64(t),
    };
    let memory_mb = match request.memory_mb {
        None => limits.default_memory_mb,
        Some(m) if m > limits.max_memory_mb => {
            return Err(ApiError::invalid(
                "memory_too_large",
                "memory_mb",
                format!(
                    "memory_mb {m} exceeds the maximum of {}",
                    limits.max_memory_mb
                ),
            ))
        }
        Some(m) if m < limits.min_memory_mb => {
            return Err(ApiError::invalid(
                "memory_too_small",
                "memory_mb",
                format!("memory_mb must be at least {}", limits.min_memory_mb),
            ))
        }
        Some(m) => m,
    };
    if let Some(stdin) = &request.stdin {
        if stdin.len() > limits.max_stdin_bytes {
            return Err(ApiError::invalid(
                "stdin_too_large",
                "stdin",
                format!(
                    "stdin is {} bytes; the limit is {}",
                    stdin.len(),
                    limits.max_stdin_bytes
                ),
            ));
        }
    }
    Ok(Job {
        language: request.language,
        runtime,
        code: request.code,
        stdin: request.stdin,
        timeout,
        memory_mb,
    })
}

async fn execute(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Execution>, ApiError> {
    let outcome = admit_and_run(&state, &headers, body).await;
    if let Err(e) = &outcome {
        state.metrics.rejected.with_label_values(&[e.code()]).inc();
    }
    outcome.map(Json)
}

async fn admit_and_run(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Execution, ApiError> {
    let claims = authorize(state, headers, Permission::ExecuteCode)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge {
                message: "the request body is too large".into(),
            }
        } else {
            ApiError::BadRequest {
                code: "invalid_body",
                message: "the request body could not be read".into(),
                field: None,
            }
        }
    })?;
    let job = validate(&state.config, parse(&body)?)?;
    let ticket = state.admission.enter()?;
    state.metrics.waiting.set(state.admission.waiting() as i64);
    let permit = state.admission.run(ticket).await;
    state.metrics.waiting.set(state.admission.waiting() as i64);
    let permit = permit?;

    // The run, its metrics and its audit report happen in a task of their own: if the client
    // hangs up, axum drops this future, but the container must still be removed and the run
    // still reported.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task_state = state.clone();
    tokio::spawn(async move {
        let state = task_state;
        state.metrics.running.set(state.admission.running() as i64);
        let language = job.language.clone();
        let code = job.code.clone();
        let reporter = state.clone();
        state
            .executor
            .execute(job, move |result| {
                report(&reporter, &claims, &language, &code, &result);
                // The client may have gone; the run is reported all the same.
                let _ = tx.send(result);
            })
            .await;
        // Held through the removal: a runner is free only once its container is gone.
        drop(permit);
        state.metrics.running.set(state.admission.running() as i64);
    });
    let result = rx
        .await
        .map_err(|e| internal("run task ended without a result", &e))?;
    result.map_err(|e| match e {
        EngineError::Unreachable(_) => {
            tracing::error!(error = %e, "run failed: engine unreachable");
            ApiError::Unavailable {
                code: "engine_unavailable",
                message: "the container engine is not reachable; retry later".into(),
                retry_after_secs: 5,
            }
        }
        EngineError::ImageMissing(ref image) => {
            tracing::error!(image, "run failed: image missing");
            ApiError::Unavailable {
                code: "runtime_unavailable",
                message: "the runtime image of this language is not installed on the engine".into(),
                retry_after_secs: 60,
            }
        }
        EngineError::Failed(_) => internal("run failed in the engine", &e),
    })
}

fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiError {
    let request_id = uuid::Uuid::new_v4().to_string();
    tracing::error!(%request_id, %error, "{what}");
    ApiError::Internal { request_id }
}

fn outcome(result: &Result<Execution, EngineError>) -> &'static str {
    match result {
        Err(_) => "error",
        Ok(e) if e.timed_out => "timeout",
        Ok(e) if e.oom_killed => "oom",
        Ok(e) if e.exit_code != 0 => "exit_nonzero",
        Ok(_) => "ok",
    }
}

fn report(
    state: &AppState,
    claims: &Claims,
    language: &str,
    code: &str,
    result: &Result<Execution, EngineError>,
) {
    let outcome = outcome(result);
    let metrics = &state.metrics;
    metrics
        .executions
        .with_label_values(&[language, outcome])
        .inc();
    if let Ok(e) = result {
        metrics
            .execution_seconds
            .with_label_values(&[language])
            .observe(e.duration_ms as f64 / 1000.0);
        if e.truncated {
            metrics.truncated.inc();
        }
    }
    let ok = result.as_ref().ok();
    state.auditor.record(AuditEvent {
        event_type: "SandboxCodeExecuted",
        event_version: 1,
        id: uuid::Uuid::now_v7().to_string(),
        at: chrono::Utc::now().to_rfc3339(),
        who: claims.sub.clone(),
        role: claims.role.as_str().to_string(),
        language: language.to_string(),
        code_sha256: sha256_hex(code.as_bytes()),
        code_bytes: code.len(),
        code: state.auditor.include_code.then(|| code.to_string()),
        duration_ms: ok.map_or(0, |e| e.duration_ms),
        exit_code: ok.map(|e| e.exit_code),
        timed_out: ok.is_some_and(|e| e.timed_out),
        oom_killed: ok.is_some_and(|e| e.oom_killed),
        truncated: ok.is_some_and(|e| e.truncated),
        outcome,
        instance: state.config.instance.clone(),
    });
}

/// Public: what the UI needs to offer languages and show limits.
async fn languages(State(state): State<AppState>) -> Json<serde_json::Value> {
    let c = &state.config;
    let l = &c.limits;
    let languages: Vec<_> = c
        .languages
        .iter()
        .map(|(name, lang)| json!({"name": name, "image": lang.image}))
        .collect();
    Json(json!({
        "languages": languages,
        "limits": {
            "default_timeout": l.default_timeout.as_secs_f64(),
            "max_timeout": l.max_timeout.as_secs_f64(),
            "default_memory_mb": l.default_memory_mb,
            "max_memory_mb": l.max_memory_mb,
            "cpus": l.nano_cpus as f64 / 1e9,
            "pids_limit": l.pids_limit,
            "max_code_bytes": l.max_code_bytes,
            "max_stdin_bytes": l.max_stdin_bytes,
            "max_output_bytes": l.max_output_bytes,
        },
    }))
}

/// 200 when the engine answers, 503 when it does not (the service itself is up either way).
async fn healthz(State(state): State<AppState>) -> Response {
    let running = state.admission.running();
    let queued = state.admission.waiting();
    match state
        .executor
        .engine()
        .version(Duration::from_secs(2))
        .await
    {
        Ok(version) => Json(json!({
            "status": "ok",
            "engine": {"reachable": true, "version": version},
            "runtime": state.config.runtime,
            "running": running,
            "queued": queued,
        }))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "healthz: engine unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                Json(json!({
                    "status": "unavailable",
                    "engine": {"reachable": false},
                    "running": running,
                    "queued": queued,
                })),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.running.set(state.admission.running() as i64);
    state.metrics.waiting.set(state.admission.waiting() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef-x".into()),
            "SANDBOX_MAX_CODE_BYTES" => Some("100".into()),
            _ => None,
        })
        .unwrap()
    }

    fn check(body: &str) -> Result<Job, ApiError> {
        validate(&config(), parse(body.as_bytes())?)
    }

    fn field_of(e: ApiError) -> (StatusCode, &'static str, Option<String>) {
        let status = e.status();
        let code = e.code();
        match e {
            ApiError::Invalid { field, .. } | ApiError::BadRequest { field, .. } => {
                (status, code, field)
            }
            _ => (status, code, None),
        }
    }

    #[test]
    fn a_valid_request_gets_the_default_limits() {
        let job = check(r#"{"code":"print(1)","language":"python"}"#).unwrap();
        assert_eq!(job.timeout, Duration::from_secs(5));
        assert_eq!(job.memory_mb, 128);
        let job =
            check(r#"{"code":"x","language":"python","timeout":0.5,"memory_mb":64}"#).unwrap();
        assert_eq!(job.timeout, Duration::from_millis(500));
        assert_eq!(job.memory_mb, 64);
    }

    #[test]
    fn malformed_json_is_400() {
        let (status, code, _) = field_of(check("{not json").unwrap_err());
        assert_eq!((status, code), (StatusCode::BAD_REQUEST, "invalid_json"));
    }

    #[test]
    fn shape_errors_are_422_and_name_the_field() {
        for (body, field) in [
            (r#"{"language":"python"}"#, "code"),
            (
                r#"{"code":"x","language":"python","timeout":"5"}"#,
                "timeout",
            ),
            (
                r#"{"code":"x","language":"python","colour":"red"}"#,
                "colour",
            ),
        ] {
            let (status, _, f) = field_of(check(body).unwrap_err());
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(f.as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn limits_are_enforced_with_their_own_codes() {
        for (body, code) in [
            (r#"{"code":"x","language":"cobol"}"#, "unknown_language"),
            (r#"{"code":"  ","language":"python"}"#, "empty_code"),
            (
                r#"{"code":"x","language":"python","timeout":31}"#,
                "timeout_too_large",
            ),
            (
                r#"{"code":"x","language":"python","timeout":0}"#,
                "invalid_timeout",
            ),
            (
                r#"{"code":"x","language":"python","memory_mb":4096}"#,
                "memory_too_large",
            ),
            (r#"{"code":"a\u0000b","language":"python"}"#, "invalid_code"),
        ] {
            assert_eq!(check(body).unwrap_err().code(), code, "{body}");
        }
        let big = format!(r#"{{"code":"{}","language":"python"}}"#, "x".repeat(101));
        assert_eq!(check(&big).unwrap_err().code(), "code_too_large");
    }
}
