//! The event pipeline end to end: event table → publisher → JetStream → projector →
//! read models, read-your-writes, and replay.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::TestEnv;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;

fn reserve(tenant: &str, project: &str, task: &str, tokens: u64) -> serde_json::Value {
    json!({"tenant_id": tenant, "project_id": project, "task_id": task, "model": "m", "estimated_tokens": tokens})
}

#[tokio::test]
async fn every_event_reaches_jetstream_exactly_once_in_aggregate_order_with_its_hash() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "p1", 10_000).await;
    env.set_limit("org2", "p2", 10_000).await;
    for i in 0..10 {
        let (_, answer) = env
            .post(
                "/budget/request",
                reserve("org1", "p1", &format!("a{i}"), 10),
            )
            .await;
        assert!(answer["position"].as_i64().is_some(), "{answer}");
        let answer = env
            .nats_request("request", &reserve("org2", "p2", &format!("b{i}"), 10))
            .await
            .unwrap();
        assert!(
            answer["position"].as_i64().is_some(),
            "NATS answers carry it: {answer}"
        );
    }
    common::wait_for_pipeline(&env.database_url, &env.stream(), Duration::from_secs(30)).await;

    let messages = common::stream_messages(&env.stream()).await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
        "SELECT global_position, aggregate_id, sequence, encode(hash, 'hex') FROM events ORDER BY global_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(messages.len(), rows.len(), "one message per event");
    let ids: HashSet<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), messages.len(), "no duplicate message ids");
    let by_position: BTreeMap<i64, &(i64, String, i64, String)> =
        rows.iter().map(|r| (r.0, r)).collect();
    let mut last_sequence: BTreeMap<String, i64> = BTreeMap::new();
    for message in &messages {
        let envelope = &message.envelope;
        let row = by_position[&envelope.global_position];
        assert_eq!(
            message.message_id,
            format!("events/{}", envelope.global_position)
        );
        assert_eq!(envelope.aggregate_id, row.1);
        assert_eq!(envelope.sequence, row.2);
        assert_eq!(
            envelope.hash.as_deref(),
            Some(row.3.as_str()),
            "the stored hash travels"
        );
        let expected_subject = format!(
            "{}.events.Budget.{}",
            env.prefix,
            envelope.aggregate_id.replace('/', ".")
        );
        assert_eq!(message.subject, expected_subject);
        let previous = last_sequence.insert(envelope.aggregate_id.clone(), envelope.sequence);
        assert_eq!(
            envelope.sequence,
            previous.unwrap_or(0) + 1,
            "each aggregate's events are on the stream in sequence order"
        );
    }
    let checkpoint: (i64, i64) = sqlx::query_as(
        "SELECT last_position, published FROM publisher_checkpoints WHERE stream = $1",
    )
    .bind(env.stream())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        checkpoint.1,
        rows.len() as i64,
        "the checkpoint counted each event once"
    );
    let (status, pipeline) = env.get("/system/pipeline").await;
    assert_eq!(status, StatusCode::OK, "{pipeline}");
    assert_eq!(pipeline["publisher"]["lag_events"], 0, "{pipeline}");
    assert_eq!(pipeline["projector"]["lag_events"], 0, "{pipeline}");
    assert_eq!(pipeline["last_position"], rows.last().unwrap().0);
    assert_eq!(pipeline["this_process"]["publisher_active"], true);
    assert_eq!(pipeline["this_process"]["projector_active"], true);
    assert_eq!(pipeline["this_process"]["published"], rows.len());
    common::assert_read_model_matches_the_log(&env.database_url).await;
}

#[tokio::test]
async fn state_reads_its_writes_with_min_position_and_503s_while_not_applied() {
    // Holds a row lock (a transaction id) for seconds: on a cluster of its own.
    let env = TestEnv::start_alone(&[]).await;
    env.set_limit("org1", "p1", 1000).await;
    let (_, reserved) = env
        .post("/budget/request", reserve("org1", "p1", "t", 300))
        .await;
    let position = reserved["position"].as_i64().unwrap();
    let (status, state) = env
        .get(&format!(
            "/budget/state?tenant_id=org1&project_id=p1&min_position={position}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(
        state["reserved"], 300,
        "the read sees the write it waited for"
    );

    // A position the log does not have is a mistake of the caller's: 400, at once.
    let (status, body) = env
        .get("/budget/state?tenant_id=org1&project_id=p1&min_position=999999999")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "min_position");

    // A position that exists but is not applied yet waits, bounded, then 503. Holding the
    // budget's read-model row keeps the projector from applying the next event.
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM read_budgets WHERE aggregate_id = 'org1/p1' FOR UPDATE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let (_, blocked) = env
        .post("/budget/request", reserve("org1", "p1", "t2", 100))
        .await;
    let blocked_position = blocked["position"].as_i64().unwrap();
    let started = std::time::Instant::now();
    let response = env
        .http
        .get(env.url(&format!(
            "/budget/state?tenant_id=org1&project_id=p1&min_position={blocked_position}"
        )))
        .bearer_auth(&env.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the wait is bounded"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_yet_applied");
    hold.rollback().await.unwrap();
    let (status, state) = env
        .get(&format!(
            "/budget/state?tenant_id=org1&project_id=p1&min_position={blocked_position}"
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "applied once the row is free: {state}"
    );
    assert_eq!(state["reserved"], 400);
    let (status, body) = env
        .get("/budget/state?tenant_id=org1&project_id=p1&min_position=zero")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "min_position");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_random_workload_a_replay_rebuilds_exactly_the_live_read_models() {
    let env = TestEnv::start().await;
    let budgets = [("org1", "a"), ("org1", "b"), ("org2", "a")];
    for (tenant, project) in budgets {
        env.set_limit(tenant, project, 5_000).await;
    }
    let mut open: Vec<String> = Vec::new();
    let mut rng = rand::thread_rng();
    for i in 0..120 {
        let choice = rng.gen_range(0..10);
        if choice < 5 || open.is_empty() {
            let (tenant, project) = budgets[rng.gen_range(0..budgets.len())];
            let (_, answer) = env
                .post(
                    "/budget/request",
                    reserve(tenant, project, &format!("t{i}"), rng.gen_range(1..400)),
                )
                .await;
            if answer["approved"] == true {
                open.push(answer["reservation_id"].as_str().unwrap().to_string());
            }
        } else if choice == 9 {
            // A new limit on a budget with reservations: the projector keeps the stored
            // totals it does not see in its batch.
            let (tenant, project) = budgets[rng.gen_range(0..budgets.len())];
            env.set_limit(tenant, project, rng.gen_range(4_000..8_000))
                .await;
        } else if choice < 7 {
            let id = open.swap_remove(rng.gen_range(0..open.len()));
            let (status, answer) = env
                .post(
                    "/budget/commit",
                    json!({"reservation_id": id, "actual_tokens": rng.gen_range(0..500)}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        } else {
            let id = open.swap_remove(rng.gen_range(0..open.len()));
            let (status, answer) = env
                .post("/budget/release", json!({"reservation_id": id}))
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    }
    common::wait_for_pipeline(&env.database_url, &env.stream(), Duration::from_secs(30)).await;
    common::assert_read_model_matches_the_log(&env.database_url).await;
    let live = common::read_model_rows(&env.database_url).await;
    assert!(!live.0.is_empty() && !live.1.is_empty());

    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let mut calls = 0;
    let report = projections::replay::replay(&pool, |_, _| calls += 1)
        .await
        .unwrap();
    assert_eq!(
        report.events as i64,
        common::event_count(&env.database_url).await
    );
    assert!(calls >= 2, "progress is reported");
    let rebuilt = common::read_model_rows(&env.database_url).await;
    assert_eq!(live, rebuilt, "the rebuilt read models equal the live ones");
    // Redelivering everything (as after a crash) changes nothing either.
    let all =
        streams::envelope::read_committed_after(&pool, &streams::LogPosition::start(), 100_000)
            .await
            .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let applied = projections::apply::apply_batch(&mut tx, &all, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(applied, 0, "already applied events are skipped");
    assert_eq!(live, common::read_model_rows(&env.database_url).await);

    // One event per batch (each batch folds without the stored rows: a reservation closed
    // in a later batch than it opened, a limit set on a budget with stored totals) builds
    // the same read models too.
    sqlx::query("TRUNCATE read_budgets, read_reservations, read_dlq, projection_versions")
        .execute(&pool)
        .await
        .unwrap();
    for event in &all {
        let mut tx = pool.begin().await.unwrap();
        projections::apply::apply_batch(&mut tx, std::slice::from_ref(event), None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(
        live,
        common::read_model_rows(&env.database_url).await,
        "event by event equals the live read models"
    );
}

/// Commit order compares transaction ids as numbers: 9 before 10. (The reader's `ORDER BY
/// transaction_id` once named its `transaction_id::text` output column and sorted "10"
/// before "9"; a read whose limit fell between them moved past 9 and skipped it for good.)
#[tokio::test]
async fn the_log_is_read_in_numeric_transaction_order_across_a_digit_boundary() {
    let url = common::fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    commands::store::migrate(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, transaction_id)
         VALUES ('OrderTest', 'b', 1, 'Noted', '1', '{}', '{}', '10'::xid8),
                ('OrderTest', 'a', 1, 'Noted', '1', '{}', '{}', '9'::xid8),
                ('OrderTest', 'a', 2, 'Noted', '1', '{}', '{}', '9'::xid8)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut after = streams::LogPosition::start();
    let mut seen = Vec::new();
    loop {
        let batch = streams::envelope::read_committed_after(&pool, &after, 1)
            .await
            .unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position();
        seen.extend(
            batch
                .iter()
                .map(|e| (e.transaction_id.clone(), e.aggregate_id.clone(), e.sequence)),
        );
    }
    let expected = [("9", "a", 1), ("9", "a", 2), ("10", "b", 1)]
        .map(|(t, a, s)| (t.to_string(), a.to_string(), s));
    assert_eq!(seen, expected, "every event, once, 9 before 10");

    let report = projections::replay::replay(&pool, |_, _| {}).await.unwrap();
    assert_eq!(report.events, 3);
    let (last_tx, last_position, versions): (String, i64, i64) = sqlx::query_as(
        "SELECT c.last_tx::text, c.last_position,
                (SELECT version FROM projection_versions WHERE aggregate_type = 'OrderTest' AND aggregate_id = 'a')
           FROM projection_checkpoints c WHERE c.name = 'read_models'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let first_of_10: i64 =
        sqlx::query_scalar("SELECT global_position FROM events WHERE transaction_id = '10'::xid8")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (last_tx.as_str(), last_position, versions),
        ("10", first_of_10, 2),
        "the replay ends at the last event in commit order"
    );
}

/// The value of an unlabelled metric in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok())?
        })
}

#[tokio::test]
async fn metrics_count_appended_published_projected_and_the_lag_drains_to_zero() {
    let env = TestEnv::start_with(&[("METRICS_REFRESH_MS", "100")]).await;
    env.set_limit("org1", "p1", 10_000).await;
    for i in 0..6 {
        let (_, answer) = env
            .post(
                "/budget/request",
                reserve("org1", "p1", &format!("m{i}"), 10),
            )
            .await;
        assert_eq!(answer["approved"], true, "{answer}");
    }
    let appended = common::event_count(&env.database_url).await;
    assert_eq!(appended, 7, "one limit and six reservations");
    let caught_up = |text: &str| {
        let value = |name| metric(text, name);
        value("pipeline_events_appended") == Some(appended as f64)
            && value("pipeline_events_published") == Some(appended as f64)
            && value("pipeline_events_projected") == Some(appended as f64)
            && value("pipeline_publisher_lag_events") == Some(0.0)
            && value("pipeline_projection_lag_events") == Some(0.0)
            && value("pipeline_publisher_lag_seconds") == Some(0.0)
            && value("pipeline_projection_lag_seconds") == Some(0.0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last;
    let settled = loop {
        last = env.metrics_text().await;
        if caught_up(&last) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(settled, "the gauges caught up with the log:\n{last}");
    assert_eq!(metric(&last, "pipeline_publisher_active"), Some(1.0));
    assert_eq!(metric(&last, "pipeline_projector_active"), Some(1.0));

    // With the publisher and projector gone, an append shows up as lag in both stages.
    let mut env = env;
    env.server.take().unwrap().shutdown();
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Probe', 'p', 1, 'Probed', '1', '{}', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    // The counts see committed events below the server-wide horizon: another test's open
    // transaction (any database of the server) can hold the probe back for a moment.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut counts =
        streams::status::pipeline_counts(&pool, &env.stream(), projections::apply::PROJECTION)
            .await
            .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while counts.appended != appended + 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        counts =
            streams::status::pipeline_counts(&pool, &env.stream(), projections::apply::PROJECTION)
                .await
                .unwrap();
    }
    assert_eq!(counts.appended, appended + 1, "{counts:?}");
    assert_eq!(counts.published, appended, "{counts:?}");
    assert_eq!(counts.projected, appended, "{counts:?}");
    assert_eq!(counts.publisher_lag_events, 1, "{counts:?}");
    assert_eq!(counts.projection_lag_events, 1, "{counts:?}");
    assert!(counts.publisher_lag_seconds >= 0.02, "{counts:?}");
    assert!(counts.projection_lag_seconds >= 0.02, "{counts:?}");
}

/// An event whose transaction committed while an older one still runs is held back (the
/// commit-order horizon). That older transaction's commit sends no notification; the
/// publisher still publishes the event as soon as it ends, not at its next poll.
#[tokio::test]
async fn an_event_held_back_by_an_older_transaction_goes_out_when_that_one_ends() {
    // Holds an older transaction open: on a cluster of its own.
    let env = TestEnv::start_alone(&[("PUBLISHER_POLL_MS", "20000")]).await;
    let stream = env.stream();
    env.set_limit("org1", "p1", 1_000).await;
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            common::stream_count(&stream).await == 1
        })
        .await,
        "the first event is published"
    );
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let mut older = pool.begin().await.unwrap();
    // Taking a transaction id makes it part of every snapshot's horizon from now on.
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *older)
        .await
        .unwrap();
    let (status, answer) = env
        .post("/budget/request", reserve("org1", "p1", "t1", 10))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        common::stream_count(&stream).await,
        1,
        "not published while an older transaction may still commit before it"
    );
    older.commit().await.unwrap();
    // Far below the 20 s poll: only looking again by itself gets it out this soon.
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            common::stream_count(&stream).await == 2
        })
        .await,
        "the held-back event waited for the poll"
    );
}

/// A fresh database whose log holds 20,000 events, one per transaction 1001..=21000.
async fn log_of_20000_transactions() -> sqlx::PgPool {
    let url = common::fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    commands::store::migrate(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, transaction_id)
         SELECT 'PlanTest', 'a' || g, 1, 'Noted', '1', '{}', '{}', (1000 + g)::text::xid8
           FROM generate_series(1, 20000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool
}

/// The publisher's "is anything held back?" check runs hundreds of times a second under
/// load; as a prepared statement (generic plan) it must walk the commit-order index from
/// its position, not scan the log from the oldest event (which it once did: 4–5 ms a call
/// on a 30,000-event log, growing with the log).
#[tokio::test]
async fn the_held_back_check_walks_the_commit_order_index_not_the_whole_log() {
    let pool = log_of_20000_transactions().await;
    sqlx::query("ANALYZE events").execute(&pool).await.unwrap();

    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    let sql = streams::publisher::next_committed_sql();
    sqlx::query(&format!("PREPARE held_back(text, int8) AS {sql}"))
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE held_back('20990', 0)")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(
        plan.contains("events_commit_order_idx") && !plan.contains("Seq Scan"),
        "the generic plan walks the commit-order index:\n{plan}"
    );
    // And it answers: after the event of transaction 20990 comes the one of 20991; after
    // the last, none.
    let position_of = |tx: &'static str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT global_position FROM events WHERE transaction_id = $1::text::xid8",
        )
        .bind(tx)
        .fetch_one(&pool)
    };
    let next = |tx: &'static str, position: i64| {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(tx)
            .bind(position)
            .fetch_optional(&pool)
    };
    let (at_20990, at_20991, at_21000) = (
        position_of("20990").await.unwrap(),
        position_of("20991").await.unwrap(),
        position_of("21000").await.unwrap(),
    );
    assert_eq!(next("20990", at_20990).await.unwrap(), Some(at_20991));
    assert_eq!(next("21000", at_21000).await.unwrap(), None);
}

/// The pipeline gauges are counted every few seconds whatever the log's size: the lag
/// behind each checkpoint must be read from the commit-order index, not by filtering the
/// whole log (which took over a second at 400,000 events in the soak).
#[tokio::test]
async fn the_lag_counts_read_only_the_lagging_events_from_the_commit_order_index() {
    let pool = log_of_20000_transactions().await;
    // With no checkpoint yet, everything lags.
    let counts = streams::status::pipeline_counts(&pool, "S", "P")
        .await
        .unwrap();
    assert_eq!(
        (counts.publisher_lag_events, counts.projection_lag_events),
        (20_000, 20_000)
    );
    // The publisher is 10 events behind, the projector 25.
    for (table, key, behind) in [
        ("publisher_checkpoints", "stream", 10),
        ("projection_checkpoints", "name", 25),
    ] {
        let name = if key == "stream" { "S" } else { "P" };
        sqlx::query(&format!(
            "INSERT INTO {table} ({key}, last_tx, last_position)
             SELECT $1, transaction_id, global_position FROM events
              ORDER BY transaction_id DESC OFFSET $2 LIMIT 1"
        ))
        .bind(name)
        .bind(behind)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query("ANALYZE events").execute(&pool).await.unwrap();
    let counts = streams::status::pipeline_counts(&pool, "S", "P")
        .await
        .unwrap();
    assert_eq!(
        (counts.publisher_lag_events, counts.projection_lag_events),
        (10, 25)
    );
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN (ANALYZE, COSTS OFF) {}",
        streams::status::PIPELINE_COUNTS_SQL
            .replace("$1", "'S'")
            .replace("$2", "'P'")
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert_eq!(
        plan.matches("Index Cond: ((ROW(transaction_id, global_position) > ROW(")
            .count(),
        2,
        "both lags are index ranges from their checkpoint:\n{plan}"
    );
    assert!(
        !plan.contains("Rows Removed by Filter") && !plan.contains("Seq Scan on events"),
        "no event outside the lag is read:\n{plan}"
    );
}

/// The projector commits without waiting for the WAL flush and acknowledges a batch to
/// JetStream only once PostgreSQL has flushed it: when the commands stop, every message
/// still ends up acknowledged (nothing pending, the ack floor at the stream's end).
#[tokio::test]
async fn every_projected_message_is_acknowledged_once_flushed_also_when_traffic_stops() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "p1", 10_000).await;
    for i in 0..30 {
        let (status, body) = env
            .post(
                "/budget/request",
                reserve("org1", "p1", &format!("t{i}"), 10),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    common::wait_for_pipeline(&env.database_url, &env.stream(), Duration::from_secs(30)).await;
    let client = common::connect(&common::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = env.stream();
    let acknowledged = common::eventually(Duration::from_secs(10), || {
        let js = js.clone();
        let stream = stream.clone();
        async move {
            let mut events = js.get_stream(&stream).await.unwrap();
            let last = events.info().await.unwrap().state.last_sequence;
            let mut consumer: async_nats::jetstream::consumer::PullConsumer = events
                .get_consumer(projections::projector::CONSUMER)
                .await
                .unwrap();
            let info = consumer.info().await.unwrap();
            info.num_ack_pending == 0 && info.ack_floor.stream_sequence == last
        }
    })
    .await;
    assert!(
        acknowledged,
        "the projector acknowledged every message once PostgreSQL flushed its batches"
    );
}
