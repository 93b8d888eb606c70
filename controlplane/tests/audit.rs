//! The audit log over HTTP and the CLI: listing, export, and the hash chain catching an
//! edit made behind the application's back.

mod common;

use auth::Role;
use common::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn workload(env: &TestEnv) {
    env.set_limit("org1", "p1", 10_000).await;
    env.set_limit("org2", "p2", 10_000).await;
    for i in 0..5 {
        let (_, answer) = env
            .post("/budget/request", json!({"tenant_id": "org1", "project_id": "p1", "task_id": format!("t{i}"), "model": "m", "estimated_tokens": 10}))
            .await;
        assert_eq!(answer["approved"], true, "{answer}");
    }
}

#[tokio::test]
async fn verify_names_the_event_whose_payload_was_edited_in_sql() {
    let env = TestEnv::start().await;
    workload(&env).await;
    let (status, report) = env.get("/audit/verify").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], true, "the untouched log verifies: {report}");
    assert_eq!(report["events_checked"], 7);
    assert_eq!(report["aggregates_checked"], 2);

    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    // The application cannot change history...
    let refused = sqlx::query("UPDATE events SET payload = '{}' WHERE sequence = 1")
        .execute(&pool)
        .await;
    assert!(refused.is_err(), "events are append-only");
    // ...but a superuser can: switch the guard off and make one reservation smaller.
    let (victim,): (i64,) = sqlx::query_as(
        "SELECT global_position FROM events WHERE aggregate_id = 'org1/p1' AND sequence = 3",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{allocated}', '1')::json
          WHERE global_position = $1",
    )
    .bind(victim)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_append_only")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let (_, report) = env.get("/audit/verify").await;
    assert_eq!(report["ok"], false, "{report}");
    let failure = &report["first_failure"];
    assert_eq!(failure["global_position"], victim, "{report}");
    assert_eq!(failure["aggregate_id"], "org1/p1");
    assert_eq!(failure["sequence"], 3);
    assert_eq!(failure["problem"], "content");

    // The CLI says the same and fails.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .args(["audit", "verify"])
        .env("APP_ENV", "test")
        .env("DATABASE_URL", &env.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["first_failure"]["global_position"], victim);

    // Removing an event breaks the order.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE aggregate_id = 'org2/p2'")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE aggregate_id = 'org1/p1' AND sequence = 2")
        .execute(&mut *conn)
        .await
        .unwrap();
    let (_, report) = env.get("/audit/verify").await;
    assert_eq!(report["first_failure"]["problem"], "order", "{report}");
    assert_eq!(report["first_failure"]["sequence"], 3);
}

#[tokio::test]
async fn audit_events_filter_paginate_and_export_as_ndjson_for_auditors_only() {
    let env = TestEnv::start().await;
    workload(&env).await;
    let (status, page) = env
        .get("/audit/events?aggregate_id=org1/p1&event_type=TokensReserved&limit=2")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["aggregate_id"], "org1/p1");
    assert_eq!(events[0]["payload"]["type"], "TokensReserved");
    assert!(events[0]["hash"].as_str().unwrap().len() == 64);
    let mut seen = events.len();
    let mut after = page["next_after_position"].as_i64().unwrap();
    loop {
        let (_, page) = env
            .get(&format!("/audit/events?aggregate_id=org1/p1&event_type=TokensReserved&limit=2&after_position={after}"))
            .await;
        seen += page["events"].as_array().unwrap().len();
        match page["next_after_position"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(seen, 5, "pages cover every reservation once");
    let (status, body) = env.get("/audit/events?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "limit");

    let response = env
        .http
        .get(env.url("/audit/export"))
        .bearer_auth(&env.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len() as i64,
        common::event_count(&env.database_url).await
    );
    let positions: Vec<i64> = lines
        .iter()
        .map(|l| l["global_position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in log order");

    let viewer = env.user_token("viewer1", Role::Viewer).await;
    let auditor = env.user_token("auditor1", Role::Auditor).await;
    for path in ["/audit/events", "/audit/export", "/audit/verify"] {
        let (status, _) = env.call(Method::GET, path, Some(&viewer), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        let (status, _) = env.call(Method::GET, path, Some(&auditor), None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

/// The replay an auditor runs against JetStream (docs/audit.md): an ordered consumer from
/// a stream sequence, recomputing every chain link from the messages alone.
#[tokio::test]
async fn an_auditor_replays_jetstream_with_an_ordered_consumer_and_checks_every_link() {
    use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
    use futures::StreamExt;
    use std::collections::HashMap;

    let env = TestEnv::start().await;
    workload(&env).await;
    common::wait_for_pipeline(
        &env.database_url,
        &env.stream(),
        std::time::Duration::from_secs(30),
    )
    .await;

    let client = async_nats::connect(common::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(env.stream()).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: 1 },
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut chains: HashMap<(String, String), Vec<u8>> = HashMap::new();
    let mut checked = 0;
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        let event: streams::EventEnvelope = serde_json::from_slice(&message.payload).unwrap();
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        let prev = chains.get(&key).cloned().unwrap_or_else(|| vec![0; 32]);
        let expected = streams::audit::chain_hash(&prev, &event);
        assert_eq!(event.hash.as_deref(), Some(hex_encode(&expected).as_str()));
        chains.insert(key, expected.to_vec());
        checked += 1;
        if message.info().unwrap().stream_sequence == last {
            break;
        }
    }
    assert_eq!(checked as i64, common::event_count(&env.database_url).await);
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
