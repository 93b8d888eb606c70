//! The live projector: a durable JetStream consumer applying batches to the read models.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Context, Message};
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;
use streams::setup::{ensure_events_stream, projection_consumer_config, EventsStream};
use streams::singleton::run_singleton;
use streams::{EventEnvelope, LogPosition};

use crate::apply::{apply_batch, BatchSpan};
use crate::ProjectionError;

/// The durable consumer's name on the events stream.
pub const CONSUMER: &str = "projections";
/// Largest batch applied in one transaction.
const BATCH: usize = 1000;
/// Batches applied at once: the next batch's first round trips overlap the previous one's
/// last. They wait for each other only where they share aggregates (version rows, locked
/// in key order) and at the checkpoint row; acknowledgements stay in batch order.
const IN_FLIGHT: usize = 2;
/// While committed batches wait for their WAL flush and no new message comes, how often
/// to look whether PostgreSQL has flushed them.
const FLUSH_CHECK: Duration = Duration::from_millis(50);

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
    stats: &Arc<ProjectorStats>,
) {
    retry::forever(
        || consume(pool, js, stream, stats),
        |error, retry_in| tracing::warn!(%error, ?retry_in, "projector paused"),
    )
    .await;
}

fn nats<E: std::fmt::Display>(error: E) -> ProjectionError {
    ProjectionError::Nats(error.to_string())
}

async fn consume(
    pool: &PgPool,
    js: &Context,
    stream: &EventsStream,
    stats: &Arc<ProjectorStats>,
) -> Result<(), ProjectionError> {
    let events = ensure_events_stream(js, stream).await.map_err(nats)?;
    let consumer = consumer_from_ack_floor(&events).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(nats)?
        .ready_chunks(BATCH);
    tracing::info!(stream = %stream.name, "projecting events into the read models");
    let mut unflushed: UnflushedBatches<Message> = UnflushedBatches::default();
    let mut spans = Spans::default();
    // Batches being applied, oldest first; each yields its result, its messages, how many
    // batches had finished when it began (its WAL reading came after their commits) and
    // where it ends in commit order.
    let mut in_flight: FuturesOrdered<BoxFuture<'static, Finished>> = FuturesOrdered::new();
    loop {
        tokio::select! {
            Some((result, mut batch, finished_before, to)) = in_flight.next(), if !in_flight.is_empty() => {
                let error = match result {
                    Ok(Ok(wal)) => {
                        acknowledge(unflushed.observe(wal, finished_before)).await;
                        if let Some(last) = batch.pop() {
                            unflushed.committed(last);
                        }
                        // Yielded in order: this batch and every one before it committed.
                        spans.committed(to);
                        continue;
                    }
                    Ok(Err(error)) => error,
                    Err(join) => ProjectionError::Nats(format!("projection task failed: {join}")),
                };
                // Ask for them again at once (in order) rather than after the ack wait; a
                // later batch still in flight is asked for again too (what it committed is
                // skipped on redelivery).
                nak(&batch).await;
                nak_in_flight(&mut in_flight).await;
                return Err(error);
            }
            chunk = messages.next(), if in_flight.len() < IN_FLIGHT => {
                let Some(chunk) = chunk else { break };
                let mut batch: Vec<Message> = Vec::with_capacity(chunk.len());
                for message in chunk {
                    match message {
                        Ok(message) => batch.push(message),
                        Err(error) => {
                            nak_in_flight(&mut in_flight).await;
                            return Err(nats(error));
                        }
                    }
                }
                let (envelopes, stream_seq) = envelopes_of(&batch);
                let span = spans.next(&envelopes, stream_seq);
                let to = span.to.clone();
                let task = tokio::spawn(apply_envelopes(pool.clone(), envelopes, span, stats.clone()));
                let finished_before = unflushed.finished;
                in_flight.push_back(task.map(move |result| (result, batch, finished_before, to)).boxed());
            }
            _ = tokio::time::sleep(FLUSH_CHECK), if in_flight.is_empty() && !unflushed.is_empty() => {
                let wal = wal_positions(pool).await?;
                acknowledge(unflushed.observe(wal, unflushed.finished)).await;
            }
        }
    }
    nak_in_flight(&mut in_flight).await;
    Err(ProjectionError::Nats(
        "the consumer's message stream ended".into(),
    ))
}

/// Lets the batches still in flight end, and asks for their messages again, before this
/// consumer is given up. A batch left running would commit beside the next consumer's
/// (harmless to the read models, which the versions protect, but its range could take the
/// place of that consumer's range ahead in the watermark row; the next batch's floor mends
/// that, so this only keeps the watermark from lagging meanwhile).
async fn nak_in_flight(in_flight: &mut FuturesOrdered<BoxFuture<'static, Finished>>) {
    while let Some((_, later, _, _)) = in_flight.next().await {
        nak(&later).await;
    }
}

/// Where each batch of one consumer stands in commit order (see [`BatchSpan`]).
///
/// The consumer starts right after its acknowledgement floor, and everything at or below
/// the floor is applied (a batch is acknowledged only once it and every batch before it
/// committed, [`UnflushedBatches`]). So the first batch's range starts at the beginning of
/// the log, and each later one where the one before ended: the newest event (in commit
/// order) of the stream so far, a running maximum, since a re-published event can appear
/// again after newer ones.
#[derive(Debug)]
struct Spans {
    /// The newest event delivered to this consumer so far (the start of the log at first).
    delivered: LogPosition,
    /// The end of the batches that have all committed.
    committed: Option<LogPosition>,
}

impl Default for Spans {
    fn default() -> Self {
        Spans {
            delivered: LogPosition::start(),
            committed: None,
        }
    }
}

/// A position's place in commit order; `None` for a transaction id that is not a number
/// (not one of ours: such an envelope moves nothing).
fn commit_key(position: &LogPosition) -> Option<(u64, i64)> {
    Some((
        position.transaction_id.parse().ok()?,
        position.global_position,
    ))
}

impl Spans {
    /// The span of the next batch, whose envelopes these are.
    fn next(&mut self, envelopes: &[EventEnvelope], stream_seq: Option<u64>) -> BatchSpan {
        let from = self.delivered.clone();
        let mut newest = commit_key(&from).unwrap_or_default();
        for envelope in envelopes {
            let Ok(transaction_id) = envelope.transaction_id.parse::<u64>() else {
                continue;
            };
            let key = (transaction_id, envelope.global_position);
            if key > newest {
                newest = key;
                self.delivered = envelope.position();
            }
        }
        BatchSpan {
            stream_seq,
            from,
            to: self.delivered.clone(),
            floor: self.committed.clone(),
        }
    }

    /// The batch that ends at `to` committed, and so did every one before it.
    fn committed(&mut self, to: LogPosition) {
        self.committed = Some(to);
    }
}

/// The durable consumer, made afresh from its acknowledgement floor each time this process
/// starts consuming (it holds the projector lock, so nobody else uses the consumer).
///
/// Messages a previous holder had fetched but not acknowledged (it was killed, or stopped)
/// stay pending with the consumer until their ack wait (30 s) runs out: the last events
/// before a fail-over reached the read models only then. Acknowledgements are cumulative
/// and sent only after a batch is committed and flushed, so everything at or below the
/// floor is applied; starting right after it redelivers the rest at once (what was applied
/// is skipped by the per-aggregate versions).
async fn consumer_from_ack_floor(
    events: &async_nats::jetstream::stream::Stream,
) -> Result<PullConsumer, ProjectionError> {
    let config = projection_consumer_config(CONSUMER);
    let config = match events.consumer_info(CONSUMER).await {
        Ok(info) => {
            events.delete_consumer(CONSUMER).await.map_err(nats)?;
            async_nats::jetstream::consumer::pull::Config {
                deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: info.ack_floor.stream_sequence + 1,
                },
                ..config
            }
        }
        Err(error)
            if error.kind() == async_nats::jetstream::context::ConsumerInfoErrorKind::NotFound =>
        {
            config
        }
        Err(error) => return Err(nats(error)),
    };
    events.create_consumer(config).await.map_err(nats)
}

/// A batch's task ended: its result, its messages, and how many batches had finished when
/// it began.
type Finished = (
    Result<Result<WalPositions, ProjectionError>, tokio::task::JoinError>,
    Vec<Message>,
    u64,
    LogPosition,
);

async fn nak(batch: &[Message]) {
    for message in batch {
        let _ = message.ack_with(AckKind::Nak(None)).await;
    }
}

/// AckPolicy::All: acknowledging the last message of a batch acknowledges every earlier one.
async fn acknowledge(last: Option<Message>) {
    if let Some(last) = last {
        if let Err(error) = last.ack().await {
            tracing::warn!(%error, "could not acknowledge projected batches; they will be redelivered and skipped");
        }
    }
}

/// Where PostgreSQL's WAL is: inserted up to (`insert`) and flushed to disk up to (`flush`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPositions {
    pub insert: i64,
    pub flush: i64,
}

/// Where the WAL is, as two byte offsets (`insert`, `flush`).
macro_rules! wal_positions_sql {
    () => {
        "(pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8, \
         (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::int8"
    };
}

async fn wal_positions(pool: &PgPool) -> Result<WalPositions, ProjectionError> {
    let (insert, flush) = sqlx::query_as(concat!("SELECT ", wal_positions_sql!()))
        .fetch_one(pool)
        .await?;
    Ok(WalPositions { insert, flush })
}

/// Batches committed but not acknowledged yet. The projector commits without waiting for
/// the WAL flush (that wait was a fifth of each batch's time under load), so a PostgreSQL
/// crash can lose its latest commits. JetStream must then still hold those messages: a
/// batch is acknowledged only once the WAL is flushed past its commit. A WAL position read
/// after a batch committed is past its commit record: that is the batch's mark.
#[derive(Debug)]
struct UnflushedBatches<T> {
    /// In commit order (oldest first): the batch's number among finished batches, its mark
    /// once known, and its last message.
    queue: VecDeque<(u64, Option<i64>, T)>,
    finished: u64,
}

impl<T> Default for UnflushedBatches<T> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            finished: 0,
        }
    }
}

impl<T> UnflushedBatches<T> {
    /// The next batch in order committed (batches are numbered 0, 1, … as they come here).
    fn committed(&mut self, last: T) {
        self.queue.push_back((self.finished, None, last));
        self.finished += 1;
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// `wal` was read after the first `finished_before` batches committed. Marks those not
    /// marked yet with its insert position and returns the newest batch flushed by now
    /// (acknowledging it acknowledges the older ones), dropping it and all before it.
    fn observe(&mut self, wal: WalPositions, finished_before: u64) -> Option<T> {
        for (number, mark, _) in self.queue.iter_mut() {
            if *number < finished_before {
                mark.get_or_insert(wal.insert);
            }
        }
        let mut newest = None;
        while let Some((_, Some(mark), _)) = self.queue.front() {
            if *mark > wal.flush {
                break;
            }
            newest = self.queue.pop_front().map(|(_, _, last)| last);
        }
        newest
    }
}

/// The event envelopes of a batch, and the stream sequence of its last message.
fn envelopes_of(batch: &[Message]) -> (Vec<EventEnvelope>, Option<u64>) {
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
    (envelopes, stream_seq)
}

/// Applies a batch in one transaction; returns where the WAL was when it began.
async fn apply_envelopes(
    pool: PgPool,
    envelopes: Vec<EventEnvelope>,
    span: BatchSpan,
    stats: Arc<ProjectorStats>,
) -> Result<WalPositions, ProjectionError> {
    let mut tx = pool.begin().await?;
    // This transaction's commit does not wait for the WAL flush (see UnflushedBatches);
    // the same round trip reads where the WAL is.
    let (_, insert, flush): (String, i64, i64) = sqlx::query_as(concat!(
        "SELECT set_config('synchronous_commit', 'off', true), ",
        wal_positions_sql!()
    ))
    .fetch_one(&mut *tx)
    .await?;
    let applied = apply_batch(&mut tx, &envelopes, Some(&span)).await?;
    tx.commit().await?;
    stats.projected.fetch_add(applied as u64, Ordering::Relaxed);
    stats.skipped.fetch_add(
        envelopes.len().saturating_sub(applied) as u64,
        Ordering::Relaxed,
    );
    if let Some(last) = envelopes.last() {
        stats
            .last_position
            .fetch_max(last.global_position, Ordering::Relaxed);
    }
    Ok(WalPositions { insert, flush })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(transaction_id: u64, global_position: i64) -> EventEnvelope {
        serde_json::from_value(serde_json::json!({
            "global_position": global_position, "transaction_id": transaction_id.to_string(),
            "aggregate_type": "T", "aggregate_id": "a", "sequence": 1, "event_type": "E",
            "event_version": "1", "payload": {}, "metadata": {},
            "recorded_at": "2026-12-03T00:00:00Z"
        }))
        .unwrap()
    }

    fn at(transaction_id: u64, global_position: i64) -> LogPosition {
        LogPosition {
            transaction_id: transaction_id.to_string(),
            global_position,
        }
    }

    #[test]
    fn batch_spans_start_at_the_log_and_run_on_from_the_newest_event_delivered() {
        let mut spans = Spans::default();
        // A consumer's first batch starts at the beginning of the log; commit order compares
        // transaction ids as numbers (9 before 10).
        let first = spans.next(&[envelope(9, 7), envelope(10, 3)], Some(2));
        assert_eq!(
            (first.from, first.to, first.floor),
            (LogPosition::start(), at(10, 3), None)
        );
        // A re-published event (older) does not move the end back.
        let second = spans.next(&[envelope(9, 7), envelope(11, 8)], Some(4));
        assert_eq!((second.from, second.to), (at(10, 3), at(11, 8)));
        spans.committed(at(10, 3));
        let only_old = spans.next(&[envelope(9, 7)], Some(5));
        assert_eq!(
            (only_old.from, only_old.to, only_old.floor),
            (at(11, 8), at(11, 8), Some(at(10, 3)))
        );
    }

    fn wal(insert: i64, flush: i64) -> WalPositions {
        WalPositions { insert, flush }
    }

    #[test]
    fn a_batch_is_released_only_once_the_wal_is_flushed_past_a_position_read_after_its_commit() {
        let mut batches = UnflushedBatches::default();
        batches.committed("a");
        // Read after "a" (batch 0) committed: "a" is durable once the flush reaches 100.
        assert_eq!(batches.observe(wal(100, 90), 1), None);
        batches.committed("b");
        assert_eq!(
            batches.observe(wal(150, 99), 2),
            None,
            "flushed short of a's mark"
        );
        assert_eq!(batches.observe(wal(160, 100), 2), Some("a"));
        // "b" was marked 150 by the read after it committed.
        assert_eq!(batches.observe(wal(170, 149), 2), None);
        assert!(!batches.is_empty());
        assert_eq!(batches.observe(wal(170, 150), 2), Some("b"));
        assert!(batches.is_empty());
    }

    #[test]
    fn a_reading_taken_before_a_batch_committed_does_not_mark_it() {
        // Two batches in flight: the second read the WAL (at 50) while the first was still
        // running, so that reading only covers batches finished before the second began.
        let mut batches = UnflushedBatches::default();
        batches.committed("first");
        assert_eq!(batches.observe(wal(50, 1_000), 0), None, "not marked by it");
        assert_eq!(batches.observe(wal(80, 79), 1), None);
        assert_eq!(batches.observe(wal(90, 80), 1), Some("first"));
    }

    #[test]
    fn several_flushed_batches_release_only_the_newest() {
        let mut batches = UnflushedBatches::default();
        batches.committed(1);
        batches.committed(2);
        assert_eq!(batches.observe(wal(10, 0), 2), None);
        batches.committed(3);
        assert_eq!(
            batches.observe(wal(20, 10), 3),
            Some(2),
            "1 and 2 share a mark"
        );
        assert_eq!(batches.observe(wal(30, 1_000), 3), Some(3));
        assert_eq!(batches.observe(wal(40, 1_000), 3), None);
    }
}
