//! The breakers' failure rates: every process counts the outcomes reported to it per breaker
//! and minute in memory ([`OutcomeCounter`]) and adds them to `breaker_outcomes` on each
//! retry-worker pass (migration 0016); [`recent_outcomes`] sums every process's rows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use sqlx::PgPool;

/// How far back the breakers' list looks by default.
pub const RATE_WINDOW: Duration = Duration::from_secs(300);
/// How long per-minute outcome counts are kept.
const OUTCOMES_KEPT: Duration = Duration::from_secs(24 * 3600);
/// How often a process deletes the rows older than [`OUTCOMES_KEPT`], at most.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Calls reported to a breaker over a recent window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecentOutcomes {
    pub successes: i64,
    pub failures: i64,
}

/// Successes and failures per (breaker, minute).
type OutcomeCounts = HashMap<(String, DateTime<Utc>), (i64, i64)>;

/// This process's outcome counts since the last flush.
#[derive(Debug, Default)]
pub struct OutcomeCounter {
    counts: Mutex<OutcomeCounts>,
    /// When this process last deleted old rows.
    pruned: Mutex<Option<Instant>>,
}

fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(chrono::Duration::minutes(1))
        .unwrap_or(at)
}

impl OutcomeCounter {
    /// Adds one reported outcome (every report, counted by the breaker or not: the rate is
    /// of the calls the services made).
    pub fn count(&self, name: &str, failed: bool, now: DateTime<Utc>) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let slot = counts
            .entry((name.to_string(), minute_of(now)))
            .or_default();
        if failed {
            slot.1 += 1;
        } else {
            slot.0 += 1;
        }
    }

    /// Adds the counts to `breaker_outcomes` (one statement), and once in a while deletes
    /// rows older than a day. Counts that could not be written are kept for the next flush.
    pub async fn flush(&self, pool: &PgPool, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        let taken = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()));
        if !taken.is_empty() {
            let mut names = Vec::with_capacity(taken.len());
            let mut minutes = Vec::with_capacity(taken.len());
            let mut successes = Vec::with_capacity(taken.len());
            let mut failures = Vec::with_capacity(taken.len());
            for ((name, minute), (ok, failed)) in &taken {
                names.push(name.clone());
                minutes.push(*minute);
                successes.push(*ok);
                failures.push(*failed);
            }
            let written = sqlx::query(
                "INSERT INTO breaker_outcomes (name, minute, successes, failures)
                 SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[])
                 ON CONFLICT (name, minute) DO UPDATE
                    SET successes = breaker_outcomes.successes + EXCLUDED.successes,
                        failures = breaker_outcomes.failures + EXCLUDED.failures",
            )
            .bind(&names)
            .bind(&minutes)
            .bind(&successes)
            .bind(&failures)
            .execute(pool)
            .await;
            if let Err(error) = written {
                let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                for (key, (ok, failed)) in taken {
                    let slot = counts.entry(key).or_default();
                    slot.0 += ok;
                    slot.1 += failed;
                }
                return Err(error);
            }
        }
        let prune = {
            let mut pruned = self.pruned.lock().unwrap_or_else(|e| e.into_inner());
            let due = pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
            if due {
                *pruned = Some(Instant::now());
            }
            due
        };
        if prune {
            sqlx::query("DELETE FROM breaker_outcomes WHERE minute < $1")
                .bind(now - OUTCOMES_KEPT)
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}

/// Calls reported to every breaker over the last `window` before `now` (whole minutes: the
/// minute `window` ago included), from every process's flushed counts.
pub async fn recent_outcomes(
    pool: &PgPool,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<HashMap<String, RecentOutcomes>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT name, sum(successes)::bigint, sum(failures)::bigint FROM breaker_outcomes
          WHERE minute >= $1 GROUP BY name",
    )
    .bind(minute_of(now - window))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, successes, failures)| {
            (
                name,
                RecentOutcomes {
                    successes,
                    failures,
                },
            )
        })
        .collect())
}
