//! Rebuilds every read model from the event table (not from JetStream, whose retention
//! may be shorter), with the same per-event code the live projector uses
//! ([`BudgetRows::apply`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use domain::breaker::BreakerEvent;
use domain::budget::BudgetEvent;
use domain::dlq::DlqEvent;
use futures::TryStreamExt;
use sqlx::{PgConnection, PgPool, Row};
use streams::envelope::{COMMITTED, COMMIT_ORDER, COMMIT_ORDER_DESC};
use streams::LogPosition;
use uuid::Uuid;

use crate::apply::PROJECTION;
use crate::breakers::BreakerRows;
use crate::budgets::{At, BudgetRow, BudgetRows, ReservationRow};
use crate::copy::BinaryCopy;
use crate::dlq::{DlqRow, DlqRows};
use crate::ProjectionError;

/// Events between two progress reports.
const PROGRESS_EVERY: u64 = 10_000;

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub events: u64,
    pub elapsed: Duration,
}

impl ReplayReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Empties the read models and rebuilds them from the whole log in commit order, in one
/// transaction: nobody sees a half-built state (readers of these tables wait on the lock
/// until the new one is complete, as they did on TRUNCATE's), and the live
/// projector waits on the emptied tables, then skips what the replay applied (the
/// versions say so) and applies what came after. `progress(done, total)` is called at the
/// start, every [`PROGRESS_EVERY`] events and at the end.
///
/// The transaction is REPEATABLE READ and takes its snapshot after it has locked the read
/// models: the log is read in one streaming query (one index scan in commit order, no
/// per-batch queries), and everything the live projector committed before the lock is in
/// that snapshot. Events committed after it (or held back by an older transaction still
/// running, see [`COMMITTED`]) are left to the live projector; the checkpoint written says
/// where the replay stopped.
///
/// The rows are folded in memory and written once at the end with binary COPY: updating
/// the same rows batch after batch inside one transaction would leave ever longer chains
/// of dead row versions to walk (the replay slowed down quadratically that way).
pub async fn replay(
    pool: &PgPool,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, ProjectionError> {
    let started = Instant::now();
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await?;
    // LOCK takes no snapshot, so the snapshot comes after the lock (TRUNCATE would take
    // one before waiting for it).
    sqlx::query(
        "LOCK TABLE read_budgets, read_reservations, read_budget_usage, read_dlq, read_breakers,
                    projection_versions
            IN ACCESS EXCLUSIVE MODE",
    )
    .execute(&mut *tx)
    .await?;
    // The reservation count sizes the map up front: growing it row by row moved every
    // reservation row several times (a tenth of the replay's CPU in a profile).
    let (total, reservations): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*),
                count(*) FILTER (WHERE aggregate_type = 'Budget' AND event_type = 'TokensReserved')
           FROM events WHERE {COMMITTED}"
    ))
    .fetch_one(&mut *tx)
    .await?;
    let total = total as u64;

    let mut rows = BudgetRows::default();
    rows.reservations
        .reserve(usize::try_from(reservations).unwrap_or(0));
    let mut dead_letters = DlqRows::default();
    let mut breakers = BreakerRows::default();
    let mut usage = UsageSeries::default();
    // aggregate type -> aggregate id -> (version, last position); looked up by `&str`, so
    // only an aggregate's first event allocates.
    let mut versions: HashMap<String, HashMap<String, (i64, i64)>> = HashMap::new();
    let mut done: u64 = 0;
    progress(0, total);
    let sql = format!(
        "SELECT events.global_position, events.aggregate_type, events.aggregate_id,
                events.sequence, events.payload::text, events.recorded_at
           FROM events
          WHERE {COMMITTED}
          ORDER BY {COMMIT_ORDER}"
    );
    let mut log = sqlx::query(&sql).fetch(&mut *tx);
    while let Some(row) = log.try_next().await? {
        let position: i64 = row.try_get(0)?;
        let aggregate_type: &str = row.try_get(1)?;
        let aggregate_id: &str = row.try_get(2)?;
        let sequence: i64 = row.try_get(3)?;
        let payload: &str = row.try_get(4)?;
        let at = At {
            position,
            recorded_at: row.try_get(5)?,
        };
        if !versions.contains_key(aggregate_type) {
            versions.insert(aggregate_type.to_string(), HashMap::new());
        }
        let of_type = versions
            .get_mut(aggregate_type)
            .expect("inserted when missing");
        match of_type.get_mut(aggregate_id) {
            Some(version) => *version = (sequence, position),
            None => {
                of_type.insert(aggregate_id.to_string(), (sequence, position));
            }
        }
        if aggregate_type == "Budget" {
            let event: BudgetEvent =
                serde_json::from_str(payload).map_err(|e| ProjectionError::Payload(position, e))?;
            rows.apply(aggregate_id, &event, at);
            if let Some(budget) = rows.budgets.get(aggregate_id) {
                usage.record(budget);
            }
        } else if aggregate_type == crate::breakers::AGGREGATE_TYPE {
            let event: BreakerEvent =
                serde_json::from_str(payload).map_err(|e| ProjectionError::Payload(position, e))?;
            breakers.apply(aggregate_id, &event, at);
        } else if aggregate_type == crate::dlq::AGGREGATE_TYPE {
            let event: DlqEvent =
                serde_json::from_str(payload).map_err(|e| ProjectionError::Payload(position, e))?;
            dead_letters.apply(aggregate_id, &event, at);
        }
        done += 1;
        if done.is_multiple_of(PROGRESS_EVERY) {
            progress(done, total);
        }
    }
    drop(log);
    progress(done, total);
    for reservation_id in rows.closed_elsewhere.keys() {
        tracing::warn!(%reservation_id, "the log closes a reservation it never opened");
    }

    // Emptied only now: the first write gives this transaction an id, and every commit-order
    // reader on the PostgreSQL server (the publisher included) waits for a transaction with
    // an id to end. Reading the log takes none, so they wait for the writes alone. The
    // tables are locked since the start, so nobody saw them in between.
    sqlx::query(
        "TRUNCATE read_budgets, read_reservations, read_budget_usage, read_dlq, read_breakers,
                  projection_versions",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
        .bind(PROJECTION)
        .execute(&mut *tx)
        .await?;

    copy_budgets(&mut tx, &rows.budgets).await?;
    copy_reservations(&mut tx, &rows.reservations).await?;
    copy_usage(&mut tx, &usage).await?;
    let dead_letters: Vec<&DlqRow> = dead_letters.rows.values().collect();
    crate::dlq::write_rows(&mut tx, &dead_letters).await?;
    crate::breakers::write_rows(&mut tx, &breakers).await?;
    copy_versions(&mut tx, versions).await?;
    if done > 0 {
        // The last event read: the same snapshot, so the same log (one index probe, where
        // carrying the transaction id on every row cost a conversion per event).
        let (transaction_id, global_position): (String, i64) = sqlx::query_as(&format!(
            "SELECT events.transaction_id::text, events.global_position FROM events
              WHERE {COMMITTED}
              ORDER BY {COMMIT_ORDER_DESC}
              LIMIT 1"
        ))
        .fetch_one(&mut *tx)
        .await?;
        let after = LogPosition {
            transaction_id,
            global_position,
        };
        // The replay applied exactly the log up to `after` in commit order (every event of
        // a transaction older than its snapshot's horizon, and nothing else): that is the
        // watermark. Every batch the live projector committed before the lock was in that
        // snapshot, so the watermark it had, and any range it had applied ahead, lie at or
        // before `after` (migrations/0018).
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, stream_seq, last_tx, last_position, applied, updated_at,
                                                 watermark_tx, watermark_position)
             VALUES ($1, 0, $2::text::xid8, $3, $4, now(), $2::text::xid8, $3)",
        )
        .bind(PROJECTION)
        .bind(&after.transaction_id)
        .bind(after.global_position)
        .bind(done as i64)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ReplayReport {
        events: done,
        elapsed: started.elapsed(),
    })
}

// Each table is written in key order: its primary-key index then grows at its right edge
// instead of taking inserts all over (random reservation ids).

async fn copy_budgets(
    conn: &mut PgConnection,
    budgets: &HashMap<String, BudgetRow>,
) -> Result<(), sqlx::Error> {
    let mut budgets: Vec<(&str, &BudgetRow)> =
        budgets.iter().map(|(id, b)| (id.as_str(), b)).collect();
    budgets.sort_unstable_by_key(|(id, _)| *id);
    let mut copy = BinaryCopy::start(
        conn,
        "COPY read_budgets (aggregate_id, tenant_id, project_id, total, used, reserved,
                            last_position, updated_at)
           FROM STDIN (FORMAT binary)",
    )
    .await?;
    for (_, b) in budgets {
        copy.row(8)
            .await?
            .text(&b.aggregate_id)
            .text(&b.tenant_id)
            .text(&b.project_id)
            .opt_int8(b.total)
            .int8(b.used)
            .int8(b.reserved)
            .int8(b.last_position)
            .timestamptz(b.updated_at);
    }
    copy.finish().await?;
    Ok(())
}

async fn copy_reservations(
    conn: &mut PgConnection,
    reservations: &HashMap<Uuid, ReservationRow>,
) -> Result<(), sqlx::Error> {
    // Sorted as (id, reference) pairs: sorting the rows themselves moved each one
    // about twenty times.
    let mut reservations: Vec<(Uuid, &ReservationRow)> =
        reservations.iter().map(|(id, r)| (*id, r)).collect();
    reservations.sort_unstable_by_key(|(id, _)| *id);
    let mut copy = BinaryCopy::start(
        conn,
        "COPY read_reservations (reservation_id, aggregate_id, tenant_id, project_id, task_id,
                                 model, allocated, expires_at, status, actual_tokens, overage,
                                 late, reserved_at, updated_at, last_position)
           FROM STDIN (FORMAT binary)",
    )
    .await?;
    for (_, r) in reservations {
        copy.row(15)
            .await?
            .uuid(r.reservation_id)
            .text(&r.aggregate_id)
            .text(&r.tenant_id)
            .text(&r.project_id)
            .text(&r.task_id)
            .text(&r.model)
            .int8(r.allocated)
            .timestamptz(r.expires_at)
            .text(r.status)
            .opt_int8(r.actual_tokens)
            .opt_int8(r.overage)
            .bool(r.late)
            .timestamptz(r.reserved_at)
            .timestamptz(r.updated_at)
            .int8(r.last_position);
    }
    copy.finish().await?;
    Ok(())
}

/// Each budget's totals at the end of every minute in which it changed
/// (`read_budget_usage`), folded during the replay from the same rows the live projector
/// writes.
#[derive(Default)]
struct UsageSeries {
    /// aggregate id -> its minutes, oldest first.
    by_budget: HashMap<String, Vec<MinuteTotals>>,
}

/// A budget's totals at the end of one minute: a row of `read_budget_usage`.
#[derive(Clone, Copy)]
struct MinuteTotals {
    minute: DateTime<Utc>,
    total: Option<i64>,
    used: i64,
    reserved: i64,
    last_position: i64,
}

impl UsageSeries {
    /// Records `budget` as it stands after its latest event.
    fn record(&mut self, budget: &BudgetRow) {
        let point = MinuteTotals {
            minute: budget
                .updated_at
                .duration_trunc(chrono::TimeDelta::minutes(1))
                .unwrap_or(budget.updated_at),
            total: budget.total,
            used: budget.used,
            reserved: budget.reserved,
            last_position: budget.last_position,
        };
        if !self.by_budget.contains_key(&budget.aggregate_id) {
            self.by_budget
                .insert(budget.aggregate_id.clone(), Vec::new());
        }
        let points = self
            .by_budget
            .get_mut(&budget.aggregate_id)
            .expect("inserted when missing");
        // Events of one budget come in sequence order, so minutes only grow; a clock that
        // stepped back folds into the minute already open.
        match points.last_mut() {
            Some(last) if last.minute >= point.minute => {
                *last = MinuteTotals {
                    minute: last.minute,
                    ..point
                }
            }
            _ => points.push(point),
        }
    }
}

async fn copy_usage(conn: &mut PgConnection, usage: &UsageSeries) -> Result<(), sqlx::Error> {
    let mut budgets: Vec<(&str, &Vec<MinuteTotals>)> = usage
        .by_budget
        .iter()
        .map(|(id, points)| (id.as_str(), points))
        .collect();
    budgets.sort_unstable_by_key(|(id, _)| *id);
    let mut copy = BinaryCopy::start(
        conn,
        "COPY read_budget_usage (aggregate_id, minute, total, used, reserved, last_position)
           FROM STDIN (FORMAT binary)",
    )
    .await?;
    for (id, points) in budgets {
        for p in points {
            copy.row(6)
                .await?
                .text(id)
                .timestamptz(p.minute)
                .opt_int8(p.total)
                .int8(p.used)
                .int8(p.reserved)
                .int8(p.last_position);
        }
    }
    copy.finish().await?;
    Ok(())
}

async fn copy_versions(
    conn: &mut PgConnection,
    versions: HashMap<String, HashMap<String, (i64, i64)>>,
) -> Result<(), sqlx::Error> {
    let mut rows: Vec<(&str, &str, i64, i64)> = versions
        .iter()
        .flat_map(|(t, ids)| {
            ids.iter().map(move |(id, (version, position))| {
                (t.as_str(), id.as_str(), *version, *position)
            })
        })
        .collect();
    rows.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut copy = BinaryCopy::start(
        conn,
        "COPY projection_versions (aggregate_type, aggregate_id, version, last_position)
           FROM STDIN (FORMAT binary)",
    )
    .await?;
    for (aggregate_type, aggregate_id, version, position) in rows {
        copy.row(4)
            .await?
            .text(aggregate_type)
            .text(aggregate_id)
            .int8(version)
            .int8(position);
    }
    copy.finish().await?;
    Ok(())
}
