use chrono::{DateTime, Utc};

use super::BreakerConfig;

/// The outcome of one call to the dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure { error: Option<String> },
}

/// What a caller asks of a breaker. `actor` names who or what asks (it is recorded with
/// every transition); `now` is injected so every rule is deterministic.
#[derive(Debug, Clone, PartialEq)]
pub enum BreakerCommand {
    /// Replace the configuration (a name never seen starts with the defaults).
    Configure {
        name: String,
        config: BreakerConfig,
        actor: String,
        now: DateTime<Utc>,
    },
    /// Report how a call went.
    RecordOutcome {
        name: String,
        outcome: Outcome,
        actor: String,
        now: DateTime<Utc>,
    },
    /// May a call go ahead? Records nothing, except when it hands out a half-open trial
    /// permit (at most `half_open_max_calls` per half-open period): counting permits in
    /// the log keeps the limit exact across every process.
    Check {
        name: String,
        actor: String,
        now: DateTime<Utc>,
    },
    /// OPEN → HALF_OPEN once `next_retry` has come (the background worker sends this).
    RetryIfDue {
        name: String,
        actor: String,
        now: DateTime<Utc>,
    },
    /// Admin: back to CLOSED with no failures, from any state.
    Reset {
        name: String,
        actor: String,
        now: DateTime<Utc>,
    },
    /// Admin: refuse every call until reset, saying why.
    ForceOpen {
        name: String,
        actor: String,
        now: DateTime<Utc>,
        reason: Option<String>,
    },
    /// Admin: allow every call and stop counting until reset, saying why.
    Disable {
        name: String,
        actor: String,
        now: DateTime<Utc>,
        reason: Option<String>,
    },
}

impl BreakerCommand {
    /// The breaker the command is about.
    pub fn name(&self) -> &str {
        match self {
            BreakerCommand::Configure { name, .. }
            | BreakerCommand::RecordOutcome { name, .. }
            | BreakerCommand::Check { name, .. }
            | BreakerCommand::RetryIfDue { name, .. }
            | BreakerCommand::Reset { name, .. }
            | BreakerCommand::ForceOpen { name, .. }
            | BreakerCommand::Disable { name, .. } => name,
        }
    }
}
