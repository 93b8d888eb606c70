//! The invariant under load: approved allocations never exceed the limit.

use crate::common;

use std::sync::Arc;

use common::TestEnv;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_reservations_over_http_and_nats_approve_exactly_what_fits() {
    let env = Arc::new(TestEnv::start().await);
    // 100 reservations of 100 tokens fit in 10,000; 200 ask.
    env.set_limit("org1", "hot", 10_000).await;
    let mut calls = Vec::new();
    for i in 0..200 {
        let env = env.clone();
        calls.push(tokio::spawn(async move {
            let body = json!({"tenant_id": "org1", "project_id": "hot", "task_id": format!("task-{i}"), "model": "gpt-4", "estimated_tokens": 100});
            if i % 2 == 0 {
                let (status, answer) = env.post("/budget/request", body).await;
                assert_eq!(status, StatusCode::OK, "{answer}");
                answer
            } else {
                env.nats_request("request", &body).await.expect("a NATS reply")
            }
        }));
    }
    let answers: Vec<Value> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let approved = answers.iter().filter(|a| a["approved"] == true).count();
    let denied = answers
        .iter()
        .filter(|a| a["reason"] == "insufficient_budget")
        .count();
    assert_eq!(
        approved, 100,
        "exactly the reservations that fit are approved"
    );
    assert_eq!(denied, 100);
    let (_, state) = env.get(&env.state_path("org1", "hot")).await;
    assert_eq!(state["reserved"], 10_000);
    assert_eq!(state["available"], 0);
    // The state equals a fold of the event log.
    let folded = common::fold_budget(&env.database_url, "org1/hot").await;
    let totals = folded.totals();
    assert_eq!(
        (totals.total, totals.used, totals.reserved),
        (10_000, 0, 10_000)
    );
    assert_eq!(totals.open_reservations, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_serve_processes_on_one_database_never_overspend() {
    let database_url = common::fresh_database().await;
    let prefix = common::unique_prefix();
    let a = common::ServeProcess::start(&database_url, &prefix, &common::nats_url()).await;
    let b = common::ServeProcess::start(&database_url, &prefix, &common::nats_url()).await;
    let (url_a, url_b) = (a.url.clone(), b.url.clone());
    let http = reqwest::Client::new();
    let token = common::admin_token_at(&http, &url_a).await;
    let set: Value = http
        .put(format!("{url_a}/budget/limit"))
        .bearer_auth(&token)
        .json(&json!({"tenant_id": "org1", "project_id": "shared", "total_tokens": 5_000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["total"], 5_000);
    let mut calls = Vec::new();
    for i in 0..160 {
        let url = if i % 2 == 0 {
            url_a.clone()
        } else {
            url_b.clone()
        };
        let http = http.clone();
        let token = token.clone();
        calls.push(tokio::spawn(async move {
            let response = http
                .post(format!("{url}/budget/request"))
                .bearer_auth(&token)
                .json(&json!({"tenant_id": "org1", "project_id": "shared", "task_id": format!("t{i}"), "model": "m", "estimated_tokens": 100}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let answer = response.json::<Value>().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{answer}");
            answer
        }));
    }
    let answers: Vec<Value> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let approved: u64 = answers
        .iter()
        .filter(|a| a["approved"] == true)
        .map(|a| a["allocated"].as_u64().unwrap())
        .sum();
    assert_eq!(
        approved, 5_000,
        "exactly the limit is handed out, never more"
    );
    let folded = common::fold_budget(&database_url, "org1/shared").await;
    assert_eq!(folded.reserved, 5_000);
    assert_eq!(folded.open.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_budget_are_group_committed() {
    let env = Arc::new(TestEnv::start().await);
    env.set_limit("org1", "batched", 1_000_000).await;
    let calls = (0..100).map(|i| {
        let env = env.clone();
        tokio::spawn(async move {
            let body = json!({"tenant_id": "org1", "project_id": "batched", "task_id": format!("t{i}"), "model": "m", "estimated_tokens": 10});
            env.nats_request("request", &body).await.expect("a NATS reply")
        })
    });
    let answers: Vec<Value> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(answers.iter().all(|a| a["approved"] == true));
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (events, transactions): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT transaction_id::text) FROM events WHERE event_type = 'TokensReserved'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(events, 100);
    assert!(
        transactions < events,
        "queued commands share a transaction: {transactions} transactions for {events} events"
    );
    // And the sequence numbers have no gap or duplicate.
    let folded = common::fold_budget(&env.database_url, "org1/batched").await;
    assert_eq!(folded.reserved, 1000);
}
