use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

/// How a payload is kept (see [`super::encode_payload`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Valid JSON, kept as its exact text.
    #[default]
    Json,
    /// UTF-8 that is not JSON, kept as text.
    Text,
    /// Anything else: the bytes in standard base64.
    Base64,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Text => "text",
            Encoding::Base64 => "base64",
        }
    }
}

/// Where a dead message sat in JetStream, when it came from there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Source {
    pub stream: String,
    /// The consumer that gave up on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    pub stream_seq: u64,
}

/// What happened to a dead-letter entry. Flat (`"type"` tag at the top level, like every
/// event of the log); each event names the entry and carries the facts a read model copies
/// (`resolved` and `requeue_count` after it), so projections copy, never compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DlqEvent {
    /// A dead message was recorded.
    DlqEntryCaptured {
        id: String,
        original_subject: String,
        /// The payload in `encoding`; byte-exact.
        payload: String,
        encoding: Encoding,
        /// The original headers, every value of every name.
        headers: BTreeMap<String, Vec<String>>,
        error: String,
        attempts: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<Source>,
        resolved: bool,
        requeue_count: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    /// An operator (or a redrive job) closed the entry, possibly sending the message again.
    DlqEntryResolved {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// The message was published again on its original subject.
        requeued: bool,
        /// The `Nats-Msg-Id` the requeue was published with (`dlq/<id>/<n>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        /// The stream that stored the requeued message, and where (none: core NATS).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requeued_to: Option<Source>,
        resolved: bool,
        requeue_count: u32,
        actor: String,
        at: DateTime<Utc>,
    },
    /// An operator corrected the payload before requeueing it (always followed, in the same
    /// command, by the [`DlqEvent::DlqEntryResolved`] of that requeue). The entry keeps its
    /// captured payload, readable as it was; requeues send this one from now on.
    DlqEntryPayloadEdited {
        id: String,
        /// The edited payload in `encoding`; byte-exact.
        payload: String,
        encoding: Encoding,
        /// SHA-256 (lowercase hex) of the captured payload's bytes.
        original_sha256: String,
        /// SHA-256 (lowercase hex) of the edited payload's bytes.
        edited_sha256: String,
        /// Who edited.
        actor: String,
        at: DateTime<Utc>,
    },
    /// A requeued message died again: its entry is open again with the new failure.
    DlqEntryRecaptured {
        id: String,
        error: String,
        /// Deliveries of this latest failure.
        attempts: u64,
        /// Deliveries over every failure of this entry.
        total_attempts: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<Source>,
        resolved: bool,
        requeue_count: u32,
        actor: String,
        at: DateTime<Utc>,
    },
}

impl DlqEvent {
    pub fn id(&self) -> &str {
        match self {
            DlqEvent::DlqEntryCaptured { id, .. }
            | DlqEvent::DlqEntryResolved { id, .. }
            | DlqEvent::DlqEntryPayloadEdited { id, .. }
            | DlqEvent::DlqEntryRecaptured { id, .. } => id,
        }
    }
}

impl DomainEvent for DlqEvent {
    fn event_type(&self) -> String {
        match self {
            DlqEvent::DlqEntryCaptured { .. } => "DlqEntryCaptured",
            DlqEvent::DlqEntryResolved { .. } => "DlqEntryResolved",
            DlqEvent::DlqEntryPayloadEdited { .. } => "DlqEntryPayloadEdited",
            DlqEvent::DlqEntryRecaptured { .. } => "DlqEntryRecaptured",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
