//! The dead-letter queue against real PostgreSQL and NATS: automatic capture from
//! max-deliveries advisories, requeue, HTTP and NATS validation, restarts, redrive.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::{self, AckKind};
use base64::Engine;
use common::*;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The test's work stream (`WORK_<prefix>`, the one its control plane watches) on
/// `<prefix>.task.>`, and a worker consumer that gives up after `max_deliver`.
async fn work_stream(prefix: &str, max_deliver: i64) -> jetstream::consumer::PullConsumer {
    let js = jetstream::new(common::connect(&nats_url()).await.unwrap());
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: work_stream_name(prefix),
            subjects: vec![format!("{prefix}.task.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    stream
        .create_consumer(pull::Config {
            durable_name: Some("worker".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(2),
            max_deliver,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// A received message: payload and headers.
type Received = (Vec<u8>, Vec<(String, String)>);

/// What the worker saw of requeued messages (they carry `Cp-Dlq-Entry`).
#[derive(Default)]
struct Seen {
    requeued: AtomicUsize,
    requeued_messages: std::sync::Mutex<Vec<Received>>,
}

/// A worker that NAKs every first-time message (so each dies after `max_deliver`) and
/// acknowledges requeued ones, recording them.
fn run_worker(
    consumer: jetstream::consumer::PullConsumer,
) -> (Arc<Seen>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Seen::default());
    let task = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut messages = consumer.messages().await.unwrap();
            while let Some(Ok(message)) = messages.next().await {
                let requeued = message
                    .headers
                    .as_ref()
                    .is_some_and(|h| h.get("Cp-Dlq-Entry").is_some());
                if requeued {
                    let headers = message
                        .headers
                        .as_ref()
                        .map(|h| {
                            h.iter()
                                .flat_map(|(k, vs)| {
                                    vs.iter()
                                        .map(move |v| (k.to_string(), v.as_str().to_string()))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    seen.requeued_messages
                        .lock()
                        .unwrap()
                        .push((message.payload.to_vec(), headers));
                    seen.requeued.fetch_add(1, Ordering::SeqCst);
                    message.ack().await.unwrap();
                } else {
                    message.ack_with(AckKind::Nak(None)).await.unwrap();
                }
            }
        })
    };
    (seen, task)
}

async fn publish(prefix: &str, payload: &[u8], trace: &str) {
    let js = jetstream::new(common::connect(&nats_url()).await.unwrap());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Trace-Id", trace);
    js.publish_with_headers(
        format!("{prefix}.task.execute"),
        headers,
        payload.to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// GETs `url` until `done` holds for the JSON answer or `timeout` passes; returns whether
/// it held and the last answer.
async fn poll_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> (bool, Value) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let answer: Value = match http.get(url).bearer_auth(token).send().await {
            Ok(response) => response.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if done(&answer) {
            return (true, answer);
        }
        if tokio::time::Instant::now() >= deadline {
            return (false, answer);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The open entries, once there are `n` of them (panics after a generous wait).
async fn wait_for_open(env: &TestEnv, base: &str, token: &str, n: i64) -> Vec<Value> {
    let url = format!("{base}/dlq?resolved=false&limit=500");
    let (found, answer) = poll_json(&env.http, &url, token, Duration::from_secs(60), |a| {
        a["total"].as_i64() == Some(n)
    })
    .await;
    assert!(found, "{n} open entries appear (last seen: {answer})");
    answer["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_naked_until_max_deliver_is_captured_and_a_requeue_reaches_the_worker_once() {
    let env = TestEnv::start().await;
    let consumer = work_stream(&env.prefix, 3).await;
    let (seen, worker) = run_worker(consumer);
    let binary = [0u8, 0xff, 0x10, b'{', 0x80];
    publish(&env.prefix, br#"{"task":"t1","n":1}"#, "trace-json").await;
    publish(&env.prefix, &binary, "trace-binary").await;

    let items = wait_for_open(&env, &env.base, &env.admin_token, 2).await;
    let work = work_stream_name(&env.prefix);
    let json_id = format!("js:{work}:1");
    let json_item = items
        .iter()
        .find(|i| i["id"] == json_id)
        .expect("entry of seq 1");
    assert_eq!(
        json_item["original_subject"],
        format!("{}.task.execute", env.prefix)
    );
    assert_eq!(json_item["payload"], json!({"task": "t1", "n": 1}));
    assert_eq!(json_item["encoding"], "json");
    assert_eq!(json_item["attempts"], 3);
    assert_eq!(json_item["consumer"], "worker");
    assert_eq!(json_item["stream_seq"], 1);
    assert!(json_item["error"]
        .as_str()
        .unwrap()
        .contains("max deliveries"));

    let (status, binary_entry) = env.get(&format!("/dlq/js:{work}:2")).await;
    assert_eq!(status, StatusCode::OK, "{binary_entry}");
    assert_eq!(binary_entry["encoding"], "base64");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(binary_entry["payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, binary, "a non-JSON payload is kept byte-exact");
    assert_eq!(binary_entry["headers"]["Trace-Id"], json!(["trace-binary"]));

    // Requeue: the worker gets the message again, exactly once, with its headers.
    let (status, resolved) = env
        .post(
            &format!("/dlq/{json_id}/resolve"),
            json!({"note": "fixed the handler", "requeue": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["resolved"], true);
    assert_eq!(resolved["requeue_count"], 1);
    assert_eq!(resolved["resolved_by"], "http:admin");
    assert!(
        eventually(Duration::from_secs(20), || async {
            seen.requeued.load(Ordering::SeqCst) >= 1
        })
        .await,
        "the worker receives the requeued message"
    );
    {
        let received = seen.requeued_messages.lock().unwrap();
        let (payload, headers) = &received[0];
        assert_eq!(
            payload, br#"{"task":"t1","n":1}"#,
            "the exact original bytes"
        );
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("Trace-Id").as_deref(), Some("trace-json"));
        assert_eq!(header("Cp-Dlq-Entry").as_deref(), Some(json_id.as_str()));
        assert_eq!(
            header("Nats-Msg-Id"),
            Some(format!("dlq/{json_id}/1")),
            "the requeue's id makes a retried publish a duplicate"
        );
    }

    // A retried requeue (same Nats-Msg-Id) is dropped by JetStream: still one delivery.
    let js = jetstream::new(env.nats.clone());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("dlq/{json_id}/1").as_str());
    headers.insert("Cp-Dlq-Entry", json_id.as_str());
    let ack = js
        .publish_with_headers(
            format!("{}.task.execute", env.prefix),
            headers,
            br#"{"task":"t1","n":1}"#.to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.duplicate, "the retried requeue is a duplicate");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        seen.requeued.load(Ordering::SeqCst),
        1,
        "the worker received the requeued message exactly once"
    );

    // Resolving twice is a conflict; the entry shows who, the note and its history.
    let (status, body) = env
        .post(&format!("/dlq/{json_id}/resolve"), json!({"requeue": true}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let position = resolved["position"].as_i64().unwrap();
    let (status, entry) = env
        .get(&format!("/dlq/{json_id}?min_position={position}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["note"], "fixed the handler");
    assert_eq!(entry["requeue_count"], 1);
    let actions: Vec<&str> = entry["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["captured", "requeued"]);
    assert_eq!(
        seen.requeued.load(Ordering::SeqCst),
        1,
        "the refused second resolve published nothing"
    );
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_a_400_naming_the_field_and_permissions_hold() {
    let env = TestEnv::start().await;
    let cases: Vec<(Method, &str, Option<Value>, &str)> = vec![
        (
            Method::POST,
            "/dlq",
            Some(json!({"payload": 1, "error": "e", "attempts": 1})),
            "original_subject",
        ),
        (
            Method::POST,
            "/dlq",
            Some(json!({"original_subject": "a.*", "payload": 1, "error": "e", "attempts": 1})),
            "original_subject",
        ),
        (
            Method::POST,
            "/dlq",
            Some(json!({"original_subject": "a", "payload": 1, "error": "e", "attempts": -1})),
            "attempts",
        ),
        (
            Method::POST,
            "/dlq",
            Some(json!({"original_subject": "a", "payload": 1, "error": "", "attempts": 1})),
            "error",
        ),
        (
            Method::POST,
            "/dlq",
            Some(
                json!({"original_subject": "a", "payload": "@@", "encoding": "base64", "error": "e", "attempts": 1}),
            ),
            "payload",
        ),
        (
            Method::POST,
            "/dlq",
            Some(
                json!({"original_subject": "a", "payload": 1, "encoding": "utf16", "error": "e", "attempts": 1}),
            ),
            "encoding",
        ),
        (
            Method::POST,
            "/dlq",
            Some(
                json!({"original_subject": "a", "payload": 1, "error": "e", "attempts": 1, "headers": {"Bad Name": "x"}}),
            ),
            "headers",
        ),
        (
            Method::POST,
            "/dlq",
            Some(
                json!({"original_subject": "a", "payload": 1, "error": "e", "attempts": 1, "id": "a/b"}),
            ),
            "id",
        ),
        (
            Method::POST,
            "/dlq",
            Some(json!({"original_subject": "a", "payload": 1, "error": "e\u{0}", "attempts": 1})),
            "error",
        ),
        (
            Method::GET,
            "/dlq?error_contains=%00",
            None,
            "error_contains",
        ),
        (
            Method::GET,
            "/dlq?since=%2B200000-01-01T00:00:00Z",
            None,
            "since",
        ),
        (
            Method::GET,
            "/dlq?min_position=999999999",
            None,
            "min_position",
        ),
        (Method::GET, "/dlq?limit=0", None, "limit"),
        (Method::GET, "/dlq?offset=-1", None, "offset"),
        (Method::GET, "/dlq?resolved=maybe", None, "resolved"),
        (Method::GET, "/dlq?since=yesterday", None, "since"),
        (Method::GET, "/dlq?bogus=1", None, "bogus"),
        (Method::GET, "/dlq/a%20b", None, "id"),
        (
            Method::POST,
            "/dlq/x1/resolve",
            Some(json!({"requeue": "yes"})),
            "requeue",
        ),
        (
            Method::POST,
            "/dlq/redrive",
            Some(json!({"rate": 0})),
            "rate",
        ),
        (
            Method::POST,
            "/dlq/redrive",
            Some(json!({"rate": 5, "filter": {"subjekt": "a"}})),
            "filter.subjekt",
        ),
        (Method::GET, "/dlq/redrive/not-a-uuid", None, "job"),
    ];
    for (method, path, body, field) in cases {
        let (status, answer) = env
            .call(method.clone(), path, Some(&env.admin_token), body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{method} {path}: {answer}");
    }
    let (status, body) = env
        .post("/dlq/nothing-here/resolve", json!({"note": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // An explicit capture is idempotent per id; resolving twice is a 409.
    let capture = json!({"id": "manual-1", "original_subject": "orders.created", "payload": {"order": 7},
                         "error": "schema mismatch", "attempts": 4, "headers": {"A": ["1", "2"]}});
    let (status, first) = env.post("/dlq", capture.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = env.post("/dlq", capture).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["changed"], false);
    let (status, body) = env
        .post("/dlq/manual-1/resolve", json!({"note": "won't fix"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["requeue_count"], 0);
    let (status, body) = env
        .post("/dlq/manual-1/resolve", json!({"note": "again"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");

    // Lists: filters and the {"items","total"} shape.
    let position = body_position(&env).await;
    let (status, list) = env
        .get(&format!("/dlq?resolved=true&subject=orders.created&error_contains=SCHEMA&min_position={position}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["payload"], json!({"order": 7}));
    assert!(
        list["items"][0].get("history").is_none(),
        "lists leave out the history"
    );
    let (_, list) = env.get("/dlq?resolved=false").await;
    assert_eq!(list["total"], 0, "{list}");

    // Permissions: a viewer sees no dead letters; a service may capture but not read.
    let viewer = env.user_token("viewer1", auth::Role::Viewer).await;
    let (status, _) = env.call(Method::GET, "/dlq", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = env
        .call(Method::GET, "/dlq/manual-1", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let service = env.user_token("svc1", auth::Role::Service).await;
    let (status, body) = env
        .call(
            Method::POST,
            "/dlq",
            Some(&service),
            Some(json!({"original_subject": "a.b", "payload": "plain", "encoding": "text", "error": "e", "attempts": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["payload"], "plain");
    let (status, _) = env.call(Method::GET, "/dlq", Some(&service), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = env.call(Method::GET, "/dlq", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // NATS: a capture is answered with the entry; bad input with the field.
    let subject = env.command_subject("dlq", "capture");
    let reply = env
        .service
        .request(
            subject.clone(),
            serde_json::to_vec(&json!({"original_subject": "svc.job", "payload": {"x": 1}, "error": "gave up", "attempts": 2,
                                       "stream": "S1", "stream_seq": 9}))
            .unwrap()
            .into(),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
    // The caller's own entry for that stream sequence (js:S1:9 is the automatic capture's).
    let id = answer["id"].as_str().unwrap_or_default();
    assert!(id.starts_with("cap:") && id.ends_with(":S1:9"), "{answer}");
    assert_eq!(answer["changed"], true);
    for (bytes, field) in [
        (b"{not json".to_vec(), "body"),
        (
            br#"{"original_subject":"a","payload":1,"error":"e"}"#.to_vec(),
            "attempts",
        ),
    ] {
        let reply = env
            .service
            .request(subject.clone(), bytes.into())
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
}

/// The newest event's position (for `min_position`).
async fn body_position(env: &TestEnv) -> i64 {
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (position,): (i64,) = sqlx::query_as("SELECT max(global_position) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    position
}

/// A second control plane on the test's database and prefix (after the first stopped).
async fn restart(env: &TestEnv) -> (controlplane::Server, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = controlplane::start(config(&env.database_url, &env.prefix), listener)
        .await
        .expect("the control plane starts again");
    let base = format!("http://{}", server.addr);
    (server, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_that_die_while_the_control_plane_is_down_are_captured_after_restart() {
    let mut env = TestEnv::start().await;
    let consumer = work_stream(&env.prefix, 2).await;
    let (_seen, worker) = run_worker(consumer);
    for i in 1..=3 {
        publish(&env.prefix, format!(r#"{{"job":{i}}}"#).as_bytes(), "t").await;
    }
    wait_for_open(&env, &env.base, &env.admin_token, 3).await;

    // Down: the advisories of the next dead messages wait in the advisory stream.
    env.server.take().unwrap().shutdown();
    for i in 4..=7 {
        publish(&env.prefix, format!(r#"{{"job":{i}}}"#).as_bytes(), "t").await;
    }
    let advisories = advisory_stream_name(&env.prefix);
    assert!(
        eventually(Duration::from_secs(60), || async {
            stream_count(&advisories).await >= 7
        })
        .await,
        "the advisories are kept while the control plane is down"
    );

    let (server, base) = restart(&env).await;
    let token = admin_token_at(&env.http, &base).await;
    let items = wait_for_open(&env, &base, &token, 7).await;
    let mut jobs: Vec<i64> = items
        .iter()
        .map(|i| i["payload"]["job"].as_i64().unwrap())
        .collect();
    jobs.sort();
    assert_eq!(
        jobs,
        (1..=7).collect::<Vec<_>>(),
        "every dead message, once"
    );
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (captures,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM events WHERE aggregate_type = 'DlqEntry' AND event_type = 'DlqEntryCaptured'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(captures, 7, "no message was captured twice");
    server.shutdown();
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redrive_job_requeues_matching_entries_oldest_first_and_survives_a_restart() {
    let mut env = TestEnv::start().await;
    // The work stream covers the subject: requeues are stored once per Nats-Msg-Id, so a
    // restart between a publish and its record does not deliver twice.
    let subject = format!("{}.task.redrive", env.prefix);
    let js = jetstream::new(env.nats.clone());
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: work_stream_name(&env.prefix),
            subjects: vec![format!("{}.task.>", env.prefix)],
            ..Default::default()
        })
        .await
        .unwrap();
    let reader = stream
        .create_consumer(pull::Config {
            durable_name: Some("reader".into()),
            filter_subject: subject.clone(),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut received = reader.messages().await.unwrap();
    for i in 1..=4 {
        let (status, body) = env
            .post(
                "/dlq",
                json!({"original_subject": subject, "payload": {"i": i}, "error": "downstream 503", "attempts": 5}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = env
        .post("/dlq", json!({"original_subject": "other.subject", "payload": 0, "error": "downstream 503", "attempts": 1}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    wait_for_open(&env, &env.base, &env.admin_token, 5).await;

    let (status, job) = env
        .post(
            "/dlq/redrive",
            json!({"filter": {"subject": subject, "error_contains": "503"}, "rate": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["state"], "running");
    assert_eq!(job["remaining"], 4);
    let id = job["id"].as_str().unwrap().to_string();

    // Stop the control plane after the first message moved; the job resumes after restart.
    let first = tokio::time::timeout(Duration::from_secs(30), received.next())
        .await
        .expect("the first requeue arrives")
        .unwrap()
        .unwrap();
    first.ack().await.unwrap();
    env.server.take().unwrap().shutdown();
    let (server, base) = restart(&env).await;
    let token = admin_token_at(&env.http, &base).await;
    let (done, job) = poll_json(
        &env.http,
        &format!("{base}/dlq/redrive/{id}"),
        &token,
        Duration::from_secs(60),
        |job| job["state"] == "completed",
    )
    .await;
    assert!(done, "the job completes after the restart: {job}");
    // The counters are the job row's, moved after each entry is resolved: an entry
    // resolved just before the stop may not have been counted (docs/dlq.md). What reached
    // the worker is checked exactly below.
    let counted = job["moved"].as_i64().unwrap() + job["skipped"].as_i64().unwrap();
    assert!((3..=4).contains(&counted), "{job}");
    assert_eq!(job["failed"], 0, "{job}");
    assert_eq!(job["remaining"], 0, "{job}");

    let mut order = vec![
        serde_json::from_slice::<Value>(&first.payload).unwrap()["i"]
            .as_i64()
            .unwrap(),
    ];
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(3), received.next()).await
    {
        message.ack().await.unwrap();
        order.push(
            serde_json::from_slice::<Value>(&message.payload).unwrap()["i"]
                .as_i64()
                .unwrap(),
        );
    }
    assert_eq!(
        order,
        [1, 2, 3, 4],
        "every matching entry once, oldest first"
    );
    let cancel = env
        .http
        .post(format!("{base}/dlq/redrive/{id}/cancel"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        cancel.status(),
        StatusCode::CONFLICT,
        "a finished job cannot be cancelled"
    );
    let open: Value = env
        .http
        .get(format!("{base}/dlq?resolved=false"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        open["total"], 1,
        "only the entry outside the filter is still open: {open}"
    );
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_entries_are_grouped_by_subject_and_error_with_counts_and_first_last_seen() {
    let env = TestEnv::start().await;
    let capture = |id: &str, subject: &str, error: &str| {
        json!({"id": id, "original_subject": subject, "payload": {"n": id},
               "error": error, "attempts": 3})
    };
    for (id, subject, error) in [
        ("a1", "orders.create", "schema mismatch"),
        ("a2", "orders.create", "schema mismatch"),
        ("a3", "orders.create", "schema mismatch"),
        ("b1", "orders.create", "timeout"),
        ("c1", "mail.send", "schema mismatch"),
        ("c2", "mail.send", "schema mismatch"),
    ] {
        let (status, answer) = env.post("/dlq", capture(id, subject, error)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    // A resolved entry leaves its group.
    let (status, answer) = env.post("/dlq/c2/resolve", json!({"note": "done"})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let position = env.last_position.load(Ordering::SeqCst);

    let (status, body) = env
        .get(&format!("/dlq/groups?min_position={position}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 3);
    let groups = body["groups"].as_array().unwrap();
    let summary: Vec<(&str, &str, i64)> = groups
        .iter()
        .map(|g| {
            (
                g["original_subject"].as_str().unwrap(),
                g["error"].as_str().unwrap(),
                g["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("orders.create", "schema mismatch", 3),
            ("mail.send", "schema mismatch", 1),
            ("orders.create", "timeout", 1),
        ],
        "largest group first, then by subject and error"
    );
    let first: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(groups[0]["first_seen"].clone()).unwrap();
    let last: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(groups[0]["last_seen"].clone()).unwrap();
    assert!(first <= last, "{first} <= {last}");

    // The list's filters narrow the groups; limit bounds them and total still counts all.
    let (_, body) = env
        .get("/dlq/groups?subject=orders.create&error_contains=SCHEMA")
        .await;
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["groups"][0]["count"], 3);
    let (_, body) = env.get("/dlq/groups?limit=1").await;
    assert_eq!(body["groups"].as_array().unwrap().len(), 1);
    assert_eq!(body["total"], 3);
    let (_, body) = env.get("/dlq/groups?until=2000-01-01T00:00:00Z").await;
    assert_eq!(
        (&body["groups"], &body["total"]),
        (&json!([]), &json!(0)),
        "{body}"
    );

    // `until` on the list too: nothing was captured before 2000, everything before 3000.
    let (_, body) = env.get("/dlq?until=2000-01-01T00:00:00Z").await;
    assert_eq!(body["total"], 0, "{body}");
    let (_, body) = env.get("/dlq?until=3000-01-01T00:00:00Z").await;
    assert_eq!(body["total"], 6, "{body}");

    // The detail carries the payload's exact bytes; lists do not.
    let (_, entry) = env.get("/dlq/a1").await;
    assert_eq!(
        entry["payload_base64"],
        base64::engine::general_purpose::STANDARD.encode(br#"{"n":"a1"}"#)
    );
    let (_, list) = env.get("/dlq?limit=1").await;
    assert!(list["items"][0].get("payload_base64").is_none(), "{list}");

    // Bad input: 400 naming the field.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("subject=", "subject"),
        ("since=yesterday", "since"),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "until",
        ),
        ("resolved=true", "resolved"),
    ] {
        let (status, body) = env.get(&format!("/dlq/groups?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }

    // Viewers may not read dead letters.
    let viewer = env.user_token("groups-viewer", auth::Role::Viewer).await;
    let (status, _) = env
        .call(Method::GET, "/dlq/groups", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn requeues_never_reach_control_plane_or_nats_subjects_and_automatic_ids_cannot_be_claimed() {
    let env = TestEnv::start().await;
    // A forged sandbox report, a command, and a JetStream API call, captured as dead letters:
    // a requeue would publish them with the control plane's identity.
    for (n, subject) in [
        format!("{}.audit.sandbox", env.prefix),
        format!("{}.cmd.budget.reserve", env.prefix),
        "$JS.API.STREAM.DELETE.ANY".to_string(),
        "_INBOX.someone".to_string(),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("forged-{n}");
        let (status, body) = env
            .post(
                "/dlq",
                json!({"id": id, "original_subject": subject, "payload": {"x": 1}, "error": "e", "attempts": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = env
            .post(&format!("/dlq/{id}/resolve"), json!({"requeue": true}))
            .await;
        assert_eq!(
            (status, body["error"]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("requeue")),
            "{subject}: {body}"
        );
        // Nothing was resolved by the refused requeue; resolving without one works.
        let (status, body) = env.post(&format!("/dlq/{id}/resolve"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // The automatic capture's ids are its own: neither taken by name nor by a source.
    let (status, body) = env
        .post(
            "/dlq",
            json!({"id": "js:WORK:42", "original_subject": "task.execute", "payload": 1, "error": "e", "attempts": 1}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("id")),
        "{body}"
    );
    let (status, body) = env
        .post(
            "/dlq",
            json!({"original_subject": "task.execute", "payload": 1, "error": "e", "attempts": 1,
                   "stream": "WORK", "stream_seq": 42}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], "cap:admin:WORK:42", "{body}");
}

/// The start of a `DlqEntryPayloadEdited` event of `id` in the log, as stored.
async fn edit_events(database_url: &str, id: &str) -> Vec<Value> {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let rows: Vec<(Value,)> = sqlx::query_as(
        "SELECT payload FROM events WHERE aggregate_type = 'DlqEntry' AND aggregate_id = $1
            AND event_type = 'DlqEntryPayloadEdited' ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter().map(|(v,)| v).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edited_payload_is_requeued_with_the_headers_and_the_original_stays_readable() {
    let env = TestEnv::start().await;
    let consumer = work_stream(&env.prefix, 2).await;
    let (seen, worker) = run_worker(consumer);
    let original = br#"{"task":"t1","n":"one"}"#;
    publish(&env.prefix, original, "trace-edit").await;
    wait_for_open(&env, &env.base, &env.admin_token, 1).await;
    let id = format!("js:{}:1", work_stream_name(&env.prefix));
    let path = format!("/dlq/{id}/requeue_edited");
    let fixed = r#"{"task":"t1","n":1}"#;

    // Bad input: a 400 naming the field, nothing published, nothing recorded.
    for (body, field) in [
        (json!({"encoding": "text"}), "payload"),
        (json!({"payload": fixed, "encoding": "utf16"}), "encoding"),
        (json!({"payload": fixed, "encoding": "text", "x": 1}), "x"),
        (json!({"payload": "@@", "encoding": "base64"}), "payload"),
        (json!({"payload": 5, "encoding": "text"}), "payload"),
        // The captured bytes exactly: nothing was edited.
        (
            json!({"payload": std::str::from_utf8(original).unwrap(), "encoding": "text"}),
            "payload",
        ),
        (
            json!({"payload": fixed, "encoding": "text", "note": "n".repeat(2049)}),
            "note",
        ),
    ] {
        let (status, answer) = env.post(&path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    let (status, answer) = env
        .post("/dlq/bad id/requeue_edited", json!({"payload": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "id");
    let (status, _) = env
        .post("/dlq/no-such-entry/requeue_edited", json!({"payload": 1}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Larger than the capture limit (a 1 MiB payload, base64-encoded, and the rest): 413.
    let huge = json!({"payload": "x".repeat(1600 * 1024), "encoding": "text"});
    let (status, answer) = env.post(&path, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer["error"]["message"].is_string(), "{answer}");
    // Payloads up to 1 MiB, as for a capture: one byte more is a 400 naming the payload.
    let (status, answer) = env
        .post(
            &path,
            json!({"payload": "x".repeat(1024 * 1024 + 1), "encoding": "text"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "payload");
    // Reading dead letters is not enough (auditors have read:dlq only).
    let auditor = env.user_token("auditor1", auth::Role::Auditor).await;
    let (status, answer) = env
        .call(
            Method::POST,
            &path,
            Some(&auditor),
            Some(json!({"payload": fixed, "encoding": "text"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(
        answer["error"]["message"]
            .as_str()
            .map(|m| m.contains("write:dlq")),
        Some(true),
        "{answer}"
    );
    // A plain requeue with a note the entry would refuse publishes nothing either.
    let (status, answer) = env
        .post(
            &format!("/dlq/{id}/resolve"),
            json!({"requeue": true, "note": "n".repeat(2049)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "note");
    assert!(edit_events(&env.database_url, &id).await.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen.requeued.load(Ordering::SeqCst),
        0,
        "nothing was published"
    );

    // The edit: published with the entry's headers, recorded with both hashes and who.
    let (status, answer) = env
        .post(
            &path,
            json!({"payload": fixed, "encoding": "text", "note": "n was a word"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["resolved"], true);
    assert_eq!(answer["requeue_count"], 1);
    assert_eq!(answer["edited"]["edited_by"], "http:admin");
    let original_sha = domain::dlq::sha256_hex(original);
    let edited_sha = domain::dlq::sha256_hex(fixed.as_bytes());
    assert!(
        eventually(Duration::from_secs(20), || async {
            seen.requeued.load(Ordering::SeqCst) >= 1
        })
        .await,
        "the worker receives the edited message"
    );
    {
        let received = seen.requeued_messages.lock().unwrap();
        let (payload, headers) = &received[0];
        assert_eq!(payload.as_slice(), fixed.as_bytes(), "the edited bytes");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("Trace-Id").as_deref(), Some("trace-edit"));
        assert_eq!(header("Cp-Dlq-Entry").as_deref(), Some(id.as_str()));
        assert_eq!(
            header("Nats-Msg-Id"),
            Some(format!("dlq/{id}/1/{}", &edited_sha[..16]))
        );
    }
    let events = edit_events(&env.database_url, &id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["original_sha256"], original_sha.as_str());
    assert_eq!(events[0]["edited_sha256"], edited_sha.as_str());
    assert_eq!(events[0]["actor"], "http:admin");

    // The entry: the captured payload as it was, the edit beside it, the history.
    let position = answer["position"].as_i64().unwrap();
    let (status, entry) = env.get(&format!("/dlq/{id}?min_position={position}")).await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    let b64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    assert_eq!(
        b64(&entry["payload_base64"]),
        original,
        "the original stays"
    );
    assert_eq!(b64(&entry["edited"]["payload_base64"]), fixed.as_bytes());
    assert_eq!(entry["edited"]["payload"], json!({"task": "t1", "n": 1}));
    assert_eq!(entry["edited"]["sha256"], edited_sha.as_str());
    assert_eq!(entry["edited"]["original_sha256"], original_sha.as_str());
    assert_eq!(entry["edited"]["edited_by"], "http:admin");
    assert_eq!(entry["note"], "n was a word");
    let history = entry["history"].as_array().unwrap();
    let actions: Vec<&str> = history
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["captured", "edited", "requeued"]);
    assert_eq!(history[1]["actor"], "http:admin");
    assert_eq!(history[1]["original_sha256"], original_sha.as_str());
    assert_eq!(history[1]["edited_sha256"], edited_sha.as_str());

    // Resolved now: a second edited requeue is a conflict and publishes nothing.
    let (status, answer) = env
        .post(&path, json!({"payload": r#"{"n":2}"#, "encoding": "text"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seen.requeued.load(Ordering::SeqCst), 1);
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redrive_job_pauses_resumes_and_says_what_it_did_with_each_entry() {
    let env = TestEnv::start().await;
    let subject = format!("{}.task.redrive", env.prefix);
    // A requeue may not publish on the control plane's own subjects: this one fails.
    let forbidden = format!("{}.cmd.x.y", env.prefix);
    let mut ids = Vec::new();
    for (i, on) in [&subject, &forbidden, &subject, &subject, &subject]
        .into_iter()
        .enumerate()
    {
        let (status, body) = env
            .post(
                "/dlq",
                json!({"original_subject": on, "payload": {"i": i}, "error": "E503 upstream", "attempts": 3}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push((
            body["id"].as_str().unwrap().to_string(),
            body["created_at"].as_str().unwrap().to_string(),
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_open(&env, &env.base, &env.admin_token, 5).await;
    // `until` the fourth entry's capture: the fifth stays out of the job.
    let until = ids[3].1.clone();

    let (status, answer) = env
        .post(
            "/dlq/redrive",
            json!({"filter": {"error_contains": "E503", "since": until, "until": ids[0].1}, "rate": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "filter.until");

    let (status, job) = env
        .post(
            "/dlq/redrive",
            json!({"filter": {"error_contains": "E503", "until": until}, "rate": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["remaining"], 4, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let job_url = format!("{}/dlq/redrive/{id}", env.base);
    let handled = |job: &Value| {
        job["moved"].as_i64().unwrap_or(0)
            + job["failed"].as_i64().unwrap_or(0)
            + job["skipped"].as_i64().unwrap_or(0)
    };

    // Pause after the first entry: nothing more moves until it is resumed.
    let (moved, _) = poll_json(
        &env.http,
        &job_url,
        &env.admin_token,
        Duration::from_secs(20),
        |job| handled(job) >= 1,
    )
    .await;
    assert!(moved, "the first entry is handled");
    let (status, paused) = env
        .post(&format!("/dlq/redrive/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["state_changed_by"], "http:admin");
    let (status, _) = env
        .post(&format!("/dlq/redrive/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "pausing a paused job");
    // An entry that was being moved at the pause still finishes; after that, nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, settled) = env.get(&format!("/dlq/redrive/{id}")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, still) = env.get(&format!("/dlq/redrive/{id}")).await;
    assert_eq!(still["state"], "paused", "{still}");
    assert_eq!(
        handled(&still),
        handled(&settled),
        "nothing moved while paused: {still}"
    );
    assert!(handled(&still) < 4, "{still}");
    let (_, results) = env.get(&format!("/dlq/redrive/{id}/results")).await;
    assert_eq!(
        results["items"].as_array().unwrap().len() as i64,
        handled(&still),
        "a result per counted entry: {results}"
    );

    // Resumed, it goes on from where it stopped and ends.
    let (status, resumed) = env
        .post(&format!("/dlq/redrive/{id}/resume"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["state"], "running");
    let (done, job) = poll_json(
        &env.http,
        &job_url,
        &env.admin_token,
        Duration::from_secs(30),
        |job| job["state"] == "completed",
    )
    .await;
    assert!(done, "{job}");
    assert_eq!(
        (
            &job["moved"],
            &job["failed"],
            &job["skipped"],
            &job["remaining"]
        ),
        (&json!(3), &json!(1), &json!(0), &json!(0)),
        "{job}"
    );
    assert!(
        job["last_error"].as_str().unwrap().starts_with(&ids[1].0),
        "{job}"
    );

    // Per-entry results, in the job's order: which moved (with the message id), which
    // failed and why.
    let (status, results) = env.get(&format!("/dlq/redrive/{id}/results")).await;
    assert_eq!(status, StatusCode::OK, "{results}");
    let items = results["items"].as_array().unwrap();
    let got: Vec<(&str, &str)> = items
        .iter()
        .map(|r| {
            (
                r["entry_id"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (ids[0].0.as_str(), "moved"),
            (ids[1].0.as_str(), "failed"),
            (ids[2].0.as_str(), "moved"),
            (ids[3].0.as_str(), "moved"),
        ]
    );
    assert_eq!(items[0]["message_id"], format!("dlq/{}/1", ids[0].0));
    assert!(
        items[1]["reason"]
            .as_str()
            .unwrap()
            .contains("of the control plane itself"),
        "{}",
        items[1]
    );
    assert!(results.get("next_after").is_none(), "{results}");
    let (_, failed) = env
        .get(&format!("/dlq/redrive/{id}/results?outcome=failed"))
        .await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1, "{failed}");
    let (_, first) = env.get(&format!("/dlq/redrive/{id}/results?limit=3")).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let after = first["next_after"].as_i64().expect("a next page");
    let (_, rest) = env
        .get(&format!("/dlq/redrive/{id}/results?after={after}"))
        .await;
    assert_eq!(rest["items"][0]["entry_id"], ids[3].0.as_str(), "{rest}");
    // The entry captured after `until` is still open, and so is the failed one.
    let (_, open) = env.get("/dlq?resolved=false").await;
    let open_ids: Vec<&str> = open["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(open_ids, [ids[1].0.as_str(), ids[4].0.as_str()]);

    // A finished job can be neither paused nor resumed nor cancelled.
    for verb in ["pause", "resume", "cancel"] {
        let (status, body) = env
            .post(&format!("/dlq/redrive/{id}/{verb}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{verb}: {body}");
    }
    // A paused job can be cancelled; then it stays cancelled.
    let (_, slow) = env
        .post(
            "/dlq/redrive",
            json!({"filter": {"subject": subject}, "rate": 0.01}),
        )
        .await;
    let slow = slow["id"].as_str().unwrap().to_string();
    let (status, _) = env
        .post(&format!("/dlq/redrive/{slow}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, cancelled) = env
        .post(&format!("/dlq/redrive/{slow}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    assert!(cancelled["finished_at"].is_string(), "{cancelled}");
    let (status, _) = env
        .post(&format!("/dlq/redrive/{slow}/resume"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Bad input is named; readers see results but may not steer jobs.
    for (path, field) in [
        (format!("/dlq/redrive/{id}/results?limit=0"), "limit"),
        (format!("/dlq/redrive/{id}/results?outcome=lost"), "outcome"),
        (format!("/dlq/redrive/{id}/results?after=-1"), "after"),
        ("/dlq/redrive/not-a-uuid/results".to_string(), "job"),
    ] {
        let (status, body) = env.get(&path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
    let (status, _) = env
        .get(&format!("/dlq/redrive/{}/results", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let auditor = env.user_token("auditor2", auth::Role::Auditor).await;
    let (status, _) = env
        .call(
            Method::GET,
            &format!("/dlq/redrive/{id}/results"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = env
        .call(
            Method::POST,
            &format!("/dlq/redrive/{slow}/pause"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
