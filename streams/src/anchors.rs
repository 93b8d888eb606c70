//! The audit log's anchors outside the database: every global hash checkpoint the publisher
//! records in PostgreSQL ([`crate::checkpoint`]) is also published to a JetStream stream of
//! its own, `<events stream>_ANCHORS` on `<prefix>.anchors.<events stream>`.
//!
//! A database superuser can rewrite events, recompute every per-aggregate hash and delete
//! the checkpoint rows: the log then verifies against itself. The anchors are beyond that
//! reach (NATS has its own credentials; the stream refuses message deletes and purges), and
//! `audit verify` recomputes the running hash against each of them
//! ([`crate::audit::verify_with`]), so a rewrite anywhere before the newest anchor, or a
//! truncation, is found. They are as trustworthy as the NATS account that may publish
//! there: the control plane's and the administrator's (docs/audit.md).

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::checkpoint::PublisherState;
use crate::setup::{EventsStream, DUPLICATE_WINDOW};

/// The anchor stream of the events stream `events`.
pub fn anchor_stream_name(events: &str) -> String {
    format!("{events}_ANCHORS")
}

/// The subject the anchors of `events` are published on.
pub fn anchor_subject(events: &EventsStream) -> String {
    format!("{}.anchors.{}", events.prefix, events.name)
}

/// One global hash checkpoint as published: the running hash after `event_count` events in
/// commit order, the last of them at `last_position`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The events stream whose publisher recorded it.
    pub stream: String,
    pub event_count: i64,
    pub last_tx: String,
    pub last_position: i64,
    /// Hex.
    pub running_hash: String,
    pub recorded_at: DateTime<Utc>,
}

impl Anchor {
    /// The anchor of the publisher's `state` of the events stream `stream`.
    pub fn of(stream: &str, state: &PublisherState, recorded_at: DateTime<Utc>) -> Anchor {
        Anchor {
            stream: stream.to_string(),
            event_count: state.hashed,
            last_tx: state.position.transaction_id.clone(),
            last_position: state.position.global_position,
            running_hash: hex::encode(state.running_hash),
            recorded_at,
        }
    }
}

/// The anchor stream's configuration: file storage, kept without limit, no message may be
/// deleted or purged (only the whole stream, by whoever may manage streams).
pub fn anchor_stream_config(events: &EventsStream) -> stream::Config {
    stream::Config {
        name: anchor_stream_name(&events.name),
        description: Some(format!(
            "Golden Arch audit anchors: the global hash checkpoints of {}",
            events.name
        )),
        subjects: vec![anchor_subject(events)],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: events.replicas,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

/// Creates the anchor stream when missing (an existing one is left as it is: its
/// configuration is not this process's to loosen).
pub async fn ensure_anchor_stream(js: &Context, events: &EventsStream) -> Result<(), String> {
    js.get_or_create_stream(anchor_stream_config(events))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Publishes `anchor` and waits for JetStream to store it. Its `Nats-Msg-Id` is the
/// stream and the event count, so a publisher that records the same checkpoint again after
/// a restart stores it once.
pub async fn publish_anchor(
    js: &Context,
    events: &EventsStream,
    anchor: &Anchor,
) -> Result<(), String> {
    let payload = serde_json::to_vec(anchor).map_err(|e| e.to_string())?;
    let publish = PublishMessage::build()
        .payload(payload.into())
        .message_id(format!("anchors/{}/{}", anchor.stream, anchor.event_count));
    js.send_publish(anchor_subject(events), publish)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// How long reading the anchors may take, at most.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Every anchor of the events stream `events` (stream name), oldest first; none when the
/// stream has none yet. A message that is not an anchor is skipped with a warning.
pub async fn read_anchors(js: &Context, events: &str) -> Result<Vec<Anchor>, String> {
    let name = anchor_stream_name(events);
    let read = async {
        let mut stream = match js.get_stream(&name).await {
            Ok(stream) => stream,
            Err(error)
                if matches!(
                    error.kind(),
                    async_nats::jetstream::context::GetStreamErrorKind::JetStream(e)
                        if e.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                return Ok(Vec::new())
            }
            Err(error) => return Err(error.to_string()),
        };
        let last = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .last_sequence;
        let mut anchors = Vec::new();
        if last == 0 {
            return Ok(anchors);
        }
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                description: Some("audit verify".into()),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| e.to_string())?;
            let sequence = message.info().map_err(|e| e.to_string())?.stream_sequence;
            match serde_json::from_slice::<Anchor>(&message.payload) {
                Ok(anchor) => anchors.push(anchor),
                Err(error) => {
                    tracing::warn!(stream = %name, sequence, %error, "skipping a message that is not an audit anchor")
                }
            }
            if sequence >= last {
                break;
            }
        }
        Ok(anchors)
    };
    tokio::time::timeout(READ_WAIT, read)
        .await
        .unwrap_or_else(|_| Err(format!("reading {name} took longer than {READ_WAIT:?}")))
}
