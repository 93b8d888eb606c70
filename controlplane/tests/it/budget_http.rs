//! The budget API over real HTTP, PostgreSQL and the expiry worker.

use crate::common;

use std::time::Duration;

use common::TestEnv;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn reserve_body(task: &str, estimated: u64) -> Value {
    json!({"tenant_id": "org1", "project_id": "proj1", "task_id": task, "model": "gpt-4", "estimated_tokens": estimated})
}

async fn state(env: &TestEnv) -> Value {
    let (status, body) = env.get(&env.state_path("org1", "proj1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn reserve_commit_and_state_follow_the_tokens() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 100_000).await;
    let (status, reserved) = env
        .post("/budget/request", reserve_body("task-1", 1000))
        .await;
    assert_eq!(status, StatusCode::OK, "{reserved}");
    assert_eq!(reserved["approved"], true);
    assert_eq!(reserved["allocated"], 1000);
    assert!(reserved["expires_at"].is_string());
    let body = state(&env).await;
    assert_eq!(
        (
            body["total"].as_u64(),
            body["used"].as_u64(),
            body["reserved"].as_u64()
        ),
        (Some(100_000), Some(0), Some(1000))
    );
    assert_eq!(body["open_reservations"], 1);

    let (status, committed) = env
        .post(
            "/budget/commit",
            json!({"reservation_id": reserved["reservation_id"], "actual_tokens": 1200}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{committed}");
    assert_eq!(committed["overage"], 200);
    assert_eq!(committed["used"], 1200);
    assert_eq!(committed["reserved"], 0);
    let body = state(&env).await;
    assert_eq!(
        (
            body["used"].as_u64(),
            body["reserved"].as_u64(),
            body["available"].as_u64()
        ),
        (Some(1200), Some(0), Some(98_800))
    );
}

#[tokio::test]
async fn the_same_task_gets_the_same_reservation() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 10_000).await;
    let (_, first) = env
        .post("/budget/request", reserve_body("task-1", 1000))
        .await;
    let (_, second) = env
        .post("/budget/request", reserve_body("task-1", 1000))
        .await;
    assert_eq!(first["reservation_id"], second["reservation_id"]);
    assert_eq!(second["existing"], true);
    assert_eq!(state(&env).await["reserved"], 1000);
}

#[tokio::test]
async fn a_reservation_that_does_not_fit_is_denied_with_200() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 500).await;
    let (status, body) = env
        .post("/budget/request", reserve_body("task-1", 501))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["approved"], false);
    assert_eq!(body["reason"], "insufficient_budget");
    assert_eq!(body["available"], 500);
    let (status, body) = env
        .post("/budget/request", json!({"tenant_id": "org9", "project_id": "none", "task_id": "t", "model": "m", "estimated_tokens": 1}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["reason"], "no_budget");
}

#[tokio::test]
async fn denials_are_recorded_as_events() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 10).await;
    env.post("/budget/request", reserve_body("task-1", 11))
        .await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE event_type = 'ReservationDenied'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn repeating_a_commit_returns_the_same_answer_and_counts_once() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 10_000).await;
    let (_, reserved) = env
        .post("/budget/request", reserve_body("task-1", 1000))
        .await;
    let commit = json!({"reservation_id": reserved["reservation_id"], "actual_tokens": 700});
    let (_, mut first) = env.post("/budget/commit", commit.clone()).await;
    env.post("/budget/request", reserve_body("task-2", 100))
        .await;
    let (status, second) = env.post("/budget/commit", commit).await;
    assert_eq!(status, StatusCode::OK);
    // The same answer; only the first wrote an event, so only it carries a position.
    assert!(first["position"].as_i64().is_some(), "{first}");
    assert!(second.get("position").is_none(), "{second}");
    first.as_object_mut().unwrap().remove("position");
    assert_eq!(first, second);
    assert_eq!(state(&env).await["used"], 700);
}

#[tokio::test]
async fn committing_a_released_reservation_is_409_and_an_unknown_one_404() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 10_000).await;
    let (_, reserved) = env
        .post("/budget/request", reserve_body("task-1", 1000))
        .await;
    let id = reserved["reservation_id"].clone();
    let (status, released) = env
        .post("/budget/release", json!({"reservation_id": id}))
        .await;
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(released["reserved"], 0);
    let (status, again) = env
        .post("/budget/release", json!({"reservation_id": id}))
        .await;
    assert_eq!(status, StatusCode::OK, "release is idempotent: {again}");
    let (status, body) = env
        .post(
            "/budget/commit",
            json!({"reservation_id": id, "actual_tokens": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "conflict");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("released"));
    let (status, body) = env
        .post(
            "/budget/commit",
            json!({"reservation_id": uuid::Uuid::new_v4(), "actual_tokens": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// A closing event records when it happened (version 2, ADR 020): the server's clock, not a
/// default.
#[tokio::test]
async fn a_commit_is_stored_with_its_time_as_version_2() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 10_000).await;
    let (_, reserved) = env
        .post("/budget/request", reserve_body("task-1", 1000))
        .await;
    let before = chrono::Utc::now();
    let (status, body) = env
        .post(
            "/budget/commit",
            json!({"reservation_id": reserved["reservation_id"], "actual_tokens": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (version, closed_at): (String, String) = sqlx::query_as(
        "SELECT event_version, payload ->> 'closed_at' FROM events
          WHERE event_type = 'UsageCommitted'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(version, "2");
    let closed_at: chrono::DateTime<chrono::Utc> = closed_at.parse().unwrap();
    let after = chrono::Utc::now();
    assert!(before <= closed_at && closed_at <= after, "{closed_at}");
}

/// A budget forgets a reservation two minutes after a later closing (ADR 020): a repeated
/// commit or release of it is 404 with the reason, and charges nothing; one closed within
/// the window still gets its answer. The log is written as a budget's would be, with a
/// commit ten minutes before the last release (a version 1 event among them: logs from
/// before the field still load).
#[tokio::test]
async fn a_reservation_closed_more_than_two_minutes_before_is_404_and_charges_nothing() {
    let env = TestEnv::start().await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (old, recent, older_v1) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let now = chrono::Utc::now();
    let expires = (now + chrono::Duration::seconds(600)).to_rfc3339();
    let reserved = |id: uuid::Uuid, task: &str, used: u64| {
        json!({"type": "TokensReserved", "tenant_id": "org1", "project_id": "aged",
               "reservation_id": id, "task_id": task, "model": "m", "allocated": 100,
               "expires_at": expires, "used": used, "reserved": 100})
    };
    let log = [
        (
            "BudgetLimitSet",
            "1",
            json!({"type": "BudgetLimitSet", "tenant_id": "org1",
            "project_id": "aged", "total": 10_000, "previous_total": null}),
        ),
        ("TokensReserved", "1", reserved(older_v1, "t0", 0)),
        (
            "ReservationReleased",
            "1",
            json!({"type": "ReservationReleased",
            "reservation_id": older_v1, "allocated": 100, "used": 0, "reserved": 0}),
        ),
        ("TokensReserved", "1", reserved(old, "t1", 0)),
        (
            "UsageCommitted",
            "2",
            json!({"type": "UsageCommitted", "reservation_id": old,
            "allocated": 100, "actual_tokens": 80, "overage": 0, "late": false, "used": 80,
            "reserved": 0, "closed_at": (now - chrono::Duration::minutes(10)).to_rfc3339()}),
        ),
        ("TokensReserved", "1", reserved(recent, "t2", 80)),
        (
            "ReservationReleased",
            "2",
            json!({"type": "ReservationReleased",
            "reservation_id": recent, "allocated": 100, "used": 80, "reserved": 0,
            "closed_at": (now - chrono::Duration::seconds(5)).to_rfc3339()}),
        ),
    ];
    for (sequence, (event_type, version, payload)) in log.iter().enumerate() {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata)
             VALUES ('Budget', 'org1/aged', $1, $2, $3, $4, '{}')",
        )
        .bind(sequence as i64 + 1)
        .bind(event_type)
        .bind(version)
        .bind(payload)
        .execute(&pool)
        .await
        .unwrap();
    }
    for forgotten in [old, older_v1] {
        let (status, body) = env
            .post(
                "/budget/commit",
                json!({"reservation_id": forgotten, "actual_tokens": 80}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("closed more than 2 minutes"), "{message}");
        let (status, body) = env
            .post("/budget/release", json!({"reservation_id": forgotten}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    let (status, body) = env
        .post("/budget/release", json!({"reservation_id": recent}))
        .await;
    assert_eq!(status, StatusCode::OK, "remembered: {body}");
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_id = 'org1/aged'")
            .fetch_one(&pool)
            .await
            .unwrap();
    // No event: nothing charged, nothing given back.
    assert_eq!(count, log.len() as i64, "nothing was recorded");
}

#[tokio::test]
async fn an_unused_reservation_expires_and_a_late_commit_is_flagged() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 10_000).await;
    let mut body = reserve_body("task-1", 1000);
    body["ttl_seconds"] = json!(1);
    let (_, reserved) = env.post("/budget/request", body).await;
    // The worker runs every 100 ms in tests; give it a few seconds at most.
    let mut expired = false;
    for _ in 0..100 {
        if state(&env).await["reserved"] == 0 {
            expired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(expired, "the reservation was released by the expiry worker");
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE event_type = 'ReservationExpired'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(count, 1);
    let (status, late) = env
        .post(
            "/budget/commit",
            json!({"reservation_id": reserved["reservation_id"], "actual_tokens": 300}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{late}");
    assert_eq!(late["late"], true);
    assert_eq!(state(&env).await["used"], 300);
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field_and_changes_nothing() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 10_000).await;
    let cases = [
        (
            json!({"tenant_id": "org 1", "project_id": "proj1", "task_id": "t", "model": "m", "estimated_tokens": 1}),
            "tenant_id",
        ),
        (
            json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "t", "model": "m"}),
            "estimated_tokens",
        ),
        (
            json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "t", "model": "m", "estimated_tokens": -1}),
            "estimated_tokens",
        ),
        (
            json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "t", "model": "m", "estimated_tokens": "10"}),
            "estimated_tokens",
        ),
        (
            json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "t", "model": "m", "estimated_tokens": 0}),
            "estimated_tokens",
        ),
        (
            json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "t/../x", "model": "m", "estimated_tokens": 1}),
            "task_id",
        ),
        (
            json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "t", "model": "m", "estimated_tokens": 1, "ttl_seconds": 0}),
            "ttl_seconds",
        ),
        (
            json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "t", "model": "m", "estimated_tokens": 1, "admin": true}),
            "admin",
        ),
        (
            json!({"tenant_id": "'; DROP TABLE events; --", "project_id": "proj1", "task_id": "t", "model": "m", "estimated_tokens": 1}),
            "tenant_id",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = env.post("/budget/request", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"]["field"], field, "{body} → {answer}");
    }
    let (status, answer) = env.get("/budget/state?tenant_id=org1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "project_id");
    // Malformed JSON.
    let response = env
        .http
        .post(env.url("/budget/request"))
        .bearer_auth(&env.admin_token)
        .header("content-type", "application/json")
        .body("{\"tenant_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Nothing was reserved by any of it.
    assert_eq!(state(&env).await["reserved"], 0);
    assert_eq!(state(&env).await["open_reservations"], 0);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let env = TestEnv::start().await;
    let huge = "x".repeat(200 * 1024);
    let (status, body) = env
        .post("/budget/request", json!({"tenant_id": huge}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn an_unknown_budget_state_is_404() {
    let env = TestEnv::start().await;
    let (status, body) = env
        .get("/budget/state?tenant_id=nobody&project_id=none")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn lowering_the_limit_below_usage_stops_new_reservations() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 10_000).await;
    env.post("/budget/request", reserve_body("task-1", 5000))
        .await;
    env.set_limit("org1", "proj1", 1000).await;
    let body = state(&env).await;
    assert_eq!(
        (
            body["total"].as_u64(),
            body["reserved"].as_u64(),
            body["available"].as_u64()
        ),
        (Some(1000), Some(5000), Some(0))
    );
    let (_, denied) = env.post("/budget/request", reserve_body("task-2", 1)).await;
    assert_eq!(denied["approved"], false);
}
