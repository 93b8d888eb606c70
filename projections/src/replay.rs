//! Rebuilds every read model from the event table (not from JetStream, whose retention
//! may be shorter), with the same per-event code the live projector uses
//! ([`BudgetRows::apply`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::budget::BudgetEvent;
use sqlx::PgPool;
use streams::envelope::read_committed_after;
use streams::LogPosition;

use crate::apply::{write_rows, PROJECTION};
use crate::budgets::{At, BudgetRow, BudgetRows, ReservationRow};
use crate::dlq::{DlqRow, DlqRows};
use crate::ProjectionError;

/// Events read per round trip.
const BATCH: i64 = 10_000;
/// Rows written per statement.
const WRITE_CHUNK: usize = 20_000;

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
/// transaction: readers see the old state until the new one is complete, and the live
/// projector waits on the emptied tables, then skips what the replay applied (the
/// versions say so) and applies what came after. `progress(done, total)` is called after
/// every batch read (`total` is counted at the start; events appended during a replay are
/// left to the live projector).
///
/// The rows are folded in memory and written once at the end: updating the same rows
/// batch after batch inside one transaction would leave ever longer chains of dead row
/// versions to walk (the replay slowed down quadratically that way).
pub async fn replay(
    pool: &PgPool,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, ProjectionError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("TRUNCATE read_budgets, read_reservations, read_dlq, projection_versions")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
        .bind(PROJECTION)
        .execute(&mut *tx)
        .await?;
    let mut rows = BudgetRows::default();
    let mut dead_letters = DlqRows::default();
    // (aggregate type, id) -> (version, last position)
    let mut versions: HashMap<(String, String), (i64, i64)> = HashMap::new();
    let mut after = LogPosition::start();
    let mut done: u64 = 0;
    progress(0, total as u64);
    loop {
        let batch = read_committed_after(&mut *tx, &after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.position();
        for envelope in &batch {
            versions.insert(
                (
                    envelope.aggregate_type.clone(),
                    envelope.aggregate_id.clone(),
                ),
                (envelope.sequence, envelope.global_position),
            );
            if envelope.aggregate_type == "Budget" {
                let event: BudgetEvent = serde_json::from_str(envelope.payload.get())
                    .map_err(|e| ProjectionError::Payload(envelope.global_position, e))?;
                let at = At {
                    position: envelope.global_position,
                    recorded_at: envelope.recorded_at,
                };
                rows.apply(&envelope.aggregate_id, &event, at);
            } else if envelope.aggregate_type == crate::dlq::AGGREGATE_TYPE {
                let (event, at) = crate::dlq::decode(envelope)?;
                dead_letters.apply(&envelope.aggregate_id, &event, at);
            }
        }
        done += batch.len() as u64;
        progress(done, total as u64);
    }

    let budgets: Vec<&BudgetRow> = rows.budgets.values().collect();
    for chunk in budgets.chunks(WRITE_CHUNK) {
        write_rows(&mut tx, chunk, &[]).await?;
    }
    let reservations: Vec<&ReservationRow> = rows.reservations.values().collect();
    for chunk in reservations.chunks(WRITE_CHUNK) {
        write_rows(&mut tx, &[], chunk).await?;
    }
    let dead_letters: Vec<&DlqRow> = dead_letters.rows.values().collect();
    crate::dlq::write_rows(&mut tx, &dead_letters).await?;
    let versions: Vec<_> = versions.into_iter().collect();
    for chunk in versions.chunks(WRITE_CHUNK) {
        let (types, ids): (Vec<&str>, Vec<&str>) = chunk
            .iter()
            .map(|((t, i), _)| (t.as_str(), i.as_str()))
            .unzip();
        let (sequences, positions): (Vec<i64>, Vec<i64>) = chunk.iter().map(|(_, v)| *v).unzip();
        sqlx::query(
            "INSERT INTO projection_versions (aggregate_type, aggregate_id, version, last_position)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[])",
        )
        .bind(&types)
        .bind(&ids)
        .bind(&sequences)
        .bind(&positions)
        .execute(&mut *tx)
        .await?;
    }
    if done > 0 {
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, stream_seq, last_tx, last_position, applied, updated_at)
             VALUES ($1, 0, $2::text::xid8, $3, $4, now())",
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
