//! The HTTP gateway (axum): authentication, permissions, and the JSON API over the
//! command services. Handlers stay thin: parse, check the permission, call the service,
//! shape the answer. Errors become JSON bodies in one place ([`error::ApiError`]).
#![forbid(unsafe_code)]

pub mod audit_routes;
pub mod auth_routes;
pub mod breaker_routes;
pub mod budget_routes;
pub mod error;
pub mod extract;
pub mod hardening;
pub mod pipeline_routes;
pub mod state;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::trace::TraceLayer;

pub use state::AppState;

/// Largest request body accepted by any route.
pub const MAX_BODY_BYTES: usize = commands::api::MAX_COMMAND_BYTES;

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(auth_routes::router())
        .merge(audit_routes::router())
        .merge(pipeline_routes::router())
        .merge(budget_routes::router())
        .merge(breaker_routes::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Ready when PostgreSQL answers, every embedded migration is applied and NATS is
/// connected; 503 naming what is not. Unauthenticated and cheap (one small query).
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
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
    let ready = database == "ok" && migrations == "ok" && nats == "ok";
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": ready, "database": database, "migrations": migrations, "nats": nats})),
    )
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn not_found() -> error::ApiError {
    error::ApiError::NotFound("no such route".into())
}
