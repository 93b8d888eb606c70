//! The circuit-breaker API's requests and answers, shared by HTTP (gateway) and NATS.
//! Bodies are parsed with [`crate::api::parse`], so a bad field is named the same way.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::breaker::{BreakerConfig, BreakerState, BreakerStatus, Outcome};
use serde::{Deserialize, Serialize};

use crate::breaker::BreakerService;
use crate::store::Actor;
use crate::CommandError;

/// How a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeBody {
    Success,
    Failure,
}

/// `cp.cmd.<service>.breaker.record`: `{"name","outcome":"success"|"failure","error"?}`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRequest {
    pub name: String,
    pub outcome: OutcomeBody,
    /// What went wrong (kept with a failure; ignored with a success).
    #[serde(default)]
    pub error: Option<String>,
}

/// One change of a breaker's state, as `GET /circuit-breakers/{name}/transitions` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TransitionBody {
    /// The event's global position (its place in the audit log).
    pub position: i64,
    /// `BreakerOpened`, `BreakerHalfOpened`, `BreakerClosed`, `BreakerReset`,
    /// `BreakerForcedOpen` or `BreakerDisabled`.
    pub event_type: String,
    /// The state after it.
    pub state: String,
    /// The state before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Who or what caused it (`via:user`, e.g. `http:alice`, `worker:breaker-retry`).
    pub actor: String,
    pub at: DateTime<Utc>,
    /// The failure that opened it (`BreakerOpened`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The operator's reason (`BreakerForcedOpen`, `BreakerDisabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which transitions to list.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    /// Every change of state.
    #[default]
    All,
    /// `BreakerOpened` only: each opening with the failure that caused it.
    Openings,
    /// Operators' changes: `BreakerReset`, `BreakerForcedOpen`, `BreakerDisabled`, with who
    /// and (for the two overrides) why.
    Overrides,
}

impl TransitionKind {
    /// The event types of this kind.
    pub fn event_types(self) -> &'static [&'static str] {
        match self {
            TransitionKind::All => &crate::breaker::TRANSITION_EVENTS,
            TransitionKind::Openings => &["BreakerOpened"],
            TransitionKind::Overrides => &["BreakerReset", "BreakerForcedOpen", "BreakerDisabled"],
        }
    }
}

/// `GET /circuit-breakers/{name}/transitions`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TransitionsResponse {
    /// Newest first.
    pub transitions: Vec<TransitionBody>,
}

/// `cp.cmd.<service>.breaker.check` and `.status`: `{"name"}`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameRequest {
    pub name: String,
}

/// `{"allowed","state"}`, plus `"trial":true` when the call is a half-open trial whose
/// outcome the caller must report.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckResponse {
    pub allowed: bool,
    pub state: BreakerState,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trial: bool,
}

/// `PUT /circuit-breakers/{name}`: a field left out takes its default value.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigRequest {
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000)]
    pub failure_threshold: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86_400)]
    pub open_seconds: Option<u64>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000)]
    pub half_open_max_calls: Option<u32>,
}

impl ConfigRequest {
    pub fn config(&self) -> BreakerConfig {
        let default = BreakerConfig::default();
        BreakerConfig {
            failure_threshold: self.failure_threshold.unwrap_or(default.failure_threshold),
            open_seconds: self.open_seconds.unwrap_or(default.open_seconds),
            half_open_max_calls: self
                .half_open_max_calls
                .unwrap_or(default.half_open_max_calls),
        }
    }
}

/// One breaker in full.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct BreakerBody {
    pub name: String,
    pub state: BreakerState,
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<DateTime<Utc>>,
    pub config: BreakerConfig,
    /// Half-open trial permits handed out / successes counted in this half-open period.
    pub trials_granted: u32,
    pub successes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last transition: when, and who or what caused it (`via:user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
}

impl From<BreakerStatus> for BreakerBody {
    fn from(s: BreakerStatus) -> Self {
        Self {
            name: s.name,
            state: s.state,
            failures: s.failures,
            next_retry: s.next_retry,
            config: s.config,
            trials_granted: s.trials_granted,
            successes: s.successes,
            last_error: s.last_error,
            changed_at: s.changed_at,
            changed_by: s.changed_by,
        }
    }
}

/// The answer to an outcome report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RecordResponse {
    /// False when the outcome changed nothing (a success while closed without failures,
    /// anything while open, forced open or disabled).
    pub counted: bool,
    #[serde(flatten)]
    pub breaker: BreakerBody,
}

/// The answer to a configuration or an admin action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ChangeResponse {
    /// False when the breaker already was as asked (nothing was recorded).
    pub changed: bool,
    #[serde(flatten)]
    pub breaker: BreakerBody,
}

/// One entry of `GET /circuit-breakers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct BreakerSummaryBody {
    pub state: String,
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<DateTime<Utc>>,
    /// Calls reported over the last five minutes (every process's counts, stored every
    /// `EXPIRY_INTERVAL_MS`), and how many of them failed.
    pub recent_calls: i64,
    pub recent_failures: i64,
    /// `recent_failures / recent_calls` (0-1); absent without calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
}

/// `GET /circuit-breakers`: `{"breakers":{"<name>":{"state","failures","next_retry"?}}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = BreakerListResponse)]
pub struct ListResponse {
    pub breakers: BTreeMap<String, BreakerSummaryBody>,
}

/// `POST /circuit-breakers/reset_all`: the names that were reset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ResetAllResponse {
    pub reset: Vec<String>,
}

/// An admin action on one breaker; forcing open and disabling say why (optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    Reset,
    ForceOpen { reason: Option<String> },
    Disable { reason: Option<String> },
}

/// Longest reason an operator may give, in characters.
pub const MAX_REASON_CHARS: usize = 512;

/// `POST /circuit-breakers/{name}/force_open` and `/disable`: `{"reason"?}` (or no body).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// Why (kept in the event; at most 512 characters, no control characters).
    #[serde(default)]
    pub reason: Option<String>,
}

impl OverrideRequest {
    /// The reason, trimmed; empty is none.
    pub fn reason(self) -> Result<Option<String>, CommandError> {
        let Some(reason) = self.reason.map(|r| r.trim().to_string()) else {
            return Ok(None);
        };
        if reason.is_empty() {
            return Ok(None);
        }
        if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
            return Err(CommandError::invalid(
                "reason",
                format!("must be at most {MAX_REASON_CHARS} characters without control characters"),
            ));
        }
        Ok(Some(reason))
    }
}

/// The breaker operations, one function per endpoint / NATS subject.
impl BreakerService {
    pub async fn api_check(
        &self,
        request: NameRequest,
        actor: &Actor,
    ) -> Result<CheckResponse, CommandError> {
        let answer = self.check(&request.name, actor).await?;
        Ok(CheckResponse {
            allowed: answer.allowed,
            state: answer.state,
            trial: answer.trial,
        })
    }

    pub async fn api_record(
        &self,
        request: RecordRequest,
        actor: &Actor,
    ) -> Result<RecordResponse, CommandError> {
        let outcome = match request.outcome {
            OutcomeBody::Success => Outcome::Success,
            OutcomeBody::Failure => Outcome::Failure {
                error: request.error,
            },
        };
        let (counted, status) = self.record(&request.name, outcome, actor).await?;
        Ok(RecordResponse {
            counted,
            breaker: status.into(),
        })
    }

    pub async fn api_status(&self, request: NameRequest) -> Result<BreakerBody, CommandError> {
        Ok(self.status(&request.name).await?.into())
    }

    pub async fn api_configure(
        &self,
        name: &str,
        request: ConfigRequest,
        actor: &Actor,
    ) -> Result<ChangeResponse, CommandError> {
        let (changed, status) = self.configure(name, request.config(), actor).await?;
        Ok(ChangeResponse {
            changed,
            breaker: status.into(),
        })
    }

    pub async fn api_admin(
        &self,
        name: &str,
        action: AdminAction,
        actor: &Actor,
    ) -> Result<ChangeResponse, CommandError> {
        let (changed, status) = match action {
            AdminAction::Reset => self.reset(name, actor).await?,
            AdminAction::ForceOpen { reason } => self.force_open(name, actor, reason).await?,
            AdminAction::Disable { reason } => self.disable(name, actor, reason).await?,
        };
        Ok(ChangeResponse {
            changed,
            breaker: status.into(),
        })
    }

    pub async fn api_list(&self) -> Result<ListResponse, CommandError> {
        let recent = self.recent_outcomes(crate::breaker::RATE_WINDOW).await?;
        let breakers = self
            .list()
            .await?
            .into_iter()
            .map(|b| {
                let calls = recent.get(&b.name).copied().unwrap_or_default();
                let total = calls.successes + calls.failures;
                (
                    b.name,
                    BreakerSummaryBody {
                        state: b.state,
                        failures: b.failures,
                        next_retry: b.next_retry,
                        recent_calls: total,
                        recent_failures: calls.failures,
                        failure_rate: (total > 0).then(|| calls.failures as f64 / total as f64),
                    },
                )
            })
            .collect();
        Ok(ListResponse { breakers })
    }

    pub async fn api_reset_all(&self, actor: &Actor) -> Result<ResetAllResponse, CommandError> {
        Ok(ResetAllResponse {
            reset: self.reset_all(actor).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse;

    fn field_of(error: CommandError) -> String {
        error.field().unwrap_or_default().to_string()
    }

    #[test]
    fn a_record_request_parses_and_names_bad_fields() {
        let ok: RecordRequest =
            parse(br#"{"name":"db","outcome":"failure","error":"timeout"}"#).unwrap();
        assert_eq!(ok.outcome, OutcomeBody::Failure);
        assert_eq!(
            field_of(parse::<RecordRequest>(br#"{"name":"db","outcome":"meh"}"#).unwrap_err()),
            "outcome"
        );
        assert_eq!(
            field_of(parse::<RecordRequest>(br#"{"outcome":"success"}"#).unwrap_err()),
            "name"
        );
        assert_eq!(
            field_of(
                parse::<RecordRequest>(br#"{"name":"db","outcome":"success","x":1}"#).unwrap_err()
            ),
            "x"
        );
    }

    #[test]
    fn a_config_request_fills_in_the_defaults() {
        let request: ConfigRequest = parse(br#"{"failure_threshold":2}"#).unwrap();
        let config = request.config();
        assert_eq!(config.failure_threshold, 2);
        assert_eq!(config.open_seconds, BreakerConfig::default().open_seconds);
        assert_eq!(
            field_of(parse::<ConfigRequest>(br#"{"open_seconds":-1}"#).unwrap_err()),
            "open_seconds"
        );
    }

    #[test]
    fn a_check_answer_is_allowed_and_state_with_trial_only_when_true() {
        let body = serde_json::to_value(CheckResponse {
            allowed: true,
            state: BreakerState::Closed,
            trial: false,
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"allowed": true, "state": "CLOSED"})
        );
    }
}
