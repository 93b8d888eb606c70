//! Executes circuit-breaker commands and answers checks.
//!
//! Writes (outcomes, configuration, admin actions, the retry worker) go through the shared
//! [`Executor`]: serialised per breaker in this process, optimistic against every other.
//!
//! Checks are the hot path and must not write. A check is answered from the breaker as this
//! process last read it, when that read is younger than `max_staleness` and no other process
//! announced a change since (see [`crate::breaker_nats`]); otherwise the new events are read
//! first (one indexed SELECT). The one exception to "a check never writes" is a half-open
//! trial permit: handing one out is recorded (`TrialCallGranted`), at most
//! `half_open_max_calls` times per half-open period. Counting permits in the log rather than
//! in process memory keeps the limit exact however many control-plane processes answer
//! checks; counting them in memory would let every process hand out the full number.
//!
//! Failure rates: a success in CLOSED records nothing, so the log cannot say how many calls
//! there were. Each process counts the outcomes reported to it per breaker and minute in
//! memory and adds them to `breaker_outcomes` on each pass of the retry worker
//! ([`BreakerService::flush_outcomes`]); [`BreakerService::recent_outcomes`] sums every
//! process's rows. A process that dies loses at most one interval of counts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::breaker::{
    validate_breaker_name, BreakerCommand, BreakerConfig, BreakerError, BreakerReply, BreakerState,
    BreakerStatus, CircuitBreaker, Outcome,
};
use sqlx::Row;
use tokio::sync::broadcast;

use crate::breaker_outcomes::{recent_outcomes, OutcomeCounter};
pub use crate::breaker_outcomes::{RecentOutcomes, RATE_WINDOW};
use crate::clock::Clock;
use crate::executor::{Decide, Decision, Executor};
use crate::store::{Actor, EventStore};
use crate::CommandError;

/// How old a cached breaker may be when a check is answered from it, unless a change was
/// announced. Bounds how long a process can miss another's transition if an announcement
/// is lost (every cache is also invalidated when this process's NATS connection comes
/// back); normally changes arrive within milliseconds.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(2);

impl Decide for CircuitBreaker {
    type Reply = BreakerReply;

    fn decide(&self, command: BreakerCommand) -> Decision<Self> {
        CircuitBreaker::decide(self, command)
    }
}

impl From<BreakerError> for CommandError {
    fn from(error: BreakerError) -> Self {
        match error {
            BreakerError::Invalid { field, message } => CommandError::invalid(field, message),
        }
    }
}

/// The answer to a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckAnswer {
    pub allowed: bool,
    pub state: BreakerState,
    /// The call is a half-open trial: its outcome decides whether the breaker closes.
    pub trial: bool,
}

/// One line of the breaker list.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSummary {
    pub name: String,
    pub state: String,
    pub failures: u32,
    /// Only while OPEN.
    pub next_retry: Option<DateTime<Utc>>,
}

/// Outcomes reported to one breaker in one minute: (successes, failures).
/// Runs circuit-breaker commands against the event store.
pub struct BreakerService {
    executor: Executor<CircuitBreaker>,
    clock: Arc<dyn Clock>,
    max_staleness: Duration,
    /// Names of breakers this process changed, for the cross-process announcement.
    changes: broadcast::Sender<String>,
    /// Outcomes reported to this process, per breaker and minute, until flushed.
    outcomes: OutcomeCounter,
}

/// The events that change a breaker's state (the others count failures, trials, successes).
pub const TRANSITION_EVENTS: [&str; 6] = [
    "BreakerOpened",
    "BreakerHalfOpened",
    "BreakerClosed",
    "BreakerReset",
    "BreakerForcedOpen",
    "BreakerDisabled",
];

fn check_name(name: &str) -> Result<(), CommandError> {
    validate_breaker_name(name).map_err(|e| CommandError::invalid("name", e.to_string()))
}

fn unexpected(reply: BreakerReply) -> CommandError {
    CommandError::Internal(format!("unexpected reply {reply:?}").into())
}

impl BreakerService {
    pub fn new(store: EventStore, clock: Arc<dyn Clock>) -> Self {
        let (changes, _) = broadcast::channel(1024);
        Self {
            executor: Executor::new(store),
            clock,
            max_staleness: DEFAULT_MAX_STALENESS,
            changes,
            outcomes: OutcomeCounter::default(),
        }
    }

    /// Sets how old a cached breaker may be when a check is answered from it.
    pub fn with_max_staleness(mut self, max_staleness: Duration) -> Self {
        self.max_staleness = max_staleness;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Names of the breakers this process changes, as they change.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Another process changed `name`: the next check reads its new events first.
    pub fn invalidate(&self, name: &str) {
        self.executor.invalidate(name);
    }

    /// Announcements may have been missed: every check reads new events first.
    pub fn invalidate_all(&self) {
        self.executor.invalidate_all();
    }

    /// The answer to a check when it can be given at once from a fresh cached breaker
    /// without writing; `None` sends the caller to [`Self::check`]. Lets the NATS listener
    /// answer most checks inline, without a task or a lock wait.
    pub fn try_check_cached(&self, name: &str) -> Option<CheckAnswer> {
        let now = self.clock.now();
        let reply = self
            .executor
            .try_read_cached(name, self.max_staleness, |loaded| {
                loaded.aggregate.quick_check(now)
            })??;
        match reply {
            BreakerReply::Checked {
                allowed,
                state,
                trial,
            } => Some(CheckAnswer {
                allowed,
                state,
                trial,
            }),
            _ => None,
        }
    }

    async fn execute(
        &self,
        command: BreakerCommand,
        actor: &Actor,
    ) -> Result<BreakerReply, CommandError> {
        let name = command.name().to_string();
        check_name(&name)?;
        let executed = self.executor.execute(&name, command, actor).await?;
        if executed.appended > 0 {
            // Nobody listening is fine (no NATS announcer running).
            let _ = self.changes.send(name);
        }
        Ok(executed.reply)
    }

    /// May a call to `name` go ahead? Reads state; writes only to hand out a half-open
    /// trial permit.
    pub async fn check(&self, name: &str, actor: &Actor) -> Result<CheckAnswer, CommandError> {
        check_name(name)?;
        let now = self.clock.now();
        let quick = self
            .executor
            .read(name, Some(self.max_staleness), |loaded| {
                loaded.aggregate.quick_check(now)
            })
            .await?;
        let reply = match quick {
            Some(reply) => reply,
            None => {
                let command = BreakerCommand::Check {
                    name: name.to_string(),
                    actor: actor.label(),
                    now,
                };
                self.execute(command, actor).await?
            }
        };
        match reply {
            BreakerReply::Checked {
                allowed,
                state,
                trial,
            } => Ok(CheckAnswer {
                allowed,
                state,
                trial,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Records the outcome of a call. Returns whether it counted, and the breaker after it.
    pub async fn record(
        &self,
        name: &str,
        outcome: Outcome,
        actor: &Actor,
    ) -> Result<(bool, BreakerStatus), CommandError> {
        let now = self.clock.now();
        let failed = matches!(outcome, Outcome::Failure { .. });
        let command = BreakerCommand::RecordOutcome {
            name: name.to_string(),
            outcome,
            actor: actor.label(),
            now,
        };
        match self.execute(command, actor).await? {
            BreakerReply::Recorded { counted, status } => {
                self.outcomes.count(name, failed, now);
                Ok((counted, status))
            }
            other => Err(unexpected(other)),
        }
    }

    /// Adds this process's outcome counts to `breaker_outcomes` (crate::breaker_outcomes).
    pub async fn flush_outcomes(&self) -> Result<(), CommandError> {
        let pool = self.executor.store().pool();
        Ok(self.outcomes.flush(pool, self.clock.now()).await?)
    }

    /// Calls reported to every breaker over the last `window`, from every process's
    /// flushed counts (crate::breaker_outcomes).
    pub async fn recent_outcomes(
        &self,
        window: Duration,
    ) -> Result<HashMap<String, RecentOutcomes>, CommandError> {
        let pool = self.executor.store().pool();
        Ok(recent_outcomes(pool, self.clock.now(), window).await?)
    }

    async fn change(
        &self,
        command: BreakerCommand,
        actor: &Actor,
    ) -> Result<(bool, BreakerStatus), CommandError> {
        match self.execute(command, actor).await? {
            BreakerReply::Changed { changed, status } => Ok((changed, status)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn configure(
        &self,
        name: &str,
        config: BreakerConfig,
        actor: &Actor,
    ) -> Result<(bool, BreakerStatus), CommandError> {
        let command = BreakerCommand::Configure {
            name: name.to_string(),
            config,
            actor: actor.label(),
            now: self.clock.now(),
        };
        self.change(command, actor).await
    }

    pub async fn reset(
        &self,
        name: &str,
        actor: &Actor,
    ) -> Result<(bool, BreakerStatus), CommandError> {
        let command = BreakerCommand::Reset {
            name: name.to_string(),
            actor: actor.label(),
            now: self.clock.now(),
        };
        self.change(command, actor).await
    }

    pub async fn force_open(
        &self,
        name: &str,
        actor: &Actor,
        reason: Option<String>,
    ) -> Result<(bool, BreakerStatus), CommandError> {
        let command = BreakerCommand::ForceOpen {
            name: name.to_string(),
            actor: actor.label(),
            now: self.clock.now(),
            reason,
        };
        self.change(command, actor).await
    }

    pub async fn disable(
        &self,
        name: &str,
        actor: &Actor,
        reason: Option<String>,
    ) -> Result<(bool, BreakerStatus), CommandError> {
        let command = BreakerCommand::Disable {
            name: name.to_string(),
            actor: actor.label(),
            now: self.clock.now(),
            reason,
        };
        self.change(command, actor).await
    }

    /// OPEN → HALF_OPEN if `next_retry` has come (the retry worker calls this).
    pub async fn retry_if_due(
        &self,
        name: &str,
        actor: &Actor,
    ) -> Result<(bool, BreakerStatus), CommandError> {
        let command = BreakerCommand::RetryIfDue {
            name: name.to_string(),
            actor: actor.label(),
            now: self.clock.now(),
        };
        self.change(command, actor).await
    }

    /// Resets every breaker that is not already closed without failures. Returns the
    /// names it reset.
    pub async fn reset_all(&self, actor: &Actor) -> Result<Vec<String>, CommandError> {
        let mut reset = Vec::new();
        for summary in self.list().await? {
            if summary.state == BreakerState::Closed.as_str() && summary.failures == 0 {
                continue;
            }
            let (changed, _) = self.reset(&summary.name, actor).await?;
            if changed {
                reset.push(summary.name);
            }
        }
        Ok(reset)
    }

    /// A breaker as it is now, including what other processes wrote.
    pub async fn status(&self, name: &str) -> Result<BreakerStatus, CommandError> {
        check_name(name)?;
        self.executor
            .read(name, None, |loaded| loaded.aggregate.status(name))
            .await
    }

    /// Every breaker that has events, by name, read from the latest event of each (every
    /// event carries the state and failure count after it).
    ///
    /// This reads the `events` table directly, which is as current as a read can be (a
    /// read model would lag behind the writes) and cheap: see [`Self::latest`].
    pub async fn list(&self) -> Result<Vec<BreakerSummary>, CommandError> {
        Ok(self.latest().await?.into_iter().map(|(b, _)| b).collect())
    }

    /// The latest event of every breaker, with its sequence (the breaker's version), by
    /// name.
    ///
    /// A skip scan of the primary key (aggregate_type, aggregate_id, sequence): one index
    /// probe for the next name, one for its last event, per breaker. Its cost grows with
    /// the number of breakers, not with their history (`DISTINCT ON` read every event of
    /// every breaker, and every failure is an event). This runs for each
    /// `GET /circuit-breakers` and each pass of the retry worker.
    async fn latest(&self) -> Result<Vec<(BreakerSummary, usize)>, CommandError> {
        let rows = sqlx::query(
            "WITH RECURSIVE names(name) AS (
                 (SELECT aggregate_id FROM events
                   WHERE aggregate_type = 'CircuitBreaker'
                   ORDER BY aggregate_id LIMIT 1)
                 UNION ALL
                 SELECT (SELECT e.aggregate_id FROM events e
                          WHERE e.aggregate_type = 'CircuitBreaker' AND e.aggregate_id > n.name
                          ORDER BY e.aggregate_id LIMIT 1)
                   FROM names n
                  WHERE n.name IS NOT NULL
             )
             SELECT last.aggregate_id,
                    last.sequence,
                    last.payload ->> 'state' AS state,
                    (last.payload ->> 'failures')::bigint AS failures,
                    (last.payload ->> 'next_retry')::timestamptz AS next_retry
               FROM names n
              CROSS JOIN LATERAL (
                    SELECT e.aggregate_id, e.sequence, e.payload FROM events e
                     WHERE e.aggregate_type = 'CircuitBreaker' AND e.aggregate_id = n.name
                     ORDER BY e.sequence DESC LIMIT 1) last
              ORDER BY last.aggregate_id",
        )
        .fetch_all(self.executor.store().pool())
        .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                let failures: i64 = row.try_get("failures")?;
                let next_retry: Option<DateTime<Utc>> = row.try_get("next_retry")?;
                let sequence: i64 = row.try_get("sequence")?;
                let summary = BreakerSummary {
                    name: row.try_get("aggregate_id")?,
                    next_retry: next_retry.filter(|_| state == BreakerState::Open.as_str()),
                    state,
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                };
                Ok((summary, sequence as usize))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(CommandError::from)
    }

    /// The breaker's latest transitions of `kind` (openings with their cause, half-openings,
    /// closings, and operators' resets, forced openings and disablings with who did them and
    /// why), newest first: at most `limit`, read from the log by the primary key, newest first.
    pub async fn transitions(
        &self,
        name: &str,
        kind: crate::breaker_api::TransitionKind,
        limit: i64,
    ) -> Result<Vec<crate::breaker_api::TransitionBody>, CommandError> {
        check_name(name)?;
        let rows = sqlx::query(
            "SELECT global_position, event_type, payload ->> 'state' AS state,
                    payload ->> 'from' AS from_state, payload ->> 'actor' AS actor,
                    (payload ->> 'at')::timestamptz AS at, payload ->> 'error' AS error,
                    payload ->> 'reason' AS reason
               FROM events
              WHERE aggregate_type = 'CircuitBreaker' AND aggregate_id = $1
                AND event_type = ANY($2)
              ORDER BY sequence DESC
              LIMIT $3",
        )
        .bind(name)
        .bind(kind.event_types())
        .bind(limit)
        .fetch_all(self.executor.store().pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(crate::breaker_api::TransitionBody {
                    position: row.try_get("global_position")?,
                    event_type: row.try_get("event_type")?,
                    state: row.try_get("state")?,
                    from: row.try_get("from_state")?,
                    actor: row.try_get("actor")?,
                    at: row.try_get("at")?,
                    error: row.try_get("error")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(CommandError::from)
    }

    /// One pass of the background work: reads the latest event of every breaker once, which
    /// both confirms (or invalidates) every cached breaker, so checks rarely need a read of
    /// their own, and returns the OPEN breakers whose `next_retry` has come.
    pub async fn sweep(&self) -> Result<Vec<String>, CommandError> {
        let read_at = Instant::now();
        let latest = self.latest().await?;
        let versions = latest
            .iter()
            .map(|(b, version)| (b.name.clone(), *version))
            .collect::<HashMap<_, _>>();
        self.executor.confirm_versions(&versions, read_at);
        let now = self.clock.now();
        Ok(latest
            .into_iter()
            .filter(|(b, _)| b.next_retry.is_some_and(|t| t <= now))
            .map(|(b, _)| b.name)
            .collect())
    }
}

/// Moves OPEN breakers to HALF_OPEN at `next_retry`, so a breaker recovers even when no
/// caller checks it, and keeps this process's cached breakers confirmed (see
/// [`BreakerService::sweep`]). Runs forever, one pass every `interval`; several processes
/// may run it at once (the loser of a race records nothing).
pub async fn run_retry_worker(service: Arc<BreakerService>, interval: Duration) {
    let actor = Actor::new("breaker-retry", "worker");
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = retry_due(&service, &actor).await {
            tracing::warn!(error = ?error, "breaker retry pass failed; retrying next tick");
        }
        if let Err(error) = service.flush_outcomes().await {
            tracing::warn!(error = ?error, "could not store breaker outcome counts; kept for the next tick");
        }
    }
}

/// One pass of the retry worker. Returns how many breakers it turned half-open.
pub async fn retry_due(service: &BreakerService, actor: &Actor) -> Result<usize, CommandError> {
    let mut moved = 0;
    for name in service.sweep().await? {
        match service.retry_if_due(&name, actor).await {
            Ok((true, _)) => {
                tracing::info!(breaker = %name, "breaker half-open");
                moved += 1;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(breaker = %name, error = ?error, "could not retry"),
        }
    }
    Ok(moved)
}
