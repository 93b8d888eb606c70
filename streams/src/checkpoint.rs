//! The publisher's checkpoint and the audit hash checkpoints it records.
//!
//! The publisher's row in `publisher_checkpoints` says where it is in the log and carries
//! a running hash over every event before that place (migration 0006). Every so often
//! ([`HashCheckpoints`]) a copy of that hash goes into `global_hash_checkpoints`, where
//! `audit verify` finds points of the chain to check the log against (crate::audit).
//! The publisher only decides when to move the checkpoint; this module says how.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::audit::{chain_hash, GENESIS};
use crate::envelope::{EventEnvelope, LogPosition};

/// The publisher's place in the log and its running hash over everything before it
/// (migration 0006): `running_n = chain_hash(running_{n-1}, event n)` in commit order, the
/// per-aggregate chain's function with the previous running hash as `prev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherState {
    pub position: LogPosition,
    pub running_hash: [u8; 32],
    /// Events the running hash covers.
    pub hashed: i64,
    /// `hashed` at the newest global hash checkpoint of this stream (0: none yet).
    pub last_hash_checkpoint: i64,
}

impl PublisherState {
    /// Folds published events into the running hash.
    pub fn fold(&mut self, events: &[EventEnvelope]) {
        for event in events {
            self.running_hash = chain_hash(&self.running_hash, event);
            self.position = event.position();
        }
        self.hashed += events.len() as i64;
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

/// The publisher's full state for `stream` (position, running hash), created at the start
/// of the log if missing.
pub async fn load_state(pool: &PgPool, stream: &str) -> Result<PublisherState, sqlx::Error> {
    let position = load_checkpoint(pool, stream).await?;
    let (running_hash, hashed, last_hash_checkpoint): (Vec<u8>, i64, i64) = sqlx::query_as(
        "SELECT running_hash, hashed,
                COALESCE((SELECT max(event_count) FROM global_hash_checkpoints g
                           WHERE g.stream = p.stream), 0)
           FROM publisher_checkpoints p WHERE stream = $1",
    )
    .bind(stream)
    .fetch_one(pool)
    .await?;
    Ok(PublisherState {
        position,
        running_hash: running_hash.try_into().unwrap_or(GENESIS),
        hashed,
        last_hash_checkpoint,
    })
}

/// Moves the checkpoint and the running hash forward from `before` to `after` (`count`
/// events later), and records a global hash checkpoint when `record` is set, all in one
/// statement (so one transaction). Returns false when the stored state was not `before`: another publisher
/// moved it (this one was deposed), and the caller must reload.
pub(crate) async fn save_checkpoint(
    pool: &PgPool,
    stream: &str,
    before: &PublisherState,
    after: &PublisherState,
    record: bool,
) -> Result<bool, sqlx::Error> {
    // One statement, one round trip. The checkpoint need not survive a PostgreSQL crash:
    // losing the last few moves only re-publishes those events, which JetStream drops as
    // duplicates (their Nats-Msg-Id, within the stream's 5-minute window), and the running
    // hash moves with the position. So this commit does not wait for its WAL flush
    // (`set_config(…, true)` lasts for this statement's own transaction), and the next batch
    // goes out sooner.
    let moved: i64 = sqlx::query_scalar(
        "WITH settings AS (SELECT set_config('synchronous_commit', 'off', true) AS value),
         moved AS (
             UPDATE publisher_checkpoints
                SET last_tx = $2::text::xid8, last_position = $3,
                    published = published + $4, running_hash = $5, hashed = $6, updated_at = now()
               FROM settings
              WHERE stream = $1 AND settings.value = 'off'
                AND (last_tx, last_position) < ($2::text::xid8, $3)
                AND hashed = $7 AND running_hash = $8
             RETURNING 1),
         recorded AS (
             INSERT INTO global_hash_checkpoints (stream, event_count, last_tx, last_position, running_hash)
             SELECT $1, $6, $2::text::xid8, $3, $5 FROM moved WHERE $9
             ON CONFLICT DO NOTHING)
         SELECT count(*) FROM moved",
    )
    .bind(stream)
    .bind(&after.position.transaction_id)
    .bind(after.position.global_position)
    .bind(after.hashed - before.hashed)
    .bind(&after.running_hash[..])
    .bind(after.hashed)
    .bind(before.hashed)
    .bind(&before.running_hash[..])
    .bind(record)
    .fetch_one(pool)
    .await?;
    Ok(moved == 1)
}

pub(crate) async fn record_hash_checkpoint(
    conn: &mut sqlx::PgConnection,
    stream: &str,
    state: &PublisherState,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO global_hash_checkpoints (stream, event_count, last_tx, last_position, running_hash)
         VALUES ($1, $2, $3::text::xid8, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(stream)
    .bind(state.hashed)
    .bind(&state.position.transaction_id)
    .bind(state.position.global_position)
    .bind(&state.running_hash[..])
    .execute(conn)
    .await?;
    Ok(())
}

/// When the publisher records a global hash checkpoint: once `events` events were
/// published since the last one, or once `interval` passed with any event published since.
#[derive(Debug)]
pub(crate) struct HashCheckpoints {
    events: i64,
    interval: Duration,
    last_recorded: Instant,
}

impl HashCheckpoints {
    pub(crate) fn new(events: i64, interval: Duration) -> Self {
        Self {
            events,
            interval,
            last_recorded: Instant::now(),
        }
    }

    /// Whether the move of the checkpoint past `published` more events records one.
    pub(crate) fn due_after(&self, state: &PublisherState, published: usize) -> bool {
        unrecorded(state) + published as i64 >= self.events
            || self.last_recorded.elapsed() >= self.interval
    }

    /// Whether an idle publisher records one now: events are waiting for one and the
    /// interval is over.
    pub(crate) fn due_while_idle(&self, state: &PublisherState) -> bool {
        unrecorded(state) > 0 && self.last_recorded.elapsed() >= self.interval
    }

    /// `state` was recorded as a global hash checkpoint.
    pub(crate) fn recorded(&mut self, state: &mut PublisherState) {
        state.last_hash_checkpoint = state.hashed;
        self.last_recorded = Instant::now();
    }
}

/// Events the running hash covers that no global hash checkpoint records yet.
fn unrecorded(state: &PublisherState) -> i64 {
    state.hashed - state.last_hash_checkpoint
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(hashed: i64, last_hash_checkpoint: i64) -> PublisherState {
        PublisherState {
            position: LogPosition {
                transaction_id: "0".into(),
                global_position: 0,
            },
            running_hash: GENESIS,
            hashed,
            last_hash_checkpoint,
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_checkpoint_is_due_once_enough_events_were_published_since_the_last() {
        let schedule = HashCheckpoints::new(1000, HOUR);
        assert!(!schedule.due_after(&state(1500, 1000), 499));
        assert!(schedule.due_after(&state(1500, 1000), 500));
    }

    #[test]
    fn a_checkpoint_is_due_after_the_interval_but_an_idle_one_only_with_events_since() {
        let schedule = HashCheckpoints::new(1000, Duration::ZERO);
        assert!(schedule.due_after(&state(5, 5), 1));
        assert!(!schedule.due_while_idle(&state(5, 5)));
        assert!(schedule.due_while_idle(&state(6, 5)));
        assert!(!HashCheckpoints::new(1000, HOUR).due_while_idle(&state(6, 5)));
    }

    #[test]
    fn recording_starts_the_count_over() {
        let mut schedule = HashCheckpoints::new(10, HOUR);
        let mut recorded = state(25, 10);
        schedule.recorded(&mut recorded);
        assert_eq!(recorded.last_hash_checkpoint, 25);
        assert!(!schedule.due_after(&recorded, 9));
    }
}
