//! The JetStream stream of events and its consumers, created or updated at start.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::Context;

/// Where events are published: the stream's name and the subject prefix.
#[derive(Debug, Clone)]
pub struct EventsStream {
    /// The stream, `CP_EVENTS` in production; tests use their own.
    pub name: String,
    /// First token(s) of every subject, `cp` in production.
    pub prefix: String,
}

impl EventsStream {
    /// Every event subject: `<prefix>.events.>`.
    pub fn subjects(&self) -> String {
        format!("{}.events.>", self.prefix)
    }
}

/// How long JetStream remembers a `Nats-Msg-Id`. A publisher that crashed after publishing
/// and before moving its checkpoint re-publishes within seconds (a standby takes over in
/// about one), far inside this window.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(300);

/// The events stream: file storage, kept without age or size limit (the event table is the
/// long-term record; operators may add limits, replay reads the table).
pub fn events_stream_config(events: &EventsStream) -> stream::Config {
    stream::Config {
        name: events.name.clone(),
        description: Some("Golden Arch events in commit order (one message per event)".into()),
        subjects: vec![events.subjects()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: 1,
        ..Default::default()
    }
}

/// Creates the events stream, or updates it to the configuration above. Idempotent.
pub async fn ensure_events_stream(
    js: &Context,
    events: &EventsStream,
) -> Result<stream::Stream, async_nats::Error> {
    js.create_or_update_stream(events_stream_config(events))
        .await?;
    Ok(js.get_stream(&events.name).await?)
}

/// The durable pull consumer a projection reads with. `AckPolicy::All`: the projector
/// acknowledges the last message of a batch once the batch is committed.
pub fn projection_consumer_config(durable: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(durable.to_string()),
        description: Some("read models in PostgreSQL (projections crate)".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::All,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 20_000,
        ..Default::default()
    }
}
