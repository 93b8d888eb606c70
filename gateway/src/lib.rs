//! The HTTP gateway (axum): authentication, permissions, and the JSON API over the
//! command services. Handlers stay thin: parse, check the permission, call the service,
//! shape the answer. Errors become JSON bodies in one place ([`error::ApiError`]).
#![forbid(unsafe_code)]

pub mod audit_routes;
pub mod auth_routes;
pub mod breaker_routes;
pub mod budget_routes;
pub mod business_metrics;
pub mod dlq_routes;
pub mod error;
pub mod extract;
pub mod governance_routes;
pub mod hardening;
pub mod health_routes;
pub mod live;
pub mod openapi;
pub mod overview;
pub mod pipeline_metrics;
pub mod pipeline_routes;
pub mod read_after_write;
pub mod request_history;
pub mod routes;
pub mod sandbox_routes;
pub mod sessions;
pub mod state;
pub mod stats_routes;
pub mod ui;
pub mod user_routes;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, Extensions, HeaderMap, StatusCode, Version};
use axum::Router;
use tower_http::compression::predicate::{And, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

pub use state::AppState;

/// Largest request body accepted by any route.
pub const MAX_BODY_BYTES: usize = commands::api::MAX_COMMAND_BYTES;

/// A JSON answer is compressed when it is at least this long (smaller ones gain nothing).
pub const COMPRESS_JSON_FROM_BYTES: u64 = 1024;

/// Compression of the read routes' JSON answers, for clients that accept gzip. A page of 100
/// audit events is ~76 KB of JSON, and the dashboard reads it before its first rows: on a
/// phone's network that was most of the page's load (docs/benchmarks/ops-pages.md). Only `application/json`: the streamed NDJSON answers (verify's progress,
/// the export) go out line by line as they are written. The session routes (cookies and
/// tokens), the users' routes (passwords) and the sandbox proxy are not under it, so no
/// secret shares a compressed body with text a requester chose (BREACH).
fn compress_json() -> CompressionLayer<And<SizeAbove, JsonOnly>> {
    CompressionLayer::new()
        .gzip(true)
        .compress_when(SizeAbove::new(COMPRESS_JSON_FROM_BYTES).and(is_json as JsonOnly))
}

type JsonOnly = fn(StatusCode, Version, &HeaderMap, &Extensions) -> bool;

fn is_json(_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(health_routes::router())
        .merge(auth_routes::router())
        .merge(
            Router::new()
                .merge(openapi::router())
                .merge(audit_routes::router())
                .merge(pipeline_routes::router())
                .merge(budget_routes::router())
                .merge(breaker_routes::router())
                .merge(governance_routes::router())
                .merge(stats_routes::router())
                .merge(dlq_routes::router())
                .layer(compress_json()),
        )
        .merge(sandbox_routes::router())
        .merge(user_routes::router())
        .merge(live::router())
        // Every route's access, from the one table in routes.rs (mounted routes only).
        .route_layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            routes::enforce,
        ))
        .fallback(ui::fallback)
        // A browser navigation to an app route gets the dashboard, before any API route.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ui::navigations,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
