//! Records the sandbox's run reports as events (`SandboxRun`, domain/src/sandbox_run.rs).
//!
//! The sandbox publishes each report on `<prefix>.audit.sandbox` with `Nats-Msg-Id` = the
//! report id. A JetStream stream of the control plane's own keeps them (so none is lost
//! while the control plane is down or restarting, and a re-publish inside the duplicate
//! window is dropped), and a durable consumer records each one, acknowledging only after
//! the event is committed. A report that can never be recorded (not JSON, a field out of
//! range, an id reused with other content) is logged and terminated, not redelivered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::Context;
use domain::sandbox_run::{
    Recorded, SandboxRun, SandboxRunCommand, SandboxRunError, SandboxRunReport,
};
use futures::StreamExt;

use crate::executor::{Decide, Decision, Executor};
use crate::store::{Actor, EventStore};
use crate::CommandError;

/// Reports are a buffer here, not the record (the event table is): a week covers any
/// outage of the control plane.
const KEEP_REPORTS: Duration = Duration::from_secs(7 * 86_400);
const DURABLE: &str = "controlplane-sandbox-audit";

impl Decide for SandboxRun {
    type Reply = Recorded;

    fn decide(&self, command: SandboxRunCommand) -> Decision<Self> {
        SandboxRun::decide(self, command)
    }
}

impl From<SandboxRunError> for CommandError {
    fn from(error: SandboxRunError) -> Self {
        match error {
            SandboxRunError::Invalid { field, message } => CommandError::invalid(field, message),
            SandboxRunError::Conflict(_) => CommandError::Conflict(error.to_string()),
        }
    }
}

/// Where reports arrive and are kept.
#[derive(Debug, Clone)]
pub struct SandboxAuditConfig {
    /// `<prefix>.audit.sandbox`.
    pub subject: String,
    /// The stream keeping them (`SANDBOX_AUDIT_STREAM`, default `CP_SANDBOX_AUDIT`).
    pub stream: String,
    /// Replicas of that stream (`JETSTREAM_REPLICAS`).
    pub replicas: usize,
}

/// What this process recorded (for tests and logs).
#[derive(Debug, Default)]
pub struct SandboxAuditStats {
    pub recorded: AtomicU64,
    pub repeated: AtomicU64,
    pub refused: AtomicU64,
}

/// Records one report; `Ok(true)` when it was new.
pub async fn record(
    executor: &Executor<SandboxRun>,
    report: SandboxRunReport,
) -> Result<bool, CommandError> {
    let id = report.id.clone();
    let actor = Actor::new(format!("sandbox:{}", report.instance), "nats");
    let executed = executor
        .execute(&id, SandboxRunCommand::Record(report), &actor)
        .await?;
    Ok(executed.reply.0)
}

/// Consumes reports for the life of the process, retrying with back-off when NATS or
/// PostgreSQL is away.
pub async fn run_sandbox_audit(
    js: Context,
    store: EventStore,
    config: SandboxAuditConfig,
    stats: Arc<SandboxAuditStats>,
) {
    let executor = Executor::<SandboxRun>::new(store);
    retry::forever(
        || consume(&js, &executor, &config, &stats),
        |error, retry_in| tracing::warn!(%error, ?retry_in, "sandbox audit intake paused"),
    )
    .await;
}

/// Creates (or updates) the stream that keeps reports. Idempotent.
pub async fn ensure_audit_stream(
    js: &Context,
    config: &SandboxAuditConfig,
) -> Result<stream::Stream, async_nats::Error> {
    js.create_or_update_stream(stream::Config {
        name: config.stream.clone(),
        description: Some("Sandbox run reports until the control plane records them".into()),
        subjects: vec![config.subject.clone()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_age: KEEP_REPORTS,
        duplicate_window: Duration::from_secs(300),
        num_replicas: config.replicas,
        ..Default::default()
    })
    .await?;
    Ok(js.get_stream(&config.stream).await?)
}

async fn consume(
    js: &Context,
    executor: &Executor<SandboxRun>,
    config: &SandboxAuditConfig,
    stats: &SandboxAuditStats,
) -> Result<(), async_nats::Error> {
    let stream = ensure_audit_stream(js, config).await?;
    let consumer = stream
        .get_or_create_consumer(
            DURABLE,
            pull::Config {
                durable_name: Some(DURABLE.into()),
                description: Some("the control plane records sandbox runs as events".into()),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                // A report handed to a process that died comes back after this; recording
                // one takes milliseconds.
                ack_wait: Duration::from_secs(5),
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let parsed: Result<SandboxRunReport, _> = serde_json::from_slice(&message.payload);
        let outcome = match parsed {
            Err(error) => Err(CommandError::invalid("report", error.to_string())),
            Ok(report) => record(executor, report).await,
        };
        let ack = match outcome {
            Ok(true) => {
                stats.recorded.fetch_add(1, Ordering::Relaxed);
                AckKind::Ack
            }
            Ok(false) => {
                stats.repeated.fetch_add(1, Ordering::Relaxed);
                AckKind::Ack
            }
            Err(error @ (CommandError::Invalid { .. } | CommandError::Conflict(_))) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, subject = %message.subject, "sandbox report refused");
                AckKind::Term
            }
            Err(error) => {
                // PostgreSQL away and the like: the report comes back.
                tracing::warn!(%error, "sandbox report not recorded yet; redelivering");
                AckKind::Nak(Some(Duration::from_secs(1)))
            }
        };
        message.ack_with(ack).await?;
    }
    Ok(())
}
