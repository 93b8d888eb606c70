//! Applies a batch of events to the read models in one transaction, together with the
//! per-aggregate versions and the checkpoint (the live projector's batches from JetStream;
//! replay folds the same `BudgetRows` over the whole log, so both build the same rows).
//!
//! Four round trips a batch, whatever its size: BEGIN, one statement that locks (and
//! creates) the aggregates' version rows and returns them, one statement that writes every
//! row, version and the checkpoint, COMMIT. The batch is folded in memory without loading
//! the stored rows: budget events carry the totals after them, and a reservation opened in
//! an earlier batch is closed by an UPDATE. (Loading them first cost two more round trips,
//! and on a busy machine each round trip is a wait for a CPU.)

use std::collections::BTreeMap;

use domain::breaker::BreakerEvent;
use domain::budget::BudgetEvent;
use sqlx::{PgConnection, Row};
use streams::envelope::SELECT_ENVELOPE;
use streams::{EventEnvelope, LogPosition};
use uuid::Uuid;

use crate::breakers::BreakerRows;
use crate::budgets::{At, BudgetRow, BudgetRows, ReservationRow};
use crate::ProjectionError;

/// The name of this projection's checkpoint row.
pub const PROJECTION: &str = "read_models";

type Key = (String, String);

/// Where a batch of the live projector stands in commit order (the order of the events
/// stream), for the contiguous watermark (migrations/0018_projection_watermark.sql).
///
/// The projector's batches are consecutive runs of the stream, and the stream carries every
/// event in commit order (the publisher's order; a re-published event can appear again
/// later, never earlier). So if `from` is the newest event of the stream before the batch
/// (in commit order), the batch holds every event in (`from`, `to`], `to` being the newest
/// up to its last message: once it commits, that range is applied. The watermark then moves
/// to `to` when `from` is at or before it, else the range waits in the row as the range
/// ahead until the batch before commits.
#[derive(Debug, Clone)]
pub struct BatchSpan {
    /// The stream sequence of the batch's last message.
    pub stream_seq: Option<u64>,
    /// Every event at or before it came before this batch on the stream (the start of the
    /// log for a projector's first batch: everything at or below the consumer's
    /// acknowledgement floor, where it starts, is applied).
    pub from: LogPosition,
    /// The newest event in commit order the stream carried up to the batch's last message.
    pub to: LogPosition,
    /// The `to` of this projector's batches that have all committed: applied in full.
    pub floor: Option<LogPosition>,
}

/// Applies `events` (in any order; per aggregate they are put in sequence order, repeats
/// are skipped and missing ones are read from the event table). Returns how many events
/// changed the read models. The caller commits. `span` (the live projector's) moves the
/// watermark; without it the watermark stays as it is.
pub async fn apply_batch(
    conn: &mut PgConnection,
    events: &[EventEnvelope],
    span: Option<&BatchSpan>,
) -> Result<usize, ProjectionError> {
    if events.is_empty() {
        return Ok(0);
    }
    // Sorted keys: every projector locks version rows in the same order (no deadlocks).
    let mut groups: BTreeMap<Key, Vec<&EventEnvelope>> = BTreeMap::new();
    for event in events {
        groups
            .entry((event.aggregate_type.clone(), event.aggregate_id.clone()))
            .or_default()
            .push(event);
    }
    let mut versions: BTreeMap<Key, i64> = BTreeMap::new();
    let (mut types, mut ids): (Vec<String>, Vec<String>) = groups.keys().cloned().unzip();
    // A version row another transaction created after this statement's snapshot (the
    // other batch in flight, or a replay) comes back from neither part: a new statement,
    // with a new snapshot, locks it.
    for _attempt in 0..3 {
        for row in lock_versions(conn, &types, &ids).await? {
            versions.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
        }
        (types, ids) = groups
            .keys()
            .filter(|key| !versions.contains_key(*key))
            .cloned()
            .unzip();
        if types.is_empty() {
            break;
        }
    }
    if !types.is_empty() {
        return Err(ProjectionError::Concurrent);
    }

    // Per aggregate: the events after its version, contiguous.
    let mut todo: BTreeMap<Key, Vec<EventEnvelope>> = BTreeMap::new();
    for (key, mut group) in groups {
        let version = versions.get(&key).copied().unwrap_or(0);
        group.sort_by_key(|e| e.sequence);
        group.dedup_by_key(|e| e.sequence);
        group.retain(|e| e.sequence > version);
        let Some(last) = group.last().map(|e| e.sequence) else {
            continue;
        };
        let contiguous = group
            .iter()
            .enumerate()
            .all(|(i, e)| e.sequence == version + 1 + i as i64);
        let list = if contiguous {
            group.into_iter().cloned().collect()
        } else {
            // Something before these was never delivered (or arrives later): the event
            // table has it. Reading it here keeps each aggregate strictly in order.
            tracing::info!(aggregate_type = %key.0, aggregate_id = %key.1, version, "filling a gap from the event table");
            let sql = format!(
                "SELECT {SELECT_ENVELOPE} FROM events
                  WHERE aggregate_type = $1 AND aggregate_id = $2
                    AND sequence > $3 AND sequence <= $4
                  ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(&key.0)
                .bind(&key.1)
                .bind(version)
                .bind(last)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map(EventEnvelope::from_row)
                .collect::<Result<Vec<_>, _>>()?
        };
        if list.is_empty() {
            // The stream carries events the table does not have (a stream shared with
            // another database, or a restored backup): the table is the truth, skip them.
            tracing::warn!(aggregate_type = %key.0, aggregate_id = %key.1, version, "events on the stream are not in the event table; skipped");
            continue;
        }
        todo.insert(key, list);
    }
    if todo.is_empty() {
        // Every event was applied before (a redelivery): still one write, so the watermark
        // moves past them (the same statement, with nothing else in it).
        if span.is_some() {
            let checkpoint = Checkpoint::of(events, 0, span);
            write_batch(
                conn,
                &BudgetRows::default(),
                &VersionUpdates::default(),
                &checkpoint,
            )
            .await?;
        }
        return Ok(0);
    }

    // Budget and breaker events: folded in memory, from nothing (see the module's comment).
    let mut rows = BudgetRows::default();
    let mut breakers = BreakerRows::default();
    for ((aggregate_type, aggregate_id), list) in &todo {
        for envelope in list {
            let at = At {
                position: envelope.global_position,
                recorded_at: envelope.recorded_at,
            };
            let payload = envelope.payload.get();
            let unreadable = |e| ProjectionError::Payload(envelope.global_position, e);
            match aggregate_type.as_str() {
                "Budget" => {
                    let event: BudgetEvent = serde_json::from_str(payload).map_err(unreadable)?;
                    rows.apply(aggregate_id, &event, at);
                }
                crate::breakers::AGGREGATE_TYPE => {
                    let event: BreakerEvent = serde_json::from_str(payload).map_err(unreadable)?;
                    breakers.apply(aggregate_id, &event, at);
                }
                // DLQ entries below; others have no read model, their versions still advance.
                _ => {}
            }
        }
    }
    crate::breakers::write_rows(conn, &breakers).await?;

    crate::dlq::project(
        conn,
        todo.iter()
            .filter(|((aggregate_type, _), _)| aggregate_type == crate::dlq::AGGREGATE_TYPE)
            .flat_map(|(_, list)| list.iter()),
    )
    .await?;

    let mut versions = VersionUpdates::default();
    let mut applied = 0;
    for ((aggregate_type, aggregate_id), list) in &todo {
        let last = list.last().expect("non-empty");
        versions.types.push(aggregate_type.clone());
        versions.ids.push(aggregate_id.clone());
        versions.versions.push(last.sequence);
        versions.positions.push(last.global_position);
        applied += list.len();
    }
    let checkpoint = Checkpoint::of(events, applied as i64, span);
    let closed = write_batch(conn, &rows, &versions, &checkpoint).await?;
    if closed < rows.closed_elsewhere.len() as i64 {
        tracing::warn!(
            expected = rows.closed_elsewhere.len(),
            closed,
            "reservations closed that the read model never saw open"
        );
    }
    Ok(applied)
}

/// Creates the version rows of these aggregates that do not exist yet and locks them all,
/// in key order (every projection locks in the same order: no deadlock); returns
/// `(aggregate_type, aggregate_id, version)`. Rows created here are this transaction's
/// (and so locked); the others are locked by FOR UPDATE. Both parts see the same snapshot,
/// so each key comes back at most once.
async fn lock_versions(
    conn: &mut PgConnection,
    types: &[String],
    ids: &[String],
) -> Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
    sqlx::query(
        "WITH wanted AS (SELECT t, i FROM UNNEST($1::text[], $2::text[]) AS u(t, i)),
              created AS (
                INSERT INTO projection_versions (aggregate_type, aggregate_id, version, last_position)
                SELECT t, i, 0, 0 FROM wanted ORDER BY t, i
                ON CONFLICT DO NOTHING
                RETURNING aggregate_type, aggregate_id, version),
              locked AS (
                SELECT v.aggregate_type, v.aggregate_id, v.version
                  FROM projection_versions v
                  JOIN wanted w ON v.aggregate_type = w.t AND v.aggregate_id = w.i
                 ORDER BY v.aggregate_type, v.aggregate_id
                   FOR UPDATE OF v)
         SELECT aggregate_type, aggregate_id, version FROM created
         UNION ALL
         SELECT aggregate_type, aggregate_id, version FROM locked",
    )
    .bind(types)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
}

/// The new version of each aggregate the batch advanced.
#[derive(Default)]
struct VersionUpdates {
    types: Vec<String>,
    ids: Vec<String>,
    versions: Vec<i64>,
    positions: Vec<i64>,
}

/// Where the batch ends, for the projection's checkpoint row.
struct Checkpoint<'a> {
    stream_seq: Option<i64>,
    last: LogPosition,
    applied: i64,
    span: Option<&'a BatchSpan>,
}

impl<'a> Checkpoint<'a> {
    fn of(events: &[EventEnvelope], applied: i64, span: Option<&'a BatchSpan>) -> Self {
        Checkpoint {
            stream_seq: span.and_then(|s| s.stream_seq).map(|s| s as i64),
            last: events.last().expect("non-empty").position(),
            applied,
            span,
        }
    }
}

/// Writes a folded batch in ONE statement: budgets (updated where stored, inserted where
/// not), reservations opened in the batch (whole rows), closes of reservations opened
/// before it, the aggregates' versions and the checkpoint. Returns how many stored
/// reservations the closes updated.
async fn write_batch(
    conn: &mut PgConnection,
    rows: &BudgetRows,
    versions: &VersionUpdates,
    checkpoint: &Checkpoint<'_>,
) -> Result<i64, sqlx::Error> {
    let b: Vec<&BudgetRow> = rows.budgets.values().collect();
    let r: Vec<&ReservationRow> = rows.reservations.values().collect();
    let c: Vec<(&Uuid, &crate::budgets::ReservationClose)> = rows.closed_elsewhere.iter().collect();
    let span = checkpoint.span;
    let floor = span.and_then(|s| s.floor.as_ref());
    sqlx::query_scalar(
        "WITH budget_rows AS (
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::bool[],
                                  $6::int8[], $7::int8[], $8::int8[], $9::timestamptz[])
                 AS u(id, tenant, project, total, totals_known, used, reserved, position, at)),
         budget_updates AS (
             -- A limit is never unset, so no total in the batch keeps the stored one.
             UPDATE read_budgets r
                SET tenant_id = CASE WHEN u.total IS NULL THEN r.tenant_id ELSE u.tenant END,
                    project_id = CASE WHEN u.total IS NULL THEN r.project_id ELSE u.project END,
                    total = COALESCE(u.total, r.total),
                    used = CASE WHEN u.totals_known THEN u.used ELSE r.used END,
                    reserved = CASE WHEN u.totals_known THEN u.reserved ELSE r.reserved END,
                    last_position = u.position, updated_at = u.at
               FROM budget_rows u
              WHERE r.aggregate_id = u.id
          RETURNING r.aggregate_id, r.total, r.used, r.reserved, r.last_position, r.updated_at),
         budget_inserts AS (
             INSERT INTO read_budgets (aggregate_id, tenant_id, project_id, total, used, reserved, last_position, updated_at)
             SELECT id, tenant, project, total, used, reserved, position, at FROM budget_rows
              WHERE id NOT IN (SELECT aggregate_id FROM budget_updates)
          RETURNING aggregate_id, total, used, reserved, last_position, updated_at),
         -- Each budget as it stands after this batch, in the minute of its last event
         -- (the usage chart's series, migrations/0011_budget_usage.sql).
         usage AS (
             INSERT INTO read_budget_usage (aggregate_id, minute, total, used, reserved, last_position)
             SELECT aggregate_id, date_trunc('minute', updated_at), total, used, reserved, last_position
               FROM (SELECT * FROM budget_updates UNION ALL SELECT * FROM budget_inserts) b
             ON CONFLICT (aggregate_id, minute) DO UPDATE
                SET total = EXCLUDED.total, used = EXCLUDED.used, reserved = EXCLUDED.reserved,
                    last_position = EXCLUDED.last_position
              WHERE read_budget_usage.last_position < EXCLUDED.last_position),
         opened AS (
             INSERT INTO read_reservations (reservation_id, aggregate_id, tenant_id, project_id, task_id, model,
                    allocated, expires_at, status, actual_tokens, overage, late, reserved_at, updated_at, last_position)
             SELECT * FROM UNNEST($10::uuid[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                    $16::int8[], $17::timestamptz[], $18::text[], $19::int8[], $20::int8[], $21::bool[],
                    $22::timestamptz[], $23::timestamptz[], $24::int8[])
             ON CONFLICT (reservation_id) DO UPDATE
                SET status = EXCLUDED.status, actual_tokens = EXCLUDED.actual_tokens,
                    overage = EXCLUDED.overage, late = EXCLUDED.late,
                    updated_at = EXCLUDED.updated_at, last_position = EXCLUDED.last_position),
         closed AS (
             UPDATE read_reservations r
                SET status = u.status,
                    actual_tokens = COALESCE(u.actual_tokens, r.actual_tokens),
                    overage = COALESCE(u.overage, r.overage),
                    late = CASE WHEN u.actual_tokens IS NULL THEN r.late ELSE u.late END,
                    updated_at = u.at, last_position = u.position
               FROM UNNEST($25::uuid[], $26::text[], $27::int8[], $28::int8[], $29::bool[],
                           $30::timestamptz[], $31::int8[])
                    AS u(id, status, actual_tokens, overage, late, at, position)
              WHERE r.reservation_id = u.id
          RETURNING 1),
         versions AS (
             UPDATE projection_versions v
                SET version = u.version, last_position = u.position
               FROM UNNEST($32::text[], $33::text[], $34::int8[], $35::int8[]) AS u(t, i, version, position)
              WHERE v.aggregate_type = u.t AND v.aggregate_id = u.i),
         -- The watermark's step (migrations/0018) runs on the row as this statement has
         -- locked it: when the other batch in flight wrote it first, this one waited for
         -- that commit and sees its values (ON CONFLICT DO UPDATE takes the newest row
         -- version), so whichever commits last finds the other's range and joins them.
         checkpoint AS (
             INSERT INTO projection_checkpoints (name, stream_seq, last_tx, last_position, applied, updated_at,
                    watermark_tx, watermark_position, ahead_from_tx, ahead_from_position,
                    ahead_to_tx, ahead_to_position, watermark_writes)
             -- The row's first write: the step from nothing, spelled out (this SELECT runs
             -- for every batch, also when the row exists, so it calls no function): a batch
             -- from the beginning of the log sets the watermark, another waits ahead.
             SELECT $36, COALESCE($37, 0), $38::text::xid8, $39, $40, now(),
                    CASE WHEN first THEN $43::text::xid8 END, CASE WHEN first THEN $44 END,
                    CASE WHEN NOT first THEN $41::text::xid8 END, CASE WHEN NOT first THEN $42 END,
                    CASE WHEN NOT first THEN $43::text::xid8 END, CASE WHEN NOT first THEN $44 END,
                    1
               FROM (SELECT $41::text = '0' AND $42 = 0 AS first) AS batch
             ON CONFLICT (name) DO UPDATE
                SET stream_seq = GREATEST(projection_checkpoints.stream_seq, EXCLUDED.stream_seq),
                    last_tx = CASE WHEN (projection_checkpoints.last_tx, projection_checkpoints.last_position)
                                        < (EXCLUDED.last_tx, EXCLUDED.last_position)
                                   THEN EXCLUDED.last_tx ELSE projection_checkpoints.last_tx END,
                    last_position = CASE WHEN (projection_checkpoints.last_tx, projection_checkpoints.last_position)
                                              < (EXCLUDED.last_tx, EXCLUDED.last_position)
                                         THEN EXCLUDED.last_position ELSE projection_checkpoints.last_position END,
                    applied = projection_checkpoints.applied + EXCLUDED.applied,
                    updated_at = now(),
                    (watermark_tx, watermark_position, ahead_from_tx, ahead_from_position,
                     ahead_to_tx, ahead_to_position) = (
                        SELECT * FROM projection_watermark_step(
                            projection_checkpoints.watermark_tx, projection_checkpoints.watermark_position,
                            projection_checkpoints.ahead_from_tx, projection_checkpoints.ahead_from_position,
                            projection_checkpoints.ahead_to_tx, projection_checkpoints.ahead_to_position,
                            $41::text::xid8, $42, $43::text::xid8, $44, $45::text::xid8, $46)),
                    watermark_writes = projection_checkpoints.watermark_writes + 1)
         SELECT count(*) FROM closed",
    )
    .bind(b.iter().map(|x| x.aggregate_id.clone()).collect::<Vec<_>>())
    .bind(b.iter().map(|x| x.tenant_id.clone()).collect::<Vec<_>>())
    .bind(b.iter().map(|x| x.project_id.clone()).collect::<Vec<_>>())
    .bind(b.iter().map(|x| x.total).collect::<Vec<_>>())
    .bind(b.iter().map(|x| x.totals_known).collect::<Vec<_>>())
    .bind(b.iter().map(|x| x.used).collect::<Vec<_>>())
    .bind(b.iter().map(|x| x.reserved).collect::<Vec<_>>())
    .bind(b.iter().map(|x| x.last_position).collect::<Vec<_>>())
    .bind(b.iter().map(|x| x.updated_at).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.reservation_id).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.aggregate_id.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.tenant_id.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.project_id.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.task_id.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.model.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.allocated).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.expires_at).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.status.to_string()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.actual_tokens).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.overage).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.late).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.reserved_at).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.updated_at).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.last_position).collect::<Vec<_>>())
    .bind(c.iter().map(|(id, _)| **id).collect::<Vec<_>>())
    .bind(c.iter().map(|(_, x)| x.status.to_string()).collect::<Vec<_>>())
    .bind(c.iter().map(|(_, x)| x.committed.map(|(a, _, _)| a)).collect::<Vec<_>>())
    .bind(c.iter().map(|(_, x)| x.committed.map(|(_, o, _)| o)).collect::<Vec<_>>())
    .bind(c.iter().map(|(_, x)| x.committed.is_some_and(|(_, _, l)| l)).collect::<Vec<_>>())
    .bind(c.iter().map(|(_, x)| x.updated_at).collect::<Vec<_>>())
    .bind(c.iter().map(|(_, x)| x.last_position).collect::<Vec<_>>())
    .bind(&versions.types)
    .bind(&versions.ids)
    .bind(&versions.versions)
    .bind(&versions.positions)
    .bind(PROJECTION)
    .bind(checkpoint.stream_seq)
    .bind(&checkpoint.last.transaction_id)
    .bind(checkpoint.last.global_position)
    .bind(checkpoint.applied)
    .bind(span.map(|s| &s.from.transaction_id))
    .bind(span.map(|s| s.from.global_position))
    .bind(span.map(|s| &s.to.transaction_id))
    .bind(span.map(|s| s.to.global_position))
    .bind(floor.map(|f| &f.transaction_id))
    .bind(floor.map(|f| f.global_position))
    .fetch_one(&mut *conn)
    .await
}
