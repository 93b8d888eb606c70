//! One WebSocket connection: reads the client's frames, forwards the events its
//! subscription and permissions allow, catches up from PostgreSQL, pings, and closes
//! connections that are idle, too slow, or whose token has expired.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use auth::{Claims, TenantScope};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{interval_at, sleep_until, timeout, Instant, MissedTickBehavior};

use super::hub::{Burst, LiveEvent, LiveHub, BATCH_HEAD, BATCH_TAIL};
use super::protocol::{
    parse_client_frame, permitted, ClientFrame, FrameError, LogKey, Matcher, Subscription, Topic,
};
use crate::sessions::Authenticator;

/// Events read from PostgreSQL per round trip while catching up.
const CATCH_UP_BATCH: i64 = 500;
/// The longest replay a `subscribe` may ask for (`since`/`from`), in events. Any signed-in
/// user can send `since: 0` or an old read's position; without a bound that is a read of the
/// whole log from PostgreSQL and a stream of it to one client, per frame. A client far behind
/// loses less by reading its pages again: the dashboard remembers 5,000 delivered positions
/// (so a longer replay would deliver events twice), and a reconnect after a short outage is a
/// few hundred events. 10,000 events are 20 catch-up reads.
const MAX_REPLAY_EVENTS: i64 = 10_000;
/// Frames written out together at most (a burst longer than this is several writes).
const MAX_FRAMES_PER_WRITE: usize = 64;
/// An `events` frame stops taking events once it is this long; a longer backlog goes out
/// as several frames (the write buffer of a connection is bounded, mod.rs).
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Events waiting to go out as one `events` frame: the events' frames, serialised once
/// in the hub, joined into a JSON array.
#[derive(Default)]
struct Batch {
    json: String,
}

impl Batch {
    /// Adds an event's frame; `coming` (events likely to follow) sizes a new batch's
    /// buffer, so it is not copied over and over while it grows.
    fn push(&mut self, frame: &str, coming: usize) {
        if self.json.is_empty() {
            let guess = frame.len() * coming.max(1);
            self.json.reserve(
                BATCH_HEAD.len() + guess.min(MAX_BATCH_BYTES + frame.len()) + BATCH_TAIL.len(),
            );
            self.json.push_str(BATCH_HEAD);
        } else {
            self.json.push(',');
        }
        self.json.push_str(frame);
    }

    fn is_full(&self) -> bool {
        self.json.len() >= MAX_BATCH_BYTES
    }

    /// The `events` frame of what was pushed since the last call, if anything was.
    fn take(&mut self) -> Option<Utf8Bytes> {
        if self.json.is_empty() {
            return None;
        }
        self.json.push_str(BATCH_TAIL);
        Some(std::mem::take(&mut self.json).into())
    }
}

/// Why a connection ends from the server's side: a close code and a reason the client
/// can act on (docs/websocket.md).
#[derive(Debug)]
enum Stop {
    /// The peer went away; nothing more to send.
    Gone,
    Close(u16, &'static str),
}

const POLICY: u16 = 1008;
const GOING_AWAY: u16 = 1001;
const TRY_AGAIN_LATER: u16 = 1013;
const INTERNAL: u16 = 1011;

/// The live part of a subscription: the ring receiver and the last event (in commit
/// order) this connection has passed, sent or filtered out.
struct Feed {
    receiver: broadcast::Receiver<Arc<Burst>>,
    cursor: LogKey,
}

pub(super) struct Connection {
    hub: Arc<LiveHub>,
    pool: PgPool,
    auth: Arc<Authenticator>,
    claims: Option<Claims>,
    sink: SplitSink<WebSocket, Message>,
    subscription: Subscription,
    /// `subscription` in the form checked for every event.
    matcher: Matcher,
    /// Events go out as `events` frames (the client subscribed with `"batch": true`).
    batch: bool,
    pending: Batch,
    feed: Option<Feed>,
    last_heard: Instant,
}

/// Counts the connection in `active_users` for as long as it lives.
struct Counted(prometheus::IntGauge);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Serves `socket` until either side ends it.
pub(super) async fn serve(
    socket: WebSocket,
    hub: Arc<LiveHub>,
    pool: PgPool,
    auth: Arc<Authenticator>,
    claims: Option<Claims>,
) {
    hub.connections.inc();
    let _counted = Counted(hub.connections.clone());
    let (sink, mut incoming) = socket.split();
    let mut connection = Connection {
        hub,
        pool,
        auth,
        claims,
        sink,
        subscription: Subscription::default(),
        matcher: Matcher::default(),
        batch: false,
        pending: Batch::default(),
        feed: None,
        last_heard: Instant::now(),
    };
    if let Err(Stop::Close(code, reason)) = connection.run(&mut incoming).await {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = timeout(Duration::from_secs(1), connection.sink.send(frame)).await;
        // The closing handshake: wait (bounded) for the client's Close, dropping what it
        // still sends first (pongs to earlier pings). Dropping the socket at once reset the
        // connection under a client still writing those, which then never read why it was
        // closed.
        let _ = timeout(Duration::from_secs(2), async {
            while let Some(Ok(message)) = incoming.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

impl Connection {
    async fn run(&mut self, incoming: &mut SplitStream<WebSocket>) -> Result<(), Stop> {
        let config = self.hub.config.clone();
        let start = Instant::now();
        let mut ping = interval_at(start + config.ping_interval, config.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stats = interval_at(start + config.stats_interval, config.stats_interval);
        stats.set_missed_tick_behavior(MissedTickBehavior::Skip);
        // Both deadlines live across iterations: a timer made anew in each pass would be
        // registered and removed again for every burst of events, on every connection.
        let auth_deadline = sleep_until(start + config.auth_timeout);
        let expiry = sleep_until(self.token_expiry());
        tokio::pin!(auth_deadline, expiry);
        let mut authenticated = self.claims.is_some();
        // A logout, a disabled account or a changed role or scope ends the socket too.
        // Checked once at the start too: the account may have changed between the upgrade
        // and this task's first poll.
        let mut standings = self.auth.changes();
        standings.mark_changed();
        loop {
            if !authenticated && self.claims.is_some() {
                // Authenticated by an `auth` frame: the token's own expiry applies now.
                expiry.as_mut().reset(self.token_expiry());
                authenticated = true;
            }
            tokio::select! {
                frame = incoming.next() => match frame {
                    Some(Ok(message)) => {
                        self.last_heard = Instant::now();
                        self.on_message(message).await?;
                    }
                    _ => return Err(Stop::Gone),
                },
                event = next_event(&mut self.feed) => self.on_event(event).await?,
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > config.idle_timeout {
                        return Err(Stop::Close(GOING_AWAY, "idle: no frame or pong received"));
                    }
                    self.send(Message::Ping(Default::default())).await?;
                }
                _ = stats.tick(), if self.subscription.topics.contains(&Topic::Stats) => {
                    let frame = self.stats_frame().await;
                    self.send_json(frame).await?;
                }
                _ = &mut auth_deadline, if self.claims.is_none() => {
                    return Err(Stop::Close(POLICY, "authentication required"));
                }
                Ok(()) = standings.changed(), if self.claims.is_some() => {
                    if !self.claims.as_ref().is_some_and(|c| self.auth.stands(c)) {
                        return Err(Stop::Close(POLICY, "session ended: log in again"));
                    }
                }
                _ = &mut expiry, if self.claims.is_some() => {
                    return Err(Stop::Close(POLICY, "token expired: reconnect with a fresh token"));
                }
                _ = self.hub.closing() => {
                    return Err(Stop::Close(GOING_AWAY, "server shutting down"));
                }
            }
        }
    }

    /// The tenants the caller may see (none before authentication).
    fn scope(&self) -> TenantScope {
        self.claims
            .as_ref()
            .map_or_else(|| TenantScope::only([]), Claims::scope)
    }

    /// When the token stops being valid (far away before authentication).
    fn token_expiry(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let Some(claims) = &self.claims else {
            return far;
        };
        let left = claims.exp - chrono::Utc::now().timestamp();
        Instant::now() + Duration::from_secs(left.max(0) as u64)
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Stop> {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Err(Stop::Gone),
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Binary(_) => {
                return self
                    .send_error("frame", "binary frames are not supported; send JSON text")
                    .await
            }
        };
        let frame = match parse_client_frame(text.as_str()) {
            Ok(frame) => frame,
            Err(FrameError { field, message }) => {
                if self.claims.is_none() {
                    return Err(Stop::Close(POLICY, "authentication required"));
                }
                return self.send_error(&field, &message).await;
            }
        };
        match (frame, self.claims.is_some()) {
            (ClientFrame::Auth { token }, false) => match self.auth.authenticate(&token) {
                Ok(claims) => {
                    let answer = json!({"type": "authenticated", "role": claims.role});
                    self.claims = Some(claims);
                    self.send_json(answer).await
                }
                Err(_) => Err(Stop::Close(POLICY, "invalid or expired token")),
            },
            (_, false) => Err(Stop::Close(POLICY, "authentication required")),
            (ClientFrame::Auth { .. }, true) => {
                self.send_error("type", "this connection is already authenticated")
                    .await
            }
            (ClientFrame::Ping, true) => self.send_json(json!({"type": "pong"})).await,
            (
                ClientFrame::Subscribe {
                    topics,
                    since,
                    from,
                    filter,
                    batch,
                },
                true,
            ) => self.subscribe(topics, since, from, filter, batch).await,
            (ClientFrame::Unsubscribe { topics }, true) => {
                for topic in &topics {
                    self.subscription.topics.remove(topic);
                }
                self.matcher = self.subscription.matcher().within(self.scope());
                if !self.subscription.wants_events() {
                    self.feed = None;
                }
                let position = self.position();
                self.send_subscribed(None, position).await
            }
        }
    }

    async fn subscribe(
        &mut self,
        topics: Vec<Topic>,
        since: Option<i64>,
        from: Vec<i64>,
        filter: super::protocol::Filter,
        batch: Option<bool>,
    ) -> Result<(), Stop> {
        let claims = self.claims.as_ref().expect("checked by the caller");
        let (allowed, refused) = permitted(claims, &topics);
        let user = claims.sub.clone();
        for topic in refused {
            let message = format!(
                "topic '{}' needs the permission {}",
                topic.as_str(),
                topic.permission().as_str()
            );
            self.send_error("topics", &message).await?;
        }
        // `since` and the reads' positions: the replay starts after the earliest of them in
        // commit order (where the client stands, or where a read it shows stands when that
        // is earlier), so the events a read did not show arrive, and none before it again.
        let starts: Vec<(String, i64)> = since
            .map(|p| ("since".to_string(), p))
            .into_iter()
            .chain(
                from.iter()
                    .enumerate()
                    .map(|(i, p)| (format!("from[{i}]"), *p)),
            )
            .collect();
        // A replay costs reads of up to MAX_REPLAY_EVENTS events; a user asking for them
        // faster than the limit gets the error a position too far behind gets (the
        // dashboard then reads its pages again and subscribes without one).
        if let Some((field, _)) = starts.first() {
            if let Err(retry_after) = self.hub.take_replay(&user) {
                let message = format!(
                    "too many replays (more than {} a minute): read the data again and \
                     subscribe without a position, or retry after {retry_after} s",
                    self.hub.config.replays_per_minute
                );
                return self.send_error(field, &message).await;
            }
        }
        // Look every position up before changing anything: a bad one leaves the current
        // subscription as it was.
        let start = match self.replay_start(&starts).await {
            Ok(start) => start,
            Err((field, message)) => return self.send_error(&field, &message).await,
        };
        match start {
            Some(cursor) => {
                self.subscription = Subscription {
                    topics: allowed.into_iter().collect::<BTreeSet<_>>(),
                    filter,
                };
                self.matcher = self.subscription.matcher().within(self.scope());
                self.batch = batch.unwrap_or(self.batch);
                // Receive live events from now on, then send what came before.
                let (receiver, head) = self.hub.subscribe();
                self.feed = Some(Feed { receiver, cursor });
                // The catch-up runs at least to the live feed's head (further when the
                // client resumes from past it, e.g. after another replica). `since` answers
                // where the replay starts.
                self.send_subscribed(Some(cursor.position), head.max(cursor))
                    .await?;
                self.catch_up().await
            }
            None => {
                self.subscription.topics.extend(allowed);
                self.subscription.filter = filter;
                self.matcher = self.subscription.matcher().within(self.scope());
                self.batch = batch.unwrap_or(self.batch);
                if self.feed.is_none() && self.subscription.wants_events() {
                    let (receiver, cursor) = self.hub.subscribe();
                    self.feed = Some(Feed { receiver, cursor });
                }
                let position = self.position();
                self.send_subscribed(None, position).await
            }
        }
    }

    /// Where a replay from these positions (`since`, `from[i]`) starts: the earliest of them
    /// in commit order (`None` when there are none), or the field to name in the error
    /// frame. Every position is looked up in one round trip. A start more than
    /// [`MAX_REPLAY_EVENTS`] behind the log's newest event is refused.
    async fn replay_start(
        &self,
        starts: &[(String, i64)],
    ) -> Result<Option<LogKey>, (String, String)> {
        let cannot_read = |field: &str| {
            (
                field.to_string(),
                "the event log cannot be read right now; try again".to_string(),
            )
        };
        let mut wanted = Vec::with_capacity(starts.len());
        for (field, position) in starts {
            if *position < 0 {
                return Err((
                    field.clone(),
                    "must be 0 or the position of an event".into(),
                ));
            }
            if *position > 0 {
                wanted.push(*position);
            }
        }
        let found: Vec<(i64, String)> = if wanted.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT global_position, transaction_id::text FROM events
                  WHERE global_position = ANY($1)",
            )
            .bind(&wanted)
            .fetch_all(&self.pool)
            .await
            .map_err(|_| cannot_read(&starts[0].0))?
        };
        // The earliest start and the field that named it.
        let mut earliest: Option<(LogKey, &str)> = None;
        for (field, position) in starts {
            let key = if *position == 0 {
                LogKey::default()
            } else {
                let transaction_id = found
                    .iter()
                    .find(|(p, _)| p == position)
                    .and_then(|(_, t)| t.parse().ok())
                    .ok_or_else(|| (field.clone(), format!("no event at position {position}")))?;
                LogKey {
                    transaction_id,
                    position: *position,
                }
            };
            if earliest.is_none_or(|(e, _)| key < e) {
                earliest = Some((key, field));
            }
        }
        let Some((start, field)) = earliest else {
            return Ok(None);
        };
        let behind = streams::envelope::count_after(
            &self.pool,
            &start.to_log_position(),
            MAX_REPLAY_EVENTS + 1,
        )
        .await
        .map_err(|_| cannot_read(field))?;
        if behind > MAX_REPLAY_EVENTS {
            return Err((
                field.to_string(),
                format!(
                    "more than {MAX_REPLAY_EVENTS} events behind the newest: read the data again \
                     and subscribe from where that read stands"
                ),
            ));
        }
        Ok(Some(start))
    }

    async fn on_event(&mut self, burst: Result<Arc<Burst>, RecvError>) -> Result<(), Stop> {
        let mut burst = match burst {
            Ok(burst) => burst,
            Err(RecvError::Lagged(_)) => {
                // Fell behind the ring: what was dropped is in PostgreSQL.
                self.hub.catch_ups.fetch_add(1, Ordering::Relaxed);
                return self.catch_up().await;
            }
            Err(RecvError::Closed) => return Err(Stop::Close(GOING_AWAY, "server shutting down")),
        };
        // Everything already in the ring goes out in one write: one flush per burst, not
        // one system call per frame; for a batching client, one frame per burst at most.
        let (mut queued, mut bytes) = (0, 0);
        loop {
            let behind = self.feed.as_ref().map_or(0, |f| f.receiver.len());
            let cursor = self
                .feed
                .as_ref()
                .expect("events come only with a feed")
                .cursor;
            if self.batch
                && burst.first_key() > cursor
                && self
                    .matcher
                    .takes_all(burst.events.iter().map(|e| e.carriers))
            {
                // The whole burst: its shared frame, after what this connection already
                // joined (order).
                self.write_batch().await?;
                self.queue(Message::Text(burst.batch_frame.clone())).await?;
                if let (Some(feed), Some(last)) = (self.feed.as_mut(), burst.events.last()) {
                    feed.cursor = last.key;
                }
                queued += burst.events.len();
                bytes += burst.batch_frame.len();
            } else {
                for event in burst.events.iter() {
                    let feed = self.feed.as_mut().expect("events come only with a feed");
                    if event.key <= feed.cursor {
                        continue;
                    }
                    feed.cursor = event.key;
                    if self
                        .matcher
                        .matches(event.carriers, event.topic, &event.aggregate_id)
                    {
                        self.deliver(&event.frame, burst.events.len() * (behind + 1))
                            .await?;
                        queued += 1;
                        bytes += event.frame.len();
                    }
                }
            }
            let enough = if self.batch {
                bytes >= MAX_BATCH_BYTES
            } else {
                queued >= MAX_FRAMES_PER_WRITE
            };
            if enough {
                break;
            }
            match self.feed.as_mut().map(|f| f.receiver.try_recv()) {
                Some(Ok(next)) => burst = next,
                // Empty, or lagged/closed: the next `recv` reports the latter.
                _ => break,
            }
        }
        if queued > 0 {
            self.write_batch().await?;
            self.flush().await?;
        }
        Ok(())
    }

    /// Queues one event's frame, or adds it to the pending `events` frame (queued when
    /// full, or by [`Self::write_batch`]). `coming`: about how many events may follow,
    /// to size a new batch.
    async fn deliver(&mut self, frame: &Utf8Bytes, coming: usize) -> Result<(), Stop> {
        if !self.batch {
            return self.queue(Message::Text(frame.clone())).await;
        }
        self.pending.push(frame.as_str(), coming);
        if self.pending.is_full() {
            self.write_batch().await?;
        }
        Ok(())
    }

    /// Queues the pending `events` frame, if any.
    async fn write_batch(&mut self) -> Result<(), Stop> {
        match self.pending.take() {
            Some(frame) => self.queue(Message::Text(frame)).await,
            None => Ok(()),
        }
    }

    /// Sends every committed event after the cursor that the subscription matches, in
    /// commit order, until the log has nothing newer; live events take over from there.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        loop {
            let cursor = match &self.feed {
                Some(feed) => feed.cursor,
                None => return Ok(()),
            };
            let batch = streams::envelope::read_committed_after(
                &self.pool,
                &cursor.to_log_position(),
                CATCH_UP_BATCH,
            )
            .await
            .map_err(|_| {
                Stop::Close(
                    INTERNAL,
                    "the event log cannot be read; reconnect with since",
                )
            })?;
            if batch.is_empty() {
                return Ok(());
            }
            let coming = batch.len();
            for envelope in &batch {
                let Some(event) = LiveEvent::of(envelope) else {
                    continue;
                };
                if let Some(feed) = self.feed.as_mut() {
                    feed.cursor = event.key;
                }
                if self
                    .matcher
                    .matches(event.carriers, event.topic, &event.aggregate_id)
                {
                    self.deliver(&event.frame, coming).await?;
                }
            }
            self.write_batch().await?;
            self.flush().await?;
        }
    }

    async fn stats_frame(&self) -> serde_json::Value {
        let head = self.hub.head();
        let mut frame = json!({
            "type": "stats",
            "at": chrono::Utc::now(),
            "connections": self.hub.connections.get(),
            "events_streamed": self.hub.events.load(Ordering::Relaxed),
            "last_position": head.position,
            "catch_ups": self.hub.catch_ups.load(Ordering::Relaxed),
        });
        if let Some(dead_letters) = self.hub.dead_letter_stats(&self.pool).await {
            frame["dead_letters"] = dead_letters;
        }
        frame
    }

    /// Where this connection stands in the log: the last event (in commit order) it has
    /// passed, sent or filtered out; without a feed, the live feed's head. Every matching
    /// event after it is still to come.
    fn position(&self) -> LogKey {
        self.feed
            .as_ref()
            .map_or_else(|| self.hub.head(), |feed| feed.cursor)
    }

    /// Acknowledges a (un)subscribe with the position the subscription stands at
    /// (docs/websocket.md): without `since`, every matching event after it follows, so a
    /// client may resume from it; with `since`, the catch-up that follows runs up to it.
    /// `null` while the process has seen no event (an empty log).
    async fn send_subscribed(&mut self, since: Option<i64>, at: LogKey) -> Result<(), Stop> {
        let topics: Vec<&str> = self
            .subscription
            .topics
            .iter()
            .map(|t| t.as_str())
            .collect();
        let position = (at != LogKey::default()).then_some(at.position);
        let frame =
            json!({"type": "subscribed", "topics": topics, "since": since, "position": position});
        self.send_json(frame).await
    }

    async fn send_error(&mut self, field: &str, message: &str) -> Result<(), Stop> {
        self.send_json(json!({"type": "error", "field": field, "message": message}))
            .await
    }

    async fn send_json(&mut self, value: serde_json::Value) -> Result<(), Stop> {
        self.send(Message::Text(Utf8Bytes::from(value.to_string())))
            .await
    }

    /// Sends one frame now.
    async fn send(&mut self, message: Message) -> Result<(), Stop> {
        self.queue(message).await?;
        self.flush().await
    }

    /// Adds a frame to the connection's write buffer (written out when it fills, or by
    /// [`Self::flush`]).
    async fn queue(&mut self, message: Message) -> Result<(), Stop> {
        let result = timeout(self.hub.config.send_timeout, self.sink.feed(message)).await;
        self.outcome(result)
    }

    /// Writes out what is queued. A client that does not take it in time is closed (it
    /// can reconnect with `since` and miss nothing).
    async fn flush(&mut self) -> Result<(), Stop> {
        let result = timeout(self.hub.config.send_timeout, self.sink.flush()).await;
        self.outcome(result)
    }

    fn outcome<E>(
        &self,
        result: Result<Result<(), E>, tokio::time::error::Elapsed>,
    ) -> Result<(), Stop> {
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => {
                self.hub.slow_closed.fetch_add(1, Ordering::Relaxed);
                Err(Stop::Close(
                    TRY_AGAIN_LATER,
                    "too slow: reconnect with since to resume",
                ))
            }
        }
    }
}

/// The next event of the feed; never ready without one.
async fn next_event(feed: &mut Option<Feed>) -> Result<Arc<Burst>, RecvError> {
    match feed {
        Some(feed) => feed.receiver.recv().await,
        None => std::future::pending().await,
    }
}
