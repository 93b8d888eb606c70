//! Wires the control plane together: the pool and migrations, the command services, the
//! NATS command listener, the background workers and the HTTP gateway. `main` only
//! parses the command line; tests start [`start`] on port 0 in-process.
#![forbid(unsafe_code)]

pub mod config;
pub mod dlq_reads;
pub mod reads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::{Role, TokenKeys};
use axum::serve::ListenerExt;
use commands::breaker::BreakerService;
use commands::budget::BudgetService;
use commands::clock::SystemClock;
use commands::store::{self, EventStore};
use gateway::AppState;
use projections::ProjectorStats;
use secrecy::ExposeSecret;
use streams::{
    ensure_events_stream, EventsStream, PublisherConfig, PublisherStats, StreamSetupError,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// A running control plane.
pub struct Server {
    pub addr: SocketAddr,
    pub budgets: Arc<BudgetService>,
    /// The event publisher of this process (active or standing by).
    pub publisher: Arc<PublisherStats>,
    /// The read-model projector of this process (active or standing by).
    pub projector: Arc<ProjectorStats>,
    /// The WebSocket fan-out of this process.
    pub live: Arc<gateway::live::LiveHub>,
    /// Cancelled to stop taking HTTP requests and NATS commands.
    stop_taking: CancellationToken,
    /// The NATS connection: flushed before the process ends, or the last replies are lost.
    nats: async_nats::Client,
    /// The HTTP server: ends once every request it took is answered.
    http: JoinHandle<()>,
    /// The NATS command listeners: each ends once every command it took is answered.
    listeners: Vec<JoinHandle<()>>,
    /// Everything else: workers and the two singletons (whose locks go with their tasks).
    tasks: Vec<JoinHandle<()>>,
}

/// Returns once the NATS server has read everything this connection sent so far: a message
/// to ourselves comes back only after it. `flush` is not enough: it only writes to the
/// socket, and a process that exits with unread data on that socket (a JetStream consumer's
/// messages) resets the connection, and the kernel drops what it had not sent yet — the
/// last replies, which their callers then wait for until they time out.
async fn delivered(nats: &async_nats::Client) -> Result<(), async_nats::Error> {
    use futures::StreamExt;
    let inbox = nats.new_inbox();
    let mut echo = nats.subscribe(inbox.clone()).await?;
    nats.publish(inbox, "".into()).await?;
    tokio::time::timeout(Duration::from_secs(5), echo.next())
        .await?
        .ok_or("the NATS connection closed")?;
    Ok(())
}

impl Server {
    /// Stops every task of this server at once (tests use it; `serve` stops gracefully).
    pub fn shutdown(self) {
        self.http.abort();
        for task in self.listeners.into_iter().chain(self.tasks) {
            task.abort();
        }
    }

    /// Serves until `signal` completes, then stops gracefully within `grace`
    /// ([`Server::stop_gracefully`]); or until the HTTP server stops by itself.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
        grace: Duration,
    ) {
        tokio::select! {
            _ = signal => self.stop_gracefully(grace).await,
            _ = &mut self.http => tracing::error!("the HTTP server stopped"),
        }
    }

    /// A rolling deploy's stop: take no new HTTP requests or NATS commands, answer every one
    /// already taken, close WebSockets with 1001 "going away" (clients resume with `since`
    /// on another replica), then release the publisher and projector locks at once so a
    /// standby takes them over within its next try (a second), not after a lock timeout.
    /// Whatever is still running after `grace` is stopped.
    pub async fn stop_gracefully(self, grace: Duration) {
        tracing::info!(
            ?grace,
            "shutting down: taking no new requests, answering those taken"
        );
        self.stop_taking.cancel();
        self.live.close_all();
        let live = self.live.clone();
        let answered = async {
            for listener in self.listeners {
                let _ = listener.await;
            }
            // The replies sent so far must reach the server before the process exits.
            if let Err(error) = delivered(&self.nats).await {
                tracing::warn!(%error, "could not confirm the last NATS replies");
            }
            let _ = self.http.await;
            live.wait_closed(grace).await;
        };
        if tokio::time::timeout(grace, answered).await.is_err() {
            tracing::warn!(?grace, "grace period over; stopping what is left");
        }
        // Dropping a singleton's task closes the connection that holds its advisory lock:
        // PostgreSQL releases the lock as the session ends.
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!("shut down");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot reach PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the admin user: {0}")]
    Admin(#[from] commands::CommandError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("{0}")]
    ForeignStream(StreamSetupError),
    #[error("NATS_URL: {0}")]
    NatsLimit(String),
    #[error("NATS_CREDS: {0}")]
    NatsCreds(String),
}

/// How long `start` waits for JetStream to show whose the events stream is (NATS away:
/// requests wait for the connection).
const STREAM_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Connects, migrates, and starts every part on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> Result<Server, StartError> {
    let pool = store::connect(
        config.database.url.expose_secret(),
        config.database.max_connections,
    )
    .await?;
    store::migrate(&pool).await?;
    if let Some(password) = &config.auth.admin_password {
        gateway::users::upsert_user(&pool, "admin", password.expose_secret(), Role::Admin).await?;
    }
    // One event store for every aggregate: appends of budgets, breakers, dead letters and
    // sandbox runs waiting at one moment share its writers and one statement (ADR 007).
    let events_store = EventStore::new(pool.clone());
    let budgets = Arc::new(BudgetService::new(
        events_store.clone(),
        Arc::new(SystemClock),
    ));

    // Commands over HTTP need only PostgreSQL: when NATS is away the client keeps
    // reconnecting in the background and the subscription resumes when it is back.
    let nats = nats_options(&config)
        .await?
        .name("controlplane")
        .retry_on_initial_connect()
        .connect(&config.nats.url)
        .await
        .map_err(|e| StartError::Nats(e.to_string()))?;
    // Who sent a NATS command: the service its subject names, with its registered tenants.
    let senders = Arc::new(commands::request_server::Senders {
        prefix: config.nats.prefix.clone(),
        directory: Arc::new(commands::services::ServiceDirectory::new(pool.clone())),
    });

    let budget_reads: Arc<dyn commands::api::BudgetReads> = Arc::new(reads::ReadModelReads {
        pool: pool.clone(),
        wait: config.pipeline.read_wait,
    });
    let events = EventsStream::new(
        config.streams.events.clone(),
        config.nats.prefix.clone(),
        streams::load_deployment_id(&pool).await?,
    )
    .with_replicas(config.streams.replicas);
    let js = async_nats::jetstream::new(nats.clone());
    // Refuse at once to start on another database's stream. When NATS does not answer in
    // time the readers check when they attach (and `/readyz` reports what they find).
    if let Ok(Err(error @ StreamSetupError::Foreign { .. })) =
        tokio::time::timeout(STREAM_CHECK_WAIT, ensure_events_stream(&js, &events)).await
    {
        return Err(StartError::ForeignStream(error));
    }
    // Every event the write side accepts must fit in a message this server takes.
    if let Err(problem) = streams::check_max_payload(nats.server_info().max_payload) {
        return Err(StartError::NatsLimit(problem));
    }
    let publisher = Arc::new(PublisherStats::default());
    let projector = Arc::new(ProjectorStats::default());

    let mut tasks = Vec::new();
    let stop_taking = CancellationToken::new();
    // Tokens are checked against the accounts in memory; load them before the first request.
    let auth = Arc::new(gateway::sessions::Authenticator::new(Arc::new(
        TokenKeys::new(
            config.auth.jwt_secret.expose_secret().as_bytes(),
            config.auth.token_ttl_seconds,
        ),
    )));
    auth.reload(&pool).await?;
    tasks.push(
        auth.clone()
            .spawn_refresher(pool.clone(), stop_taking.clone()),
    );
    let mut listeners = Vec::new();
    let breakers = Arc::new(BreakerService::new(
        events_store.clone(),
        Arc::new(SystemClock),
    ));
    let (breaker_listener, breaker_tasks) =
        spawn_breakers(&nats, &config, &senders, &breakers, &stop_taking);
    listeners.push(breaker_listener);
    tasks.extend(breaker_tasks);
    let (dlq, redrive, dlq_listener, dlq_tasks) =
        start_dlq(&events_store, &nats, &config, &senders, &stop_taking).await;
    listeners.push(dlq_listener);
    tasks.extend(dlq_tasks);
    // The sandbox's run reports become `SandboxRun` events.
    tasks.push(tokio::spawn(commands::sandbox_audit::run_sandbox_audit(
        async_nats::jetstream::new(nats.clone()),
        events_store.clone(),
        commands::sandbox_audit::SandboxAuditConfig {
            subject: natsauth::subjects::sandbox_reports(&config.nats.prefix),
            stream: config.streams.sandbox_audit.clone(),
            replicas: config.streams.replicas,
        },
        Arc::new(commands::sandbox_audit::SandboxAuditStats::default()),
    )));
    {
        let budgets = budgets.clone();
        let senders = senders.clone();
        let reads = budget_reads.clone();
        let nats = nats.clone();
        let stop = stop_taking.clone();
        listeners.push(tokio::spawn(async move {
            if let Err(error) =
                commands::budget_nats::serve_budget_commands(nats, senders, budgets, reads, stop)
                    .await
            {
                tracing::error!(%error, "NATS command listener stopped");
            }
        }));
    }
    // The two singletons: one active publisher and one active projector across processes.
    tasks.push(tokio::spawn(streams::run_publisher(
        pool.clone(),
        js.clone(),
        PublisherConfig {
            hash_checkpoint_events: config.pipeline.hash_checkpoint_events,
            hash_checkpoint_interval: config.pipeline.hash_checkpoint_interval,
            poll: config.pipeline.publisher_poll,
            ..PublisherConfig::new(events.clone())
        },
        publisher.clone(),
    )));
    tasks.push(tokio::spawn(projections::run_projector(
        pool.clone(),
        js.clone(),
        events.clone(),
        projector.clone(),
    )));
    // Every process fans the stream out to its own WebSocket connections.
    let live = gateway::live::LiveHub::new(config.http.live.clone());
    tasks.push(tokio::spawn(gateway::live::run_live_feed(
        js,
        events.clone(),
        live.clone(),
    )));
    tasks.push(tokio::spawn(commands::expiry::run_expiry_worker(
        budgets.clone(),
        config.workers.expiry_interval,
    )));

    let registry = prometheus_registry();
    let metrics = gateway::hardening::HttpMetrics::new(registry.clone());
    let overview = gateway::overview::Overview::new(
        config.workers.warning_percent,
        config.http.policy.role_limits.clone(),
        metrics.history.clone(),
    );
    tasks.push(tokio::spawn(gateway::business_metrics::refresh_gauges(
        pool.clone(),
        breakers.clone(),
        gateway::business_metrics::BusinessGauges::register(&registry),
        config.workers.metrics_refresh,
    )));
    let pipeline = gateway::pipeline_routes::PipelineInfo {
        publisher: publisher.clone(),
        projector: projector.clone(),
        events: events.clone(),
    };
    tasks.push(tokio::spawn(
        gateway::pipeline_metrics::refresh_pipeline_gauges(
            pool.clone(),
            pipeline.clone(),
            gateway::pipeline_metrics::PipelineGauges::register(&registry),
            config.workers.metrics_refresh,
        ),
    ));
    let state = AppState {
        budgets: budgets.clone(),
        breakers,
        dlq,
        redrive,
        budget_reads,
        pipeline,
        pool,
        events: events_store,
        nats: nats.clone(),
        auth: auth.clone(),
        failed_logins: Arc::default(),
        read_wait: config.pipeline.read_wait,
        secure_cookies: config.auth.secure_cookies,
        ui: gateway::ui::UiFiles::open(&config.server.ui_dir).map(Arc::new),
        sandbox_url: config.server.sandbox_url.as_deref().map(Arc::from),
        live: live.clone(),
        overview: std::sync::Arc::new(overview),
    };
    registry
        .register(Box::new(live.connections.clone()))
        .expect("active_users is registered once per registry");
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Nats(e.to_string()))?;
    let app = gateway::hardening::harden(gateway::app(state), &config.http.policy, auth, metrics)
        // Peer addresses feed the per-IP login limit.
        .into_make_service_with_connect_info::<SocketAddr>();
    let stopped = stop_taking.clone().cancelled_owned();
    let http = tokio::spawn(async move {
        // Without TCP_NODELAY a small write waits, behind Nagle's algorithm, for the ACK
        // of the one before: a WebSocket event frame sent while the client delays its ACK
        // sat there for up to 40 ms, and so did small HTTP answers.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY not set on a connection");
            }
        });
        // On shutdown: no new connections or requests; those in progress are answered.
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(%error, "HTTP server stopped");
        }
    });
    Ok(Server {
        addr,
        budgets,
        publisher,
        projector,
        live,
        stop_taking,
        nats: nats.clone(),
        http,
        listeners,
        tasks,
    })
}

/// The NATS options of this process: its creds file when one is configured.
pub async fn nats_options(config: &Config) -> Result<async_nats::ConnectOptions, StartError> {
    match &config.nats.creds {
        None => Ok(async_nats::ConnectOptions::new()),
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| StartError::NatsCreds(format!("{}: {e}", path.display()))),
    }
}

/// The circuit-breaker tasks: the NATS commands, the change announcements that keep every
/// process's checks current, and the OPEN → HALF_OPEN worker (on the expiry cadence).
fn spawn_breakers(
    nats: &async_nats::Client,
    config: &Config,
    senders: &Arc<commands::request_server::Senders>,
    breakers: &Arc<BreakerService>,
    stop_taking: &CancellationToken,
) -> (JoinHandle<()>, Vec<JoinHandle<()>>) {
    let senders = senders.clone();
    let (client, service, stop) = (nats.clone(), breakers.clone(), stop_taking.clone());
    let commands = tokio::spawn(async move {
        if let Err(error) =
            commands::breaker_nats::serve_breaker_commands(client, senders, service, stop).await
        {
            tracing::error!(%error, "NATS breaker listener stopped");
        }
    });
    let prefix = config.nats.prefix.clone();
    let (client, service) = (nats.clone(), breakers.clone());
    let sync = tokio::spawn(async move {
        if let Err(error) =
            commands::breaker_nats::sync_breaker_changes(client, prefix, service).await
        {
            tracing::error!(%error, "breaker change announcements stopped");
        }
    });
    let retry = tokio::spawn(commands::breaker::run_retry_worker(
        breakers.clone(),
        config.workers.expiry_interval,
    ));
    (commands, vec![sync, retry])
}

/// The dead-letter queue: its services, the NATS capture command, the advisory capture
/// and the redrive worker. The advisory stream is created before `start` returns (when
/// NATS answers within a few seconds), so advisories are kept from then on.
async fn start_dlq(
    events_store: &EventStore,
    nats: &async_nats::Client,
    config: &Config,
    senders: &Arc<commands::request_server::Senders>,
    stop_taking: &CancellationToken,
) -> (
    Arc<commands::dlq::DlqService>,
    Arc<commands::dlq_redrive::RedriveService>,
    JoinHandle<()>,
    Vec<JoinHandle<()>>,
) {
    let dlq = Arc::new(
        commands::dlq::DlqService::new(events_store.clone(), Arc::new(SystemClock))
            .with_nats(nats.clone())
            .reserving(&config.nats.prefix),
    );
    let pool = events_store.pool();
    let reads = Arc::new(dlq_reads::ReadModelDlqReads { pool: pool.clone() });
    let redrive = Arc::new(commands::dlq_redrive::RedriveService::new(
        pool.clone(),
        reads,
    ));
    let js = async_nats::jetstream::new(nats.clone());
    let ensured = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        commands::dlq_capture::ensure_advisory_stream(&js, &config.streams.dlq_capture),
    )
    .await;
    if !matches!(ensured, Ok(Ok(()))) {
        tracing::warn!(
            "the dead-letter advisory stream is not ready yet; the capture task keeps trying"
        );
    }
    let senders = senders.clone();
    let (client, service, stop) = (nats.clone(), dlq.clone(), stop_taking.clone());
    let commands = tokio::spawn(async move {
        if let Err(error) =
            commands::dlq_nats::serve_dlq_commands(client, senders, service, stop).await
        {
            tracing::error!(%error, "NATS dead-letter listener stopped");
        }
    });
    let capture = tokio::spawn(commands::dlq_capture::run_capture(
        js,
        dlq.clone(),
        config.streams.dlq_capture.clone(),
    ));
    let worker = tokio::spawn(commands::dlq_redrive::run_redrive_worker(
        redrive.clone(),
        dlq.clone(),
        config.workers.expiry_interval,
    ));
    (dlq, redrive, commands, vec![capture, worker])
}

/// The registry `/metrics` exports. A fresh one per server, so in-process test servers
/// never collide over metric names.
fn prometheus_registry() -> prometheus::Registry {
    prometheus::Registry::new()
}
