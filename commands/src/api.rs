//! The budget API's requests and answers, shared by HTTP (gateway) and NATS, so both
//! transports accept the same JSON and answer the same way.

use chrono::{DateTime, Utc};
use domain::budget::{BudgetReply, Totals, DEFAULT_TTL_SECONDS};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::budget::BudgetService;
use crate::store::Actor;
use crate::CommandError;

/// Largest command body accepted, over HTTP and NATS.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Parses a JSON body, naming the offending field when it is wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CommandError> {
    parse_limited(bytes, MAX_COMMAND_BYTES)
}

/// [`parse`] with a size limit of its own (dead-letter captures carry whole messages).
pub fn parse_limited<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CommandError> {
    if bytes.len() > limit {
        return Err(CommandError::invalid(
            "body",
            format!("must be at most {limit} bytes"),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        let field = if path == "." || path == "?" || path.is_empty() {
            // Missing and unknown fields are reported at the parent: name them anyway.
            field_in_message(&message).unwrap_or_else(|| "body".to_string())
        } else {
            path
        };
        CommandError::invalid(field, strip_position(&message))
    })?;
    deserializer
        .end()
        .map_err(|e| CommandError::invalid("body", strip_position(&e.to_string())))?;
    Ok(value)
}

/// serde names a missing or unknown field between backticks: "missing field `task_id`".
fn field_in_message(message: &str) -> Option<String> {
    if !(message.starts_with("missing field") || message.starts_with("unknown field")) {
        return None;
    }
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_string())
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimitRequest {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: String,
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub project_id: String,
    #[schema(maximum = 1_000_000_000_000_u64)]
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: String,
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub project_id: String,
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub task_id: String,
    /// 1-128 bytes of UTF-8 without control characters.
    #[schema(min_length = 1, max_length = 128)]
    pub model: String,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    pub estimated_tokens: u64,
    /// Seconds until an unused reservation is released automatically (default 600).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86_400)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    pub reservation_id: Uuid,
    #[schema(maximum = 1_000_000_000_000_u64)]
    pub actual_tokens: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub reservation_id: Uuid,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StateRequest {
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: String,
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub project_id: String,
    /// Read-your-writes: answer only once the read model has applied the event at this
    /// global position (the `position` of a command's answer); waits up to a bound, then
    /// fails with `not_yet_applied` (HTTP 503 with Retry-After).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// Budget reads, served from the read models. The write side only defines the contract
/// (the NATS listener and the gateway answer `state` through it); the binary plugs in the
/// projections.
pub trait BudgetReads: Send + Sync {
    fn state(
        &self,
        request: StateRequest,
    ) -> futures::future::BoxFuture<'_, Result<StateResponse, CommandError>>;
}

/// A budget's numbers, flattened into every answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TotalsBody {
    pub total: u64,
    pub used: u64,
    pub reserved: u64,
    pub available: u64,
    pub open_reservations: u64,
}

impl From<Totals> for TotalsBody {
    fn from(t: Totals) -> Self {
        Self {
            total: t.total,
            used: t.used,
            reserved: t.reserved,
            available: t.available,
            open_reservations: t.open_reservations,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LimitResponse {
    pub tenant_id: String,
    pub project_id: String,
    /// The global position of the event written (see [`StateRequest::min_position`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(flatten)]
    pub totals: TotalsBody,
}

/// The answer to a reservation request: approved or denied, HTTP 200 both ways.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReserveResponse {
    pub approved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// True when an open reservation of the same task was returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<bool>,
    /// `insufficient_budget` or `no_budget` when denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<u64>,
    /// The global position of the event written; absent when nothing was written (the
    /// same task's open reservation was returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(flatten)]
    pub totals: TotalsBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommitResponse {
    pub reservation_id: Uuid,
    pub allocated: u64,
    pub actual_tokens: u64,
    pub overage: u64,
    /// The reservation had expired before the commit.
    pub late: bool,
    /// The global position of the event written; absent on a repeated commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(flatten)]
    pub totals: TotalsBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseResponse {
    pub reservation_id: Uuid,
    pub released: bool,
    pub allocated: u64,
    /// The global position of the event written; absent on a repeated release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(flatten)]
    pub totals: TotalsBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StateResponse {
    pub tenant_id: String,
    pub project_id: String,
    #[serde(flatten)]
    pub totals: TotalsBody,
    /// The read models' contiguous watermark this answer stands at: every event up to this
    /// position in commit order is applied to it (0: before the first event; null while
    /// not known). Subscribe to the WebSocket with `since` = this value to receive every
    /// event the answer does not show yet (docs/pipeline.md, "Reads and read-your-writes").
    #[serde(default)]
    pub read_position: Option<i64>,
}

fn unexpected(reply: BudgetReply) -> CommandError {
    CommandError::Internal(format!("unexpected reply {reply:?}").into())
}

/// The budget operations, one function per endpoint / NATS subject.
impl BudgetService {
    pub async fn api_set_limit(
        &self,
        request: SetLimitRequest,
        actor: &Actor,
    ) -> Result<LimitResponse, CommandError> {
        let outcome = self
            .set_limit(
                request.tenant_id.clone(),
                request.project_id.clone(),
                request.total_tokens,
                actor,
            )
            .await?;
        match outcome.reply {
            BudgetReply::LimitSet { totals } => Ok(LimitResponse {
                tenant_id: request.tenant_id,
                project_id: request.project_id,
                position: outcome.position,
                totals: totals.into(),
            }),
            other => Err(unexpected(other)),
        }
    }

    pub async fn api_reserve(
        &self,
        request: ReserveRequest,
        actor: &Actor,
    ) -> Result<ReserveResponse, CommandError> {
        let outcome = self
            .reserve(
                request.tenant_id,
                request.project_id,
                request.task_id,
                request.model,
                request.estimated_tokens,
                request.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS),
                actor,
            )
            .await?;
        let position = outcome.position;
        match outcome.reply {
            BudgetReply::Reserved {
                reservation_id,
                allocated,
                expires_at,
                existing,
                totals,
            } => Ok(ReserveResponse {
                approved: true,
                reservation_id: Some(reservation_id),
                allocated: Some(allocated),
                expires_at: Some(expires_at),
                existing: Some(existing),
                reason: None,
                requested: None,
                position,
                totals: totals.into(),
            }),
            BudgetReply::Denied {
                reason,
                requested,
                totals,
                ..
            } => Ok(ReserveResponse {
                approved: false,
                reservation_id: None,
                allocated: None,
                expires_at: None,
                existing: None,
                reason: Some(reason.as_str().to_string()),
                requested: Some(requested),
                position,
                totals: totals.into(),
            }),
            other => Err(unexpected(other)),
        }
    }

    pub async fn api_commit(
        &self,
        request: CommitRequest,
        actor: &Actor,
    ) -> Result<CommitResponse, CommandError> {
        let outcome = self
            .commit(request.reservation_id, request.actual_tokens, actor)
            .await?;
        match outcome.reply {
            BudgetReply::Committed {
                reservation_id,
                allocated,
                actual_tokens,
                overage,
                late,
                totals,
            } => Ok(CommitResponse {
                reservation_id,
                allocated,
                actual_tokens,
                overage,
                late,
                position: outcome.position,
                totals: totals.into(),
            }),
            other => Err(unexpected(other)),
        }
    }

    pub async fn api_release(
        &self,
        request: ReleaseRequest,
        actor: &Actor,
    ) -> Result<ReleaseResponse, CommandError> {
        let outcome = self.release(request.reservation_id, actor).await?;
        match outcome.reply {
            BudgetReply::Released {
                reservation_id,
                allocated,
                totals,
            } => Ok(ReleaseResponse {
                reservation_id,
                released: true,
                allocated,
                position: outcome.position,
                totals: totals.into(),
            }),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: CommandError) -> String {
        error.field().unwrap_or_default().to_string()
    }

    #[test]
    fn a_missing_field_is_named() {
        let error =
            parse::<CommitRequest>(br#"{"reservation_id":"6f1c2a36-3a59-4a57-9b4c-2f3cd4e1b0a1"}"#)
                .unwrap_err();
        assert_eq!(field_of(error), "actual_tokens");
    }

    #[test]
    fn a_mistyped_field_is_named() {
        let error = parse::<CommitRequest>(
            br#"{"reservation_id":"6f1c2a36-3a59-4a57-9b4c-2f3cd4e1b0a1","actual_tokens":-5}"#,
        )
        .unwrap_err();
        assert_eq!(field_of(error), "actual_tokens");
        let error =
            parse::<CommitRequest>(br#"{"reservation_id":"nope","actual_tokens":5}"#).unwrap_err();
        assert_eq!(field_of(error), "reservation_id");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let error = parse::<ReleaseRequest>(
            br#"{"reservation_id":"6f1c2a36-3a59-4a57-9b4c-2f3cd4e1b0a1","extra":1}"#,
        )
        .unwrap_err();
        assert_eq!(field_of(error), "extra");
    }

    #[test]
    fn malformed_json_and_trailing_garbage_are_body_errors() {
        assert_eq!(
            field_of(parse::<ReleaseRequest>(b"{not json").unwrap_err()),
            "body"
        );
        assert_eq!(
            field_of(
                parse::<ReleaseRequest>(
                    br#"{"reservation_id":"6f1c2a36-3a59-4a57-9b4c-2f3cd4e1b0a1"} x"#
                )
                .unwrap_err()
            ),
            "body"
        );
    }

    #[test]
    fn an_oversized_body_is_refused_before_parsing() {
        let big = vec![b' '; MAX_COMMAND_BYTES + 1];
        assert_eq!(field_of(parse::<ReleaseRequest>(&big).unwrap_err()), "body");
    }
}
