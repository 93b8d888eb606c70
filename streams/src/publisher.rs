//! The commit-order publisher: events table → JetStream, with a checkpoint in PostgreSQL.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use crate::envelope::{read_committed_after, subject_for, EventEnvelope, LogPosition};
use crate::setup::{ensure_events_stream, EventsStream};
use crate::singleton::run_singleton;

/// The channel writers notify after their commits (outside their transactions, coalesced:
/// commands::store). The poll covers a missed or absent notification.
pub const EVENTS_CHANNEL: &str = "events_appended";

/// How the publisher runs.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub stream: EventsStream,
    /// Events read and published per round trip.
    pub batch: i64,
    /// Longest wait for a notification before looking anyway (a notification can be lost,
    /// and an event whose transaction was not yet below the snapshot horizon is only
    /// picked up by looking again).
    pub poll: Duration,
}

impl PublisherConfig {
    pub fn new(stream: EventsStream) -> Self {
        Self {
            stream,
            batch: 500,
            poll: Duration::from_millis(50),
        }
    }
}

/// Counters for metrics and tests (this process only).
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// This process holds the publisher lock.
    pub active: Arc<AtomicBool>,
    /// Events JetStream acknowledged as new.
    pub published: AtomicU64,
    /// Events JetStream acknowledged as duplicates (re-published after a crash or error).
    pub duplicates: AtomicU64,
    /// The global position of the last event published by this process.
    pub last_position: AtomicI64,
}

/// Publishes forever: stands by until this process holds the publisher lock, then tails
/// the log. Errors (NATS away, PostgreSQL away) are logged and retried with back-off;
/// commands never wait for this.
pub async fn run_publisher(
    pool: PgPool,
    js: Context,
    config: PublisherConfig,
    stats: Arc<PublisherStats>,
) {
    let name = format!("publisher/{}", config.stream.name);
    run_singleton(pool.clone(), name, stats.active.clone(), || {
        publish_while_active(&pool, &js, &config, &stats)
    })
    .await;
}

async fn publish_while_active(
    pool: &PgPool,
    js: &Context,
    config: &PublisherConfig,
    stats: &PublisherStats,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match tail(pool, js, config, stats).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "publisher paused");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The publisher's checkpoint for `stream`, created at the start of the log if missing.
pub async fn load_checkpoint(pool: &PgPool, stream: &str) -> Result<LogPosition, sqlx::Error> {
    sqlx::query("INSERT INTO publisher_checkpoints (stream) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(stream)
        .execute(pool)
        .await?;
    let (transaction_id, global_position): (String, i64) = sqlx::query_as(
        "SELECT last_tx::text, last_position FROM publisher_checkpoints WHERE stream = $1",
    )
    .bind(stream)
    .fetch_one(pool)
    .await?;
    Ok(LogPosition {
        transaction_id,
        global_position,
    })
}

/// Moves the checkpoint forward (never back: a deposed publisher cannot rewind it).
async fn save_checkpoint(
    pool: &PgPool,
    stream: &str,
    position: &LogPosition,
    count: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE publisher_checkpoints
            SET last_tx = $2::text::xid8, last_position = $3,
                published = published + $4, updated_at = now()
          WHERE stream = $1
            AND (last_tx, last_position) < ($2::text::xid8, $3)",
    )
    .bind(stream)
    .bind(&position.transaction_id)
    .bind(position.global_position)
    .bind(count)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum TailError {
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("JetStream: {0}")]
    Nats(String),
}

fn nats<E: std::fmt::Display>(error: E) -> TailError {
    TailError::Nats(error.to_string())
}

/// Ensures the stream, then publishes batches until an error.
async fn tail(
    pool: &PgPool,
    js: &Context,
    config: &PublisherConfig,
    stats: &PublisherStats,
) -> Result<(), TailError> {
    ensure_events_stream(js, &config.stream)
        .await
        .map_err(nats)?;
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(EVENTS_CHANNEL).await?;
    let mut checkpoint = load_checkpoint(pool, &config.stream.name).await?;
    tracing::info!(stream = %config.stream.name, from = ?checkpoint, "publishing events to JetStream");
    loop {
        let batch = read_committed_after(pool, &checkpoint, config.batch).await?;
        if batch.is_empty() {
            // Woken by a commit, or by the poll interval. Errors here (a dropped LISTEN
            // connection reconnects by itself) only mean we look again.
            let _ = tokio::time::timeout(config.poll, listener.recv()).await;
            continue;
        }
        let (published, result) = publish_batch(js, &config.stream, &batch, stats).await;
        if published > 0 {
            let last = batch[published - 1].position();
            save_checkpoint(pool, &config.stream.name, &last, published as i64).await?;
            stats
                .last_position
                .store(last.global_position, Ordering::Relaxed);
            checkpoint = last;
        }
        result?;
    }
}

/// Publishes a batch with all acknowledgements in flight at once; returns how many
/// leading events JetStream acknowledged, and the first error.
async fn publish_batch(
    js: &Context,
    stream: &EventsStream,
    batch: &[EventEnvelope],
    stats: &PublisherStats,
) -> (usize, Result<(), TailError>) {
    let mut acks = Vec::with_capacity(batch.len());
    for event in batch {
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(error) => return (0, Err(nats(error))),
        };
        let subject = subject_for(&stream.prefix, &event.aggregate_type, &event.aggregate_id);
        let publish = PublishMessage::build()
            .payload(body.into())
            .message_id(event.message_id());
        match js.send_publish(subject, publish).await {
            Ok(ack) => acks.push(ack),
            Err(error) => {
                // Only the events already sent can be confirmed.
                return (confirm(acks, stats).await.0, Err(nats(error)));
            }
        }
    }
    confirm(acks, stats).await
}

async fn confirm(
    acks: Vec<async_nats::jetstream::context::PublishAckFuture>,
    stats: &PublisherStats,
) -> (usize, Result<(), TailError>) {
    let mut confirmed = 0;
    for ack in acks {
        match ack.await {
            Ok(ack) => {
                if ack.duplicate {
                    stats.duplicates.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.published.fetch_add(1, Ordering::Relaxed);
                }
                confirmed += 1;
            }
            Err(error) => return (confirmed, Err(nats(error))),
        }
    }
    (confirmed, Ok(()))
}
