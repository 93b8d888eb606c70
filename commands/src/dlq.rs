//! Executes dead-letter commands: capture, resolve, and requeue (publishing the original
//! message again).
//!
//! Writes go through the shared [`Executor`] (serialised per entry in this process,
//! optimistic against every other). A requeue publishes *before* the resolution is
//! recorded, with `Nats-Msg-Id: dlq/<id>/<n>` (`n` = the entry's requeue count + 1): when
//! the publish went out and recording failed, a retry publishes the same id again and
//! JetStream's duplicate window drops it; when recording succeeded, a retry is a 409
//! (resolved twice) and publishes nothing. With core NATS (no stream covers the subject)
//! there is no duplicate window: a requeue retried after a failed write can deliver twice.
//!
//! An edited requeue ([`DlqService::requeue_edited`]) publishes the operator's corrected
//! bytes the same way, with `Nats-Msg-Id: dlq/<id>/<n>/<first 16 hex of the edit's SHA-256>`
//! (the same edit retried is a duplicate; another edit is not), then records the edit and the
//! resolution in one command.

use std::sync::Arc;
use std::time::Duration;

use async_nats::header::{HeaderMap, HeaderName, HeaderValue};
use async_nats::jetstream::context::GetStreamByNameErrorKind;
use chrono::{DateTime, Utc};
use domain::dlq::{
    decode_payload, entry_id_for, sha256_hex, validate_entry_id, DeadLetter, DlqCommand, DlqEntry,
    DlqError, DlqReply, Encoding, Requeue, Source, ENTRY_HEADER,
};

use crate::clock::Clock;
use crate::executor::{Decide, Decision, Executor};
use crate::store::{Actor, EventStore};
use crate::CommandError;

/// How long a requeue waits for JetStream's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

impl Decide for DlqEntry {
    type Reply = DlqReply;

    fn decide(&self, command: DlqCommand) -> Decision<Self> {
        DlqEntry::decide(self, command)
    }
}

impl From<DlqError> for CommandError {
    fn from(error: DlqError) -> Self {
        match error {
            DlqError::Invalid { field, message } => CommandError::invalid(field, message),
            DlqError::NotFound(_) => CommandError::NotFound(error.to_string()),
            DlqError::AlreadyResolved { .. } => CommandError::Conflict(error.to_string()),
        }
    }
}

/// A command's outcome: the entry after it, whether it recorded anything, and where.
#[derive(Debug, Clone)]
pub struct DlqOutcome {
    pub changed: bool,
    pub entry: DlqEntry,
    /// The global position of the event written (none when nothing was).
    pub position: Option<i64>,
}

/// Runs dead-letter commands against the event store; publishes requeues on NATS.
pub struct DlqService {
    executor: Executor<DlqEntry>,
    clock: Arc<dyn Clock>,
    nats: Option<async_nats::Client>,
    /// The control plane's own subject prefix: a requeue never publishes under it.
    own_prefix: Option<String>,
}

/// Whether a requeue may publish on `subject`: never NATS's own (`$JS.`, `$SYS.` and every
/// other `$` subject), reply inboxes, or the control plane's own subjects
/// (`<prefix>.cmd.>` commands, `<prefix>.events.>` events, `<prefix>.audit.>` sandbox
/// reports, `<prefix>.anchors.>` audit anchors): a dead letter's subject is whatever its capturer said, and a requeue publishes
/// with the control plane's identity.
pub fn requeue_target_allowed(subject: &str, own_prefix: Option<&str>) -> bool {
    let mut tokens = subject.split('.');
    let first = tokens.next().unwrap_or_default();
    let own = own_prefix.is_some_and(|prefix| {
        first == prefix && matches!(tokens.next(), Some("cmd" | "events" | "audit" | "anchors"))
    });
    !(first.starts_with('$') || first.starts_with("_INBOX") || own)
}

fn check_id(id: &str) -> Result<(), CommandError> {
    validate_entry_id(id).map_err(|e| CommandError::invalid("id", e.to_string()))
}

/// Headers never copied onto a requeue: JetStream publish controls that belonged to the
/// first publish (an old `Nats-Msg-Id` would make the requeue a "duplicate"; expectations
/// no longer hold), and a previous entry header (replaced by this entry's).
fn is_publish_control(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "nats-msg-id"
        || lower.starts_with("nats-expected-")
        || lower == "nats-rollup"
        || lower == "nats-ttl"
        || lower == ENTRY_HEADER.to_ascii_lowercase()
}

impl DlqService {
    pub fn new(store: EventStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            executor: Executor::new(store),
            clock,
            nats: None,
            own_prefix: None,
        }
    }

    /// The connection requeues are published on (without one, a requeue is refused as
    /// unavailable).
    pub fn with_nats(mut self, client: async_nats::Client) -> Self {
        self.nats = Some(client);
        self
    }

    /// The control plane's subject prefix, which requeues never publish under.
    pub fn reserving(mut self, prefix: &str) -> Self {
        self.own_prefix = Some(prefix.to_string());
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn store(&self) -> &EventStore {
        self.executor.store()
    }

    async fn execute(
        &self,
        command: DlqCommand,
        actor: &Actor,
    ) -> Result<DlqOutcome, CommandError> {
        let id = command.id().to_string();
        check_id(&id)?;
        let executed = self.executor.execute(&id, command, actor).await?;
        Ok(DlqOutcome {
            changed: executed.reply.changed,
            entry: executed.reply.entry,
            position: executed.position,
        })
    }

    /// Records a dead message. The id is `id` when given, else `js:<stream>:<seq>` when
    /// the message came from a stream (so capture is idempotent per stream sequence),
    /// else a fresh UUID.
    pub async fn capture(
        &self,
        id: Option<String>,
        letter: DeadLetter,
        actor: &Actor,
    ) -> Result<DlqOutcome, CommandError> {
        let id = match (id, &letter.source) {
            (Some(id), _) => id,
            (None, Some(source)) => entry_id_for(&source.stream, source.stream_seq),
            (None, None) => uuid::Uuid::now_v7().to_string(),
        };
        let command = DlqCommand::Capture {
            id,
            letter,
            actor: actor.label(),
            now: self.clock.now(),
        };
        self.execute(command, actor).await
    }

    /// An entry as the event store has it now (what every process wrote).
    pub async fn entry(&self, id: &str) -> Result<DlqEntry, CommandError> {
        check_id(id)?;
        let entry = self
            .executor
            .read(id, None, |loaded| loaded.aggregate.clone())
            .await?;
        if !entry.exists() {
            return Err(CommandError::NotFound(format!(
                "no dead-letter entry '{id}'"
            )));
        }
        Ok(entry)
    }

    /// Resolves an entry; with `requeue`, publishes its message again first.
    pub async fn resolve(
        &self,
        id: &str,
        note: Option<String>,
        requeue: bool,
        actor: &Actor,
    ) -> Result<DlqOutcome, CommandError> {
        let mut command = DlqCommand::Resolve {
            id: id.to_string(),
            note,
            requeue: None,
            actor: actor.label(),
            now: self.clock.now(),
        };
        if requeue {
            let entry = self.requeueable(id).await?;
            // The latest edit when there is one, else the captured bytes.
            let (encoding, payload) = entry.requeue_payload();
            let payload =
                decode_payload(encoding, payload).map_err(|e| CommandError::Internal(e.into()))?;
            let message_id = entry.next_message_id();
            let planned = Requeue {
                message_id: message_id.clone(),
                stored_in: None,
            };
            if let DlqCommand::Resolve { requeue, .. } = &mut command {
                *requeue = Some(planned);
            }
            // Everything the entry would refuse (a long note) is refused before publishing.
            entry.decide(command.clone())?;
            let published = self.republish(&entry, payload, message_id).await?;
            if let DlqCommand::Resolve { requeue, .. } = &mut command {
                *requeue = Some(published);
            }
        }
        self.execute(command, actor).await
    }

    /// Corrects the payload and requeues the correction: the edited bytes are published on
    /// the original subject (with the entry's headers), then the edit (both SHA-256 hashes,
    /// who) and the resolution are recorded. The captured payload stays in the entry.
    pub async fn requeue_edited(
        &self,
        id: &str,
        encoding: Encoding,
        payload: String,
        note: Option<String>,
        actor: &Actor,
    ) -> Result<DlqOutcome, CommandError> {
        let entry = self.requeueable(id).await?;
        let bytes = entry.check_edit(encoding, &payload)?;
        let message_id = entry.next_edited_message_id(&sha256_hex(&bytes));
        let mut command = DlqCommand::RequeueEdited {
            id: id.to_string(),
            payload,
            encoding,
            note,
            requeue: Requeue {
                message_id: message_id.clone(),
                stored_in: None,
            },
            actor: actor.label(),
            now: self.clock.now(),
        };
        // Checked before publishing: what the entry could not record is never sent.
        entry.decide(command.clone())?;
        let published = self.republish(&entry, bytes, message_id).await?;
        if let DlqCommand::RequeueEdited { requeue, .. } = &mut command {
            *requeue = published;
        }
        self.execute(command, actor).await
    }

    /// The entry, when it may be requeued now: open, and on a subject a requeue may use.
    /// Refused before publishing: resolving twice must not send the message again.
    async fn requeueable(&self, id: &str) -> Result<DlqEntry, CommandError> {
        let entry = self.entry(id).await?;
        if entry.resolved {
            return Err(DlqError::AlreadyResolved {
                id: id.to_string(),
                by: entry.resolved_by.clone().unwrap_or_default(),
                at: entry.resolved_at.unwrap_or_else(|| self.clock.now()),
            }
            .into());
        }
        if !requeue_target_allowed(&entry.original_subject, self.own_prefix.as_deref()) {
            return Err(CommandError::invalid(
                "requeue",
                format!(
                    "'{}' is a subject of NATS or of the control plane itself; resolve \
                     without requeue",
                    entry.original_subject
                ),
            ));
        }
        Ok(entry)
    }

    /// Publishes `payload` with the entry's headers on its original subject: through
    /// JetStream (acknowledged, deduplicated by `Nats-Msg-Id`) when a stream covers the
    /// subject, else on core NATS.
    async fn republish(
        &self,
        entry: &DlqEntry,
        payload: Vec<u8>,
        message_id: String,
    ) -> Result<Requeue, CommandError> {
        let client = self
            .nats
            .as_ref()
            .ok_or_else(|| CommandError::Unavailable("no NATS connection to requeue on".into()))?;
        let unavailable = |e: String| CommandError::Unavailable(e.into());
        let mut headers = HeaderMap::new();
        for (name, values) in &entry.headers {
            if is_publish_control(name) {
                continue;
            }
            // Validated at capture; a header NATS would refuse is dropped, not a panic.
            let Ok(header) = name.parse::<HeaderName>() else {
                continue;
            };
            for value in values {
                if let Ok(value) = value.parse::<HeaderValue>() {
                    headers.append(header.clone(), value);
                }
            }
        }
        headers.insert("Nats-Msg-Id", message_id.as_str());
        headers.insert(ENTRY_HEADER, entry.id.as_str());
        let subject = entry.original_subject.clone();
        let js = async_nats::jetstream::new(client.clone());
        match js.stream_by_subject(subject.clone()).await {
            Ok(_) => {
                let ack = tokio::time::timeout(PUBLISH_TIMEOUT, async {
                    js.publish_with_headers(subject, headers, payload.into())
                        .await
                        .map_err(|e| unavailable(e.to_string()))?
                        .await
                        .map_err(|e| unavailable(e.to_string()))
                })
                .await
                .map_err(|_| unavailable("JetStream did not acknowledge the requeue".into()))??;
                Ok(Requeue {
                    message_id,
                    stored_in: Some(Source {
                        stream: ack.stream,
                        consumer: None,
                        stream_seq: ack.sequence,
                    }),
                })
            }
            Err(error) if error.kind() == GetStreamByNameErrorKind::NotFound => {
                client
                    .publish_with_headers(subject, headers, payload.into())
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                client
                    .flush()
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                Ok(Requeue {
                    message_id,
                    stored_in: None,
                })
            }
            Err(error) => Err(unavailable(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeues_never_target_nats_or_control_plane_subjects() {
        for subject in [
            "$JS.API.STREAM.DELETE.X",
            "$SYS.REQ.SERVER.PING",
            "_INBOX.abc",
            "cp.audit.sandbox",
            "cp.events.budget",
            "cp.cmd.budget.reserve",
            "cp.anchors.CP_EVENTS",
        ] {
            assert!(!requeue_target_allowed(subject, Some("cp")), "{subject}");
        }
        for subject in ["task.execute", "cpx.cmd.x", "work.cp", "cp.work.jobs"] {
            assert!(requeue_target_allowed(subject, Some("cp")), "{subject}");
        }
    }
}
