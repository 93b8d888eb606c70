use std::sync::Arc;

use commands::api::BudgetReads;
use commands::breaker::BreakerService;
use commands::budget::BudgetService;
use sqlx::PgPool;

/// What every handler may use; cheap to clone (it is cloned for every request, so what is
/// more than a pointer or two sits behind an `Arc`).
#[derive(Clone)]
pub struct AppState {
    pub budgets: Arc<BudgetService>,
    pub breakers: Arc<BreakerService>,
    /// Dead letters: capture, resolve, requeue (`/dlq`).
    pub dlq: Arc<commands::dlq::DlqService>,
    /// Dead-letter redrive jobs (`/dlq/redrive`).
    pub redrive: Arc<commands::dlq_redrive::RedriveService>,
    /// Budget reads from the read models (`GET /budget/state`).
    pub budget_reads: Arc<dyn BudgetReads>,
    /// This process's publisher and projector (`GET /system/pipeline`).
    pub pipeline: crate::pipeline_routes::PipelineInfo,
    pub pool: PgPool,
    /// The process's one event store (account changes are appended through it; the
    /// command services hold clones of it).
    pub events: commands::store::EventStore,
    /// Longest wait of a read that names `min_position` (`MIN_POSITION_WAIT_MS`).
    pub read_wait: std::time::Duration,
    /// The process's NATS connection (`/readyz` reports its state).
    pub nats: async_nats::Client,
    /// Verifies tokens and checks that their sessions still stand (gateway/src/sessions.rs).
    pub auth: Arc<crate::sessions::Authenticator>,
    /// Failed logins per account (`/auth/login`).
    pub failed_logins: Arc<crate::auth_routes::FailedLogins>,
    /// The WebSocket fan-out of this process (`GET /ws`).
    pub live: Arc<crate::live::LiveHub>,
    /// Governance settings and this process's request history (`/governance`, `/stats`).
    pub overview: Arc<crate::overview::Overview>,
    /// The built dashboard, when there is one (`UI_DIR`).
    pub ui: Option<Arc<crate::ui::UiFiles>>,
    /// The sandbox service's base URL: the health card and the `/sandbox/*` proxy (`SANDBOX_URL`).
    pub sandbox_url: Option<Arc<str>>,
    /// Mark the session cookie `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
}
