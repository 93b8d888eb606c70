//! The commit-order publisher: events table → JetStream, with a checkpoint in PostgreSQL
//! (the checkpoint and the audit hash checkpoints it records: crate::checkpoint).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use domain::EVENTS_CHANNEL;

use crate::anchors::{ensure_anchor_stream, publish_anchor, Anchor};
use crate::checkpoint::{
    load_state, record_hash_checkpoint, save_checkpoint, HashCheckpoints, PublisherState,
};
use crate::envelope::{
    read_committed_after, subject_for, EventEnvelope, LogPosition, COMMIT_ORDER,
};
use crate::setup::{check_owner, ensure_events_stream, EventsStream, OWNER_CHECK_INTERVAL};
use crate::singleton::run_singleton;

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
    /// A global hash checkpoint is recorded once this many events were published since
    /// the last one...
    pub hash_checkpoint_events: i64,
    /// ...or once this much time passed with any event published since the last one.
    pub hash_checkpoint_interval: Duration,
}

impl PublisherConfig {
    pub fn new(stream: EventsStream) -> Self {
        Self {
            stream,
            batch: 500,
            poll: Duration::from_millis(50),
            hash_checkpoint_events: 1000,
            hash_checkpoint_interval: Duration::from_secs(60),
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
    /// Set while an event cannot be published at all (it is larger than the NATS server
    /// takes): every later event waits behind it, so `/readyz`, `/system/pipeline` and
    /// `pipeline_publisher_stuck_position` say which one and why.
    pub stuck: std::sync::Mutex<Option<Stuck>>,
}

/// An event the publisher cannot publish, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Stuck {
    pub position: i64,
    pub reason: String,
}

impl PublisherStats {
    /// The event the publisher is stuck on, if any.
    pub fn stuck(&self) -> Option<Stuck> {
        self.stuck.lock().map(|s| s.clone()).unwrap_or(None)
    }

    fn set_stuck(&self, stuck: Option<Stuck>) {
        if let Ok(mut slot) = self.stuck.lock() {
            *slot = stuck;
        }
    }
}

/// The largest message the publisher sends: an event of at most
/// [`domain::MAX_EVENT_BYTES`] and its envelope (positions, ids, hash, time).
pub const MAX_MESSAGE_BYTES: usize = domain::MAX_EVENT_BYTES + 64 * 1024;

/// Refuses a NATS server whose `max_payload` is below [`MAX_MESSAGE_BYTES`]: some event
/// the write side accepts could then never be published, and every later one would wait
/// behind it. A limit of 0 means not known yet (not connected) and passes.
pub fn check_max_payload(server_max_payload: usize) -> Result<(), String> {
    if server_max_payload == 0 || server_max_payload >= MAX_MESSAGE_BYTES {
        return Ok(());
    }
    Err(format!(
        "the NATS server takes messages of at most {server_max_payload} bytes (max_payload), \
         but events are published in messages of up to {MAX_MESSAGE_BYTES} bytes: set \
         max_payload to at least that in the server's configuration (the project's \
         scripts/nats.conf sets 4 MiB; docs/adr/013-bounded-events.md)"
    ))
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
    retry::forever(
        || tail(pool, js, config, stats),
        |error, retry_in| match error {
            TailError::TooLarge { position, reason } => {
                tracing::error!(
                    position,
                    %reason,
                    "publisher STUCK: the event at this position cannot be published, and \
                     every later event waits behind it; raise the NATS server's max_payload"
                );
                stats.set_stuck(Some(Stuck { position, reason }));
            }
            error => tracing::warn!(%error, ?retry_in, "publisher paused"),
        },
    )
    .await;
}

#[derive(Debug, thiserror::Error)]
enum TailError {
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("JetStream: {0}")]
    Nats(String),
    #[error("another publisher moved the checkpoint; reloading it")]
    Deposed,
    #[error("the event at position {position} cannot be published: {reason}")]
    TooLarge { position: i64, reason: String },
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
    ensure_anchor_stream(js, &config.stream)
        .await
        .map_err(TailError::Nats)?;
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(EVENTS_CHANNEL).await?;
    let stream = &config.stream.name;
    let mut state = load_state(pool, stream).await?;
    let mut hash_checkpoints = HashCheckpoints::new(
        config.hash_checkpoint_events,
        config.hash_checkpoint_interval,
    );
    tracing::info!(%stream, from = ?state.position, hashed = state.hashed, "publishing events to JetStream");
    let mut held_back_wait = HELD_BACK_FIRST_WAIT;
    let mut owner_checked = Instant::now();
    loop {
        // Every second, and at once when another reader of this process found the stream
        // another deployment's.
        if owner_checked.elapsed() >= OWNER_CHECK_INTERVAL
            || config.stream.foreign_owner().is_some()
        {
            check_owner(js, &config.stream).await.map_err(nats)?;
            owner_checked = Instant::now();
        }
        let batch = read_committed_after(pool, &state.position, config.batch).await?;
        if batch.is_empty() {
            if hash_checkpoints.due_while_idle(&state) {
                // The stored state is this one (moved by our last save), so the row
                // records a point of the same chain. The anchor goes out first: a
                // checkpoint row never exists without its copy outside the database.
                anchor(js, &config.stream, &state).await?;
                let mut conn = pool.acquire().await?;
                record_hash_checkpoint(&mut conn, stream, &state).await?;
                hash_checkpoints.recorded(&mut state);
            }
            if committed_after(pool, &state.position).await? {
                // Committed events wait behind an older transaction still running (the
                // snapshot horizon; under load, usually the projector's). Its commit sends
                // no notification, so look again soon rather than at the next poll, backing
                // off a little (it may be a long one); a notification wakes us earlier.
                let _ = tokio::time::timeout(held_back_wait, listener.recv()).await;
                held_back_wait = (held_back_wait * 2).min(HELD_BACK_LONGEST_WAIT.min(config.poll));
                continue;
            }
            // Woken by a commit, or by the poll interval. Errors here (a dropped LISTEN
            // connection reconnects by itself) only mean we look again.
            let _ = tokio::time::timeout(config.poll, listener.recv()).await;
            continue;
        }
        held_back_wait = HELD_BACK_FIRST_WAIT;
        let (published, result) = publish_batch(js, &config.stream, &batch, stats).await;
        if published > 0 {
            stats.set_stuck(None);
            let mut next = state.clone();
            next.fold(&batch[..published]);
            let record = hash_checkpoints.due_after(&state, published);
            if record {
                // The running hash after these events is the log's whatever happens to
                // the save (a deposed publisher computed the one its successor will).
                anchor(js, &config.stream, &next).await?;
            }
            if !save_checkpoint(pool, stream, &state, &next, record).await? {
                return Err(TailError::Deposed);
            }
            if record {
                hash_checkpoints.recorded(&mut next);
            }
            stats
                .last_position
                .store(next.position.global_position, Ordering::Relaxed);
            state = next;
        }
        result?;
    }
}

/// Publishes the audit anchor of `state` (crate::anchors).
async fn anchor(
    js: &Context,
    events: &EventsStream,
    state: &PublisherState,
) -> Result<(), TailError> {
    let anchor = Anchor::of(&events.name, state, chrono::Utc::now());
    publish_anchor(js, events, &anchor)
        .await
        .map_err(|e| TailError::Nats(format!("publishing the audit anchor: {e}")))
}

/// The first wait before looking again at events held back by the snapshot horizon.
const HELD_BACK_FIRST_WAIT: Duration = Duration::from_millis(1);
/// The longest wait between looks while events are held back: the look is one index probe.
const HELD_BACK_LONGEST_WAIT: Duration = Duration::from_millis(8);

/// The first committed event after `($1, $2)` in commit order, horizon or not.
///
/// Written as "the first one in commit order" on purpose: as `EXISTS (… WHERE (…) > (…))`
/// the generic plan of the prepared statement was a sequential scan from the oldest event
/// (it guesses a third of the rows match): 4–5 ms per call on a 30,000-event log, growing
/// with it, hundreds of calls a second under load. This form walks the commit-order index.
pub fn next_committed_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT global_position FROM events
              WHERE (events.transaction_id, events.global_position) > ($1::text::xid8, $2)
              ORDER BY {COMMIT_ORDER} LIMIT 1"
        )
    });
    &SQL
}

/// Whether any committed event follows `after`, horizon or not.
async fn committed_after(pool: &PgPool, after: &LogPosition) -> Result<bool, sqlx::Error> {
    let next: Option<i64> = sqlx::query_scalar(next_committed_sql())
        .bind(&after.transaction_id)
        .bind(after.global_position)
        .fetch_optional(pool)
        .await?;
    Ok(next.is_some())
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
        let body_len = body.len();
        let publish = PublishMessage::build()
            .payload(body.into())
            .message_id(event.message_id());
        match js.send_publish(subject, publish).await {
            Ok(ack) => acks.push(ack),
            Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                let reason = format!(
                    "{error} (the message takes {} bytes; the server takes at most {})",
                    body_len,
                    js.client().server_info().max_payload
                );
                let confirmed = confirm(acks, stats).await.0;
                return (
                    confirmed,
                    Err(TailError::TooLarge {
                        position: event.global_position,
                        reason,
                    }),
                );
            }
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
