use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Encoding, Source};

/// A dead message as it is handed in.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub original_subject: String,
    /// The payload in `encoding` (see [`super::encode_payload`]).
    pub payload: String,
    pub encoding: Encoding,
    pub headers: BTreeMap<String, Vec<String>>,
    pub error: String,
    pub attempts: u64,
    pub source: Option<Source>,
}

/// A requeue that was published: how, so the entry records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Requeue {
    /// The `Nats-Msg-Id` it was published with.
    pub message_id: String,
    /// The stream that stored it (none: published on core NATS, no stream covers the subject).
    pub stored_in: Option<Source>,
}

/// What a caller asks of a dead-letter entry. `actor` names who; `now` is injected.
#[derive(Debug, Clone, PartialEq)]
pub enum DlqCommand {
    /// Record a dead message. Idempotent: the same entry captured again from the same place
    /// (or explicitly, with the same id) changes nothing; a message that comes back from a
    /// requeue (a different stream sequence) reopens the entry.
    Capture {
        id: String,
        letter: DeadLetter,
        actor: String,
        now: DateTime<Utc>,
    },
    /// Close the entry, with a note; `requeue` when the message was published again.
    Resolve {
        id: String,
        note: Option<String>,
        requeue: Option<Requeue>,
        actor: String,
        now: DateTime<Utc>,
    },
    /// Correct the payload, publish the correction on the original subject and close the
    /// entry: `payload` (in `encoding`) is what `requeue` published. Refused when the entry
    /// is resolved, or when the payload is the one a plain requeue would send.
    RequeueEdited {
        id: String,
        payload: String,
        encoding: Encoding,
        note: Option<String>,
        requeue: Requeue,
        actor: String,
        now: DateTime<Utc>,
    },
}

impl DlqCommand {
    pub fn id(&self) -> &str {
        match self {
            DlqCommand::Capture { id, .. }
            | DlqCommand::Resolve { id, .. }
            | DlqCommand::RequeueEdited { id, .. } => id,
        }
    }
}
