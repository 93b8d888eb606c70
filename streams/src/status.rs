//! How far behind the log the publisher and the projector are, from the checkpoints in
//! PostgreSQL (so any process can answer, whichever one is active). A `/metrics` exporter
//! can turn [`PipelineStatus`] into gauges.

use serde::Serialize;
use sqlx::{PgPool, Row};

/// Lag of one stage behind the event table, in commit order.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct StageLag {
    /// The global position of the last event the stage handled (0: none).
    pub position: i64,
    /// Committed events the stage has not handled yet.
    pub lag_events: i64,
    /// Age of the oldest of them, in seconds (0 when there are none).
    pub lag_seconds: f64,
}

/// The pipeline as the checkpoints describe it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PipelineStatus {
    /// The highest global position appended (an identity: a rolled-back append leaves a gap).
    pub last_position: i64,
    /// Events → JetStream.
    pub publisher: StageLag,
    /// JetStream → read models.
    pub projector: StageLag,
}

async fn lag(pool: &PgPool, table: &str, key: &str, name: &str) -> Result<StageLag, sqlx::Error> {
    // Only committed events below the snapshot horizon count, as for the tailer itself.
    let sql = format!(
        "WITH c AS (SELECT last_tx, last_position FROM {table} WHERE {key} = $1)
         SELECT COALESCE((SELECT last_position FROM c), 0) AS position,
                count(e.*) AS lag_events,
                COALESCE(EXTRACT(EPOCH FROM now() - min(e.recorded_at))::float8, 0) AS lag_seconds
           FROM events e
          WHERE (e.transaction_id, e.global_position) >
                COALESCE((SELECT (last_tx, last_position) FROM c), ('0'::xid8, 0::bigint))
            AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    );
    let row = sqlx::query(&sql).bind(name).fetch_one(pool).await?;
    Ok(StageLag {
        position: row.try_get("position")?,
        lag_events: row.try_get("lag_events")?,
        lag_seconds: row.try_get::<f64, _>("lag_seconds")?.max(0.0),
    })
}

/// The publisher's lag for `stream` and the projection `projection`'s lag.
pub async fn pipeline_status(
    pool: &PgPool,
    stream: &str,
    projection: &str,
) -> Result<PipelineStatus, sqlx::Error> {
    let last_position: i64 =
        sqlx::query_scalar("SELECT COALESCE(max(global_position), 0) FROM events")
            .fetch_one(pool)
            .await?;
    Ok(PipelineStatus {
        last_position,
        publisher: lag(pool, "publisher_checkpoints", "stream", stream).await?,
        projector: lag(pool, "projection_checkpoints", "name", projection).await?,
    })
}
