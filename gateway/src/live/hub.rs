//! The fan-out: each gateway process reads the events stream once (an ordered JetStream
//! consumer) and hands every event to its WebSocket connections through one bounded
//! broadcast ring. Sending never waits for a connection; a connection that falls behind
//! the ring catches up from PostgreSQL (connection.rs). Events that arrive from JetStream
//! together share one slot of the ring (a [`Burst`]), so a connection takes them with one
//! receive: with 1,000 connections, per-event work per connection is what costs. A burst
//! also carries its `events` frame, built once here: a batching connection that takes the
//! whole burst sends that frame as it is (a reference count, no copy), so the bytes of an
//! event are joined once per process, not once per connection.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::Context;
use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use futures::{FutureExt, StreamExt};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use streams::{ensure_events_stream, EventEnvelope, EventsStream};
use tokio::sync::broadcast;

use super::protocol::{EventFrame, LogKey, Topic};

/// One event, its frame serialised once for every connection: sent as it is in an
/// `event` frame, or copied into the `events` frames of batching connections.
#[derive(Debug)]
pub struct LiveEvent {
    pub key: LogKey,
    pub topic: Option<Topic>,
    /// The subscription topics that carry it ([`Topic::carriers`]).
    pub carriers: u8,
    pub aggregate_id: String,
    pub frame: Utf8Bytes,
}

impl LiveEvent {
    pub fn of(envelope: &EventEnvelope) -> Option<LiveEvent> {
        let frame = serde_json::to_string(&EventFrame::of(envelope)).ok()?;
        let topic = Topic::of_aggregate(&envelope.aggregate_type);
        Some(LiveEvent {
            key: LogKey::of(envelope)?,
            topic,
            carriers: Topic::carriers(topic),
            aggregate_id: envelope.aggregate_id.clone(),
            frame: frame.into(),
        })
    }
}

/// Events read from JetStream together, in commit order: one slot of the ring.
#[derive(Debug)]
pub struct Burst {
    pub events: Box<[LiveEvent]>,
    /// Every event of the burst as one `events` frame (`{"type":"events","events":[…]}`).
    pub batch_frame: Utf8Bytes,
}

/// Opening and closing of an `events` frame, around the events' frames joined by commas.
pub const BATCH_HEAD: &str = r#"{"type":"events","events":["#;
pub const BATCH_TAIL: &str = "]}";

impl Burst {
    /// Joins the events' frames into the burst's `events` frame; each event's own frame
    /// becomes a slice of it, so the ring holds one copy of every event's JSON.
    pub fn new(mut events: Vec<LiveEvent>) -> Burst {
        let length: usize = events.iter().map(|e| e.frame.len() + 1).sum();
        let mut json = String::with_capacity(BATCH_HEAD.len() + length + BATCH_TAIL.len());
        json.push_str(BATCH_HEAD);
        let mut ranges = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            let start = json.len();
            json.push_str(event.frame.as_str());
            ranges.push(start..json.len());
        }
        json.push_str(BATCH_TAIL);
        let joined = Bytes::from(json);
        for (event, range) in events.iter_mut().zip(ranges) {
            if let Ok(frame) = Utf8Bytes::try_from(joined.slice(range)) {
                event.frame = frame;
            }
        }
        Burst {
            events: events.into_boxed_slice(),
            batch_frame: Utf8Bytes::try_from(joined).expect("UTF-8 frames joined are UTF-8"),
        }
    }

    /// The first event's key: a connection whose cursor is before it has passed none of
    /// the burst.
    pub fn first_key(&self) -> LogKey {
        self.events.first().map_or_else(LogKey::default, |e| e.key)
    }
}

/// Users tracked by the replay limiter before the idle ones are dropped.
const MAX_REPLAY_USERS: usize = 10_000;

/// `per_minute` replays a minute, a quarter of them at once (at least one).
fn replay_quota(per_minute: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute.max(1)).expect("at least 1");
    let burst = NonZeroU32::new((per_minute.get() / 4).max(1)).expect("at least 1");
    Quota::per_minute(per_minute).allow_burst(burst)
}

/// Events in a burst at most. Under light load a burst is one event (nothing waits for
/// a second); the bound keeps a ring slot small.
pub const MAX_BURST: usize = 64;

/// Settings of the WebSocket gateway (`WS_*` variables).
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Slots of the broadcast ring (bursts of up to [`MAX_BURST`] events); a connection
    /// further behind catches up from PostgreSQL.
    pub ring_events: usize,
    /// Connections this process accepts; more get 503.
    pub max_connections: usize,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// A frame the client does not take within this time closes the connection.
    pub send_timeout: Duration,
    /// How often `stats` frames go out.
    pub stats_interval: Duration,
    /// How long an upgraded connection without credentials has to send `auth`.
    pub auth_timeout: Duration,
    /// Origins besides this host allowed to open a cookie-authenticated socket
    /// (`CORS_ORIGINS`).
    pub allowed_origins: Vec<String>,
    /// Worker threads of the runtime that serves the connections ([`FanoutRuntime`]).
    pub threads: usize,
    /// Replays (`subscribe` frames with `since` or `from`) one user may ask for per minute,
    /// over all their connections; a quarter of it may come at once.
    pub replays_per_minute: u32,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            ring_events: 1024,
            max_connections: 20_000,
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            send_timeout: Duration::from_secs(10),
            stats_interval: Duration::from_secs(5),
            auth_timeout: Duration::from_secs(5),
            allowed_origins: Vec::new(),
            threads: default_threads(),
            replays_per_minute: 120,
        }
    }
}

/// One per core: with one of this machine's two, the fan-out fell seconds behind (ADR 009).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The runtime the WebSocket connections run on, apart from the one that serves commands
/// and runs the pipeline. With 1,000 dashboards, every event wakes 1,000 connection tasks;
/// on a shared runtime the publisher and the command handlers waited in the same queue
/// behind them at each step (commit → JetStream p99 rose from ~45 ms to hundreds). Its own
/// threads leave the two to the operating system's scheduler, which shares the cores
/// between them. The sockets stay registered with the main runtime's I/O driver.
struct FanoutRuntime(Option<tokio::runtime::Runtime>);

impl FanoutRuntime {
    fn new(threads: usize) -> FanoutRuntime {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("ws-fanout")
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => FanoutRuntime(Some(runtime)),
            Err(error) => {
                // The connections then share the main runtime, as before.
                tracing::warn!(%error, "no runtime of its own for the WebSocket fan-out");
                FanoutRuntime(None)
            }
        }
    }
}

impl Drop for FanoutRuntime {
    /// A runtime must not be dropped (which blocks) inside another one: the hub may be.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The process's fan-out point, shared by every connection.
pub struct LiveHub {
    pub config: LiveConfig,
    sender: broadcast::Sender<Arc<Burst>>,
    /// The last event handed to the ring (a live subscription starts after it).
    head: Mutex<LogKey>,
    ready: AtomicBool,
    /// Events read from JetStream by this process.
    pub events: AtomicU64,
    /// Connections that fell behind the ring and caught up from PostgreSQL.
    pub catch_ups: AtomicU64,
    /// Connections closed because they did not read.
    pub slow_closed: AtomicU64,
    /// Open WebSocket sessions: the `active_users` gauge.
    pub connections: prometheus::IntGauge,
    /// Replays per user ([`LiveConfig::replays_per_minute`]).
    replays: DefaultKeyedRateLimiter<String>,
    /// Catch-ups reading PostgreSQL at once. When many connections fall behind together
    /// (a burst the ring cannot hold), they take turns instead of taking the pool from
    /// the commands.
    pub catch_up_permits: tokio::sync::Semaphore,
    runtime: FanoutRuntime,
    /// Cancelled when the process shuts down: every connection closes with 1001 `server
    /// shutting down`, and its client resumes with `since` on another replica.
    closing: tokio_util::sync::CancellationToken,
    /// The dead-letter part of `stats` frames and when it was read
    /// ([`LiveHub::dead_letter_stats`]).
    dead_letters: tokio::sync::Mutex<Option<(tokio::time::Instant, serde_json::Value)>>,
}

/// Catch-up reads in flight per process (see [`LiveHub::catch_up_permits`]).
pub const CATCH_UP_READERS: usize = 2;

impl LiveHub {
    pub fn new(config: LiveConfig) -> Arc<LiveHub> {
        let (sender, _) = broadcast::channel(config.ring_events.max(16));
        let connections = prometheus::IntGauge::new(
            "active_users",
            "Open dashboard sessions (WebSocket connections)",
        )
        .expect("a valid metric name");
        let runtime = FanoutRuntime::new(config.threads);
        let replays = RateLimiter::keyed(replay_quota(config.replays_per_minute));
        Arc::new(LiveHub {
            config,
            replays,
            runtime,
            sender,
            head: Mutex::new(LogKey::default()),
            ready: AtomicBool::new(false),
            events: AtomicU64::new(0),
            catch_ups: AtomicU64::new(0),
            slow_closed: AtomicU64::new(0),
            connections,
            catch_up_permits: tokio::sync::Semaphore::new(CATCH_UP_READERS),
            closing: tokio_util::sync::CancellationToken::new(),
            dead_letters: tokio::sync::Mutex::new(None),
        })
    }

    /// Open dead letters and the dead letters captured and resolved per minute over the
    /// last hour (minutes without any left out), for `stats` frames. Read from PostgreSQL
    /// at most once per stats interval for all of the process's connections (the first
    /// connection due reads, the others wait for it and share the answer), so 1,000
    /// dashboards cost one query every few seconds. `None` when it cannot be read and
    /// nothing was read before.
    pub async fn dead_letter_stats(&self, pool: &sqlx::PgPool) -> Option<serde_json::Value> {
        let mut cached = self.dead_letters.lock().await;
        if let Some((at, value)) = cached.as_ref() {
            if at.elapsed() < self.config.stats_interval {
                return Some(value.clone());
            }
        }
        let read = async {
            let minutes = projections::governance::events_per_minute(pool, 60).await?;
            let open = projections::governance::open_dlq_entries(pool).await?;
            Ok::<_, sqlx::Error>(serde_json::json!({
                "open": open,
                "minutes": minutes
                    .iter()
                    .filter(|m| m.dlq_captured > 0 || m.dlq_resolved > 0)
                    .map(|m| serde_json::json!({
                        "minute": m.minute.to_rfc3339(),
                        "captured": m.dlq_captured,
                        "resolved": m.dlq_resolved,
                    }))
                    .collect::<Vec<_>>(),
            }))
        };
        match tokio::time::timeout(Duration::from_secs(2), read).await {
            Ok(Ok(value)) => {
                *cached = Some((tokio::time::Instant::now(), value.clone()));
                Some(value)
            }
            // The last answer, a little old, rather than none.
            _ => cached.as_ref().map(|(_, value)| value.clone()),
        }
    }

    /// Closes every connection ("going away"), and refuses new ones.
    pub fn close_all(&self) {
        self.closing.cancel();
    }

    /// Completes when the process shuts down (see [`LiveHub::close_all`]).
    pub fn closing(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.closing.cancelled()
    }

    /// Waits until every connection has closed, up to `within`.
    pub async fn wait_closed(&self, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.connections.get() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A receiver of every event after the returned key. Subscribing first and reading
    /// the head second means nothing after the key can be missed.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Burst>>, LogKey) {
        let receiver = self.sender.subscribe();
        let head = *self.head.lock().unwrap_or_else(|e| e.into_inner());
        (receiver, head)
    }

    /// Runs a connection on the fan-out runtime (on the caller's when there is none).
    pub fn spawn_connection<F>(&self, connection: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match &self.runtime.0 {
            Some(runtime) => drop(runtime.spawn(connection)),
            None => drop(tokio::spawn(connection)),
        }
    }

    /// Takes one of `user`'s replays, or answers how many seconds until the next one is
    /// allowed. A replay is a count of up to 10,001 events and a read of as many: any
    /// signed-in user could otherwise send such frames without end, on every connection.
    pub(super) fn take_replay(&self, user: &str) -> Result<(), u64> {
        // Bounded: users idle long enough to have their whole burst back are forgotten.
        if self.replays.len() > MAX_REPLAY_USERS {
            self.replays.retain_recent();
        }
        // The limiter's own clock: making one per call costs a CPUID, which a virtual
        // machine traps (hardening.rs).
        self.replays
            .check_key(&user.to_string())
            .map_err(|not_until| {
                not_until
                    .wait_time_from(self.replays.clock().now())
                    .as_secs()
                    + 1
            })
    }

    /// True once the JetStream consumer is reading: before that a connection could miss
    /// events published in between, so `/ws` answers 503.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.closing.is_cancelled()
    }

    /// The last event handed out (for `stats` frames).
    pub fn head(&self) -> LogKey {
        *self.head.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, burst: Vec<LiveEvent>) {
        let Some(last) = burst.last() else {
            return;
        };
        *self.head.lock().unwrap_or_else(|e| e.into_inner()) = last.key;
        self.events.fetch_add(burst.len() as u64, Ordering::Relaxed);
        // No receivers is fine: nobody is connected.
        let _ = self.sender.send(Arc::new(Burst::new(burst)));
    }
}

/// Reads the events stream for the life of the process. After an error it resumes at the
/// next stream sequence, so the ring never has a gap.
pub async fn run_live_feed(js: Context, events: EventsStream, hub: Arc<LiveHub>) {
    // The stream sequence to resume at; 0 before the first start (sequences start at 1).
    let next = AtomicU64::new(0);
    retry::forever(
        || feed(&js, &events, &hub, &next),
        |error, retry_in| tracing::warn!(%error, ?retry_in, "WebSocket live feed paused"),
    )
    .await;
}

async fn feed(
    js: &Context,
    events: &EventsStream,
    hub: &LiveHub,
    next: &AtomicU64,
) -> Result<(), async_nats::Error> {
    let mut stream = ensure_events_stream(js, events).await?;
    let start = match next.load(Ordering::Relaxed) {
        0 => {
            // First start: live subscriptions begin after the stream's last event.
            let last = stream.info().await?.state.last_sequence;
            if last > 0 {
                if let Ok(message) = stream.get_raw_message(last).await {
                    if let Some(key) = serde_json::from_slice::<EventEnvelope>(&message.payload)
                        .ok()
                        .as_ref()
                        .and_then(LogKey::of)
                    {
                        *hub.head.lock().unwrap_or_else(|e| e.into_inner()) = key;
                    }
                }
            }
            last + 1
        }
        sequence => sequence,
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            description: Some("WebSocket fan-out of this gateway process".into()),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    next.store(start, Ordering::Relaxed);
    hub.ready.store(true, Ordering::Release);
    while let Some(first) = messages.next().await {
        let mut burst = Vec::with_capacity(MAX_BURST);
        let outcome = take_burst(first, &mut messages, &mut burst, next);
        // What was read goes out even when the next message failed: `next` is after it.
        hub.publish(burst);
        outcome?;
    }
    Ok(())
}

/// Decodes `first` and the messages that have already arrived behind it (never waiting
/// for one) into `burst`, up to [`MAX_BURST`]; `next` follows the last one read.
fn take_burst<S, E>(
    first: Result<async_nats::jetstream::Message, E>,
    messages: &mut S,
    burst: &mut Vec<LiveEvent>,
    next: &AtomicU64,
) -> Result<(), async_nats::Error>
where
    S: futures::Stream<Item = Result<async_nats::jetstream::Message, E>> + Unpin,
    async_nats::Error: From<E>,
{
    let mut message = Some(first);
    while let Some(result) = message.take() {
        let received = result?;
        let sequence = received.info()?.stream_sequence;
        match serde_json::from_slice::<EventEnvelope>(&received.payload)
            .ok()
            .as_ref()
            .and_then(LiveEvent::of)
        {
            Some(event) => burst.push(event),
            None => tracing::warn!(sequence, "skipping an undecodable event on the stream"),
        }
        next.store(sequence + 1, Ordering::Relaxed);
        if burst.len() < MAX_BURST {
            message = messages.next().now_or_never().flatten();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: i64, frame: &str) -> LiveEvent {
        LiveEvent {
            key: LogKey {
                transaction_id: 7,
                position,
            },
            topic: Some(Topic::Budget),
            carriers: Topic::carriers(Some(Topic::Budget)),
            aggregate_id: "org1/p".into(),
            frame: frame.into(),
        }
    }

    #[test]
    fn a_burst_frame_is_the_events_frame_of_its_events_in_order() {
        let frames = [
            r#"{"type":"event","position":3}"#,
            r#"{"type":"event","position":5,"s":"é"}"#,
        ];
        let burst = Burst::new(vec![event(3, frames[0]), event(5, frames[1])]);
        let parsed: serde_json::Value = serde_json::from_str(burst.batch_frame.as_str()).unwrap();
        assert_eq!(parsed["type"], "events");
        let expected: Vec<serde_json::Value> = frames
            .iter()
            .map(|f| serde_json::from_str(f).unwrap())
            .collect();
        assert_eq!(parsed["events"], serde_json::Value::Array(expected));
        // Each event keeps its own frame (now a slice of the burst's).
        for (event, frame) in burst.events.iter().zip(frames) {
            assert_eq!(event.frame.as_str(), frame);
        }
        assert_eq!(burst.first_key().position, 3);
    }
}
