//! Live updates over WebSocket against a real server, PostgreSQL and NATS: commands over
//! HTTP and NATS arrive as events in commit order; reconnecting with `since` misses
//! nothing and repeats nothing; credentials and permissions decide what arrives; a client
//! that never reads does not hold up another.

use crate::common;

use std::time::Duration;

use common::TestEnv;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(env: &TestEnv) -> String {
    format!("{}/ws", env.base.replacen("http://", "ws://", 1))
}

/// Opens `/ws` with `Authorization: Bearer <token>` (none when `token` is `None`).
async fn connect(env: &TestEnv, token: Option<&str>) -> Result<Ws, WsError> {
    let mut request = ws_url(env).into_client_request().unwrap();
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    // The server answers 503 for a moment after start, until its live feed reads.
    for _ in 0..100 {
        match tokio_tungstenite::connect_async(request.clone()).await {
            Err(WsError::Http(response)) if response.status() == 503 => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => return other.map(|(ws, _)| ws),
        }
    }
    panic!("the WebSocket gateway never became ready");
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next JSON frame (pings and pongs skipped).
async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame within 20 s")
            .expect("the connection is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(frame) => {
                return json!({"type": "closed", "frame": format!("{frame:?}")})
            }
            _ => continue,
        }
    }
}

/// The next `event` frame (other frame types skipped).
async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let frame = next_frame(ws).await;
        match frame["type"].as_str() {
            Some("event") => return frame,
            Some("closed") => panic!("closed while waiting for an event: {frame}"),
            _ => continue,
        }
    }
}

/// Subscribes and waits for the acknowledgement (the subscription is live from then on).
async fn subscribe(ws: &mut Ws, frame: Value) -> Value {
    send(ws, frame).await;
    loop {
        let answer = next_frame(ws).await;
        if answer["type"] == "subscribed" {
            return answer;
        }
        assert_ne!(answer["type"], "closed", "{answer}");
    }
}

fn reserve(tenant: &str, project: &str, task: &str, tokens: u64) -> Value {
    json!({"tenant_id": tenant, "project_id": project, "task_id": task, "model": "m", "estimated_tokens": tokens})
}

/// Every budget event in the order the publisher puts them on JetStream.
async fn budget_positions_in_commit_order(database_url: &str) -> Vec<i64> {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let positions = sqlx::query_scalar(
        "SELECT global_position FROM events WHERE aggregate_type = 'Budget'
          ORDER BY transaction_id, global_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    positions
}

#[tokio::test]
async fn commands_over_http_and_nats_arrive_as_events_in_commit_order() {
    let env = TestEnv::start().await;
    let mut ws = connect(&env, Some(&env.admin_token)).await.unwrap();
    let ack = subscribe(&mut ws, json!({"type": "subscribe", "topics": ["budget"]})).await;
    assert_eq!(ack["topics"], json!(["budget"]));

    env.set_limit("org1", "p1", 1000).await;
    let (_, http) = env
        .post("/budget/request", reserve("org1", "p1", "t1", 100))
        .await;
    let nats = env
        .nats_request("request", &reserve("org1", "p1", "t2", 200))
        .await
        .unwrap();

    let first = next_event(&mut ws).await;
    assert_eq!(first["event_type"], "BudgetLimitSet");
    assert_eq!(first["topic"], "budget");
    assert_eq!(first["aggregate_type"], "Budget");
    assert_eq!(first["aggregate_id"], "org1/p1");
    assert_eq!(first["payload"]["total"], 1000, "{first}");
    assert!(first["recorded_at"].is_string());
    let second = next_event(&mut ws).await;
    assert_eq!(second["event_type"], "TokensReserved");
    assert_eq!(second["position"], http["position"], "{second} vs {http}");
    assert_eq!(second["payload"]["reservation_id"], http["reservation_id"]);
    let third = next_event(&mut ws).await;
    assert_eq!(third["position"], nats["position"], "{third} vs {nats}");
    assert_eq!(third["payload"]["allocated"], 200, "{third}");

    // An application-level ping is answered.
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_frame(&mut ws).await["type"], "pong");
}

/// Writers of the reconnect tests, and the reservations each makes.
const WRITERS: usize = 4;
const PER_WRITER: usize = 40;

/// Four writers reserving on orgA/p and orgB/p, two over HTTP and two over NATS, while a
/// client reconnects.
fn spawn_writers(env: &std::sync::Arc<TestEnv>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let env = env.clone();
            tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    let tenant = if w % 2 == 0 { "orgA" } else { "orgB" };
                    let body = reserve(tenant, "p", &format!("w{w}-{i}"), 1);
                    if w < 2 {
                        let (status, answer) = env.post("/budget/request", body).await;
                        assert!(status.is_success(), "{answer}");
                    } else {
                        env.nats_request("request", &body).await.unwrap();
                    }
                }
            })
        })
        .collect()
}

/// A new connection subscribed to budget events after `since`, and the server's answer.
async fn subscribed_since(env: &TestEnv, since: i64, batch: bool) -> (Ws, Value) {
    let mut ws = connect(env, Some(&env.admin_token)).await.unwrap();
    let ack = subscribe(
        &mut ws,
        json!({"type": "subscribe", "topics": ["budget"], "since": since, "batch": batch}),
    )
    .await;
    (ws, ack)
}

/// A control plane with the two budgets the writers reserve on, and an admin connection
/// subscribed to budget events from the start of the log.
async fn two_budgets_watched_from_the_start(batch: bool) -> (std::sync::Arc<TestEnv>, Ws) {
    let env = std::sync::Arc::new(TestEnv::start().await);
    env.set_limit("orgA", "p", 1_000_000).await;
    env.set_limit("orgB", "p", 1_000_000).await;
    let (ws, _) = subscribed_since(&env, 0, batch).await;
    (env, ws)
}

/// Closes `ws` and opens a new connection subscribed to budget events after `since`.
async fn resume(env: &TestEnv, mut ws: Ws, since: i64, batch: bool) -> Ws {
    let _ = ws.close(None).await;
    let (ws, ack) = subscribed_since(env, since, batch).await;
    assert_eq!(ack["since"], since);
    ws
}

#[tokio::test]
async fn reconnecting_with_since_misses_nothing_and_repeats_nothing() {
    let (env, mut ws) = two_budgets_watched_from_the_start(false).await;

    // Commands keep coming over HTTP and NATS from four writers while the client
    // disconnects and reconnects.
    let writers = spawn_writers(&env);

    let mut received: Vec<i64> = Vec::new();
    let mut reconnects = 0;
    let total = 2 + WRITERS * PER_WRITER; // two limits, every reservation approved
    while received.len() < total {
        let event = next_event(&mut ws).await;
        received.push(event["position"].as_i64().unwrap());
        if received.len().is_multiple_of(37) {
            // Drop the connection mid-stream and resume from the last event received.
            ws = resume(&env, ws, *received.last().unwrap(), false).await;
            reconnects += 1;
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(reconnects >= 4, "the test reconnected {reconnects} times");
    let expected = budget_positions_in_commit_order(&env.database_url).await;
    assert_eq!(
        received, expected,
        "exactly the log's budget events, in commit order, once each"
    );
}

#[tokio::test]
async fn an_unauthenticated_or_badly_authenticated_upgrade_is_refused() {
    let env = TestEnv::start().await;
    match connect(&env, Some("not-a-token")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a bad token must be refused before the upgrade: {other:?}"),
    }

    // Without credentials only an `auth` frame is accepted.
    let mut ws = connect(&env, None).await.unwrap();
    send(&mut ws, json!({"type": "subscribe", "topics": ["budget"]})).await;
    let closed = next_frame(&mut ws).await;
    assert_eq!(closed["type"], "closed", "{closed}");
    assert!(
        closed["frame"]
            .as_str()
            .unwrap()
            .contains("authentication required"),
        "{closed}"
    );

    // ... and a valid one opens the connection.
    let mut ws = connect(&env, None).await.unwrap();
    send(&mut ws, json!({"type": "auth", "token": env.admin_token})).await;
    let answer = next_frame(&mut ws).await;
    assert_eq!(answer["type"], "authenticated", "{answer}");
    assert_eq!(answer["role"], "admin");
    subscribe(&mut ws, json!({"type": "subscribe", "topics": ["budget"]})).await;
    env.set_limit("org1", "p1", 10).await;
    assert_eq!(next_event(&mut ws).await["event_type"], "BudgetLimitSet");
}

#[tokio::test]
async fn bad_frames_get_an_error_naming_the_field_and_the_connection_stays() {
    let env = TestEnv::start().await;
    let mut ws = connect(&env, Some(&env.admin_token)).await.unwrap();
    send(
        &mut ws,
        json!({"type": "subscribe", "topics": ["budget", "gossip"]}),
    )
    .await;
    let error = next_frame(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["field"], "topics[1]", "{error}");
    send(
        &mut ws,
        json!({"type": "subscribe", "topics": ["budget"], "since": 999_999}),
    )
    .await;
    let error = next_frame(&mut ws).await;
    assert_eq!(error["field"], "since", "{error}");
    ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(next_frame(&mut ws).await["type"], "error");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_frame(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn permissions_decide_which_topics_arrive() {
    let env = TestEnv::start().await;
    let viewer = env.user_token("vera", auth::Role::Viewer).await;
    let auditor = env.user_token("aldo", auth::Role::Auditor).await;

    let mut as_viewer = connect(&env, Some(&viewer)).await.unwrap();
    send(
        &mut as_viewer,
        json!({"type": "subscribe", "topics": ["budget", "dlq", "audit"]}),
    )
    .await;
    let mut errors = Vec::new();
    let ack = loop {
        let frame = next_frame(&mut as_viewer).await;
        match frame["type"].as_str() {
            Some("error") => errors.push(frame["message"].as_str().unwrap().to_string()),
            Some("subscribed") => break frame,
            _ => panic!("unexpected {frame}"),
        }
    };
    assert_eq!(
        ack["topics"],
        json!(["budget"]),
        "only what a viewer may read"
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("read:dlq") && errors[1].contains("read:audit"));

    let mut as_auditor = connect(&env, Some(&auditor)).await.unwrap();
    subscribe(
        &mut as_auditor,
        json!({"type": "subscribe", "topics": ["audit"]}),
    )
    .await;

    // A breaker event (over NATS), then a budget event.
    let subject = env.command_subject("breaker", "record");
    let reply = env
        .service
        .request(
            subject,
            json!({"name": "llm", "outcome": "failure", "error": "timeout"})
                .to_string()
                .into(),
        )
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert!(reply.get("error").is_none(), "{reply}");
    env.set_limit("org1", "p1", 10).await;

    // The auditor sees both, in commit order; the viewer only the budget event.
    let mut topics = Vec::new();
    let second = loop {
        let event = next_event(&mut as_auditor).await;
        topics.push(event["topic"].as_str().unwrap().to_string());
        if event["topic"] == "budget" {
            break event;
        }
    };
    assert!(
        topics.len() >= 2 && topics[..topics.len() - 1].iter().all(|t| t == "breakers"),
        "breaker events first, then the budget event: {topics:?}"
    );
    let seen = next_event(&mut as_viewer).await;
    assert_eq!(seen["topic"], "budget", "{seen}");
    assert_eq!(seen["position"], second["position"]);
}

#[tokio::test]
async fn filters_narrow_events_to_one_tenant() {
    let env = TestEnv::start().await;
    let mut ws = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(
        &mut ws,
        json!({"type": "subscribe", "topics": ["budget"], "filter": {"tenant": "org2"}}),
    )
    .await;
    env.set_limit("org1", "p", 10).await;
    env.set_limit("org2", "p", 20).await;
    let event = next_event(&mut ws).await;
    assert_eq!(
        event["aggregate_id"], "org2/p",
        "org1 filtered out: {event}"
    );
}

/// A listener whose accepted sockets have a small send buffer, so a client that does not
/// read blocks the server's writes after a few frames instead of after megabytes.
fn small_buffer_listener() -> tokio::net::TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(1024).unwrap()
}

/// A WebSocket client on a socket with a small receive buffer (it never reads).
async fn connect_small_buffer(env: &TestEnv) -> Ws {
    let addr = env.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut request = ws_url(env).into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", env.admin_token)).unwrap(),
    );
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    ws
}

#[tokio::test]
async fn a_client_that_never_reads_does_not_stall_another_and_is_closed() {
    let env = TestEnv::start_on(
        small_buffer_listener(),
        &[("WS_SEND_TIMEOUT_SECONDS", "1"), ("WS_BUFFER_EVENTS", "64")],
    )
    .await;
    env.set_limit("org1", "p", 1_000_000).await;
    let mut stalled = connect_small_buffer(&env).await;
    subscribe(
        &mut stalled,
        json!({"type": "subscribe", "topics": ["budget"]}),
    )
    .await;
    let mut reader = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(
        &mut reader,
        json!({"type": "subscribe", "topics": ["budget"]}),
    )
    .await;

    // Enough events to fill both small socket buffers many times over.
    const EVENTS: usize = 400;
    let writer = {
        let base = env.base.clone();
        let token = env.admin_token.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..EVENTS {
                let response = http
                    .post(format!("{base}/budget/request"))
                    .bearer_auth(&token)
                    .json(&reserve("org1", "p", &format!("t{i}"), 1))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
            }
        })
    };
    let mut positions = Vec::new();
    for _ in 0..EVENTS {
        positions.push(next_event(&mut reader).await["position"].as_i64().unwrap());
    }
    writer.await.unwrap();
    let mut sorted = positions.clone();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        EVENTS,
        "the reading client got every event once"
    );

    // The stalled client was cut off rather than buffered without bound: what its socket
    // held arrives, then the connection ends.
    let slow_closed = &env.server.as_ref().unwrap().live.slow_closed;
    assert!(
        common::eventually(Duration::from_secs(20), || async {
            slow_closed.load(std::sync::atomic::Ordering::Relaxed) >= 1
        })
        .await,
        "the server closed the client that did not read"
    );
    let mut events = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stalled.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => events += 1,
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => break,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the stalled connection stayed open after {events} events"),
        }
    }
    assert!(events < EVENTS, "it got {events} events before the end");
}

/// The events of the next frame that carries any: one for an `event` frame, all of them
/// for an `events` frame (other frame types skipped). Also says which kind it was.
async fn next_events(ws: &mut Ws) -> (String, Vec<Value>) {
    loop {
        let frame = next_frame(ws).await;
        match frame["type"].as_str() {
            Some("event") => return ("event".into(), vec![frame]),
            Some("events") => {
                let events = frame["events"].as_array().expect("an array of events");
                assert!(
                    !events.is_empty(),
                    "an events frame is never empty: {frame}"
                );
                for event in events {
                    assert_eq!(event["type"], "event", "{event}");
                }
                return ("events".into(), events.clone());
            }
            Some("closed") => panic!("closed while waiting for events: {frame}"),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_batching_client_gets_every_event_once_in_order_across_since_reconnects() {
    let (env, mut ws) = two_budgets_watched_from_the_start(true).await;

    let writers = spawn_writers(&env);

    let mut received: Vec<i64> = Vec::new();
    let mut frames = 0;
    let mut reconnects = 0;
    let total = 2 + WRITERS * PER_WRITER;
    while received.len() < total {
        let (kind, events) = next_events(&mut ws).await;
        assert_eq!(kind, "events", "a batching client gets only events frames");
        frames += 1;
        received.extend(events.iter().map(|e| e["position"].as_i64().unwrap()));
        if frames % 5 == 1 {
            // Drop the connection mid-stream and resume after the last event received,
            // batching again. From the first frame on: on a loaded machine the batches grow
            // and all the events can come in fewer than five frames (CI once saw no
            // reconnect at all with `frames % 5 == 0`).
            ws = resume(&env, ws, *received.last().unwrap(), true).await;
            reconnects += 1;
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(reconnects >= 1, "the test reconnected {reconnects} times");
    let expected = budget_positions_in_commit_order(&env.database_url).await;
    assert_eq!(
        received, expected,
        "exactly the log's budget events, in commit order, once each"
    );

    // Catching up from the start, everything already committed is queued at once: it
    // comes in frames of many events, in the same order.
    let mut again = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(
        &mut again,
        json!({"type": "subscribe", "topics": ["budget"], "since": 0, "batch": true}),
    )
    .await;
    let mut replayed = Vec::new();
    let mut largest = 0;
    while replayed.len() < expected.len() {
        let (_, events) = next_events(&mut again).await;
        largest = largest.max(events.len());
        replayed.extend(events.iter().map(|e| e["position"].as_i64().unwrap()));
    }
    assert_eq!(replayed, expected);
    assert!(
        largest > 1,
        "a catch-up is batched: largest frame {largest}"
    );
}

#[tokio::test]
async fn permissions_and_filters_apply_inside_batches() {
    let env = TestEnv::start().await;
    let viewer = env.user_token("vera", auth::Role::Viewer).await;
    let auditor = env.user_token("aldo", auth::Role::Auditor).await;

    let mut as_viewer = connect(&env, Some(&viewer)).await.unwrap();
    send(
        &mut as_viewer,
        json!({"type": "subscribe", "topics": ["budget", "dlq", "audit"], "batch": true}),
    )
    .await;
    let mut errors = 0;
    let ack = loop {
        let frame = next_frame(&mut as_viewer).await;
        match frame["type"].as_str() {
            Some("error") => errors += 1,
            Some("subscribed") => break frame,
            _ => panic!("unexpected {frame}"),
        }
    };
    assert_eq!(ack["topics"], json!(["budget"]));
    assert_eq!(errors, 2);
    let mut as_auditor = connect(&env, Some(&auditor)).await.unwrap();
    subscribe(
        &mut as_auditor,
        json!({"type": "subscribe", "topics": ["audit"], "batch": true}),
    )
    .await;
    let mut org2_only = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(
        &mut org2_only,
        json!({"type": "subscribe", "topics": ["budget"], "filter": {"tenant": "org2"}, "batch": true}),
    )
    .await;

    // A breaker event, then budget events of two tenants.
    let subject = env.command_subject("breaker", "record");
    let reply = env
        .service
        .request(
            subject,
            json!({"name": "llm", "outcome": "failure", "error": "timeout"})
                .to_string()
                .into(),
        )
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert!(reply.get("error").is_none(), "{reply}");
    env.set_limit("org1", "p", 10).await;
    env.set_limit("org2", "p", 20).await;

    // The auditor: the breaker event(s), then both budget events.
    let mut seen = Vec::new();
    while seen.iter().filter(|(t, _)| t == "budget").count() < 2 {
        let (kind, events) = next_events(&mut as_auditor).await;
        assert_eq!(kind, "events");
        for e in events {
            seen.push((
                e["topic"].as_str().unwrap().to_string(),
                e["aggregate_id"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert!(
        seen[0].0 == "breakers" && seen.iter().any(|(_, id)| id == "org1/p"),
        "{seen:?}"
    );
    // The viewer: only the budget events, the breaker event left out of its batches.
    let mut budget = Vec::new();
    while budget.len() < 2 {
        let (kind, events) = next_events(&mut as_viewer).await;
        assert_eq!(kind, "events");
        for e in events {
            assert_eq!(e["topic"], "budget", "a viewer gets no breaker events: {e}");
            budget.push(e["aggregate_id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(budget, ["org1/p", "org2/p"]);
    // The filtered client: org2's event only.
    let (_, events) = next_events(&mut org2_only).await;
    let ids: Vec<_> = events.iter().map(|e| e["aggregate_id"].clone()).collect();
    assert_eq!(ids, [json!("org2/p")], "org1 filtered out of the batch");
}

#[tokio::test]
async fn a_client_that_does_not_ask_for_batches_gets_one_frame_per_event() {
    let env = TestEnv::start().await;
    let mut single = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(
        &mut single,
        json!({"type": "subscribe", "topics": ["budget"]}),
    )
    .await;
    let mut batched = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(
        &mut batched,
        json!({"type": "subscribe", "topics": ["budget"], "batch": true}),
    )
    .await;
    // Both subscribed before the first event: they must receive the same ones.
    env.set_limit("org1", "p", 1_000_000).await;
    const EVENTS: usize = 31; // the limit and 30 reservations
    for i in 0..EVENTS - 1 {
        let (status, answer) = env
            .post("/budget/request", reserve("org1", "p", &format!("t{i}"), 1))
            .await;
        assert!(status.is_success(), "{answer}");
    }
    let mut one_by_one = Vec::new();
    while one_by_one.len() < EVENTS {
        let (kind, events) = next_events(&mut single).await;
        assert_eq!(kind, "event", "no batches without asking");
        one_by_one.extend(events);
    }
    let mut in_batches = Vec::new();
    while in_batches.len() < EVENTS {
        let (kind, events) = next_events(&mut batched).await;
        assert_eq!(kind, "events");
        in_batches.extend(events);
    }
    assert_eq!(
        one_by_one, in_batches,
        "the same events, byte for byte the same objects"
    );

    // `"batch": false` switches back to one frame per event.
    subscribe(
        &mut batched,
        json!({"type": "subscribe", "topics": ["budget"], "batch": false}),
    )
    .await;
    env.post("/budget/request", reserve("org1", "p", "last", 1))
        .await;
    let (kind, events) = next_events(&mut batched).await;
    assert_eq!((kind.as_str(), events.len()), ("event", 1));

    // A bad value is an error naming the field; the connection stays.
    send(
        &mut batched,
        json!({"type": "subscribe", "topics": ["budget"], "batch": "yes"}),
    )
    .await;
    let error = next_frame(&mut batched).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["field"], "batch", "{error}");
    send(&mut batched, json!({"type": "ping"})).await;
    assert_eq!(next_frame(&mut batched).await["type"], "pong");
}

async fn active_users(env: &TestEnv) -> i64 {
    let text = env.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix("active_users "))
        .expect("active_users is exported")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_silent_connection_is_closed_and_leaves_the_active_users_gauge() {
    let env = TestEnv::start_with(&[("WS_PING_SECONDS", "1"), ("WS_IDLE_SECONDS", "2")]).await;
    let mut silent = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(
        &mut silent,
        json!({"type": "subscribe", "topics": ["budget"]}),
    )
    .await;
    let mut lively = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(
        &mut lively,
        json!({"type": "subscribe", "topics": ["budget"]}),
    )
    .await;
    assert_eq!(active_users(&env).await, 2);

    // `lively` keeps reading, so its client answers the server's pings; `silent` reads
    // nothing (no pongs) for longer than the idle timeout.
    let keep_reading = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        while tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(200), lively.next()).await;
        }
        lively
    });
    let mut lively = keep_reading.await.unwrap();
    let closed = next_frame(&mut silent).await;
    assert_eq!(closed["type"], "closed", "{closed}");
    assert!(
        closed["frame"].as_str().unwrap().contains("idle"),
        "{closed}"
    );
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            active_users(&env).await == 1
        })
        .await,
        "the closed connection left the gauge"
    );
    send(&mut lively, json!({"type": "ping"})).await;
    assert_eq!(
        next_frame(&mut lively).await["type"],
        "pong",
        "the lively one is open"
    );
}

/// Waits (up to 10 s) for the server to close `ws`, skipping whatever else arrives.
async fn closed_frame(ws: &mut Ws) -> Value {
    let closed = async {
        loop {
            let frame = next_frame(ws).await;
            if frame["type"] == "closed" {
                return frame;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the connection is closed within 10 s")
}

/// A connection lives as long as its token: one authenticated in the upgrade and one
/// authenticated by an `auth` frame are both closed, with the reason, once it expires.
#[tokio::test]
async fn a_connection_is_closed_when_its_token_expires() {
    let env = TestEnv::start().await;
    let keys = auth::TokenKeys::new(common::JWT_SECRET.as_bytes(), 3);
    let short = keys
        .issue(
            &auth::Grant::unscoped("admin", auth::Role::Admin),
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    let mut by_header = connect(&env, Some(&short)).await.unwrap();
    let mut by_frame = connect(&env, None).await.unwrap();
    send(&mut by_frame, json!({"type": "auth", "token": short})).await;
    assert_eq!(next_frame(&mut by_frame).await["type"], "authenticated");
    for ws in [&mut by_header, &mut by_frame] {
        subscribe(ws, json!({"type": "subscribe", "topics": ["budget"]})).await;
    }
    // Open until then: events still arrive on both.
    env.set_limit("org1", "p1", 10).await;
    for ws in [&mut by_header, &mut by_frame] {
        assert_eq!(next_event(ws).await["event_type"], "BudgetLimitSet");
    }
    for ws in [&mut by_header, &mut by_frame] {
        let closed = closed_frame(ws).await;
        assert!(
            closed["frame"].as_str().unwrap().contains("token expired"),
            "{closed}"
        );
    }
}

/// The largest dead letter the API takes (1 MiB of binary payload, as base64, and 64 KiB
/// of headers) makes an event as large as any the write side appends. It must not stall
/// the read side: it reaches JetStream, the read model and a WebSocket client, and a
/// command after it is readable with `min_position` within a second (the server's wait).
#[tokio::test]
async fn a_maximal_dead_letter_flows_through_and_does_not_hold_up_the_next_command() {
    use base64::Engine;
    let env = TestEnv::start_with(&[("MIN_POSITION_WAIT_MS", "1000")]).await;
    let mut ws = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(&mut ws, json!({"type": "subscribe", "topics": ["dlq"]})).await;

    let bytes: Vec<u8> = (0..domain::dlq::MAX_PAYLOAD_BYTES)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let headers: serde_json::Map<String, Value> = (0..15)
        .map(|i| (format!("X-Big-{i}"), json!("v".repeat(4000))))
        .collect();
    let id = format!("big-{}", uuid::Uuid::new_v4().simple());
    let (status, captured) = env
        .post(
            "/dlq",
            json!({"id": id, "original_subject": "work.big",
                   "payload": base64::engine::general_purpose::STANDARD.encode(&bytes),
                   "encoding": "base64", "error": "too big to handle", "attempts": 5,
                   "headers": headers}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{captured}");

    env.set_limit("org1", "after-big", 1000).await;
    let (status, reserved) = env
        .post("/budget/request", reserve("org1", "after-big", "t1", 10))
        .await;
    assert_eq!(status, StatusCode::OK, "{reserved}");
    let (status, state) = env
        .get(&format!(
            "/budget/state?tenant_id=org1&project_id=after-big&min_position={}",
            reserved["position"]
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the command after the big dead letter is applied within the 1 s wait: {state}"
    );

    // The read model keeps it byte-exact...
    let (status, entry) = env
        .get(&format!("/dlq/{id}?min_position={}", captured["position"]))
        .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    let kept = domain::dlq::decode_payload(
        serde_json::from_value(entry["encoding"].clone()).unwrap(),
        entry["payload"].as_str().unwrap(),
    )
    .unwrap();
    assert!(kept == bytes, "the read model holds the payload byte-exact");
    // ...a WebSocket client receives it...
    let event = next_event(&mut ws).await;
    assert_eq!(event["aggregate_id"], id);
    assert_eq!(event["event_type"], "DlqEntryCaptured");
    assert_eq!(event["payload"]["payload"], entry["payload"]);
    // ...and JetStream holds it.
    let on_stream = common::stream_messages(&env.stream()).await;
    assert!(on_stream
        .iter()
        .any(|m| m.envelope.aggregate_id == id && m.envelope.event_type == "DlqEntryCaptured"));
}

/// A graceful stop (SIGTERM) closes every WebSocket with 1001 "going away", so dashboards
/// resume with `since` on another replica instead of seeing the connection cut.
#[tokio::test]
async fn a_graceful_stop_closes_websockets_with_going_away() {
    let mut env = TestEnv::start().await;
    let mut ws = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(&mut ws, json!({"type": "subscribe", "topics": ["budget"]})).await;
    let server = env.server.take().unwrap();
    let stopping = tokio::spawn(server.stop_gracefully(Duration::from_secs(10)));
    let frame = next_frame(&mut ws).await;
    assert_eq!(frame["type"], "closed", "{frame}");
    let close = frame["frame"].as_str().unwrap();
    assert!(
        close.contains("Away") && close.contains("server shutting down"),
        "{close}"
    );
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the stop ends within its grace period")
        .unwrap();
}

/// The next `event` frame's position, or of each event of an `events` frame.
async fn next_positions(ws: &mut Ws) -> Vec<i64> {
    loop {
        let frame = next_frame(ws).await;
        match frame["type"].as_str() {
            Some("event") => return vec![frame["position"].as_i64().unwrap()],
            Some("events") => {
                return frame["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["position"].as_i64().unwrap())
                    .collect()
            }
            Some("closed") => panic!("closed while waiting for an event: {frame}"),
            _ => continue,
        }
    }
}

/// `subscribed` carries the position the subscription stands at: a client that has
/// received nothing yet can resume from it and miss nothing; after `since`, it is where
/// the catch-up runs to.
#[tokio::test]
async fn the_subscribed_frame_says_where_the_subscription_stands() {
    let env = TestEnv::start().await;
    let mut watcher = connect(&env, Some(&env.admin_token)).await.unwrap();
    let ack = subscribe(
        &mut watcher,
        json!({"type": "subscribe", "topics": ["budget"]}),
    )
    .await;
    assert!(ack["position"].is_null(), "an empty log: {ack}");

    env.set_limit("org1", "p1", 1000).await;
    let first = next_event(&mut watcher).await["position"].as_i64().unwrap();
    // A new subscription stands at the newest event the server has passed on.
    let mut fresh = connect(&env, Some(&env.admin_token)).await.unwrap();
    let ack = subscribe(
        &mut fresh,
        json!({"type": "subscribe", "topics": ["budget"]}),
    )
    .await;
    assert_eq!(ack["position"], first, "{ack}");
    assert!(ack["since"].is_null(), "{ack}");
    let resume_from = ack["position"].as_i64().unwrap();
    // Dropped before any event arrived; two reservations meanwhile.
    drop(fresh);
    let (_, a) = env
        .post("/budget/request", reserve("org1", "p1", "t1", 10))
        .await;
    let (_, b) = env
        .post("/budget/request", reserve("org1", "p1", "t2", 20))
        .await;
    let made = [
        a["position"].as_i64().unwrap(),
        b["position"].as_i64().unwrap(),
    ];
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(next_positions(&mut watcher).await);
    }
    let newest = *seen.last().unwrap();

    // Resuming from the acknowledged position gets exactly what was missed, and the ack
    // says the catch-up runs to the newest event.
    let (mut resumed, ack) = subscribed_since(&env, resume_from, true).await;
    assert_eq!(ack["since"], resume_from, "{ack}");
    assert_eq!(ack["position"], newest, "{ack}");
    let mut caught_up = Vec::new();
    while caught_up.last() != Some(&newest) {
        caught_up.extend(next_positions(&mut resumed).await);
    }
    assert_eq!(
        caught_up, seen,
        "the events after the ack's position, once each"
    );
    let mut sorted = caught_up.clone();
    sorted.sort();
    assert_eq!(sorted, made);

    // Every acknowledgement carries it, an unsubscribe's too.
    send(
        &mut resumed,
        json!({"type": "unsubscribe", "topics": ["budget"]}),
    )
    .await;
    let ack = loop {
        let frame = next_frame(&mut resumed).await;
        if frame["type"] == "subscribed" {
            break frame;
        }
    };
    assert_eq!(ack["topics"], json!([]), "{ack}");
    assert_eq!(ack["position"], newest, "{ack}");
}

/// `stats` frames carry the open dead letters and those captured and resolved per minute,
/// read once per interval for every connection of the process.
#[tokio::test]
async fn stats_frames_carry_the_dead_letter_trend() {
    let env = TestEnv::start_with(&[("WS_STATS_SECONDS", "1")]).await;
    env.dead_letters(&["ws-trend-1", "ws-trend-2"], &["ws-trend-1"])
        .await;
    env.wait_for_own_writes().await;

    let viewer = env.user_token("vic", auth::Role::Viewer).await;
    let mut clients = Vec::new();
    for token in [&env.admin_token, &viewer] {
        let mut ws = connect(&env, Some(token)).await.unwrap();
        subscribe(&mut ws, json!({"type": "subscribe", "topics": ["stats"]})).await;
        clients.push(ws);
    }
    for ws in &mut clients {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let dead_letters = loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no trend within 10 s"
            );
            let frame = next_frame(ws).await;
            if frame["type"] == "stats" && frame["dead_letters"]["open"] == 1 {
                break frame["dead_letters"].clone();
            }
        };
        let minutes = dead_letters["minutes"].as_array().unwrap();
        let sum = |field: &str| -> i64 { minutes.iter().map(|m| m[field].as_i64().unwrap()).sum() };
        assert_eq!((sum("captured"), sum("resolved")), (2, 1), "{dead_letters}");
        assert!(
            minutes.iter().all(|m| m["minute"].is_string()),
            "{dead_letters}"
        );
    }
}

/// The Users page follows account changes live: an admin's `users` subscription receives
/// each change made over HTTP (never a password), and a budget event is not on it.
#[tokio::test]
async fn account_changes_arrive_on_the_users_topic_for_admins_only() {
    let env = TestEnv::start().await;
    let viewer = env.user_token("vera", auth::Role::Viewer).await;

    let mut as_viewer = connect(&env, Some(&viewer)).await.unwrap();
    send(
        &mut as_viewer,
        json!({"type": "subscribe", "topics": ["users"]}),
    )
    .await;
    let refused = next_frame(&mut as_viewer).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("admin:users"),
        "{refused}"
    );

    let mut as_admin = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(
        &mut as_admin,
        json!({"type": "subscribe", "topics": ["users"]}),
    )
    .await;
    env.set_limit("org1", "p1", 10).await;
    let (status, body) = env
        .call(
            Method::PATCH,
            "/users/vera",
            Some(&env.admin_token),
            Some(json!({"tenants": ["org1"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let event = next_event(&mut as_admin).await;
    assert_eq!(
        event["topic"], "users",
        "the budget event is not on it: {event}"
    );
    assert_eq!(event["aggregate_type"], "UserAccount");
    assert_eq!(event["aggregate_id"], "vera");
    assert_eq!(event["event_type"], "UserTenantsChanged");
    assert_eq!(event["payload"]["to"], json!(["org1"]), "{event}");
}

/// A page's read and its subscription meet exactly: the socket has delivered an event the
/// read model has not applied yet (the projector is held back), so a read answers a
/// position before it; a subscription from where the socket stands would miss the event,
/// one from the read's position (`from`, beside `since`) replays it. Once applied, a read
/// stands past it.
#[tokio::test]
async fn a_read_followed_from_its_read_position_gets_what_the_read_model_had_not_applied() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "p1", 1000).await;
    env.wait_for_own_writes().await;
    let mut ws = connect(&env, Some(&env.admin_token)).await.unwrap();
    subscribe(&mut ws, json!({"type": "subscribe", "topics": ["budget"]})).await;

    // The budget read model locked against writes (reads go on): the projector cannot
    // apply the next event. A table lock takes no transaction id, so the publisher (whose
    // horizon waits for transactions with one) still puts the event on the stream.
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE read_budgets IN SHARE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let (_, reserved) = env
        .post("/budget/request", reserve("org1", "p1", "t1", 100))
        .await;
    let position = reserved["position"].as_i64().unwrap();
    assert_eq!(next_event(&mut ws).await["position"], position);

    let read = |path: &'static str| {
        let env = &env;
        async move {
            let response = env
                .http
                .get(env.url(path))
                .bearer_auth(&env.admin_token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let header: i64 = response.headers()["x-read-position"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["read_position"], header, "{body}");
            (header, body)
        }
    };
    let (read_position, status) = read("/governance/status").await;
    assert_eq!(status["rows"][0]["reserved"], 0, "not applied: {status}");
    let before: bool = sqlx::query_scalar(
        "SELECT (r.transaction_id, r.global_position) < (e.transaction_id, e.global_position)
           FROM events r, events e WHERE r.global_position = $1 AND e.global_position = $2",
    )
    .bind(read_position)
    .bind(position)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(before, "the read stands before the event it does not show");
    for path in [
        "/budget/state?tenant_id=org1&project_id=p1",
        "/budget/reservations?tenant_id=org1&project_id=p1",
        "/budget/usage?tenant_id=org1&project_id=p1",
        "/dlq",
        "/dlq/groups",
        "/stats",
    ] {
        assert_eq!(read(path).await.0, read_position, "{path}");
    }

    // A position no event has is refused, naming it, and the subscription stays.
    send(
        &mut ws,
        json!({"type": "subscribe", "topics": ["budget"], "since": position, "from": [999_999]}),
    )
    .await;
    let error = next_frame(&mut ws).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["field"], "from[0]", "{error}");

    // Where the socket stands is past the event; the read's position is before it: the
    // replay starts after the earlier of the two, and carries the event again.
    let ack = subscribe(
        &mut ws,
        json!({"type": "subscribe", "topics": ["budget"], "since": position, "from": [read_position]}),
    )
    .await;
    assert_eq!(ack["since"], read_position, "{ack}");
    assert_eq!(next_event(&mut ws).await["position"], position);
    // The other way round (the read past where the socket stands) starts at `since`.
    let ack = subscribe(
        &mut ws,
        json!({"type": "subscribe", "topics": ["budget"], "since": read_position, "from": [position]}),
    )
    .await;
    assert_eq!(ack["since"], read_position, "{ack}");

    hold.rollback().await.unwrap();
    let (_, answer) = env
        .get(&format!("/governance/status?min_position={position}"))
        .await;
    assert_eq!(answer["rows"][0]["reserved"], 100, "{answer}");
    assert_eq!(answer["read_position"], position, "{answer}");
}

/// The audit log's reads answer where they stand in commit order: an event whose position
/// is below the page's last row but whose transaction commits after the read is not in
/// the page, and comes after the read's position in commit order, so a subscription from
/// there delivers it.
#[tokio::test]
async fn an_audit_read_answers_a_position_before_every_event_it_cannot_see() {
    // Holds a transaction open: on a cluster of its own.
    let env = TestEnv::start_alone(&[]).await;
    env.set_limit("org1", "p1", 1000).await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    // A transaction takes a position first and commits last.
    let mut late = pool.begin().await.unwrap();
    let late_position: i64 = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('AuditTest', 'late', 1, 'Noted', '1', '{}', '{}') RETURNING global_position",
    )
    .fetch_one(&mut *late)
    .await
    .unwrap();
    env.set_limit("org1", "p2", 1000).await;
    let (status, page) = env.get("/audit/events").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let shown: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["global_position"].as_i64().unwrap())
        .collect();
    assert!(!shown.contains(&late_position), "not committed: {shown:?}");
    assert!(
        shown.iter().any(|p| *p > late_position),
        "a later position is shown"
    );
    let read_position = page["read_position"].as_i64().unwrap();
    late.commit().await.unwrap();

    let mut ws = connect(&env, Some(&env.admin_token)).await.unwrap();
    let ack = subscribe(
        &mut ws,
        json!({"type": "subscribe", "topics": ["audit"], "since": read_position}),
    )
    .await;
    assert_eq!(ack["since"], read_position);
    let mut delivered = Vec::new();
    while !delivered.contains(&late_position) {
        delivered.push(next_event(&mut ws).await["position"].as_i64().unwrap());
    }
    assert!(
        delivered
            .iter()
            .all(|p| !shown.contains(p) || *p > read_position),
        "nothing before the read's position again: {delivered:?}"
    );
}

/// Any signed-in user can ask for a replay from the start of the log or from a read hours
/// old: one further behind the newest event than the server replays is refused, naming the
/// field that asked for it (the client then reads its pages again), and the subscription
/// stays as it was. Positions in `since` and `from` are looked up together.
#[tokio::test]
async fn a_replay_from_too_far_behind_is_refused_naming_the_field() {
    let env = TestEnv::start().await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    // 10,002 events in one transaction (the replay bound is 10,000 events).
    let positions: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT 'ReplayTest', 'a' || g, 1, 'Noted', '1', '{}', '{}'
           FROM generate_series(1, 10002) g
         RETURNING global_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let (oldest, newest) = (positions[0], *positions.last().unwrap());

    let mut ws = connect(&env, Some(&env.admin_token)).await.unwrap();
    for (frame, field) in [
        (json!({"since": 0}), "since"),
        (
            json!({"since": newest, "from": [newest, oldest]}),
            "from[1]",
        ),
        (json!({"from": [999_999_999, oldest]}), "from[0]"),
    ] {
        let mut frame = frame;
        frame["type"] = json!("subscribe");
        frame["topics"] = json!(["budget"]);
        send(&mut ws, frame.clone()).await;
        let error = next_frame(&mut ws).await;
        assert_eq!(error["type"], "error", "{frame}: {error}");
        assert_eq!(error["field"], field, "{frame}: {error}");
    }
    // A little less far behind is replayed.
    let ack = subscribe(
        &mut ws,
        json!({"type": "subscribe", "topics": ["audit"], "since": newest, "from": [positions[2]]}),
    )
    .await;
    assert_eq!(ack["since"], positions[2], "{ack}");
    assert_eq!(next_event(&mut ws).await["position"], positions[3]);
}

/// A replay is a read of up to 10,000 events, so a user may ask for a limited number of them
/// (`WS_REPLAYS_PER_MINUTE`, a quarter at once): past that, a `subscribe` with a position gets
/// an error naming the field, with the time to wait, over all of that user's connections.
/// A subscribe without a position still works, and another user has replays of their own.
#[tokio::test]
async fn replays_past_a_users_limit_are_refused_naming_the_field() {
    // 8 a minute: 2 at once.
    let env = TestEnv::start_with(&[("WS_REPLAYS_PER_MINUTE", "8")]).await;
    // An event to replay from.
    env.set_limit("t-replay", "p", 10).await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let newest: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;

    let replay = |field: &str| {
        let mut frame = json!({"type": "subscribe", "topics": ["budget"]});
        frame[field] = if field == "from" {
            json!([newest])
        } else {
            json!(newest)
        };
        frame
    };
    let mut first = connect(&env, Some(&env.admin_token)).await.unwrap();
    let mut second = connect(&env, Some(&env.admin_token)).await.unwrap();
    // The burst: one replay on each connection.
    assert_eq!(
        subscribe(&mut first, replay("since")).await["since"],
        newest
    );
    assert_eq!(
        subscribe(&mut second, replay("from")).await["since"],
        newest
    );
    // The third, on either connection, is refused, naming the field that asked for it.
    for (ws, field, named) in [
        (&mut first, "since", "since"),
        (&mut second, "from", "from[0]"),
    ] {
        send(ws, replay(field)).await;
        let error = next_frame(ws).await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["field"], named, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("too many replays"), "{message}");
        assert!(message.contains("retry after"), "{message}");
    }
    // Without a position: not a replay, answered.
    let ack = subscribe(&mut first, json!({"type": "subscribe", "topics": ["dlq"]})).await;
    assert_eq!(ack["since"], Value::Null, "{ack}");
    // Another user has a limit of their own.
    let viewer = env.user_token("replay-viewer", auth::Role::Viewer).await;
    let mut theirs = connect(&env, Some(&viewer)).await.unwrap();
    assert_eq!(
        subscribe(&mut theirs, replay("since")).await["since"],
        newest
    );
}
