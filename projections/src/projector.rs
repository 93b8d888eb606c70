//! The live projector: a durable JetStream consumer applying batches to the read models.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Context, Message};
use futures::StreamExt;
use sqlx::PgPool;
use streams::setup::{ensure_events_stream, projection_consumer_config, EventsStream};
use streams::singleton::run_singleton;
use streams::EventEnvelope;

use crate::apply::apply_batch;
use crate::ProjectionError;

/// The durable consumer's name on the events stream.
pub const CONSUMER: &str = "projections";
/// Largest batch applied in one transaction.
const BATCH: usize = 1000;

/// Counters for metrics and tests (this process only).
#[derive(Debug, Default)]
pub struct ProjectorStats {
    pub active: Arc<AtomicBool>,
    /// Events that changed the read models.
    pub projected: AtomicU64,
    /// Messages that were redeliveries or already applied.
    pub skipped: AtomicU64,
    pub last_position: AtomicI64,
}

/// Projects forever: one active projector across processes (an advisory lock), retrying
/// with back-off while NATS or PostgreSQL is away.
pub async fn run_projector(
    pool: PgPool,
    js: Context,
    stream: EventsStream,
    stats: Arc<ProjectorStats>,
) {
    let name = format!("projector/{}", stream.name);
    run_singleton(pool.clone(), name, stats.active.clone(), || {
        project_while_active(&pool, &js, &stream, &stats)
    })
    .await;
}

async fn project_while_active(
    pool: &PgPool,
    js: &Context,
    stream: &EventsStream,
    stats: &ProjectorStats,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match consume(pool, js, stream, stats).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "projector paused");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn nats<E: std::fmt::Display>(error: E) -> ProjectionError {
    ProjectionError::Nats(error.to_string())
}

async fn consume(
    pool: &PgPool,
    js: &Context,
    stream: &EventsStream,
    stats: &ProjectorStats,
) -> Result<(), ProjectionError> {
    let events = ensure_events_stream(js, stream).await.map_err(nats)?;
    let consumer: PullConsumer = events
        .get_or_create_consumer(CONSUMER, projection_consumer_config(CONSUMER))
        .await
        .map_err(nats)?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(nats)?
        .ready_chunks(BATCH);
    tracing::info!(stream = %stream.name, "projecting events into the read models");
    while let Some(chunk) = messages.next().await {
        let mut batch: Vec<Message> = Vec::with_capacity(chunk.len());
        for message in chunk {
            batch.push(message.map_err(nats)?);
        }
        if let Err(error) = apply_messages(pool, &batch, stats).await {
            // Ask for them again at once (in order) rather than after the ack wait.
            for message in &batch {
                let _ = message.ack_with(AckKind::Nak(None)).await;
            }
            return Err(error);
        }
        // AckPolicy::All: acknowledging the last acknowledges the batch.
        if let Some(last) = batch.last() {
            if let Err(error) = last.ack().await {
                tracing::warn!(%error, "could not acknowledge a projected batch; it will be redelivered and skipped");
            }
        }
    }
    Err(ProjectionError::Nats(
        "the consumer's message stream ended".into(),
    ))
}

async fn apply_messages(
    pool: &PgPool,
    batch: &[Message],
    stats: &ProjectorStats,
) -> Result<(), ProjectionError> {
    let mut envelopes = Vec::with_capacity(batch.len());
    let mut stream_seq = None;
    for message in batch {
        if let Ok(info) = message.info() {
            stream_seq = Some(info.stream_sequence);
        }
        match serde_json::from_slice::<EventEnvelope>(&message.payload) {
            Ok(envelope) => envelopes.push(envelope),
            // Only the publisher writes to this stream; a foreign message is logged and
            // passed over (the event table stays the source of truth).
            Err(error) => {
                tracing::error!(subject = %message.subject, %error, "not an event envelope; skipped")
            }
        }
    }
    let mut tx = pool.begin().await?;
    let applied = apply_batch(&mut tx, &envelopes, stream_seq).await?;
    tx.commit().await?;
    stats.projected.fetch_add(applied as u64, Ordering::Relaxed);
    stats.skipped.fetch_add(
        envelopes.len().saturating_sub(applied) as u64,
        Ordering::Relaxed,
    );
    if let Some(last) = envelopes.last() {
        stats
            .last_position
            .store(last.global_position, Ordering::Relaxed);
    }
    Ok(())
}
