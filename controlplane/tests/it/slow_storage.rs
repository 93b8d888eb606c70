//! A slow PostgreSQL: the events table locked for 12 s while callers keep coming. Memory
//! stays bounded (a budget's queue holds at most 1,024 commands; past that a command is
//! refused at once with 503 `busy`), and every caller gets an answer within the 10 s
//! deadline (503 `unavailable`, Retry-After) instead of waiting without end. Commands that
//! had not reached PostgreSQL when their caller gave up are never applied.

use crate::common;

use std::time::{Duration, Instant};

use common::TestEnv;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_event_table_gets_bounded_queues_and_503s_not_endless_waits() {
    let env = std::sync::Arc::new(TestEnv::start_alone(&[]).await);
    env.set_limit("org1", "slow", 1_000_000_000).await;

    // Another session takes a lock that blocks every append (reads still work).
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(12)).await;
        locker.rollback().await.unwrap();
    });

    let started = Instant::now();
    let callers: Vec<_> = (0..1_400)
        .map(|i| {
            let env = env.clone();
            tokio::spawn(async move {
                let answer = env
                    .http
                    .post(env.url("/budget/request"))
                    .bearer_auth(&env.admin_token)
                    .json(&json!({"tenant_id": "org1", "project_id": "slow",
                                  "task_id": format!("slow-{i}"), "model": "m",
                                  "estimated_tokens": 1}))
                    .send()
                    .await
                    .expect("an answer, not a client time-out");
                let status = answer.status();
                let retry_after = answer.headers().contains_key("retry-after");
                let body: Value = answer.json().await.unwrap();
                (
                    status,
                    retry_after,
                    body,
                    started.elapsed(),
                    format!("slow-{i}"),
                )
            })
        })
        .collect();
    let mut answers = Vec::new();
    for caller in callers {
        answers.push(caller.await.unwrap());
    }
    release.await.unwrap();

    let slowest = answers.iter().map(|a| a.3).max().unwrap();
    let busy = answers
        .iter()
        .filter(|a| a.0 == StatusCode::SERVICE_UNAVAILABLE && a.2["error"]["code"] == "busy")
        .count();
    let unavailable = answers
        .iter()
        .filter(|a| a.0 == StatusCode::SERVICE_UNAVAILABLE && a.2["error"]["code"] == "unavailable")
        .count();
    eprintln!(
        "locked events table: {busy} refused at once (queue full), {unavailable} unavailable \
         after the deadline, slowest answer {slowest:?}"
    );
    // Requests sent after the lock ended (the machine may be slow to send 1,400) succeed.
    for (status, retry_after, body, _, _) in &answers {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}: {body}"
        );
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(retry_after, "a 503 says when to retry: {body}");
        }
    }
    assert!(unavailable > 0, "callers past the deadline are told so");
    assert!(busy > 0, "the budget's queue is bounded");
    assert!(
        slowest < Duration::from_secs(20),
        "every caller is answered soon after the 10 s deadline ({slowest:?})"
    );

    // Once the lock is gone the service works again, and of the commands refused while it
    // was held only those already sent to PostgreSQL (one batch at most) were applied.
    let recovered = common::eventually(Duration::from_secs(15), || async {
        let (status, _) = env
            .post(
                "/budget/request",
                json!({"tenant_id": "org1", "project_id": "slow", "task_id": "after",
                       "model": "m", "estimated_tokens": 1}),
            )
            .await;
        status == StatusCode::OK
    })
    .await;
    assert!(
        recovered,
        "reservations succeed again once the lock is gone"
    );
    let refused: Vec<String> = answers
        .iter()
        .filter(|a| a.0 == StatusCode::SERVICE_UNAVAILABLE)
        .map(|a| a.4.clone())
        .collect();
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE aggregate_id = 'org1/slow' AND payload->>'task_id' = ANY($1)",
    )
    .bind(&refused)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        applied <= 256,
        "{applied} refused commands were applied; at most the batch in flight may be"
    );
    pool.close().await;
}
