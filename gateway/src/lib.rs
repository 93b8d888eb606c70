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
use axum::Router;
use tower_http::trace::TraceLayer;

pub use state::AppState;

/// Largest request body accepted by any route.
pub const MAX_BODY_BYTES: usize = commands::api::MAX_COMMAND_BYTES;

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(health_routes::router())
        .merge(openapi::router())
        .merge(auth_routes::router())
        .merge(audit_routes::router())
        .merge(pipeline_routes::router())
        .merge(budget_routes::router())
        .merge(breaker_routes::router())
        .merge(governance_routes::router())
        .merge(stats_routes::router())
        .merge(dlq_routes::router())
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
