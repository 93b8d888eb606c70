use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{
    validate_breaker_name, BreakerCommand, BreakerConfig, BreakerEvent, BreakerState, Outcome,
    MAX_ERROR_CHARS, MAX_FAILURE_THRESHOLD, MAX_HALF_OPEN_CALLS, MAX_OPEN_SECONDS,
};

/// The circuit breaker of one dependency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CircuitBreaker {
    pub name: String,
    /// `None` until the first event: the breaker then behaves with the defaults.
    pub config: Option<BreakerConfig>,
    pub state: BreakerState,
    /// Consecutive failures (the count that opened it, while OPEN or HALF_OPEN).
    pub failures: u32,
    /// When an OPEN breaker turns HALF_OPEN.
    pub next_retry: Option<DateTime<Utc>>,
    /// Trial permits handed out in the current half-open period.
    pub trials_granted: u32,
    pub last_trial_at: Option<DateTime<Utc>>,
    /// Successes in the current half-open period.
    pub successes: u32,
    pub last_error: Option<String>,
    /// The last transition: when and by whom.
    pub changed_at: Option<DateTime<Utc>>,
    pub changed_by: Option<String>,
}

/// A rule the command broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// What an API shows of a breaker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerStatus {
    pub name: String,
    pub state: BreakerState,
    pub failures: u32,
    pub next_retry: Option<DateTime<Utc>>,
    pub config: BreakerConfig,
    pub trials_granted: u32,
    pub successes: u32,
    pub last_error: Option<String>,
    pub changed_at: Option<DateTime<Utc>>,
    pub changed_by: Option<String>,
}

/// The answer to a breaker command, computed together with its events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum BreakerReply {
    /// The answer to a check. Small and allocation-free: checks are the hot path.
    Checked {
        allowed: bool,
        state: BreakerState,
        /// The call is one of the half-open trial calls.
        trial: bool,
    },
    /// The answer to an outcome report; `counted` is false when it changed nothing.
    Recorded {
        counted: bool,
        status: BreakerStatus,
    },
    /// The answer to a configuration, an admin action or a retry; `changed` is false
    /// when the breaker already was as asked.
    Changed {
        changed: bool,
        status: BreakerStatus,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> BreakerError {
    BreakerError::Invalid {
        field,
        message: message.into(),
    }
}

fn check_name(name: &str) -> Result<(), BreakerError> {
    validate_breaker_name(name).map_err(|e| invalid("name", e.to_string()))
}

fn check_config(config: &BreakerConfig) -> Result<(), BreakerError> {
    if !(1..=MAX_FAILURE_THRESHOLD).contains(&config.failure_threshold) {
        return Err(invalid(
            "failure_threshold",
            format!("must be between 1 and {MAX_FAILURE_THRESHOLD}"),
        ));
    }
    if !(1..=MAX_OPEN_SECONDS).contains(&config.open_seconds) {
        return Err(invalid(
            "open_seconds",
            format!("must be between 1 and {MAX_OPEN_SECONDS}"),
        ));
    }
    if !(1..=MAX_HALF_OPEN_CALLS).contains(&config.half_open_max_calls) {
        return Err(invalid(
            "half_open_max_calls",
            format!("must be between 1 and {MAX_HALF_OPEN_CALLS}"),
        ));
    }
    Ok(())
}

/// Cuts an error text to [`MAX_ERROR_CHARS`] characters.
fn cut(error: Option<String>) -> Option<String> {
    error.map(|e| {
        if e.chars().count() <= MAX_ERROR_CHARS {
            e
        } else {
            e.chars().take(MAX_ERROR_CHARS).collect()
        }
    })
}

impl CircuitBreaker {
    /// The configuration in force (the defaults until the breaker has events).
    pub fn effective_config(&self) -> BreakerConfig {
        self.config.unwrap_or_default()
    }

    pub fn status(&self, name: &str) -> BreakerStatus {
        BreakerStatus {
            name: name.to_string(),
            state: self.state,
            failures: self.failures,
            next_retry: self.next_retry,
            config: self.effective_config(),
            trials_granted: self.trials_granted,
            successes: self.successes,
            last_error: self.last_error.clone(),
            changed_at: self.changed_at,
            changed_by: self.changed_by.clone(),
        }
    }

    /// Whether a check refuses the call without recording anything. The hot path of the
    /// check API calls this on a cached breaker and only falls back to [`Self::decide`]
    /// (which may record a trial permit) when it returns `None`.
    pub fn quick_check(&self, now: DateTime<Utc>) -> Option<BreakerReply> {
        let (allowed, state) = match self.state {
            BreakerState::Closed | BreakerState::Disabled => (true, self.state),
            BreakerState::ForcedOpen => (false, self.state),
            BreakerState::Open if self.next_retry.is_some_and(|t| now < t) => (false, self.state),
            BreakerState::HalfOpen if !self.may_grant_trial(now) => (false, self.state),
            BreakerState::Open | BreakerState::HalfOpen => return None,
        };
        Some(BreakerReply::Checked {
            allowed,
            state,
            trial: false,
        })
    }

    fn may_grant_trial(&self, now: DateTime<Utc>) -> bool {
        self.trials_granted < self.effective_config().half_open_max_calls || self.trials_lost(now)
    }

    /// Every permit was handed out and no outcome came for `open_seconds` after the last:
    /// the trial callers are presumed gone, so the permits are handed out again (otherwise a
    /// crashed caller would hold the breaker half-open forever).
    fn trials_lost(&self, now: DateTime<Utc>) -> bool {
        let window = Duration::seconds(self.effective_config().open_seconds as i64);
        self.trials_granted >= self.effective_config().half_open_max_calls
            && self.last_trial_at.is_some_and(|t| t + window <= now)
    }

    /// Decides what a command means for this breaker: the events to record and the answer
    /// to give. Pure: the same state and command always give the same result.
    pub fn decide(
        &self,
        command: BreakerCommand,
    ) -> Result<(Vec<BreakerEvent>, BreakerReply), BreakerError> {
        check_name(command.name())?;
        match command {
            BreakerCommand::Configure {
                name,
                config,
                actor,
                now,
            } => {
                check_config(&config)?;
                if self.config == Some(config) {
                    return Ok(self.unchanged(&name));
                }
                let event = BreakerEvent::BreakerConfigured {
                    name: name.clone(),
                    config,
                    previous: self.config,
                    state: self.state,
                    failures: self.failures,
                    next_retry: self.next_retry,
                    actor,
                    at: now,
                };
                Ok(self.changed(&name, vec![event]))
            }
            BreakerCommand::RecordOutcome {
                name,
                outcome,
                actor,
                now,
            } => self.record(name, outcome, actor, now),
            BreakerCommand::Check { name, actor, now } => {
                if let Some(reply) = self.quick_check(now) {
                    return Ok((vec![], reply));
                }
                let mut events = Vec::new();
                let mut trials_granted = self.trials_granted;
                let mut renewed = false;
                if self.state == BreakerState::Open {
                    // Due, and the worker has not moved it yet: the check does.
                    events.push(BreakerEvent::BreakerHalfOpened {
                        name: name.clone(),
                        from: BreakerState::Open,
                        state: BreakerState::HalfOpen,
                        failures: self.failures,
                        actor: actor.clone(),
                        at: now,
                    });
                    trials_granted = 0;
                } else if self.trials_lost(now) {
                    trials_granted = 0;
                    renewed = true;
                }
                events.push(BreakerEvent::TrialCallGranted {
                    name,
                    trials_granted: trials_granted + 1,
                    renewed,
                    state: BreakerState::HalfOpen,
                    failures: self.failures,
                    actor,
                    at: now,
                });
                Ok((
                    events,
                    BreakerReply::Checked {
                        allowed: true,
                        state: BreakerState::HalfOpen,
                        trial: true,
                    },
                ))
            }
            BreakerCommand::RetryIfDue { name, actor, now } => {
                let due =
                    self.state == BreakerState::Open && self.next_retry.is_none_or(|t| t <= now);
                if !due {
                    return Ok(self.unchanged(&name));
                }
                let event = BreakerEvent::BreakerHalfOpened {
                    name: name.clone(),
                    from: BreakerState::Open,
                    state: BreakerState::HalfOpen,
                    failures: self.failures,
                    actor,
                    at: now,
                };
                Ok(self.changed(&name, vec![event]))
            }
            BreakerCommand::Reset { name, actor, now } => {
                if self.state == BreakerState::Closed && self.failures == 0 {
                    return Ok(self.unchanged(&name));
                }
                let event = BreakerEvent::BreakerReset {
                    name: name.clone(),
                    from: self.state,
                    previous_failures: self.failures,
                    state: BreakerState::Closed,
                    failures: 0,
                    actor,
                    at: now,
                };
                Ok(self.changed(&name, vec![event]))
            }
            BreakerCommand::ForceOpen {
                name,
                actor,
                now,
                reason,
            } => {
                if self.state == BreakerState::ForcedOpen {
                    return Ok(self.unchanged(&name));
                }
                let mut events = self.registration(&name, &actor, now);
                events.push(BreakerEvent::BreakerForcedOpen {
                    name: name.clone(),
                    from: self.state,
                    state: BreakerState::ForcedOpen,
                    failures: self.failures,
                    actor,
                    at: now,
                    reason,
                });
                Ok(self.changed(&name, events))
            }
            BreakerCommand::Disable {
                name,
                actor,
                now,
                reason,
            } => {
                if self.state == BreakerState::Disabled {
                    return Ok(self.unchanged(&name));
                }
                let mut events = self.registration(&name, &actor, now);
                events.push(BreakerEvent::BreakerDisabled {
                    name: name.clone(),
                    from: self.state,
                    state: BreakerState::Disabled,
                    failures: self.failures,
                    actor,
                    at: now,
                    reason,
                });
                Ok(self.changed(&name, events))
            }
        }
    }

    fn record(
        &self,
        name: String,
        outcome: Outcome,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<(Vec<BreakerEvent>, BreakerReply), BreakerError> {
        let config = self.effective_config();
        let events = match (self.state, outcome) {
            (BreakerState::Closed, Outcome::Success) if self.failures == 0 => vec![],
            (BreakerState::Closed, Outcome::Success) => vec![BreakerEvent::FailuresCleared {
                name: name.clone(),
                previous_failures: self.failures,
                state: BreakerState::Closed,
                failures: 0,
                actor,
                at: now,
            }],
            (BreakerState::Closed, Outcome::Failure { error }) => {
                let failures = self.failures.saturating_add(1);
                let mut events = self.registration(&name, &actor, now);
                events.push(if failures >= config.failure_threshold {
                    self.opened(&name, error, failures, actor, now)
                } else {
                    BreakerEvent::FailureRecorded {
                        name: name.clone(),
                        error: cut(error),
                        state: BreakerState::Closed,
                        failures,
                        actor,
                        at: now,
                    }
                });
                events
            }
            (BreakerState::HalfOpen, Outcome::Success) => {
                let successes = self.successes.saturating_add(1);
                vec![if successes >= config.half_open_max_calls {
                    BreakerEvent::BreakerClosed {
                        name: name.clone(),
                        from: BreakerState::HalfOpen,
                        successes,
                        state: BreakerState::Closed,
                        failures: 0,
                        actor,
                        at: now,
                    }
                } else {
                    BreakerEvent::TrialCallSucceeded {
                        name: name.clone(),
                        successes,
                        state: BreakerState::HalfOpen,
                        failures: self.failures,
                        actor,
                        at: now,
                    }
                }]
            }
            (BreakerState::HalfOpen, Outcome::Failure { error }) => {
                vec![self.opened(&name, error, self.failures.saturating_add(1), actor, now)]
            }
            // OPEN and FORCED_OPEN refuse calls, so an outcome reported then is late or from a
            // caller that did not ask; DISABLED counts nothing by definition.
            (BreakerState::Open | BreakerState::ForcedOpen | BreakerState::Disabled, _) => {
                vec![]
            }
        };
        let counted = !events.is_empty();
        let (events, reply) = self.changed(&name, events);
        let BreakerReply::Changed { status, .. } = reply else {
            unreachable!("changed() answers Changed")
        };
        Ok((events, BreakerReply::Recorded { counted, status }))
    }

    fn opened(
        &self,
        name: &str,
        error: Option<String>,
        failures: u32,
        actor: String,
        now: DateTime<Utc>,
    ) -> BreakerEvent {
        BreakerEvent::BreakerOpened {
            name: name.to_string(),
            from: self.state,
            error: cut(error),
            state: BreakerState::Open,
            failures,
            next_retry: now + Duration::seconds(self.effective_config().open_seconds as i64),
            actor,
            at: now,
        }
    }

    /// The registration that precedes the first event of a name never seen.
    fn registration(&self, name: &str, actor: &str, now: DateTime<Utc>) -> Vec<BreakerEvent> {
        if self.config.is_some() {
            return vec![];
        }
        vec![BreakerEvent::BreakerRegistered {
            name: name.to_string(),
            config: BreakerConfig::default(),
            state: BreakerState::Closed,
            failures: 0,
            actor: actor.to_string(),
            at: now,
        }]
    }

    fn unchanged(&self, name: &str) -> (Vec<BreakerEvent>, BreakerReply) {
        (
            vec![],
            BreakerReply::Changed {
                changed: false,
                status: self.status(name),
            },
        )
    }

    fn changed(&self, name: &str, events: Vec<BreakerEvent>) -> (Vec<BreakerEvent>, BreakerReply) {
        let mut after = self.clone();
        for event in &events {
            after.apply(event.clone());
        }
        let reply = BreakerReply::Changed {
            changed: !events.is_empty(),
            status: after.status(name),
        };
        (events, reply)
    }
}

impl Aggregate for CircuitBreaker {
    const TYPE: &'static str = "CircuitBreaker";
    type Command = BreakerCommand;
    type Event = BreakerEvent;
    type Error = BreakerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let (events, _reply) = self.decide(command)?;
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            BreakerEvent::BreakerRegistered { name, config, .. } => {
                self.name = name;
                self.config = Some(config);
            }
            BreakerEvent::BreakerConfigured { name, config, .. } => {
                self.name = name;
                self.config = Some(config);
            }
            BreakerEvent::FailureRecorded {
                failures, error, ..
            } => {
                self.failures = failures;
                self.last_error = error;
            }
            BreakerEvent::FailuresCleared { failures, .. } => {
                self.failures = failures;
            }
            BreakerEvent::BreakerOpened {
                error,
                state,
                failures,
                next_retry,
                actor,
                at,
                ..
            } => {
                self.transition(state, actor, at);
                self.failures = failures;
                self.next_retry = Some(next_retry);
                self.last_error = error;
            }
            BreakerEvent::BreakerHalfOpened {
                state, actor, at, ..
            } => {
                self.transition(state, actor, at);
            }
            BreakerEvent::TrialCallGranted {
                trials_granted, at, ..
            } => {
                self.trials_granted = trials_granted;
                self.last_trial_at = Some(at);
            }
            BreakerEvent::TrialCallSucceeded { successes, .. } => {
                self.successes = successes;
            }
            BreakerEvent::BreakerClosed {
                state,
                failures,
                actor,
                at,
                ..
            }
            | BreakerEvent::BreakerReset {
                state,
                failures,
                actor,
                at,
                ..
            } => {
                self.transition(state, actor, at);
                self.failures = failures;
            }
            BreakerEvent::BreakerForcedOpen {
                name,
                state,
                actor,
                at,
                ..
            }
            | BreakerEvent::BreakerDisabled {
                name,
                state,
                actor,
                at,
                ..
            } => {
                self.name = name;
                self.transition(state, actor, at);
            }
        }
    }
}

impl CircuitBreaker {
    /// Enters `state`: the per-state counters start again.
    fn transition(&mut self, state: BreakerState, actor: String, at: DateTime<Utc>) {
        self.state = state;
        self.next_retry = None;
        self.trials_granted = 0;
        self.last_trial_at = None;
        self.successes = 0;
        self.changed_at = Some(at);
        self.changed_by = Some(actor);
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
