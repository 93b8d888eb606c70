//! The JetStream stream of events and its consumers, created or updated at start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{Context, ErrorCode};
use sqlx::PgPool;

/// Where events are published: the stream's name, the subject prefix, and the deployment
/// (database) whose events it carries.
#[derive(Debug, Clone)]
pub struct EventsStream {
    /// The stream, `CP_EVENTS` in production; tests use their own.
    pub name: String,
    /// First token(s) of every subject, `cp` in production.
    pub prefix: String,
    /// This database's deployment id ([`load_deployment_id`]). The stream's description
    /// carries the id of the deployment that created it; [`ensure_events_stream`] refuses
    /// a stream that carries another.
    pub deployment: String,
    /// The owner of the stream when the last [`ensure_events_stream`] refused it (shared by
    /// every clone; `/readyz` reports it).
    foreign_owner: Arc<Mutex<Option<String>>>,
    /// Replicas of the stream (`JETSTREAM_REPLICAS`; 1 unless [`EventsStream::with_replicas`]).
    pub replicas: usize,
}

impl EventsStream {
    pub fn new(name: String, prefix: String, deployment: String) -> EventsStream {
        EventsStream {
            name,
            prefix,
            deployment,
            foreign_owner: Arc::default(),
            replicas: 1,
        }
    }

    /// The same stream kept on `replicas` servers of a JetStream cluster.
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Every event subject: `<prefix>.events.>`.
    pub fn subjects(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// The deployment the stream belongs to, when it is not this one (as last seen).
    pub fn foreign_owner(&self) -> Option<String> {
        self.foreign_owner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_foreign_owner(&self, owner: Option<String>) {
        *self.foreign_owner.lock().unwrap_or_else(|e| e.into_inner()) = owner;
    }

    /// Records that the stream is `owner`'s, and the error that says so.
    fn refuse(&self, owner: &str) -> StreamSetupError {
        self.set_foreign_owner(Some(owner.to_string()));
        StreamSetupError::Foreign {
            stream: self.name.clone(),
            owner: owner.to_string(),
            ours: self.deployment.clone(),
        }
    }
}

/// This database's deployment id (migration 0010 makes it once).
pub async fn load_deployment_id(pool: &PgPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT id::text FROM deployment")
        .fetch_one(pool)
        .await
}

/// The stream's description, without the owner.
const DESCRIPTION: &str = "Golden Arch events in commit order (one message per event)";
/// What separates the description from the owner's id.
const OWNER_MARK: &str = "; deployment ";

/// The deployment id a stream's description carries (`None`: a stream made before ids).
pub fn owner_of(description: &str) -> Option<&str> {
    description
        .rsplit_once(OWNER_MARK)
        .map(|(_, owner)| owner.trim())
}

/// The deployment id in a stream's description, as JetStream last reported it.
fn owner_of_stream(stream: &stream::Stream) -> Option<&str> {
    owner_of(stream.cached_info().config.description.as_deref()?)
}

#[derive(Debug, thiserror::Error)]
pub enum StreamSetupError {
    #[error(
        "the events stream {stream} belongs to deployment {owner}, and this database is \
         deployment {ours}: two databases must not share one events stream (give each its \
         own EVENTS_STREAM and NATS_SUBJECT_PREFIX; docs/operations.md)"
    )]
    Foreign {
        stream: String,
        owner: String,
        ours: String,
    },
    #[error("JetStream: {0}")]
    Nats(String),
}

fn nats<E: std::fmt::Display>(error: E) -> StreamSetupError {
    StreamSetupError::Nats(error.to_string())
}

/// What a JetStream stream name may be, as a configuration error says it.
pub const STREAM_NAME_RULE: &str = "1-64 characters of [A-Za-z0-9_-]";

/// Whether `name` is a stream name this control plane makes or watches
/// ([`STREAM_NAME_RULE`]; no dots, spaces or wildcards, which NATS refuses or reads as
/// subject tokens).
pub fn is_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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
        description: Some(format!("{DESCRIPTION}{OWNER_MARK}{}", events.deployment)),
        subjects: vec![events.subjects()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: events.replicas,
        ..Default::default()
    }
}

/// Creates the events stream marked as this deployment's, or updates it to the
/// configuration above when it is already this deployment's. Idempotent.
///
/// A stream that carries another deployment's id is refused
/// ([`StreamSetupError::Foreign`]): its events are not this database's, and publishing to
/// it, projecting them into this database's read models or showing them on this
/// deployment's dashboards would mix two logs. A stream with no id (made before ids) is
/// taken as this deployment's and marked. Two deployments creating one new stream at
/// once: JetStream makes it for one of them (the other's configuration differs in its
/// description, so its create fails) and the other then finds it foreign.
pub async fn ensure_events_stream(
    js: &Context,
    events: &EventsStream,
) -> Result<stream::Stream, StreamSetupError> {
    let config = events_stream_config(events);
    // Twice at most: a stream created by another process between our look and our create.
    for _ in 0..2 {
        match js.get_stream(&events.name).await {
            Ok(existing) => {
                match owner_of_stream(&existing) {
                    Some(owner) if owner != events.deployment => {
                        return Err(events.refuse(owner));
                    }
                    Some(_) => {}
                    None => tracing::warn!(
                        stream = %events.name, deployment = %events.deployment,
                        "the events stream carries no deployment id (made before ids): marking it as this deployment's"
                    ),
                }
                js.update_stream(&config).await.map_err(nats)?;
                events.set_foreign_owner(None);
                // Its cached info predates the update; callers read the state afresh
                // (`info()`) or only make consumers on it.
                return Ok(existing);
            }
            Err(error) if is_not_found(&error) => match js.create_stream(&config).await {
                Ok(created) => {
                    events.set_foreign_owner(None);
                    return Ok(created);
                }
                Err(error) if is_name_taken(&error) => continue,
                Err(error) => return Err(nats(error)),
            },
            Err(error) => return Err(nats(error)),
        }
    }
    Err(StreamSetupError::Nats(format!(
        "the stream {} was created and gone again while we looked",
        events.name
    )))
}

/// Whether the stream is still this deployment's: one JetStream request. The publisher
/// asks every [`OWNER_CHECK_INTERVAL`] while it publishes, so that a stream deleted and made
/// again by another deployment (its readers notice on their own: their consumers go with
/// the old stream) stops it within that time.
pub async fn check_owner(js: &Context, events: &EventsStream) -> Result<(), StreamSetupError> {
    let stream = js.get_stream(&events.name).await.map_err(nats)?;
    match owner_of_stream(&stream) {
        Some(owner) if owner == events.deployment => Ok(()),
        Some(owner) => Err(events.refuse(owner)),
        // Made again without an id: `ensure_events_stream` marks it (or refuses it).
        None => Err(StreamSetupError::Nats(format!(
            "the events stream {} lost its deployment id",
            events.name
        ))),
    }
}

/// How often the publisher checks that the stream is still this deployment's.
pub const OWNER_CHECK_INTERVAL: Duration = Duration::from_secs(1);

fn is_not_found(error: &async_nats::jetstream::context::GetStreamError) -> bool {
    matches!(error.kind(), GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// Another process created the stream with another configuration first.
fn is_name_taken(error: &async_nats::jetstream::context::CreateStreamError) -> bool {
    matches!(error.kind(), CreateStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NAME_EXIST)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_name_is_1_to_64_of_letters_digits_underscore_and_dash() {
        for good in ["CP_EVENTS", "EV_test-1", "a", &"x".repeat(64)] {
            assert!(is_stream_name(good), "{good}");
        }
        for bad in ["", "CP.EVENTS", "CP EVENTS", "CP*", "CP>", &"x".repeat(65)] {
            assert!(!is_stream_name(bad), "{bad:?}");
        }
    }
}
