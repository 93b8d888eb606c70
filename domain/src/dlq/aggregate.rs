use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{
    compact_payload, decode_payload, sha256_hex, validate_entry_id, validate_subject, DeadLetter,
    DlqCommand, DlqEvent, Encoding, Requeue, Source, MAX_ATTEMPTS, MAX_ERROR_CHARS, MAX_HEADERS,
    MAX_HEADER_BYTES, MAX_HEADER_NAME, MAX_HEADER_VALUE, MAX_NOTE_CHARS, MAX_PAYLOAD_BYTES,
};

/// One step of an entry's life, as `GET /dlq/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryItem {
    /// `captured`, `resolved`, `requeued`, `edited` or `recaptured`.
    pub action: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// `edited`: SHA-256 of the captured payload and of the edited one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_sha256: Option<String>,
}

/// A payload an operator put in place of the captured one; what requeues send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditedPayload {
    pub payload: String,
    pub encoding: Encoding,
    /// SHA-256 (hex) of its bytes.
    pub sha256: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A dead-letter entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DlqEntry {
    /// Empty until captured.
    pub id: String,
    pub original_subject: String,
    pub payload: String,
    pub encoding: Encoding,
    pub headers: BTreeMap<String, Vec<String>>,
    /// The latest failure.
    pub error: String,
    /// Deliveries over every failure of this entry.
    pub attempts: u64,
    /// Where the message was first captured from.
    pub source: Option<Source>,
    /// Every (stream, sequence) this entry was captured from: a repeat changes nothing.
    pub seen: Vec<(String, u64)>,
    pub created_at: Option<DateTime<Utc>>,
    pub resolved: bool,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
    pub requeue_count: u32,
    /// The latest edit of the payload, if any (`payload` stays the captured one).
    #[serde(default)]
    pub edited: Option<EditedPayload>,
    pub history: Vec<HistoryItem>,
}

/// A rule the command broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DlqError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no dead-letter entry '{0}'")]
    NotFound(String),
    #[error("dead-letter entry '{id}' was already resolved by {by} at {at}")]
    AlreadyResolved {
        id: String,
        by: String,
        at: DateTime<Utc>,
    },
}

/// The answer to a command: whether it recorded anything, and the entry after it.
#[derive(Debug, Clone, PartialEq)]
pub struct DlqReply {
    pub changed: bool,
    pub entry: DlqEntry,
}

fn invalid(field: &'static str, message: impl Into<String>) -> DlqError {
    DlqError::Invalid {
        field,
        message: message.into(),
    }
}

/// Cuts a text to `max` characters.
fn cut(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        text
    } else {
        text.chars().take(max).collect()
    }
}

/// Text the read model stores (PostgreSQL text and jsonb refuse NUL).
fn check_text(field: &'static str, text: &str) -> Result<(), DlqError> {
    if text.contains('\0') {
        return Err(invalid(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// A payload the entry may keep (captured or edited): its bytes, or what is wrong with it.
fn check_payload(encoding: Encoding, payload: &str) -> Result<Vec<u8>, DlqError> {
    let bytes = decode_payload(encoding, payload).map_err(|m| invalid("payload", m))?;
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(invalid(
            "payload",
            format!("must be at most {MAX_PAYLOAD_BYTES} bytes"),
        ));
    }
    if encoding == Encoding::Json && serde_json::from_str::<serde::de::IgnoredAny>(payload).is_err()
    {
        return Err(invalid("payload", "is not JSON but is marked as json"));
    }
    check_text("payload", payload)?;
    Ok(bytes)
}

fn check_letter(letter: &DeadLetter) -> Result<(), DlqError> {
    validate_subject(&letter.original_subject).map_err(|m| invalid("original_subject", m))?;
    check_payload(letter.encoding, &letter.payload)?;
    check_text("error", &letter.error)?;
    if letter.error.trim().is_empty() {
        return Err(invalid("error", "must not be empty"));
    }
    if letter.attempts > MAX_ATTEMPTS {
        return Err(invalid(
            "attempts",
            format!("must be at most {MAX_ATTEMPTS}"),
        ));
    }
    if letter.headers.len() > MAX_HEADERS {
        return Err(invalid("headers", format!("at most {MAX_HEADERS} names")));
    }
    let header_bytes: usize = letter
        .headers
        .iter()
        .map(|(name, values)| name.len() + values.iter().map(String::len).sum::<usize>())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(invalid(
            "headers",
            format!("names and values must be at most {MAX_HEADER_BYTES} bytes together"),
        ));
    }
    for (name, values) in &letter.headers {
        let bad_name = name.is_empty()
            || name.len() > MAX_HEADER_NAME
            || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        let bad_value = |v: &String| v.len() > MAX_HEADER_VALUE || v.contains(['\r', '\n', '\0']);
        if bad_name {
            return Err(invalid(
                "headers",
                format!("'{name}' is not a header name (1-{MAX_HEADER_NAME} visible ASCII characters, no ':')"),
            ));
        }
        if values.iter().any(bad_value) {
            return Err(invalid(
                "headers",
                format!("a value of '{name}' is longer than {MAX_HEADER_VALUE} bytes or has a line break"),
            ));
        }
    }
    if let Some(source) = &letter.source {
        if source.stream.is_empty() || source.stream.len() > 256 {
            return Err(invalid("stream", "must be 1-256 bytes"));
        }
        if source
            .stream
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(invalid(
                "stream",
                "must not contain whitespace or control characters",
            ));
        }
        if let Some(consumer) = &source.consumer {
            if consumer.len() > 256 || consumer.chars().any(|c| c.is_control()) {
                return Err(invalid(
                    "consumer",
                    "must be at most 256 bytes without control characters",
                ));
            }
        }
        if source.stream_seq == 0 {
            return Err(invalid("stream_seq", "must be at least 1"));
        }
    }
    Ok(())
}

impl DlqEntry {
    /// Whether the entry has been captured (a fresh aggregate has not).
    pub fn exists(&self) -> bool {
        !self.id.is_empty()
    }

    /// The `Nats-Msg-Id` the next requeue of this entry is published with. A retried
    /// requeue (the publish went out, recording it did not) uses the same id again, so
    /// JetStream's duplicate window drops the second copy.
    pub fn next_message_id(&self) -> String {
        format!("dlq/{}/{}", self.id, self.requeue_count + 1)
    }

    /// The `Nats-Msg-Id` of the next requeue of an edited payload: the plain id plus the
    /// start of the edit's hash, so a retry of the same edit is dropped as a duplicate while
    /// a different edit is not mistaken for it.
    pub fn next_edited_message_id(&self, edited_sha256: &str) -> String {
        let short = edited_sha256.get(..16).unwrap_or(edited_sha256);
        format!("{}/{short}", self.next_message_id())
    }

    /// What a requeue publishes: the latest edit, else the captured payload.
    pub fn requeue_payload(&self) -> (Encoding, &str) {
        match &self.edited {
            Some(edit) => (edit.encoding, &edit.payload),
            None => (self.encoding, &self.payload),
        }
    }

    /// The refusals a resolve and an edited requeue share: unknown, or resolved already.
    fn check_open(&self, id: &str, now: DateTime<Utc>) -> Result<(), DlqError> {
        if !self.exists() {
            return Err(DlqError::NotFound(id.to_string()));
        }
        if self.resolved {
            return Err(DlqError::AlreadyResolved {
                id: id.to_string(),
                by: self.resolved_by.clone().unwrap_or_default(),
                at: self.resolved_at.unwrap_or(now),
            });
        }
        Ok(())
    }

    /// An edited payload an edited requeue may send, checked before anything is published:
    /// its bytes, or why not (a bad payload, or the very bytes a plain requeue sends).
    pub fn check_edit(&self, encoding: Encoding, payload: &str) -> Result<Vec<u8>, DlqError> {
        let bytes = check_payload(encoding, payload)?;
        let (current_encoding, current) = self.requeue_payload();
        if decode_payload(current_encoding, current).is_ok_and(|now| now == bytes) {
            return Err(invalid(
                "payload",
                "is the payload a requeue sends already: nothing was edited",
            ));
        }
        Ok(bytes)
    }

    /// Decides what a command means for this entry. Pure.
    pub fn decide(&self, command: DlqCommand) -> Result<(Vec<DlqEvent>, DlqReply), DlqError> {
        validate_entry_id(command.id()).map_err(|e| invalid("id", e.to_string()))?;
        match command {
            DlqCommand::Capture {
                id,
                letter,
                actor,
                now,
            } => {
                check_letter(&letter)?;
                let error = cut(letter.error, MAX_ERROR_CHARS);
                if !self.exists() {
                    let (encoding, payload) = compact_payload(letter.encoding, letter.payload);
                    let event = DlqEvent::DlqEntryCaptured {
                        id,
                        original_subject: letter.original_subject,
                        payload,
                        encoding,
                        headers: letter.headers,
                        error,
                        attempts: letter.attempts,
                        source: letter.source,
                        resolved: false,
                        requeue_count: 0,
                        actor,
                        at: now,
                    };
                    return Ok(self.changed(vec![event]));
                }
                // Captured again. Only a message from a place this entry has not seen yet
                // (a requeued copy that died too) is news; anything else is a repeat.
                let new_place = letter.source.as_ref().is_some_and(|s| {
                    !self
                        .seen
                        .iter()
                        .any(|(stream, seq)| *stream == s.stream && *seq == s.stream_seq)
                });
                if !new_place {
                    return Ok(self.unchanged());
                }
                let event = DlqEvent::DlqEntryRecaptured {
                    id,
                    error,
                    attempts: letter.attempts,
                    total_attempts: self.attempts.saturating_add(letter.attempts),
                    source: letter.source,
                    resolved: false,
                    requeue_count: self.requeue_count,
                    actor,
                    at: now,
                };
                Ok(self.changed(vec![event]))
            }
            DlqCommand::Resolve {
                id,
                note,
                requeue,
                actor,
                now,
            } => {
                self.check_open(&id, now)?;
                check_note(note.as_deref())?;
                let event = self.resolution(id, note, requeue, actor, now);
                Ok(self.changed(vec![event]))
            }
            DlqCommand::RequeueEdited {
                id,
                payload,
                encoding,
                note,
                requeue,
                actor,
                now,
            } => {
                self.check_open(&id, now)?;
                check_note(note.as_deref())?;
                let bytes = self.check_edit(encoding, &payload)?;
                let original_sha256 = decode_payload(self.encoding, &self.payload)
                    .map(|b| sha256_hex(&b))
                    .unwrap_or_default();
                let (encoding, payload) = compact_payload(encoding, payload);
                let edited = DlqEvent::DlqEntryPayloadEdited {
                    id: id.clone(),
                    payload,
                    encoding,
                    original_sha256,
                    edited_sha256: sha256_hex(&bytes),
                    actor: actor.clone(),
                    at: now,
                };
                let resolved = self.resolution(id, note, Some(requeue), actor, now);
                Ok(self.changed(vec![edited, resolved]))
            }
        }
    }

    /// The event that closes the entry, counting the requeue when there was one.
    fn resolution(
        &self,
        id: String,
        note: Option<String>,
        requeue: Option<Requeue>,
        actor: String,
        now: DateTime<Utc>,
    ) -> DlqEvent {
        let requeued = requeue.is_some();
        let (message_id, requeued_to) = match requeue {
            Some(Requeue {
                message_id,
                stored_in,
            }) => (Some(message_id), stored_in),
            None => (None, None),
        };
        DlqEvent::DlqEntryResolved {
            id,
            note: note.filter(|n| !n.is_empty()),
            requeued,
            message_id,
            requeued_to,
            resolved: true,
            requeue_count: self.requeue_count + u32::from(requeued),
            actor,
            at: now,
        }
    }

    fn unchanged(&self) -> (Vec<DlqEvent>, DlqReply) {
        (
            vec![],
            DlqReply {
                changed: false,
                entry: self.clone(),
            },
        )
    }

    fn changed(&self, events: Vec<DlqEvent>) -> (Vec<DlqEvent>, DlqReply) {
        let mut after = self.clone();
        for event in &events {
            after.apply(event.clone());
        }
        (
            events,
            DlqReply {
                changed: true,
                entry: after,
            },
        )
    }
}

fn check_note(note: Option<&str>) -> Result<(), DlqError> {
    if let Some(note) = note {
        check_text("note", note)?;
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(invalid(
                "note",
                format!("must be at most {MAX_NOTE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// The history line an event adds (shared with the read model, so both show the same).
pub fn history_item(event: &DlqEvent) -> HistoryItem {
    match event {
        DlqEvent::DlqEntryCaptured {
            error,
            source,
            actor,
            at,
            ..
        } => HistoryItem {
            action: "captured".into(),
            actor: actor.clone(),
            at: *at,
            note: None,
            error: Some(error.clone()),
            source: source.clone(),
            message_id: None,
            original_sha256: None,
            edited_sha256: None,
        },
        DlqEvent::DlqEntryResolved {
            note,
            requeued,
            message_id,
            requeued_to,
            actor,
            at,
            ..
        } => HistoryItem {
            action: if *requeued { "requeued" } else { "resolved" }.into(),
            actor: actor.clone(),
            at: *at,
            note: note.clone(),
            error: None,
            source: requeued_to.clone(),
            message_id: message_id.clone(),
            original_sha256: None,
            edited_sha256: None,
        },
        DlqEvent::DlqEntryPayloadEdited {
            original_sha256,
            edited_sha256,
            actor,
            at,
            ..
        } => HistoryItem {
            action: "edited".into(),
            actor: actor.clone(),
            at: *at,
            note: None,
            error: None,
            source: None,
            message_id: None,
            original_sha256: Some(original_sha256.clone()),
            edited_sha256: Some(edited_sha256.clone()),
        },
        DlqEvent::DlqEntryRecaptured {
            error,
            source,
            actor,
            at,
            ..
        } => HistoryItem {
            action: "recaptured".into(),
            actor: actor.clone(),
            at: *at,
            note: None,
            error: Some(error.clone()),
            source: source.clone(),
            message_id: None,
            original_sha256: None,
            edited_sha256: None,
        },
    }
}

impl Aggregate for DlqEntry {
    const TYPE: &'static str = "DlqEntry";
    type Command = DlqCommand;
    type Event = DlqEvent;
    type Error = DlqError;
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
        self.history.push(history_item(&event));
        match event {
            DlqEvent::DlqEntryCaptured {
                id,
                original_subject,
                payload,
                encoding,
                headers,
                error,
                attempts,
                source,
                resolved,
                requeue_count,
                at,
                ..
            } => {
                self.id = id;
                self.original_subject = original_subject;
                self.payload = payload;
                self.encoding = encoding;
                self.headers = headers;
                self.error = error;
                self.attempts = attempts;
                if let Some(s) = &source {
                    self.seen.push((s.stream.clone(), s.stream_seq));
                }
                self.source = source;
                self.created_at = Some(at);
                self.resolved = resolved;
                self.requeue_count = requeue_count;
            }
            DlqEvent::DlqEntryResolved {
                note,
                resolved,
                requeue_count,
                actor,
                at,
                ..
            } => {
                self.resolved = resolved;
                self.resolved_at = Some(at);
                self.resolved_by = Some(actor);
                self.note = note;
                self.requeue_count = requeue_count;
            }
            DlqEvent::DlqEntryPayloadEdited {
                payload,
                encoding,
                edited_sha256,
                actor,
                at,
                ..
            } => {
                self.edited = Some(EditedPayload {
                    payload,
                    encoding,
                    sha256: edited_sha256,
                    actor,
                    at,
                });
            }
            DlqEvent::DlqEntryRecaptured {
                error,
                total_attempts,
                source,
                resolved,
                requeue_count,
                ..
            } => {
                self.error = error;
                self.attempts = total_attempts;
                if let Some(s) = &source {
                    self.seen.push((s.stream.clone(), s.stream_seq));
                }
                self.resolved = resolved;
                self.resolved_at = None;
                self.resolved_by = None;
                self.note = None;
                self.requeue_count = requeue_count;
            }
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
