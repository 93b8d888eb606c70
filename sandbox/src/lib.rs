//! The sandbox service: runs untrusted code for the dashboard and the platform's services.
//!
//! A request (`POST /execute`, permission `execute:code`, the control plane's bearer token) is
//! validated against the server's limits, admitted through a concurrency limit with a bounded
//! queue, and run in a fresh, locked-down container through the Docker Engine API (bollard):
//! no network, read-only root, a small tmpfs `/tmp`, no capabilities, no new privileges, a
//! non-root user, memory/CPU/pids limits, capped output, a wall-clock timeout. The container is
//! always removed; leftovers of a killed process are swept at start. Each run is reported as an
//! audit event over NATS. See `docs/sandbox.md`.
#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod config;
pub mod error;
pub mod executor;
pub mod metrics;
pub mod routes;

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use config::{Config, ConfigError};
pub use executor::{Execution, Executor, LABEL_INSTANCE, LABEL_SANDBOX};

use admission::Admission;
use audit::Auditor;
use metrics::Metrics;
use routes::AppState;

/// How often containers that no run owns are swept (removals that failed, runs of a killed
/// process).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Builds the service: sweeps this instance's leftover containers (when the engine answers),
/// starts the audit publisher and the periodic sweep, and returns the router.
pub async fn build_app(config: Config) -> Router {
    build(config).await.0
}

async fn build(config: Config) -> (Router, Arc<Executor>) {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let executor = Arc::new(Executor::new(&config));
    // Only sandbox tokens (minted by the gateway per request): never a session token.
    let keys = auth::TokenKeys::new(config.jwt_secret.as_bytes(), 3600)
        .with_audience(auth::SANDBOX_AUDIENCE);
    let auditor = Arc::new(Auditor::start(
        config.nats_url.as_deref(),
        config.nats_creds.clone(),
        &config.nats_prefix,
        config.audit_include_code,
        metrics.clone(),
    ));
    let admission = Arc::new(Admission::new(
        config.max_concurrent,
        config.queue_size,
        config.queue_timeout,
        config.limits.default_timeout,
    ));

    match tokio::time::timeout(Duration::from_secs(10), executor.sweep()).await {
        Ok(Ok(n)) => {
            if n > 0 {
                tracing::info!(removed = n, "removed leftover sandbox containers");
            }
            metrics.leftovers_removed.inc_by(n as u64);
        }
        Ok(Err(e)) => tracing::error!(
            error = %e,
            docker_host = %config.docker_host,
            "container engine not reachable: /execute answers 503 until it is \
             (on a development machine: scripts/sandbox-engine.sh up)"
        ),
        Err(_) => tracing::error!("container engine did not answer the start-up sweep in 10 s"),
    }
    tokio::spawn(sweep_periodically(
        Arc::downgrade(&executor),
        metrics.clone(),
    ));

    let router = routes::router(AppState {
        config,
        keys,
        executor: executor.clone(),
        admission,
        metrics,
        auditor,
    });
    (router, executor)
}

/// Ends by itself when the service it belongs to is dropped.
async fn sweep_periodically(executor: Weak<Executor>, metrics: Arc<Metrics>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(executor) = executor.upgrade() else {
            return;
        };
        match executor.sweep().await {
            Ok(n) if n > 0 => {
                tracing::warn!(removed = n, "swept sandbox containers no run owned");
                metrics.leftovers_removed.inc_by(n as u64);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "periodic sweep: engine unreachable"),
        }
    }
}

/// Serves until the process ends.
pub async fn serve(listener: TcpListener, config: Config) -> std::io::Result<()> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}

/// Serves until `shutdown` completes; runs in progress finish, and their containers are
/// removed, before it returns.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let longest_run = config.limits.max_timeout;
    let (app, executor) = build(config).await;
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    // Responses go out before the clean-up, so the server can be done while removals are not.
    executor.drain(longest_run + Duration::from_secs(15)).await;
    served
}
