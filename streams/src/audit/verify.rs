//! Verification: every aggregate's chain recomputed, then the running hash in commit order
//! against the checkpoints in the database and the anchors on JetStream, then the newest
//! event of the events stream against the log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};

use super::chain::{chain_hash, GENESIS};
use crate::anchors::Anchor;
use crate::envelope::{EventEnvelope, COMMIT_ORDER, SELECT_ENVELOPE};

/// The first event that does not check out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VerifyFailure {
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    /// `content` (the hash does not match the event and its predecessor's hash) or
    /// `order` (a sequence is missing or out of place).
    pub problem: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_hash: Option<String>,
}

/// The first global hash checkpoint that the log no longer matches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckpointFailure {
    /// Where the checkpoint was read: `database` (`global_hash_checkpoints`) or `anchor`
    /// (its copy on the JetStream anchor stream, out of the database operator's reach).
    #[serde(default = "database_source")]
    pub source: String,
    /// The JetStream stream whose publisher recorded it.
    pub stream: String,
    /// Events the checkpoint covers (the running hash after the event_count-th event in
    /// commit order).
    pub event_count: i64,
    /// The global position of that event when the checkpoint was recorded.
    pub global_position: i64,
    pub recorded_at: DateTime<Utc>,
    /// `hash` (an event up to this point was changed), `position` (events were added,
    /// removed or reordered before it) or `missing` (the log now has fewer events).
    pub problem: String,
    pub detail: String,
    pub stored_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_hash: Option<String>,
}

fn database_source() -> String {
    DATABASE.to_string()
}

/// [`CheckpointFailure::source`] of the checkpoints in PostgreSQL.
const DATABASE: &str = "database";
/// [`CheckpointFailure::source`] of the anchors on JetStream.
const ANCHOR: &str = "anchor";

/// The outcome of recomputing every chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub events_checked: u64,
    pub aggregates_checked: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<VerifyFailure>,
    /// Global hash checkpoints compared with the running hash recomputed from the log.
    #[serde(default)]
    pub checkpoints_checked: u64,
    /// Anchors on JetStream checked the same way (0 when none were read).
    #[serde(default)]
    pub anchors_checked: u64,
    /// The first checkpoint or anchor (in log order) that does not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_checkpoint_failure: Option<CheckpointFailure>,
    /// The log against the newest event of the JetStream events stream (absent when not
    /// checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_anchor: Option<StreamAnchor>,
}

/// The log compared with the newest event the publisher put on the events stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StreamAnchor {
    pub stream: String,
    /// `ok`; `empty` (nothing published yet); `truncated` (the stream holds an event the log
    /// no longer has: events were deleted); `rewritten` (the log's event at that position has
    /// another hash); `unreachable` (NATS did not answer: not checked).
    pub result: String,
    /// The newest published event's global position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_position: Option<i64>,
    pub detail: String,
}

impl StreamAnchor {
    /// Whether the anchor shows the log was changed behind the application's back.
    pub fn failed(&self) -> bool {
        matches!(self.result.as_str(), "truncated" | "rewritten")
    }
}

/// How long [`check_stream_anchor`] waits for JetStream.
const ANCHOR_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Compares the log with the newest event on the events stream `stream`.
pub async fn check_stream_anchor(
    pool: &PgPool,
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Result<StreamAnchor, sqlx::Error> {
    let anchor = |result: &str, global_position, detail: String| StreamAnchor {
        stream: stream.to_string(),
        result: result.to_string(),
        global_position,
        detail,
    };
    let newest = tokio::time::timeout(ANCHOR_WAIT, async {
        let handle = js.get_stream(stream).await.map_err(|e| e.to_string())?;
        let info = handle.get_info().await.map_err(|e| e.to_string())?;
        if info.state.messages == 0 {
            return Ok(None);
        }
        let message = handle
            .get_raw_message(info.state.last_sequence)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(Some(message.payload))
    })
    .await
    .unwrap_or_else(|_| Err("JetStream did not answer in time".into()));
    let payload = match newest {
        Err(error) => return Ok(anchor("unreachable", None, error)),
        Ok(None) => return Ok(anchor("empty", None, "no event published yet".into())),
        Ok(Some(payload)) => payload,
    };
    #[derive(Deserialize)]
    struct Published {
        global_position: i64,
        hash: Option<String>,
    }
    let Ok(published) = serde_json::from_slice::<Published>(&payload) else {
        return Ok(anchor(
            "unreachable",
            None,
            "the newest message on the stream is not an event envelope".into(),
        ));
    };
    let position = Some(published.global_position);
    let stored: Option<Option<String>> =
        sqlx::query_scalar("SELECT encode(hash, 'hex') FROM events WHERE global_position = $1")
            .bind(published.global_position)
            .fetch_optional(pool)
            .await?;
    Ok(match stored {
        None => anchor(
            "truncated",
            position,
            format!(
                "the events stream holds event {} but the log does not: events were deleted",
                published.global_position
            ),
        ),
        Some(hash) if hash != published.hash => anchor(
            "rewritten",
            position,
            format!(
                "event {} has another hash in the log than when it was published",
                published.global_position
            ),
        ),
        Some(_) => anchor(
            "ok",
            position,
            "the newest published event is in the log, unchanged".into(),
        ),
    })
}

/// The whole verification, inside and outside the database: the anchors are read from
/// JetStream first, then [`verify_with`] checks every chain and the running hash against the
/// checkpoints and the anchors, then [`check_stream_anchor`] compares the log's newest
/// published event (progress phase `stream`). Anchors that cannot be read leave the
/// stream anchor `unreachable` (not checked), as NATS being down does. `None`: stopped.
pub async fn verify_anchored(
    pool: &PgPool,
    js: &async_nats::jetstream::Context,
    stream: &str,
    on_progress: OnProgress<'_>,
) -> Result<Option<VerifyReport>, sqlx::Error> {
    let anchors = crate::anchors::read_anchors(js, stream).await;
    let Some(mut report) = verify_with(
        pool,
        anchors.as_deref().unwrap_or_default(),
        &mut *on_progress,
    )
    .await?
    else {
        return Ok(None);
    };
    let progress = VerifyProgress {
        phase: "stream".into(),
        done: 0,
        total: 1,
    };
    if !on_progress(&progress) {
        return Ok(None);
    }
    let mut anchor = check_stream_anchor(pool, js, stream).await?;
    if let Err(error) = anchors {
        if !anchor.failed() {
            anchor.result = "unreachable".into();
            anchor.detail = format!("the audit anchors could not be read: {error}");
        }
    }
    report.ok &= !anchor.failed();
    report.stream_anchor = Some(anchor);
    Ok(Some(report))
}

/// Where a running verification is: `GET /audit/verify/stream` sends these as it goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VerifyProgress {
    /// `chains`: every aggregate's chain, every event of the log; `checkpoints`: the running
    /// hash in commit order, up to the newest global checkpoint.
    pub phase: String,
    /// Events of this phase checked so far.
    pub done: u64,
    /// Events this phase reads (counted when it starts; events appended meanwhile are not
    /// in it).
    pub total: u64,
}

/// How often a verification reports where it is, at most.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Told where a verification is; answers whether to go on (false stops it: the caller left).
pub type OnProgress<'a> = &'a mut (dyn FnMut(&VerifyProgress) -> bool + Send);

/// Throttles progress reports to [`PROGRESS_EVERY`] (and always reports a phase's start).
struct Reporter<'a> {
    on: OnProgress<'a>,
    last: Option<std::time::Instant>,
}

impl Reporter<'_> {
    /// Reports when due (or `now`); false when the listener wants the verification stopped.
    fn report(&mut self, phase: &str, done: u64, total: u64, now: bool) -> bool {
        // Reading the clock costs little, but not nothing: look every 256 events.
        if !now && !done.is_multiple_of(256) {
            return true;
        }
        if !now && self.last.is_some_and(|at| at.elapsed() < PROGRESS_EVERY) {
            return true;
        }
        self.last = Some(std::time::Instant::now());
        (self.on)(&VerifyProgress {
            phase: phase.to_string(),
            done,
            total,
        })
    }
}

/// Recomputes every aggregate's chain from the stored rows (streamed, aggregate by
/// aggregate) and reports the first event whose content, order or hash does not match;
/// then the running hash against the checkpoints in the database (no anchors).
pub async fn verify(pool: &PgPool) -> Result<VerifyReport, sqlx::Error> {
    match verify_with(pool, &[], &mut |_| true).await? {
        Some(report) => Ok(report),
        None => Err(sqlx::Error::Protocol("the verification was stopped".into())),
    }
}

/// [`verify`], also checking the running hash against `anchors` (read from JetStream:
/// [`crate::anchors::read_anchors`]), and telling `on_progress` where it is (at most every
/// [`PROGRESS_EVERY`]); `None` when `on_progress` asked to stop (the reader went away: the
/// rest is not read).
pub async fn verify_with(
    pool: &PgPool,
    anchors: &[Anchor],
    on_progress: OnProgress<'_>,
) -> Result<Option<VerifyReport>, sqlx::Error> {
    let mut reporter = Reporter {
        on: on_progress,
        last: None,
    };
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    let total = u64::try_from(total).unwrap_or(0);
    if !reporter.report("chains", 0, total, true) {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {SELECT_ENVELOPE} FROM events ORDER BY aggregate_type, aggregate_id, sequence"
    );
    let mut rows = sqlx::query(&sql).fetch(pool);
    let mut report = VerifyReport {
        ok: true,
        events_checked: 0,
        aggregates_checked: 0,
        first_failure: None,
        checkpoints_checked: 0,
        anchors_checked: 0,
        first_checkpoint_failure: None,
        stream_anchor: None,
    };
    let mut current: Option<(String, String)> = None;
    let mut prev = GENESIS.to_vec();
    let mut expected_sequence = 1;
    let mut last_position = 0;
    while let Some(row) = rows.try_next().await? {
        let event = EventEnvelope::from_row(&row)?;
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        if current.as_ref() != Some(&key) {
            current = Some(key);
            prev = GENESIS.to_vec();
            expected_sequence = 1;
            last_position = 0;
            report.aggregates_checked += 1;
        }
        report.events_checked += 1;
        if !reporter.report("chains", report.events_checked, total, false) {
            return Ok(None);
        }
        let failure = |problem: &str, detail: String, stored, expected| VerifyFailure {
            global_position: event.global_position,
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            problem: problem.to_string(),
            detail,
            stored_hash: stored,
            expected_hash: expected,
        };
        if event.sequence != expected_sequence {
            report.ok = false;
            report.first_failure = Some(failure(
                "order",
                format!(
                    "expected sequence {expected_sequence}, found {}: an event is missing or out of place",
                    event.sequence
                ),
                None,
                None,
            ));
            break;
        }
        if event.global_position <= last_position {
            report.ok = false;
            report.first_failure = Some(failure(
                "order",
                format!(
                    "global position {} is not after the previous event's {last_position}",
                    event.global_position
                ),
                None,
                None,
            ));
            break;
        }
        let expected = chain_hash(&prev, &event);
        let stored = event
            .hash
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .unwrap_or_default();
        if stored != expected {
            report.ok = false;
            report.first_failure = Some(failure(
                "content",
                "the stored hash does not match this event's content and its predecessor's hash: the event (or its stored hash) was changed".into(),
                event.hash.clone(),
                Some(hex::encode(expected)),
            ));
            break;
        }
        prev = stored;
        expected_sequence += 1;
        last_position = event.global_position;
    }
    drop(rows);
    let Some(checked) = checkpoints_with(pool, anchors, &mut reporter).await? else {
        return Ok(None);
    };
    report.checkpoints_checked = checked.database;
    report.anchors_checked = checked.anchors;
    let failure = checked.failure;
    if failure.is_some() {
        report.ok = false;
        report.first_checkpoint_failure = failure;
    }
    Ok(Some(report))
}

struct StoredCheckpoint {
    source: &'static str,
    stream: String,
    event_count: i64,
    last_position: i64,
    running_hash: Vec<u8>,
    recorded_at: DateTime<Utc>,
}

/// What [`verify_checkpoints`] checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CheckpointsChecked {
    /// Checkpoints of `global_hash_checkpoints`.
    pub database: u64,
    /// Anchors from JetStream.
    pub anchors: u64,
    /// The first (in log order) that does not match.
    pub failure: Option<CheckpointFailure>,
}

/// Recomputes the running hash over the log in commit order and compares it with every
/// global hash checkpoint and every one of `anchors`. Reads the log only as far as the
/// newest of them.
pub async fn verify_checkpoints(
    pool: &PgPool,
    anchors: &[Anchor],
) -> Result<CheckpointsChecked, sqlx::Error> {
    let mut on = |_: &VerifyProgress| true;
    let mut reporter = Reporter {
        on: &mut on,
        last: None,
    };
    Ok(checkpoints_with(pool, anchors, &mut reporter)
        .await?
        .unwrap_or_default())
}

/// [`verify_checkpoints`] with progress (`None`: stopped).
async fn checkpoints_with(
    pool: &PgPool,
    anchors: &[Anchor],
    reporter: &mut Reporter<'_>,
) -> Result<Option<CheckpointsChecked>, sqlx::Error> {
    let stored = sqlx::query(
        "SELECT stream, event_count, last_position, running_hash, recorded_at
           FROM global_hash_checkpoints ORDER BY event_count, stream",
    )
    .fetch_all(pool)
    .await?;
    let mut by_count: BTreeMap<i64, Vec<StoredCheckpoint>> = BTreeMap::new();
    for row in stored {
        let checkpoint = StoredCheckpoint {
            source: DATABASE,
            stream: row.try_get("stream")?,
            event_count: row.try_get("event_count")?,
            last_position: row.try_get("last_position")?,
            running_hash: row.try_get("running_hash")?,
            recorded_at: row.try_get("recorded_at")?,
        };
        by_count
            .entry(checkpoint.event_count)
            .or_default()
            .push(checkpoint);
    }
    for anchor in anchors {
        by_count
            .entry(anchor.event_count)
            .or_default()
            .push(StoredCheckpoint {
                source: ANCHOR,
                stream: anchor.stream.clone(),
                event_count: anchor.event_count,
                last_position: anchor.last_position,
                running_hash: hex::decode(&anchor.running_hash).unwrap_or_default(),
                recorded_at: anchor.recorded_at,
            });
    }
    let Some(&newest) = by_count.keys().next_back() else {
        return Ok(Some(CheckpointsChecked::default()));
    };
    let total = u64::try_from(newest).unwrap_or(0);
    if !reporter.report("checkpoints", 0, total, true) {
        return Ok(None);
    }
    let fail = |c: &StoredCheckpoint, problem: &str, detail: String, expected: Option<String>| {
        CheckpointFailure {
            source: c.source.to_string(),
            stream: c.stream.clone(),
            event_count: c.event_count,
            global_position: c.last_position,
            recorded_at: c.recorded_at,
            problem: problem.into(),
            detail,
            stored_hash: hex::encode(&c.running_hash),
            expected_hash: expected,
        }
    };
    let sql = format!("SELECT {SELECT_ENVELOPE} FROM events ORDER BY {COMMIT_ORDER} LIMIT $1");
    let mut rows = sqlx::query(&sql).bind(newest).fetch(pool);
    let mut running = GENESIS;
    let mut count: i64 = 0;
    let mut checked = CheckpointsChecked::default();
    let count_one = |checked: &mut CheckpointsChecked, c: &StoredCheckpoint| {
        if c.source == ANCHOR {
            checked.anchors += 1;
        } else {
            checked.database += 1;
        }
    };
    while let Some(row) = rows.try_next().await? {
        let event = EventEnvelope::from_row(&row)?;
        running = chain_hash(&running, &event);
        count += 1;
        if !reporter.report("checkpoints", count as u64, total, false) {
            return Ok(None);
        }
        for c in by_count.get(&count).into_iter().flatten() {
            count_one(&mut checked, c);
            if c.last_position != event.global_position {
                let detail = format!(
                    "the {count}th event in commit order is at position {}, the checkpoint recorded {}: events were added, removed or reordered before it",
                    event.global_position, c.last_position
                );
                checked.failure = Some(fail(c, "position", detail, None));
                return Ok(Some(checked));
            }
            if c.running_hash != running {
                let detail = "the running hash recomputed from the log does not match the one recorded: an event up to this point was changed".to_string();
                checked.failure = Some(fail(c, "hash", detail, Some(hex::encode(running))));
                return Ok(Some(checked));
            }
        }
    }
    if let Some(c) = by_count.range(count + 1..).flat_map(|(_, v)| v).next() {
        let detail = format!(
            "the checkpoint covers {} events, the log has {count}: events were removed",
            c.event_count
        );
        count_one(&mut checked, c);
        checked.failure = Some(fail(c, "missing", detail, None));
    }
    Ok(Some(checked))
}
