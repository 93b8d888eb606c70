//! Automatic capture: every JetStream consumer that gives up on a message (`max_deliver`
//! reached) makes the server publish an advisory on
//! `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>` carrying the stream
//! sequence. Advisories are core-NATS messages, gone if nobody listens, so a stream of the
//! control plane's own keeps them (`CP_DLQ_ADVISORIES`): advisories published while every
//! control plane is down wait there. A durable pull consumer on it — shared by every
//! process, each advisory goes to one — fetches the original message by sequence
//! (`STREAM.MSG.GET`, which nats-server 2.9 has) and records a [`DlqEntry`]
//! (`js:<stream>:<seq>`, so an advisory handled twice records nothing new). An advisory is
//! acknowledged only after the entry is stored; a failure leaves it for a redelivery.
//!
//! A requeued message carries `Cp-Dlq-Entry`: if it dies again, the capture goes to that
//! entry (reopening it) instead of making a new one.
//!
//! [`DlqEntry`]: domain::dlq::DlqEntry

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{
    self, DiscardPolicy, RawMessageErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{AckKind, Context, Message};
use domain::dlq::{encode_payload, validate_entry_id, DeadLetter, Source, ENTRY_HEADER};
use futures::StreamExt;
use serde::Deserialize;

use crate::dlq::DlqService;
use crate::store::Actor;
use crate::CommandError;

/// The advisory subject of every consumer of every stream.
pub const ALL_ADVISORIES: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>";
/// The durable consumer's name on the advisory stream.
pub const CONSUMER: &str = "dlq-capture";
/// How long captured advisories are kept on their stream after being handled.
const KEEP_ADVISORIES: Duration = Duration::from_secs(7 * 86_400);

/// Where advisories are kept, and which streams are watched.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// The control plane's advisory stream (`CP_DLQ_ADVISORIES`; tests use their own).
    pub stream: String,
    /// Streams whose consumers' dead messages are captured: `Some(empty)` every stream,
    /// `None` none (automatic capture off; explicit captures still work).
    pub watch: Option<Vec<String>>,
    /// Replicas of the advisory stream (`JETSTREAM_REPLICAS`).
    pub replicas: usize,
}

impl CaptureConfig {
    /// The advisory subjects the stream captures.
    pub fn subjects(&self) -> Vec<String> {
        match &self.watch {
            None => vec![],
            Some(streams) if streams.is_empty() => vec![ALL_ADVISORIES.to_string()],
            Some(streams) => streams
                .iter()
                .map(|s| format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{s}.*"))
                .collect(),
        }
    }

    pub fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            description: Some(
                "max-deliveries advisories, captured for the dead-letter queue".into(),
            ),
            subjects: self.subjects(),
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_age: KEEP_ADVISORIES,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }
}

/// The durable consumer: explicit acknowledgement after the entry is stored; redelivered
/// without limit (an advisory is never given up on).
pub fn consumer_config() -> pull::Config {
    pull::Config {
        durable_name: Some(CONSUMER.to_string()),
        description: Some("dead-letter capture (commands crate)".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 1_000,
        ..Default::default()
    }
}

/// Creates or updates the advisory stream (idempotent). Called at start, so advisories
/// are kept from then on even while the capture loop is not running.
pub async fn ensure_advisory_stream(
    js: &Context,
    config: &CaptureConfig,
) -> Result<(), async_nats::Error> {
    if config.watch.is_some() {
        js.create_or_update_stream(config.stream_config()).await?;
    }
    Ok(())
}

/// Captures forever, retrying with back-off while NATS or PostgreSQL is away.
pub async fn run_capture(js: Context, service: Arc<DlqService>, config: CaptureConfig) {
    if config.watch.is_none() {
        tracing::info!("automatic dead-letter capture is off (DLQ_WATCH_STREAMS)");
        return;
    }
    retry::forever(
        || consume(&js, &service, &config),
        |error, retry_in| tracing::warn!(%error, ?retry_in, "dead-letter capture paused"),
    )
    .await;
}

async fn consume(
    js: &Context,
    service: &DlqService,
    config: &CaptureConfig,
) -> Result<(), async_nats::Error> {
    js.create_or_update_stream(config.stream_config()).await?;
    let stream = js.get_stream(&config.stream).await?;
    let consumer: PullConsumer = stream
        .get_or_create_consumer(CONSUMER, consumer_config())
        .await?;
    let mut messages = consumer
        .stream()
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await?;
    tracing::info!(stream = %config.stream, subjects = ?config.subjects(), "capturing dead letters");
    while let Some(message) = messages.next().await {
        let message = message?;
        match capture_one(js, service, &message).await {
            Ok(()) => {
                if let Err(error) = message.ack().await {
                    tracing::warn!(%error, "could not acknowledge an advisory; it comes again and changes nothing");
                }
            }
            Err(Failure::Permanent(reason)) => {
                tracing::error!(subject = %message.subject, %reason, "advisory not captured");
                let _ = message.ack_with(AckKind::Term).await;
            }
            Err(Failure::Transient(reason)) => {
                tracing::warn!(subject = %message.subject, %reason, "advisory capture failed; retrying");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
        }
    }
    Err("the advisory consumer's message stream ended".into())
}

/// `io.nats.jetstream.advisory.v1.max_deliver`.
#[derive(Debug, Deserialize)]
struct Advisory {
    stream: String,
    consumer: String,
    stream_seq: u64,
    deliveries: u64,
}

enum Failure {
    /// Nothing to capture, now or later (a malformed advisory, a message already gone).
    Permanent(String),
    /// Try again (NATS or PostgreSQL unavailable).
    Transient(String),
}

async fn capture_one(js: &Context, service: &DlqService, message: &Message) -> Result<(), Failure> {
    let advisory: Advisory = serde_json::from_slice(&message.payload)
        .map_err(|e| Failure::Permanent(format!("not a max-deliveries advisory: {e}")))?;
    let stream = js
        .get_stream(&advisory.stream)
        .await
        .map_err(|e| match e.kind() {
            GetStreamErrorKind::JetStream(_) | GetStreamErrorKind::InvalidStreamName => {
                Failure::Permanent(format!("stream {}: {e}", advisory.stream))
            }
            _ => Failure::Transient(e.to_string()),
        })?;
    let original = stream
        .get_raw_message(advisory.stream_seq)
        .await
        .map_err(|e| match e.kind() {
            RawMessageErrorKind::NoMessageFound | RawMessageErrorKind::JetStream(_) => {
                Failure::Permanent(format!(
                    "message {} of stream {} is no longer there: {e}",
                    advisory.stream_seq, advisory.stream
                ))
            }
            _ => Failure::Transient(e.to_string()),
        })?;
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, values) in original.headers.iter() {
        headers
            .entry(name.to_string())
            .or_default()
            .extend(values.iter().map(|v| v.as_str().to_string()));
    }
    // A requeued copy names its entry: dying again reopens that entry.
    let id = original
        .headers
        .get(ENTRY_HEADER)
        .map(|v| v.as_str().to_string())
        .filter(|id| validate_entry_id(id).is_ok());
    let (encoding, payload) = encode_payload(&original.payload);
    let letter = DeadLetter {
        original_subject: original.subject.to_string(),
        payload,
        encoding,
        headers,
        error: format!(
            "max deliveries ({}) reached by consumer {} of stream {}",
            advisory.deliveries, advisory.consumer, advisory.stream
        ),
        attempts: advisory.deliveries,
        source: Some(Source {
            stream: advisory.stream.clone(),
            consumer: Some(advisory.consumer.clone()),
            stream_seq: advisory.stream_seq,
        }),
    };
    let actor = Actor::new("dlq-capture", "worker");
    match service.capture(id, letter, &actor).await {
        Ok(outcome) => {
            if outcome.changed {
                tracing::info!(entry = %outcome.entry.id, "dead letter captured");
            }
            Ok(())
        }
        Err(error @ CommandError::Invalid { .. }) => Err(Failure::Permanent(error.to_string())),
        Err(error) => Err(Failure::Transient(format!("{error:?}"))),
    }
}
