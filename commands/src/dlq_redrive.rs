//! Redrive jobs: requeue every matching open dead-letter entry, oldest first, at a rate.
//!
//! A job is a row of `dlq_redrive_jobs` (write-side state, not an event-sourced aggregate:
//! each entry it moves is resolved through [`DlqService::resolve`], which records the event).
//! Every process runs [`run_redrive_worker`]; a job is held by one of them through a lease
//! that the holder renews with every step, so a job whose process died is picked up again
//! after the lease runs out, by another process or by the restarted one, from its cursor.
//!
//! Why nothing moves twice: the cursor advances after each entry; an entry handled again
//! after a crash is either already resolved (409, counted as skipped) or, when the crash fell
//! between the publish and the record, requeued again with the same `Nats-Msg-Id`, which
//! JetStream drops as a duplicate.
//!
//! Which entries: open, matching the filter, created no later than the job (so a job ends
//! even while new dead letters arrive), after the cursor in (created_at, id) order. They are
//! read from the read model through [`DlqReads`] (the binary plugs in the projections), so an
//! entry resolved a moment ago may still be listed; resolving it again answers 409 and it is
//! skipped.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::dlq::DlqService;
use crate::store::Actor;
use crate::CommandError;

/// Highest rate a job may ask for (messages per second).
pub const MAX_RATE: f64 = 1000.0;
/// Slowest redrive: one message per 1,000 s (a slower one would wait longer than a
/// `Duration` between messages can say, or forever).
pub const MIN_RATE: f64 = 0.001;
/// How long a worker holds a job without renewing.
const LEASE: Duration = Duration::from_secs(10);

/// Which open entries a job moves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveFilter {
    /// The exact original subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A case-insensitive part of the error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_contains: Option<String>,
    /// Entries created at or after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// `POST /dlq/redrive`: `{"filter"?, "rate"}` (messages per second).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    #[serde(default)]
    pub filter: RedriveFilter,
    /// Messages per second, 0.001-1000.
    #[schema(minimum = 0.001, maximum = 1000)]
    pub rate: f64,
}

/// Entries in (created_at, id) order: (id, created_at).
pub type EntryKeys = Vec<(String, DateTime<Utc>)>;

/// Open entries matching a filter, from the read model.
pub trait DlqReads: Send + Sync {
    /// Up to `limit` open matching entries created at or before `created_before`, after
    /// `after` in (created_at, id) order: (id, created_at).
    fn next_open<'a>(
        &'a self,
        filter: &'a RedriveFilter,
        created_before: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> BoxFuture<'a, Result<EntryKeys, CommandError>>;

    /// How many such entries there are.
    fn count_open<'a>(
        &'a self,
        filter: &'a RedriveFilter,
        created_before: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
    ) -> BoxFuture<'a, Result<i64, CommandError>>;
}

/// A job as `GET /dlq/redrive/{job}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RedriveJob {
    pub id: Uuid,
    /// `running`, `cancelled` or `completed`.
    pub state: String,
    pub filter: RedriveFilter,
    pub rate: f64,
    /// Entries requeued by this job.
    pub moved: i64,
    /// Entries whose requeue failed (the job went on; they stay open).
    pub failed: i64,
    /// Entries resolved by someone else before the job reached them.
    pub skipped: i64,
    /// Matching open entries the job has not reached yet.
    pub remaining: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

struct JobRow {
    job: RedriveJob,
    created_before: DateTime<Utc>,
    cursor: Option<(DateTime<Utc>, String)>,
}

const COLUMNS: &str = "id, state, filter, rate_per_second, moved, failed, skipped, last_error, \
    created_by, created_at, updated_at, finished_at, created_before, cursor_created, cursor_id";

fn job_row(row: &PgRow) -> Result<JobRow, CommandError> {
    let filter: serde_json::Value = row.try_get("filter")?;
    let cursor_created: Option<DateTime<Utc>> = row.try_get("cursor_created")?;
    let cursor_id: Option<String> = row.try_get("cursor_id")?;
    Ok(JobRow {
        job: RedriveJob {
            id: row.try_get("id")?,
            state: row.try_get("state")?,
            filter: serde_json::from_value(filter)
                .map_err(|e| CommandError::Internal(Box::new(e)))?,
            rate: row.try_get("rate_per_second")?,
            moved: row.try_get("moved")?,
            failed: row.try_get("failed")?,
            skipped: row.try_get("skipped")?,
            remaining: 0,
            last_error: row.try_get("last_error")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            finished_at: row.try_get("finished_at")?,
        },
        created_before: row.try_get("created_before")?,
        cursor: cursor_created.zip(cursor_id),
    })
}

/// Starts, shows and cancels redrive jobs; runs them ([`run_redrive_worker`]).
pub struct RedriveService {
    pool: PgPool,
    reads: Arc<dyn DlqReads>,
}

fn check_text(field: &'static str, value: &Option<String>) -> Result<(), CommandError> {
    match value {
        Some(v) if v.is_empty() => Err(CommandError::invalid(field, "must not be empty")),
        Some(v) if v.len() > 512 => Err(CommandError::invalid(field, "must be at most 512 bytes")),
        Some(v) if v.chars().any(char::is_control) => Err(CommandError::invalid(
            field,
            "must not contain control characters",
        )),
        _ => Ok(()),
    }
}

impl RedriveService {
    pub fn new(pool: PgPool, reads: Arc<dyn DlqReads>) -> Self {
        Self { pool, reads }
    }

    async fn with_remaining(&self, row: JobRow) -> Result<RedriveJob, CommandError> {
        let mut job = row.job;
        job.remaining = self
            .reads
            .count_open(&job.filter, row.created_before, row.cursor)
            .await?;
        Ok(job)
    }

    /// Starts a job; it runs in the background from now on.
    pub async fn start(
        &self,
        request: RedriveRequest,
        actor: &Actor,
    ) -> Result<RedriveJob, CommandError> {
        if !(request.rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&request.rate)) {
            return Err(CommandError::invalid(
                "rate",
                format!("must be between {MIN_RATE} and {MAX_RATE} messages per second"),
            ));
        }
        check_text("filter.subject", &request.filter.subject)?;
        check_text("filter.error_contains", &request.filter.error_contains)?;
        if let Some(since) = request.filter.since {
            use chrono::Datelike;
            if !(1..=9999).contains(&since.year()) {
                return Err(CommandError::invalid(
                    "filter.since",
                    "must be between the years 1 and 9999",
                ));
            }
        }
        let filter = serde_json::to_value(&request.filter)
            .map_err(|e| CommandError::Internal(Box::new(e)))?;
        let sql = format!(
            "INSERT INTO dlq_redrive_jobs (id, filter, rate_per_second, created_before, state, created_by)
             VALUES ($1, $2, $3, now(), 'running', $4)
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(Uuid::now_v7())
            .bind(filter)
            .bind(request.rate)
            .bind(format!("{}:{}", actor.via, actor.user))
            .fetch_one(&self.pool)
            .await?;
        self.with_remaining(job_row(&row)?).await
    }

    pub async fn get(&self, id: Uuid) -> Result<RedriveJob, CommandError> {
        let sql = format!("SELECT {COLUMNS} FROM dlq_redrive_jobs WHERE id = $1");
        match sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        {
            Some(row) => self.with_remaining(job_row(&row)?).await,
            None => Err(CommandError::NotFound(format!("no redrive job {id}"))),
        }
    }

    /// Stops a running job (the entry being moved right now still finishes). Cancelling a
    /// job that already ended is a 409.
    pub async fn cancel(&self, id: Uuid) -> Result<RedriveJob, CommandError> {
        let updated = sqlx::query(
            "UPDATE dlq_redrive_jobs SET state = 'cancelled', finished_at = now(), updated_at = now()
              WHERE id = $1 AND state = 'running'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        let job = self.get(id).await?;
        if updated.rows_affected() == 0 {
            return Err(CommandError::Conflict(format!(
                "redrive job {id} is already {}",
                job.state
            )));
        }
        Ok(job)
    }

    /// Takes the oldest running job nobody holds (or this worker already holds).
    async fn claim(&self, owner: &str) -> Result<Option<JobRow>, CommandError> {
        let sql = format!(
            "UPDATE dlq_redrive_jobs SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond'
              WHERE id = (SELECT id FROM dlq_redrive_jobs
                           WHERE state = 'running'
                             AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $1)
                           ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
              RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(LEASE.as_millis() as i64)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_row).transpose()
    }

    /// Records one step; false when the job is no longer this worker's to run (cancelled,
    /// or the lease was lost).
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        job: Uuid,
        owner: &str,
        cursor: &(DateTime<Utc>, String),
        moved: i64,
        failed: i64,
        skipped: i64,
        error: Option<String>,
    ) -> Result<bool, CommandError> {
        let updated = sqlx::query(
            "UPDATE dlq_redrive_jobs
                SET cursor_created = $3, cursor_id = $4, moved = moved + $5, failed = failed + $6,
                    skipped = skipped + $7, last_error = COALESCE($8, last_error),
                    lease_until = now() + $9 * interval '1 millisecond', updated_at = now()
              WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(job)
        .bind(owner)
        .bind(cursor.0)
        .bind(&cursor.1)
        .bind(moved)
        .bind(failed)
        .bind(skipped)
        .bind(error)
        .bind(LEASE.as_millis() as i64)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn complete(&self, job: Uuid, owner: &str) -> Result<(), CommandError> {
        sqlx::query(
            "UPDATE dlq_redrive_jobs SET state = 'completed', finished_at = now(), updated_at = now()
              WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(job)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs one claimed job until it ends, is cancelled or its lease is lost.
    async fn run_job(
        &self,
        dlq: &DlqService,
        owner: &str,
        row: JobRow,
    ) -> Result<(), CommandError> {
        let id = row.job.id;
        let actor = Actor::new(format!("redrive-{id}"), "worker");
        // Rates are checked when a job starts; a stored row is still never trusted to panic.
        let pause = Duration::try_from_secs_f64(1.0 / row.job.rate.clamp(MIN_RATE, MAX_RATE))
            .unwrap_or(Duration::from_secs(1000));
        let mut ticker = tokio::time::interval(pause);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cursor = row.cursor;
        loop {
            let next = self
                .reads
                .next_open(&row.job.filter, row.created_before, cursor.clone(), 1)
                .await?;
            let Some((entry, created_at)) = next.into_iter().next() else {
                self.complete(id, owner).await?;
                tracing::info!(job = %id, "redrive job completed");
                return Ok(());
            };
            ticker.tick().await;
            let note = Some(format!("redrive job {id}"));
            let (moved, failed, skipped, error) = match dlq
                .resolve(&entry, note, true, &actor)
                .await
            {
                Ok(_) => (1, 0, 0, None),
                Err(CommandError::Conflict(_) | CommandError::NotFound(_)) => (0, 0, 1, None),
                Err(error) => {
                    tracing::warn!(job = %id, %entry, error = ?error, "redrive could not requeue an entry");
                    (
                        0,
                        1,
                        0,
                        Some(format!("{entry}: {}", error.public_message())),
                    )
                }
            };
            let at = (created_at, entry);
            if !self
                .step(id, owner, &at, moved, failed, skipped, error)
                .await?
            {
                tracing::info!(job = %id, "redrive job stopped (cancelled or taken over)");
                return Ok(());
            }
            cursor = Some(at);
        }
    }
}

/// Runs redrive jobs forever: every `interval`, claims a running job and runs it. Every
/// process may run this; a lease keeps each job with one of them.
pub async fn run_redrive_worker(
    redrive: Arc<RedriveService>,
    dlq: Arc<DlqService>,
    interval: Duration,
) {
    let owner = format!("redrive-worker-{}", Uuid::new_v4());
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match redrive.claim(&owner).await {
            Ok(Some(row)) => {
                if let Err(error) = redrive.run_job(&dlq, &owner, row).await {
                    tracing::warn!(error = ?error, "redrive job paused; resuming next tick");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(error = ?error, "could not look for redrive jobs"),
        }
    }
}
