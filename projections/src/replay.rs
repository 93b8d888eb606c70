//! Rebuilds every read model from the event table (not from JetStream, whose retention
//! may be shorter), with the same code the live projector uses.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use streams::envelope::read_committed_after;
use streams::LogPosition;

use crate::apply::{apply_batch, PROJECTION};
use crate::ProjectionError;

/// Events read and applied per round trip.
const BATCH: i64 = 5000;

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

/// Empties the read models and applies the whole log in commit order, in one
/// transaction: readers see the old state until the new one is complete, and the live
/// projector waits on the emptied tables, then skips what the replay applied (the
/// versions say so) and applies what came after. `progress(done, total)` is called after
/// every batch (`total` is counted at the start; events appended during a replay are
/// left to the live projector).
pub async fn replay(
    pool: &PgPool,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, ProjectionError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("TRUNCATE read_budgets, read_reservations, projection_versions")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
        .bind(PROJECTION)
        .execute(&mut *tx)
        .await?;
    let mut after = LogPosition::start();
    let mut done: u64 = 0;
    progress(0, total as u64);
    loop {
        let batch = read_committed_after(&mut *tx, &after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.position();
        apply_batch(&mut tx, &batch, None).await?;
        done += batch.len() as u64;
        progress(done, total as u64);
    }
    tx.commit().await?;
    Ok(ReplayReport {
        events: done,
        elapsed: started.elapsed(),
    })
}
