//! The audit log over HTTP and the CLI: listing, export, and the hash chain catching an
//! edit made behind the application's back.

use crate::common;

use std::time::Duration;

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
    let (succeeded, printed) = cli_verify(&env);
    assert!(!succeeded);
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
    for path in [
        "/audit/events",
        "/audit/export",
        "/audit/verify",
        "/audit/verify/stream",
    ] {
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

    let client = common::connect(&common::nats_url()).await.unwrap();
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

/// `controlplane audit verify` on this test's database and streams: whether it succeeded,
/// and the report it printed.
fn cli_verify(env: &TestEnv) -> (bool, Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .args(["audit", "verify"])
        .env("APP_ENV", "test")
        .env("DATABASE_URL", &env.database_url)
        .env("NATS_URL", common::nats_url())
        .env("NATS_SUBJECT_PREFIX", &env.prefix)
        .env("NATS_CREDS", common::control_plane_creds(&env.prefix))
        .env("EVENTS_STREAM", env.stream())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let printed = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the CLI prints a report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), printed)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until the publisher's running hash covers every event and a global hash
/// checkpoint records that point; returns the number of events.
async fn wait_for_hash_checkpoint(env: &TestEnv) -> i64 {
    common::wait_for_pipeline(&env.database_url, &env.stream(), Duration::from_secs(30)).await;
    let events = common::event_count(&env.database_url).await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let recorded = common::eventually(Duration::from_secs(30), || async {
        let (hashed, newest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT hashed, (SELECT max(event_count) FROM global_hash_checkpoints)
               FROM publisher_checkpoints WHERE stream = $1",
        )
        .bind(env.stream())
        .fetch_one(&pool)
        .await
        .unwrap();
        hashed == events && newest == Some(events)
    })
    .await;
    pool.close().await;
    assert!(recorded, "a checkpoint covers all {events} events");
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_global_running_hash_continues_across_a_publisher_restart() {
    // Checkpoints by time only: recorded once the publisher is idle for 100 ms.
    let extra = [
        ("AUDIT_HASH_CHECKPOINT_EVENTS", "1000000"),
        ("AUDIT_HASH_CHECKPOINT_MS", "100"),
    ];
    let mut env = TestEnv::start_with(&extra).await;
    workload(&env).await;
    let before = wait_for_hash_checkpoint(&env).await;
    assert_eq!(before, 7);

    // A new process (a new publisher) carries on from the stored running hash.
    env.server.take().unwrap().shutdown();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = controlplane::start(
        common::config_with(&env.database_url, &env.prefix, &extra),
        listener,
    )
    .await
    .expect("the control plane starts again");
    env.base = format!("http://{}", server.addr);
    env.server = Some(server);
    for i in 0..4 {
        let (_, answer) = env
            .post("/budget/request", json!({"tenant_id": "org2", "project_id": "p2", "task_id": format!("after{i}"), "model": "m", "estimated_tokens": 10}))
            .await;
        assert_eq!(answer["approved"], true, "{answer}");
    }
    let after = wait_for_hash_checkpoint(&env).await;
    assert_eq!(after, before + 4);

    // Every checkpoint, from both publishers, matches the running hash recomputed from
    // the log from its first event: had the second publisher started a new chain, its
    // checkpoint would not.
    let (status, report) = env.get("/audit/verify").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (checkpoints,): (i64,) = sqlx::query_as("SELECT count(*) FROM global_hash_checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(checkpoints >= 2, "{checkpoints}");
    assert_eq!(report["checkpoints_checked"], checkpoints, "{report}");
    assert!(report.get("first_checkpoint_failure").is_none(), "{report}");
}

#[tokio::test]
async fn verify_names_the_first_global_hash_checkpoint_after_an_edited_payload() {
    let env = TestEnv::start_with(&[
        ("AUDIT_HASH_CHECKPOINT_EVENTS", "2"),
        ("AUDIT_HASH_CHECKPOINT_MS", "100"),
    ])
    .await;
    workload(&env).await;
    wait_for_hash_checkpoint(&env).await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (victim, rank): (i64, i64) = sqlx::query_as(
        "SELECT v.global_position,
                (SELECT count(*) FROM events e
                  WHERE (e.transaction_id, e.global_position) <= (v.transaction_id, v.global_position))
           FROM events v WHERE aggregate_id = 'org1/p1' AND sequence = 4",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // The first checkpoint at or after the edited event is the one that breaks.
    let (expected_count, earlier): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT min(event_count) FROM global_hash_checkpoints WHERE event_count >= $1),
                (SELECT count(*) FROM global_hash_checkpoints WHERE event_count < $1)",
    )
    .bind(rank)
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
    let failure = &report["first_checkpoint_failure"];
    assert_eq!(failure["problem"], "hash", "{report}");
    assert_eq!(failure["event_count"], expected_count, "{report}");
    assert_eq!(failure["stream"], env.stream().as_str());
    assert_ne!(failure["stored_hash"], failure["expected_hash"]);
    assert_eq!(
        report["checkpoints_checked"],
        earlier + 1,
        "the checkpoints before the edit matched: {report}"
    );

    // The CLI reports the same checkpoint.
    let (succeeded, printed) = cli_verify(&env);
    assert!(!succeeded);
    assert_eq!(
        printed["first_checkpoint_failure"]["event_count"],
        expected_count
    );
}

#[tokio::test]
async fn audit_events_and_export_filter_by_actor() {
    let env = TestEnv::start().await;
    workload(&env).await; // as admin
    let ops = env.user_token("audit-ops", Role::Operator).await;
    for total in [50, 60] {
        let (status, answer) = env
            .call(
                Method::PUT,
                "/budget/limit",
                Some(&ops),
                Some(json!({"tenant_id": "org2", "project_id": "p9", "total_tokens": total})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // The operator's write is in the log (the append is synchronous).
    let (status, page) = env.get("/audit/events?actor=audit-ops").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{page}");
    for event in events {
        assert_eq!(event["metadata"]["user"], "audit-ops", "{event}");
        assert_eq!(event["aggregate_id"], "org2/p9", "{event}");
    }
    let (_, admin_page) = env
        .get("/audit/events?actor=admin&aggregate_id=org2/p9")
        .await;
    assert_eq!(admin_page["events"], json!([]), "{admin_page}");

    // The export takes the same filter: exactly the listed events.
    let export = env
        .http
        .get(env.url("/audit/export?actor=audit-ops"))
        .bearer_auth(&env.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(&exported, events);

    let (status, body) = env.get("/audit/events?actor=a%01b").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "actor");

    // One event of an aggregate by its sequence: the previous link of a chain.
    let last = events.last().unwrap();
    let sequence = last["sequence"].as_i64().unwrap();
    assert!(sequence > 1, "{last}");
    let (_, previous) = env
        .get(&format!(
            "/audit/events?aggregate_type=Budget&aggregate_id=org2/p9&sequence={}",
            sequence - 1
        ))
        .await;
    let previous = previous["events"].as_array().unwrap();
    assert_eq!(previous.len(), 1, "{previous:?}");
    assert_eq!(previous[0]["sequence"], sequence - 1);
    let (status, body) = env.get("/audit/events?sequence=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "sequence");
}

/// The attack of issue 18: a database superuser switches the guard off, deletes the newest
/// event and every global hash checkpoint. The chains and checkpoints left in the database
/// then verify; the events stream, outside the database, still holds the deleted event.
#[tokio::test]
async fn verify_catches_the_newest_event_deleted_with_the_checkpoints_by_the_events_stream() {
    let env = TestEnv::start_with(&[("AUDIT_HASH_CHECKPOINT_EVENTS", "1")]).await;
    workload(&env).await;
    let stream = env.stream();
    common::wait_for_pipeline(&env.database_url, &stream, Duration::from_secs(30)).await;
    let (_, report) = env.get("/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["stream_anchor"]["result"], "ok", "{report}");

    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    as_superuser(
        &pool,
        &[
            "DELETE FROM events WHERE global_position = (SELECT max(global_position) FROM events)",
            "DELETE FROM global_hash_checkpoints",
        ],
    )
    .await;

    let report = verify_tampered_log(&env).await;
    assert_eq!(report["stream_anchor"]["result"], "truncated", "{report}");
}

/// Runs `statements` with the append-only guard switched off, as a database superuser can.
async fn as_superuser(pool: &sqlx::PgPool, statements: &[&str]) {
    let mut conn = pool.acquire().await.unwrap();
    let off = ["ALTER TABLE events DISABLE TRIGGER events_append_only"];
    let on = ["ALTER TABLE events ENABLE TRIGGER events_append_only"];
    for statement in off.iter().chain(statements).chain(&on) {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
}

/// Verifies a log tampered with so that every chain left still holds and no checkpoint is
/// left in the database: it must not verify. Returns the report.
async fn verify_tampered_log(env: &TestEnv) -> Value {
    let (_, report) = env.get("/audit/verify").await;
    assert_eq!(
        report["first_failure"],
        Value::Null,
        "every chain left verifies: {report}"
    );
    assert_eq!(report["checkpoints_checked"], 0, "{report}");
    assert_eq!(report["ok"], false, "{report}");
    report
}

/// The other attack of issue 18: a database superuser rewrites an older event, recomputes
/// its hash as the trigger would (so every chain verifies) and deletes the checkpoints. The
/// newest event is untouched, so the events stream's newest message still matches; the
/// anchors on JetStream carry the running hash over the whole log, and it no longer matches.
#[tokio::test]
async fn verify_catches_a_rewritten_event_with_recomputed_hashes_by_the_anchors() {
    let env = TestEnv::start_with(&[("AUDIT_HASH_CHECKPOINT_EVENTS", "1")]).await;
    workload(&env).await;
    let events = wait_for_hash_checkpoint(&env).await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (checkpoints,): (i64,) = sqlx::query_as("SELECT count(*) FROM global_hash_checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (_, report) = env.get("/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["checkpoints_checked"], checkpoints, "{report}");
    assert_eq!(
        report["anchors_checked"], checkpoints,
        "every checkpoint has its anchor on JetStream: {report}"
    );

    // org2/p2's limit (its budget's only event, not the newest of the log) raised tenfold,
    // with the hash the trigger would compute for that content.
    let sql = format!(
        "SELECT {} FROM events WHERE aggregate_id = 'org2/p2' AND sequence = 1",
        streams::envelope::SELECT_ENVELOPE
    );
    let row = sqlx::query(&sql).fetch_one(&pool).await.unwrap();
    let mut victim = streams::EventEnvelope::from_row(&row).unwrap();
    let forged = victim.payload.get().replace("10000", "100000");
    assert_ne!(forged, victim.payload.get(), "the limit is in the payload");
    victim.payload = serde_json::value::RawValue::from_string(forged.clone()).unwrap();
    let forged_hash = streams::audit::chain_hash(&streams::audit::GENESIS, &victim);
    let forge = format!(
        "UPDATE events SET payload = $forged${forged}$forged$::json,
                           hash = decode('{}', 'hex')
          WHERE global_position = {}",
        hex_encode(&forged_hash),
        victim.global_position
    );
    as_superuser(&pool, &[&forge, "DELETE FROM global_hash_checkpoints"]).await;

    let report = verify_tampered_log(&env).await;
    assert_eq!(
        report["stream_anchor"]["result"], "ok",
        "the newest published event is untouched: {report}"
    );
    assert_eq!(report["ok"], false, "{report}");
    let failure = &report["first_checkpoint_failure"];
    assert_eq!(failure["source"], "anchor", "{report}");
    assert_eq!(failure["problem"], "hash", "{report}");
    // The first anchor at or after the forged event is the one that breaks.
    let (forged_count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM events
          WHERE (transaction_id, global_position) <=
                (SELECT transaction_id, global_position FROM events WHERE global_position = $1)",
    )
    .bind(victim.global_position)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(forged_count < events, "the forged event is not the newest");
    let js = async_nats::jetstream::new(env.nats.clone());
    let anchors = streams::anchors::read_anchors(&js, &env.stream())
        .await
        .unwrap();
    let first_after = anchors
        .iter()
        .map(|a| a.event_count)
        .filter(|&count| count >= forged_count)
        .min();
    assert_eq!(failure["event_count"], first_after.unwrap(), "{report}");

    // The CLI reads the same anchors and fails the same way.
    let (succeeded, printed) = cli_verify(&env);
    assert!(!succeeded, "{printed}");
    assert_eq!(printed["first_checkpoint_failure"], *failure, "{printed}");
}

/// The anchor stream takes no deletes: not even the NATS administrator can remove an anchor
/// (or purge them) to hide a rewrite; only the whole stream can go.
#[tokio::test]
async fn the_anchor_stream_refuses_deleting_or_purging_anchors() {
    let env = TestEnv::start_with(&[("AUDIT_HASH_CHECKPOINT_EVENTS", "1")]).await;
    workload(&env).await;
    wait_for_hash_checkpoint(&env).await;
    let js = async_nats::jetstream::new(env.nats.clone());
    let mut anchors = js
        .get_stream(streams::anchors::anchor_stream_name(&env.stream()))
        .await
        .expect("the publisher made the anchor stream");
    let last = anchors.info().await.unwrap().state.last_sequence;
    assert!(last >= 1, "anchors were published");
    assert!(anchors.delete_message(last).await.is_err(), "no delete");
    assert!(anchors.purge().await.is_err(), "no purge");
    assert_eq!(anchors.info().await.unwrap().state.messages, last);
}

/// The lines of `GET /audit/verify/stream`.
async fn verify_stream(env: &TestEnv) -> Vec<Value> {
    let response = env
        .http
        .get(env.url("/audit/verify/stream"))
        .bearer_auth(&env.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-ndjson",
        "NDJSON"
    );
    response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_streamed_verify_reports_its_progress_then_the_same_result() {
    let env = TestEnv::start().await;
    workload(&env).await;
    let (_, plain) = env.get("/audit/verify").await;
    let lines = verify_stream(&env).await;
    let (last, progress) = lines.split_last().unwrap();
    assert_eq!(last["type"], "result", "{last}");
    let report = &last["report"];
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["events_checked"], plain["events_checked"]);
    assert_eq!(report["aggregates_checked"], plain["aggregates_checked"]);
    assert_eq!(report["stream_anchor"]["result"], "ok", "{report}");
    // Progress first: the chains (every event), then the comparison with the stream.
    assert!(
        progress.iter().all(|l| l["type"] == "progress"),
        "{lines:?}"
    );
    assert_eq!(progress[0]["phase"], "chains");
    assert_eq!(progress[0]["done"], 0);
    assert_eq!(progress[0]["total"], plain["events_checked"]);
    assert_eq!(progress.last().unwrap()["phase"], "stream");
    let phases: Vec<&str> = progress
        .iter()
        .map(|l| l["phase"].as_str().unwrap())
        .collect();
    let order = ["chains", "checkpoints", "stream"];
    assert!(
        phases
            .windows(2)
            .all(|w| order.iter().position(|p| *p == w[0]) <= order.iter().position(|p| *p == w[1])),
        "{phases:?}"
    );
    for line in progress {
        assert!(line["done"].as_u64() <= line["total"].as_u64(), "{line}");
    }

    // An edit behind the application's back: the stream's result names it, as the plain one.
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    for sql in [
        "ALTER TABLE events DISABLE TRIGGER events_append_only",
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{allocated}', '1')::json
          WHERE aggregate_id = 'org1/p1' AND sequence = 3",
        "ALTER TABLE events ENABLE TRIGGER events_append_only",
    ] {
        sqlx::query(sql).execute(&mut *conn).await.unwrap();
    }
    drop(conn);
    pool.close().await;
    let lines = verify_stream(&env).await;
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "result", "{last}");
    assert_eq!(last["report"]["ok"], false, "{last}");
    assert_eq!(
        last["report"]["first_failure"]["problem"], "content",
        "{last}"
    );
}
