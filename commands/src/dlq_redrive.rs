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
//! A job may be paused (no worker claims it; it keeps its cursor), resumed and cancelled. The
//! worker checks the job's state (and renews its lease) before every entry and at least every
//! [`RENEW_EVERY`] while it waits for its next turn, so a pause takes effect before the next
//! entry moves, at any rate. Every entry handled leaves a row in `dlq_redrive_results`
//! (moved / skipped / failed and why), written with the job's counters and cursor in one
//! statement.
//!
//! Which entries: open, matching the filter, created no later than the job (and no later
//! than the filter's `until`; so a job ends even while new dead letters arrive), after the cursor in (created_at, id) order. They are
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
/// How often a worker waiting for its next turn renews its lease and looks for a pause or a
/// cancel (well inside [`LEASE`], so a slow job is never taken over while it waits).
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// Most results one page lists.
pub const MAX_RESULTS_LIMIT: i64 = 1000;

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
    /// Entries created at or before this instant (a job never moves entries created after it
    /// started either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
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
    /// `running`, `paused`, `cancelled` or `completed`.
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
    /// Who paused, resumed or cancelled it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_changed_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a job did with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedriveOutcome {
    /// Requeued and resolved.
    Moved,
    /// Resolved by someone else before the job reached it.
    Skipped,
    /// The requeue failed; the entry stays open.
    Failed,
}

impl RedriveOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RedriveOutcome::Moved => "moved",
            RedriveOutcome::Skipped => "skipped",
            RedriveOutcome::Failed => "failed",
        }
    }
}

/// One entry a job handled, in the order it did (`n`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RedriveResult {
    pub n: i64,
    pub entry_id: String,
    pub outcome: RedriveOutcome,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `Nats-Msg-Id` of the requeue (moved entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// `GET /dlq/redrive/{job}/results`: a page of results, and where the next one starts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RedriveResults {
    pub items: Vec<RedriveResult>,
    /// Pass as `after` for the next page (absent: this was the last one for now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

struct JobRow {
    job: RedriveJob,
    created_before: DateTime<Utc>,
    cursor: Option<(DateTime<Utc>, String)>,
}

const COLUMNS: &str = "id, state, filter, rate_per_second, moved, failed, skipped, last_error, \
    created_by, state_changed_by, created_at, updated_at, finished_at, created_before, \
    cursor_created, cursor_id";

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
            state_changed_by: row.try_get("state_changed_by")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            finished_at: row.try_get("finished_at")?,
        },
        created_before: row.try_get("created_before")?,
        cursor: cursor_created.zip(cursor_id),
    })
}

/// Starts, shows, pauses, resumes and cancels redrive jobs and lists their results; runs them ([`run_redrive_worker`]).
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
        for (field, instant) in [
            ("filter.since", request.filter.since),
            ("filter.until", request.filter.until),
        ] {
            use chrono::Datelike;
            if instant.is_some_and(|t| !(1..=9999).contains(&t.year())) {
                return Err(CommandError::invalid(
                    field,
                    "must be between the years 1 and 9999",
                ));
            }
        }
        if let (Some(since), Some(until)) = (request.filter.since, request.filter.until) {
            if until < since {
                return Err(CommandError::invalid(
                    "filter.until",
                    "must not be before filter.since",
                ));
            }
        }
        let filter = serde_json::to_value(&request.filter)
            .map_err(|e| CommandError::Internal(Box::new(e)))?;
        // LEAST ignores a NULL `until`: entries created up to now, or up to `until`.
        let sql = format!(
            "INSERT INTO dlq_redrive_jobs (id, filter, rate_per_second, created_before, state, created_by)
             VALUES ($1, $2, $3, LEAST(now(), $5), 'running', $4)
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(Uuid::now_v7())
            .bind(filter)
            .bind(request.rate)
            .bind(actor.label())
            .bind(request.filter.until)
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

    /// Pauses, resumes or cancels a job ([`RedriveAction`]); 409 when its state does not
    /// allow it.
    pub async fn steer(
        &self,
        id: Uuid,
        action: RedriveAction,
        actor: &Actor,
    ) -> Result<RedriveJob, CommandError> {
        let (from, to): (&[&str], &str) = match action {
            RedriveAction::Pause => (&["running"], "paused"),
            RedriveAction::Resume => (&["paused"], "running"),
            RedriveAction::Cancel => (&["running", "paused"], "cancelled"),
        };
        let updated = sqlx::query(
            "UPDATE dlq_redrive_jobs
                SET state = $3, state_changed_by = $4, updated_at = now(),
                    finished_at = CASE WHEN $3 = 'cancelled' THEN now() ELSE finished_at END
              WHERE id = $1 AND state = ANY($2)",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(actor.label())
        .execute(&self.pool)
        .await?;
        let job = self.get(id).await?;
        if updated.rows_affected() == 0 {
            return Err(CommandError::Conflict(format!(
                "redrive job {id} is {}; it can be made {to} only when {}",
                job.state,
                from.join(" or ")
            )));
        }
        Ok(job)
    }

    /// What the job did with each entry so far, in its order, after `after` (an `n`),
    /// optionally of one outcome only.
    pub async fn results(
        &self,
        id: Uuid,
        outcome: Option<RedriveOutcome>,
        after: i64,
        limit: i64,
    ) -> Result<RedriveResults, CommandError> {
        if !(1..=MAX_RESULTS_LIMIT).contains(&limit) {
            return Err(CommandError::invalid(
                "limit",
                format!("must be between 1 and {MAX_RESULTS_LIMIT}"),
            ));
        }
        // 404 for a job that does not exist (an empty page for one that did nothing yet).
        self.get(id).await?;
        let rows = sqlx::query(
            "SELECT n, entry_id, outcome, reason, message_id, at FROM dlq_redrive_results
              WHERE job_id = $1 AND ($2::text IS NULL OR outcome = $2) AND n > $3
              ORDER BY n LIMIT $4",
        )
        .bind(id)
        .bind(outcome.map(RedriveOutcome::as_str))
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows
            .iter()
            .map(|row| {
                let outcome = match row.try_get::<String, _>("outcome")?.as_str() {
                    "moved" => RedriveOutcome::Moved,
                    "skipped" => RedriveOutcome::Skipped,
                    _ => RedriveOutcome::Failed,
                };
                Ok(RedriveResult {
                    n: row.try_get("n")?,
                    entry_id: row.try_get("entry_id")?,
                    outcome,
                    reason: row.try_get("reason")?,
                    message_id: row.try_get("message_id")?,
                    at: row.try_get("at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_after = more.then(|| items.last().map(|r| r.n)).flatten();
        Ok(RedriveResults { items, next_after })
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

    /// Records one entry: the job's counters and cursor and the entry's result, in one
    /// statement. Also when the job was paused or cancelled meanwhile (the entry did move);
    /// not when the lease was lost (the new holder handles the entry again). True when the
    /// job is still running and this worker's.
    async fn step(
        &self,
        job: Uuid,
        owner: &str,
        cursor: &(DateTime<Utc>, String),
        handled: &Handled,
    ) -> Result<bool, CommandError> {
        let count = |o: RedriveOutcome| i64::from(handled.outcome == o);
        let state: Option<String> = sqlx::query_scalar(
            "WITH job AS (
                 UPDATE dlq_redrive_jobs
                    SET cursor_created = $3, cursor_id = $4, moved = moved + $5,
                        failed = failed + $6, skipped = skipped + $7,
                        last_error = CASE WHEN $6 = 1 THEN $4 || ': ' || $9 ELSE last_error END,
                        lease_until = now() + $11 * interval '1 millisecond', updated_at = now()
                  WHERE id = $1 AND lease_owner = $2
                  RETURNING id, state),
             result AS (
                 INSERT INTO dlq_redrive_results (job_id, entry_id, outcome, reason, message_id)
                 SELECT id, $4, $8, $9, $10 FROM job
                 ON CONFLICT (job_id, entry_id) DO UPDATE
                    SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason,
                        message_id = EXCLUDED.message_id, at = now())
             SELECT state FROM job",
        )
        .bind(job)
        .bind(owner)
        .bind(cursor.0)
        .bind(&cursor.1)
        .bind(count(RedriveOutcome::Moved))
        .bind(count(RedriveOutcome::Failed))
        .bind(count(RedriveOutcome::Skipped))
        .bind(handled.outcome.as_str())
        .bind(&handled.reason)
        .bind(&handled.message_id)
        .bind(LEASE.as_millis() as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(state.as_deref() == Some("running"))
    }

    /// Renews the lease of a job this worker runs; false when it is no longer running (paused,
    /// cancelled) or no longer this worker's.
    async fn renew(&self, job: Uuid, owner: &str) -> Result<bool, CommandError> {
        let updated = sqlx::query(
            "UPDATE dlq_redrive_jobs SET lease_until = now() + $3 * interval '1 millisecond'
              WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(job)
        .bind(owner)
        .bind(LEASE.as_millis() as i64)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Lets go of a job this worker stopped running (so a resumed job is claimed at once).
    async fn release(&self, job: Uuid, owner: &str) -> Result<(), CommandError> {
        sqlx::query(
            "UPDATE dlq_redrive_jobs SET lease_owner = NULL, lease_until = NULL
              WHERE id = $1 AND lease_owner = $2",
        )
        .bind(job)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Waits until `turn`, renewing the lease every [`RENEW_EVERY`]; false as soon as the job
    /// is paused, cancelled or taken over. Checks once even when the turn has come already, so
    /// no entry moves after a pause was recorded.
    async fn wait_turn(
        &self,
        job: Uuid,
        owner: &str,
        turn: tokio::time::Instant,
    ) -> Result<bool, CommandError> {
        loop {
            if !self.renew(job, owner).await? {
                return Ok(false);
            }
            let now = tokio::time::Instant::now();
            if now >= turn {
                return Ok(true);
            }
            tokio::time::sleep((turn - now).min(RENEW_EVERY)).await;
        }
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

    /// Runs one claimed job until it ends, is paused or cancelled, or its lease is lost.
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
        let mut turn = tokio::time::Instant::now();
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
            if !self.wait_turn(id, owner, turn).await? {
                self.release(id, owner).await?;
                tracing::info!(job = %id, "redrive job stopped (paused, cancelled or taken over)");
                return Ok(());
            }
            turn = tokio::time::Instant::now() + pause;
            let note = Some(format!("redrive job {id}"));
            let handled = match dlq.resolve(&entry, note, true, &actor).await {
                Ok(outcome) => Handled {
                    outcome: RedriveOutcome::Moved,
                    reason: None,
                    message_id: outcome
                        .entry
                        .history
                        .last()
                        .and_then(|h| h.message_id.clone()),
                },
                Err(error @ (CommandError::Conflict(_) | CommandError::NotFound(_))) => Handled {
                    outcome: RedriveOutcome::Skipped,
                    reason: Some(error.public_message()),
                    message_id: None,
                },
                Err(error) => {
                    tracing::warn!(job = %id, %entry, error = ?error, "redrive could not requeue an entry");
                    Handled {
                        outcome: RedriveOutcome::Failed,
                        reason: Some(error.public_message()),
                        message_id: None,
                    }
                }
            };
            let at = (created_at, entry);
            if !self.step(id, owner, &at, &handled).await? {
                self.release(id, owner).await?;
                tracing::info!(job = %id, "redrive job stopped (paused, cancelled or taken over)");
                return Ok(());
            }
            cursor = Some(at);
        }
    }
}

/// What an operator may do to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedriveAction {
    /// running → paused: no entry moves until it is resumed (one being moved right now still
    /// finishes, and is counted).
    Pause,
    /// paused → running, from its cursor (a worker claims it within its next tick).
    Resume,
    /// running or paused → cancelled, for good.
    Cancel,
}

/// What a job did with one entry, before it is recorded.
struct Handled {
    outcome: RedriveOutcome,
    reason: Option<String>,
    message_id: Option<String>,
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
