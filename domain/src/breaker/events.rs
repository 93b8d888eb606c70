use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

/// Where a breaker stands. `FORCED_OPEN` and `DISABLED` are operator overrides that stay
/// until a reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    /// Calls go through; consecutive failures are counted.
    #[default]
    Closed,
    /// Calls are refused until `next_retry`.
    Open,
    /// A limited number of trial calls decide between CLOSED and OPEN.
    HalfOpen,
    /// An operator holds the breaker open: every call is refused.
    ForcedOpen,
    /// An operator switched the breaker off: every call is allowed, nothing is counted.
    Disabled,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "CLOSED",
            BreakerState::Open => "OPEN",
            BreakerState::HalfOpen => "HALF_OPEN",
            BreakerState::ForcedOpen => "FORCED_OPEN",
            BreakerState::Disabled => "DISABLED",
        }
    }
}

/// How a breaker reacts. A name seen for the first time gets [`BreakerConfig::default`],
/// recorded in its first event so later changes of the defaults do not alter it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before it turns half-open.
    pub open_seconds: u64,
    /// Trial calls allowed while half-open, and the successes needed to close again.
    pub half_open_max_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_seconds: 30,
            half_open_max_calls: 3,
        }
    }
}

/// What happened to a breaker. Every event names the breaker, who or what caused it
/// (`actor`), when (`at`), and the `state` and `failures` right after it, so a read model
/// copies the latest event of each breaker instead of recomputing. The payload is
/// internally tagged (`"type"`), so these fields sit at the top level of the stored JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum BreakerEvent {
    /// First sight of a name (by anything but a configuration): the defaults in force.
    BreakerRegistered {
        name: String,
        config: BreakerConfig,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    BreakerConfigured {
        name: String,
        config: BreakerConfig,
        /// `None` when this configuration is the breaker's first event.
        previous: Option<BreakerConfig>,
        state: BreakerState,
        failures: u32,
        /// Unchanged by a configuration; repeated so the latest event tells it all.
        next_retry: Option<DateTime<Utc>>,
        actor: String,
        at: DateTime<Utc>,
    },
    /// A failure in CLOSED that did not reach the threshold.
    FailureRecorded {
        name: String,
        error: Option<String>,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    /// A success in CLOSED ended a run of failures.
    FailuresCleared {
        name: String,
        previous_failures: u32,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    /// CLOSED → OPEN at the threshold, or HALF_OPEN → OPEN on a failed trial.
    BreakerOpened {
        name: String,
        from: BreakerState,
        /// The failure that opened it.
        error: Option<String>,
        state: BreakerState,
        failures: u32,
        next_retry: DateTime<Utc>,
        actor: String,
        at: DateTime<Utc>,
    },
    /// OPEN → HALF_OPEN at `next_retry`.
    BreakerHalfOpened {
        name: String,
        from: BreakerState,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    /// A check in HALF_OPEN was given one of the trial permits.
    TrialCallGranted {
        name: String,
        /// Permits handed out in this half-open period, this one included.
        trials_granted: u32,
        /// The earlier permits were given up as lost (no outcome within `open_seconds`),
        /// and counting started again.
        renewed: bool,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    /// A success in HALF_OPEN, short of the successes needed to close.
    TrialCallSucceeded {
        name: String,
        successes: u32,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    /// HALF_OPEN → CLOSED after `half_open_max_calls` successes.
    BreakerClosed {
        name: String,
        from: BreakerState,
        successes: u32,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    /// Operator reset: any state → CLOSED with no failures.
    BreakerReset {
        name: String,
        from: BreakerState,
        previous_failures: u32,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    /// Operator override: refuse every call.
    BreakerForcedOpen {
        name: String,
        from: BreakerState,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
        /// Why the operator did it (absent in events written before reasons existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Operator override: allow every call.
    BreakerDisabled {
        name: String,
        from: BreakerState,
        state: BreakerState,
        failures: u32,
        actor: String,
        at: DateTime<Utc>,
        /// Why the operator did it (absent in events written before reasons existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl BreakerEvent {
    /// The state right after the event.
    pub fn state(&self) -> BreakerState {
        match self {
            BreakerEvent::BreakerRegistered { state, .. }
            | BreakerEvent::BreakerConfigured { state, .. }
            | BreakerEvent::FailureRecorded { state, .. }
            | BreakerEvent::FailuresCleared { state, .. }
            | BreakerEvent::BreakerOpened { state, .. }
            | BreakerEvent::BreakerHalfOpened { state, .. }
            | BreakerEvent::TrialCallGranted { state, .. }
            | BreakerEvent::TrialCallSucceeded { state, .. }
            | BreakerEvent::BreakerClosed { state, .. }
            | BreakerEvent::BreakerReset { state, .. }
            | BreakerEvent::BreakerForcedOpen { state, .. }
            | BreakerEvent::BreakerDisabled { state, .. } => *state,
        }
    }
}

impl BreakerEvent {
    /// The failure count right after the event.
    pub fn failures(&self) -> u32 {
        match self {
            BreakerEvent::BreakerRegistered { failures, .. }
            | BreakerEvent::BreakerConfigured { failures, .. }
            | BreakerEvent::FailureRecorded { failures, .. }
            | BreakerEvent::FailuresCleared { failures, .. }
            | BreakerEvent::BreakerOpened { failures, .. }
            | BreakerEvent::BreakerHalfOpened { failures, .. }
            | BreakerEvent::TrialCallGranted { failures, .. }
            | BreakerEvent::TrialCallSucceeded { failures, .. }
            | BreakerEvent::BreakerClosed { failures, .. }
            | BreakerEvent::BreakerReset { failures, .. }
            | BreakerEvent::BreakerForcedOpen { failures, .. }
            | BreakerEvent::BreakerDisabled { failures, .. } => *failures,
        }
    }

    /// When an OPEN breaker lets a trial call through, as the event states it (the events
    /// that leave a breaker OPEN carry it).
    pub fn next_retry(&self) -> Option<DateTime<Utc>> {
        match self {
            BreakerEvent::BreakerOpened { next_retry, .. } => Some(*next_retry),
            BreakerEvent::BreakerConfigured { next_retry, .. } => *next_retry,
            _ => None,
        }
    }
}

impl DomainEvent for BreakerEvent {
    fn event_type(&self) -> String {
        match self {
            BreakerEvent::BreakerRegistered { .. } => "BreakerRegistered",
            BreakerEvent::BreakerConfigured { .. } => "BreakerConfigured",
            BreakerEvent::FailureRecorded { .. } => "FailureRecorded",
            BreakerEvent::FailuresCleared { .. } => "FailuresCleared",
            BreakerEvent::BreakerOpened { .. } => "BreakerOpened",
            BreakerEvent::BreakerHalfOpened { .. } => "BreakerHalfOpened",
            BreakerEvent::TrialCallGranted { .. } => "TrialCallGranted",
            BreakerEvent::TrialCallSucceeded { .. } => "TrialCallSucceeded",
            BreakerEvent::BreakerClosed { .. } => "BreakerClosed",
            BreakerEvent::BreakerReset { .. } => "BreakerReset",
            BreakerEvent::BreakerForcedOpen { .. } => "BreakerForcedOpen",
            BreakerEvent::BreakerDisabled { .. } => "BreakerDisabled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
