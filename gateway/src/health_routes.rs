//! `GET /healthz` (the process is up) and `GET /readyz` (PostgreSQL answers, every
//! migration is applied, NATS is connected, the events stream is this deployment's).
//! Unauthenticated and cheap. `GET /system/health` (`read:system`): the same, and whether
//! the sandbox service answers (the dashboard's health card).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/system/health", get(system_health))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// `ok` or `unreachable`.
    pub database: String,
    /// `ok`, `pending` or `unknown`.
    pub migrations: String,
    /// `ok` or `disconnected`.
    pub nats: String,
    /// `ok`, or `foreign` when the events stream belongs to another deployment (another
    /// database): this process then neither publishes to it nor reads from it.
    pub events_stream: String,
    /// Set when this process's publisher meets an event it cannot publish (larger than the
    /// NATS server's `max_payload`): every later event waits behind it until the server
    /// takes it. The process still serves commands, so it stays ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher_stuck: Option<streams::Stuck>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Ready when PostgreSQL answers, every embedded migration is applied, NATS is connected
/// and the events stream is not another deployment's; 503 naming what is not.
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "Not ready; the body names what is not", body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let expected = commands::store::MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .count() as i64;
    let applied: Result<i64, sqlx::Error> =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&state.pool)
            .await;
    let (database, migrations) = match applied {
        Ok(n) => ("ok", if n >= expected { "ok" } else { "pending" }),
        Err(_) => ("unreachable", "unknown"),
    };
    let nats = match state.nats.connection_state() {
        async_nats::connection::State::Connected => "ok",
        _ => "disconnected",
    };
    let events_stream = match state.pipeline.events.foreign_owner() {
        None => "ok",
        Some(_) => "foreign",
    };
    let ready = database == "ok" && migrations == "ok" && nats == "ok" && events_stream == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            database: database.into(),
            migrations: migrations.into(),
            nats: nats.into(),
            events_stream: events_stream.into(),
            publisher_stuck: state.pipeline.publisher.stuck(),
        }),
    )
}

/// Readiness of this process and of the services beside it.
#[derive(Serialize, ToSchema)]
pub struct SystemHealth {
    #[serde(flatten)]
    pub readiness: Readiness,
    /// `ok`, `unreachable` (no healthy answer within a second) or `not_configured`
    /// (`SANDBOX_URL=-`).
    pub sandbox: String,
}

/// How long the health card waits for the sandbox.
const SANDBOX_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

static PROBE: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(SANDBOX_PROBE_TIMEOUT)
        .build()
        .expect("a client without TLS settings builds")
});

/// [`readyz`] plus the sandbox service's `/healthz`. Always 200: the body says what is
/// down.
#[utoipa::path(get, path = "/system/health", tag = "system",
    responses((status = 200, description = "What is up and what is not", body = SystemHealth)))]
pub async fn system_health(State(state): State<AppState>) -> Json<SystemHealth> {
    let sandbox = match state.sandbox_url.as_deref() {
        None => "not_configured",
        Some(base) => {
            let url = format!("{}/healthz", base.trim_end_matches('/'));
            match PROBE.get(url).send().await {
                Ok(answer) if answer.status().is_success() => "ok",
                _ => "unreachable",
            }
        }
    };
    let (_, Json(readiness)) = readyz(State(state)).await;
    Json(SystemHealth {
        readiness,
        sandbox: sandbox.into(),
    })
}
