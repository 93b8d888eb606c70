//! The WebSocket protocol: JSON text frames in both directions (docs/websocket.md).
//! Pure: parsing, topics and their permissions, filters, and the event frame.

use std::collections::BTreeSet;

use auth::{Claims, Permission, TenantScope};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use streams::envelope::{EventEnvelope, LogPosition};

/// Largest frame a client may send; commands are small.
pub const MAX_CLIENT_FRAME_BYTES: usize = 16 * 1024;

/// What a client can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// Token-budget events.
    Budget,
    /// Dead-letter entries.
    Dlq,
    /// Circuit-breaker transitions.
    Breakers,
    /// Every event of every aggregate, read-only (auditors).
    Audit,
    /// A `stats` frame every few seconds.
    Stats,
    /// Changes to accounts (added, role, tenants, disabled, password reset; never a
    /// password): admins' Users page.
    Users,
}

impl Topic {
    /// The permission a connection needs to receive this topic.
    pub fn permission(self) -> Permission {
        match self {
            Topic::Budget => Permission::ReadBudget,
            Topic::Dlq => Permission::ReadDlq,
            Topic::Breakers => Permission::ReadBreakers,
            Topic::Audit => Permission::ReadAudit,
            Topic::Stats => Permission::ReadSystem,
            Topic::Users => Permission::AdminUsers,
        }
    }

    /// The topic of an aggregate's events; `None` for kinds only `audit` carries.
    pub fn of_aggregate(aggregate_type: &str) -> Option<Topic> {
        match aggregate_type {
            "Budget" => Some(Topic::Budget),
            "CircuitBreaker" => Some(Topic::Breakers),
            t if t.starts_with("Dlq") || t.starts_with("DeadLetter") => Some(Topic::Dlq),
            "UserAccount" => Some(Topic::Users),
            _ => None,
        }
    }

    /// This topic's bit in an event's or a subscription's topic mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The topics that carry an event of this topic (`None`: only `audit`), as a mask:
    /// computed once per event, so a connection decides with one AND.
    pub fn carriers(topic: Option<Topic>) -> u8 {
        Topic::Audit.bit() | topic.map_or(0, Topic::bit)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Budget => "budget",
            Topic::Dlq => "dlq",
            Topic::Breakers => "breakers",
            Topic::Audit => "audit",
            Topic::Stats => "stats",
            Topic::Users => "users",
        }
    }
}

/// Narrows what a subscription receives. `tenant`/`project` apply to budget events
/// (aggregate id `tenant/project`), `breaker` to breaker events; other events pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub tenant: Option<String>,
    pub project: Option<String>,
    pub breaker: Option<String>,
}

impl Filter {
    /// True when the filter lets every event through (the common case: no per-event work).
    pub fn is_empty(&self) -> bool {
        self.tenant.is_none() && self.project.is_none() && self.breaker.is_none()
    }

    fn accepts(&self, topic: Option<Topic>, aggregate_id: &str) -> bool {
        match topic {
            Some(Topic::Budget) => {
                let (tenant, project) = aggregate_id.split_once('/').unwrap_or((aggregate_id, ""));
                self.tenant.as_deref().is_none_or(|t| t == tenant)
                    && self.project.as_deref().is_none_or(|p| p == project)
            }
            Some(Topic::Breakers) => self.breaker.as_deref().is_none_or(|b| b == aggregate_id),
            _ => true,
        }
    }
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// Authenticates a connection opened without a cookie or `token` parameter; must be
    /// the first frame.
    Auth {
        token: String,
    },
    /// Adds topics. With `since`, replaces the subscription and first sends every
    /// matching event after that position, then live events.
    Subscribe {
        topics: Vec<Topic>,
        since: Option<i64>,
        filter: Filter,
        /// `Some(true)`: events go out as `events` frames holding every event queued for
        /// the connection; `Some(false)`: one `event` frame each; `None`: unchanged.
        batch: Option<bool>,
    },
    Unsubscribe {
        topics: Vec<Topic>,
    },
    Ping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFrame {
    #[serde(rename = "type")]
    _type: String,
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeFrame {
    #[serde(rename = "type")]
    _type: String,
    topics: Vec<Topic>,
    #[serde(default)]
    since: Option<i64>,
    #[serde(default)]
    filter: Filter,
    #[serde(default)]
    batch: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeFrame {
    #[serde(rename = "type")]
    _type: String,
    topics: Vec<Topic>,
}

/// A client frame that could not be read: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub field: String,
    pub message: String,
}

fn frame_error(field: &str, message: impl Into<String>) -> FrameError {
    FrameError {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses a client frame, naming the field that is wrong. The `type` is read first and
/// the frame then parsed as that type, so errors point into it (`topics[1]`).
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    if text.len() > MAX_CLIENT_FRAME_BYTES {
        return Err(frame_error(
            "frame",
            format!("larger than {MAX_CLIENT_FRAME_BYTES} bytes"),
        ));
    }
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let kind = serde_json::from_str::<Kind>(text)
        .map_err(|e| frame_error("frame", format!("not a JSON object: {e}")))?
        .kind
        .ok_or_else(|| frame_error("type", "missing field `type`"))?;
    match kind.as_str() {
        "auth" => parse_as::<AuthFrame>(text).map(|f| ClientFrame::Auth { token: f.token }),
        "subscribe" => parse_as::<SubscribeFrame>(text).map(|f| ClientFrame::Subscribe {
            topics: f.topics,
            since: f.since,
            filter: f.filter,
            batch: f.batch,
        }),
        "unsubscribe" => parse_as::<UnsubscribeFrame>(text)
            .map(|f| ClientFrame::Unsubscribe { topics: f.topics }),
        "ping" => Ok(ClientFrame::Ping),
        other => Err(frame_error(
            "type",
            format!("unknown frame type `{other}`, expected auth, subscribe, unsubscribe or ping"),
        )),
    }
}

fn parse_as<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, FrameError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        let field = if path == "." {
            message
                .split('`')
                .nth(1)
                .map(str::to_string)
                .unwrap_or_else(|| "frame".into())
        } else {
            path
        };
        FrameError { field, message }
    })
}

/// A place in the log's commit order: `(transaction id, global position)`, the order the
/// publisher puts events on JetStream (streams::envelope::read_committed_after).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LogKey {
    pub transaction_id: u64,
    pub position: i64,
}

impl LogKey {
    pub fn of(envelope: &EventEnvelope) -> Option<LogKey> {
        Some(LogKey {
            transaction_id: envelope.transaction_id.parse().ok()?,
            position: envelope.global_position,
        })
    }

    pub fn to_log_position(self) -> LogPosition {
        LogPosition {
            transaction_id: self.transaction_id.to_string(),
            global_position: self.position,
        }
    }
}

/// What a connection currently receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub topics: BTreeSet<Topic>,
    pub filter: Filter,
}

impl Subscription {
    /// Whether any event topic (not only `stats`) is subscribed.
    pub fn wants_events(&self) -> bool {
        self.topics.iter().any(|t| *t != Topic::Stats)
    }

    pub fn matches(&self, topic: Option<Topic>, aggregate_id: &str) -> bool {
        let listed =
            self.topics.contains(&Topic::Audit) || topic.is_some_and(|t| self.topics.contains(&t));
        listed && self.filter.accepts(topic, aggregate_id)
    }

    /// The per-event check a connection makes, precomputed from this subscription.
    pub fn matcher(&self) -> Matcher {
        Matcher {
            mask: self.topics.iter().fold(0, |mask, t| mask | t.bit()),
            filter: (!self.filter.is_empty()).then(|| self.filter.clone()),
            scope: TenantScope::all(),
        }
    }
}

/// [`Subscription::matches`] in the form a connection runs for every event: the event's
/// carrier mask ([`Topic::carriers`]) against the subscribed topics' bits, and the filter
/// only when there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    mask: u8,
    filter: Option<Filter>,
    /// The caller's tenants: another tenant's budget events never go out, whatever the
    /// topic (`audit` carries every event).
    scope: TenantScope,
}

impl Matcher {
    /// The same check, limited to the caller's tenants.
    pub fn within(mut self, scope: TenantScope) -> Self {
        self.scope = scope;
        self
    }

    pub fn matches(&self, carriers: u8, topic: Option<Topic>, aggregate_id: &str) -> bool {
        self.mask & carriers != 0
            && (topic != Some(Topic::Budget) || self.scope.allows(tenant_of(aggregate_id)))
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.accepts(topic, aggregate_id))
    }

    /// Every event with these carrier masks matches: there is no filter or tenant scope,
    /// and each event carries a subscribed topic. Such a connection can take a whole
    /// burst's shared frame.
    pub fn takes_all(&self, mut carriers: impl Iterator<Item = u8>) -> bool {
        self.filter.is_none()
            && self.scope.tenants().is_none()
            && carriers.all(|c| self.mask & c != 0)
    }
}

/// The tenant of a budget's aggregate id (`tenant/project`).
fn tenant_of(aggregate_id: &str) -> &str {
    aggregate_id
        .split_once('/')
        .map_or(aggregate_id, |(t, _)| t)
}

/// Splits requested topics into those `claims` may receive and those it may not.
pub fn permitted(claims: &Claims, topics: &[Topic]) -> (Vec<Topic>, Vec<Topic>) {
    topics.iter().partition(|t| claims.has(t.permission()))
}

/// One event as the client receives it.
#[derive(Debug, Serialize)]
pub struct EventFrame<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub position: i64,
    pub topic: &'static str,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub payload: &'a RawValue,
    pub recorded_at: DateTime<Utc>,
}

impl<'a> EventFrame<'a> {
    pub fn of(envelope: &'a EventEnvelope) -> Self {
        EventFrame {
            kind: "event",
            position: envelope.global_position,
            topic: Topic::of_aggregate(&envelope.aggregate_type)
                .unwrap_or(Topic::Audit)
                .as_str(),
            aggregate_type: &envelope.aggregate_type,
            aggregate_id: &envelope.aggregate_id,
            sequence: envelope.sequence,
            event_type: &envelope.event_type,
            payload: &envelope.payload,
            recorded_at: envelope.recorded_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::Role;

    fn claims(role: Role) -> Claims {
        Claims {
            sub: "u".into(),
            role,
            permissions: role.permissions(),
            exp: 0,
            iat: 0,
            iss: String::new(),
            aud: String::new(),
            tenants: None,
            sid: String::new(),
            ver: 0,
        }
    }

    #[test]
    fn a_subscribe_frame_parses_with_since_and_filter() {
        let frame = parse_client_frame(
            r#"{"type":"subscribe","topics":["budget","stats"],"since":42,"filter":{"tenant":"org1"}}"#,
        )
        .unwrap();
        assert_eq!(
            frame,
            ClientFrame::Subscribe {
                topics: vec![Topic::Budget, Topic::Stats],
                since: Some(42),
                filter: Filter {
                    tenant: Some("org1".into()),
                    ..Filter::default()
                },
                batch: None,
            }
        );
    }

    #[test]
    fn batch_is_an_optional_boolean() {
        let frame =
            parse_client_frame(r#"{"type":"subscribe","topics":["audit"],"batch":true}"#).unwrap();
        assert!(matches!(
            frame,
            ClientFrame::Subscribe {
                batch: Some(true),
                ..
            }
        ));
        let error = parse_client_frame(r#"{"type":"subscribe","topics":["audit"],"batch":"yes"}"#)
            .unwrap_err();
        assert_eq!(error.field, "batch", "{error:?}");
    }

    /// The precomputed check must agree with the plain one for every topic set, event
    /// topic and filter.
    #[test]
    fn the_matcher_agrees_with_the_subscription() {
        let all = [
            Topic::Budget,
            Topic::Dlq,
            Topic::Breakers,
            Topic::Audit,
            Topic::Stats,
            Topic::Users,
        ];
        let filters = [
            Filter::default(),
            Filter {
                tenant: Some("org1".into()),
                ..Filter::default()
            },
            Filter {
                breaker: Some("llm".into()),
                ..Filter::default()
            },
        ];
        let events = [
            (Some(Topic::Budget), "org1/p"),
            (Some(Topic::Budget), "org2/p"),
            (Some(Topic::Breakers), "llm"),
            (Some(Topic::Breakers), "db"),
            (Some(Topic::Dlq), "x"),
            (Some(Topic::Users), "vera"),
            (None, "run-1"),
        ];
        for set in 0..(1u32 << all.len()) {
            for filter in &filters {
                let subscription = Subscription {
                    topics: (0..all.len())
                        .filter(|i| set & (1 << i) != 0)
                        .map(|i| all[i])
                        .collect(),
                    filter: filter.clone(),
                };
                let matcher = subscription.matcher();
                for (topic, id) in events {
                    assert_eq!(
                        matcher.matches(Topic::carriers(topic), topic, id),
                        subscription.matches(topic, id),
                        "{subscription:?} {topic:?} {id}"
                    );
                }
                // A whole burst is taken as one only when each of its events matches.
                for burst in 1..(1u32 << events.len()) {
                    let burst: Vec<_> = (0..events.len())
                        .filter(|i| burst & (1 << i) != 0)
                        .map(|i| events[i])
                        .collect();
                    let whole = matcher.takes_all(burst.iter().map(|(t, _)| Topic::carriers(*t)));
                    let each = burst.iter().all(|(t, id)| subscription.matches(*t, id));
                    assert!(!whole || each, "{subscription:?} {burst:?}");
                    // Without a filter, a burst that all matches is taken whole.
                    if filter.is_empty() {
                        assert_eq!(whole, each, "{subscription:?} {burst:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_bad_frame_names_the_field() {
        let error =
            parse_client_frame(r#"{"type":"subscribe","topics":["budget","nope"]}"#).unwrap_err();
        assert_eq!(error.field, "topics[1]");
        let error = parse_client_frame(r#"{"type":"subscribe"}"#).unwrap_err();
        assert_eq!(error.field, "topics");
        let error = parse_client_frame(r#"{"type":"shout"}"#).unwrap_err();
        assert_eq!(error.field, "type");
        assert!(error.message.contains("shout"), "{error:?}");
        let error =
            parse_client_frame(r#"{"type":"subscribe","topics":[],"since":"x"}"#).unwrap_err();
        assert_eq!(error.field, "since");
        let error = parse_client_frame(r#"{"type":"ping","extra":1}"#);
        assert_eq!(
            error,
            Ok(ClientFrame::Ping),
            "a ping carries nothing to check"
        );
        let error = parse_client_frame(&"x".repeat(MAX_CLIENT_FRAME_BYTES + 1)).unwrap_err();
        assert_eq!(error.field, "frame");
    }

    #[test]
    fn topics_follow_the_aggregate_type() {
        assert_eq!(Topic::of_aggregate("Budget"), Some(Topic::Budget));
        assert_eq!(Topic::of_aggregate("CircuitBreaker"), Some(Topic::Breakers));
        assert_eq!(Topic::of_aggregate("DlqEntry"), Some(Topic::Dlq));
        assert_eq!(Topic::of_aggregate("SandboxRun"), None);
    }

    #[test]
    fn audit_receives_every_event_and_a_topic_only_its_own() {
        let mut budget = Subscription::default();
        budget.topics.insert(Topic::Budget);
        assert!(budget.matches(Some(Topic::Budget), "a/b"));
        assert!(!budget.matches(Some(Topic::Breakers), "x"));
        assert!(!budget.matches(None, "x"));
        let mut audit = Subscription::default();
        audit.topics.insert(Topic::Audit);
        assert!(audit.matches(Some(Topic::Dlq), "x"));
        assert!(audit.matches(None, "x"));
    }

    #[test]
    fn filters_narrow_budget_and_breaker_events() {
        let mut sub = Subscription {
            filter: Filter {
                tenant: Some("org1".into()),
                project: None,
                breaker: Some("openai".into()),
            },
            ..Subscription::default()
        };
        sub.topics.extend([Topic::Budget, Topic::Breakers]);
        assert!(sub.matches(Some(Topic::Budget), "org1/p"));
        assert!(!sub.matches(Some(Topic::Budget), "org2/p"));
        assert!(sub.matches(Some(Topic::Breakers), "openai"));
        assert!(!sub.matches(Some(Topic::Breakers), "anthropic"));
    }

    #[test]
    fn a_viewer_may_not_receive_dlq_or_audit() {
        let (allowed, refused) = permitted(
            &claims(Role::Viewer),
            &[Topic::Budget, Topic::Dlq, Topic::Audit, Topic::Stats],
        );
        assert_eq!(allowed, vec![Topic::Budget, Topic::Stats]);
        assert_eq!(refused, vec![Topic::Dlq, Topic::Audit]);
        let (allowed, refused) = permitted(&claims(Role::Auditor), &[Topic::Audit, Topic::Dlq]);
        assert_eq!((allowed.len(), refused.len()), (2, 0));
    }

    /// Account changes name who may do what: only those who manage accounts follow them
    /// (an auditor reads them in the audit stream, as every event).
    #[test]
    fn only_admins_of_accounts_receive_the_users_topic() {
        for role in [Role::Operator, Role::Auditor, Role::Viewer, Role::Service] {
            let (_, refused) = permitted(&claims(role), &[Topic::Users]);
            assert_eq!(refused, vec![Topic::Users], "{role:?}");
        }
        let (allowed, _) = permitted(&claims(Role::Admin), &[Topic::Users]);
        assert_eq!(allowed, vec![Topic::Users]);
        assert_eq!(Topic::of_aggregate("UserAccount"), Some(Topic::Users));
    }

    #[test]
    fn commit_order_compares_transactions_numerically() {
        let a = LogKey {
            transaction_id: 9,
            position: 50,
        };
        let b = LogKey {
            transaction_id: 10,
            position: 3,
        };
        assert!(a < b, "xid 9 commits before xid 10 whatever the positions");
    }
}
