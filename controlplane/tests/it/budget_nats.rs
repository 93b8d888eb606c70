//! The budget API over real NATS request/reply.

use crate::common;

use common::TestEnv;
use serde_json::json;

#[tokio::test]
async fn reserve_commit_release_and_state_over_nats() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 5000).await;
    let reserved = env
        .nats_request("request", &json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "n1", "model": "gpt-4", "estimated_tokens": 2000}))
        .await
        .expect("a reply");
    assert_eq!(reserved["approved"], true, "{reserved}");
    let second = env
        .nats_request("request", &json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "n2", "model": "gpt-4", "estimated_tokens": 2000}))
        .await
        .unwrap();
    let committed = env
        .nats_request(
            "commit",
            &json!({"reservation_id": reserved["reservation_id"], "actual_tokens": 1500}),
        )
        .await
        .unwrap();
    assert_eq!(committed["used"], 1500, "{committed}");
    let released = env
        .nats_request(
            "release",
            &json!({"reservation_id": second["reservation_id"]}),
        )
        .await
        .unwrap();
    assert_eq!(released["released"], true, "{released}");
    let state = env
        .nats_request("state", &env.state_body("org1", "proj1"))
        .await
        .unwrap();
    assert_eq!(
        (
            state["total"].as_u64(),
            state["used"].as_u64(),
            state["reserved"].as_u64()
        ),
        (Some(5000), Some(1500), Some(0))
    );
    // HTTP sees the same budget.
    let (_, http_state) = env.get(&env.state_path("org1", "proj1")).await;
    assert_eq!(http_state, state);
}

#[tokio::test]
async fn malformed_and_mistyped_commands_get_an_error_reply() {
    let env = TestEnv::start().await;
    let reply = env
        .nats_request_raw("request", b"{not json".to_vec())
        .await
        .expect("a reply, not silence");
    assert_eq!(reply["error"]["code"], "invalid_request");
    assert_eq!(reply["error"]["field"], "body");
    let reply = env
        .nats_request("request", &json!({"tenant_id": "org1"}))
        .await
        .unwrap();
    assert_eq!(reply["error"]["code"], "invalid_request");
    assert_eq!(reply["error"]["field"], "project_id");
    let reply = env
        .nats_request(
            "commit",
            &json!({"reservation_id": "x", "actual_tokens": 1}),
        )
        .await
        .unwrap();
    assert_eq!(reply["error"]["field"], "reservation_id");
    let reply = env
        .nats_request(
            "commit",
            &json!({"reservation_id": uuid::Uuid::new_v4(), "actual_tokens": 1}),
        )
        .await
        .unwrap();
    assert_eq!(reply["error"]["code"], "not_found");
    let reply = env.nats_request("explode", &json!({})).await.unwrap();
    assert_eq!(reply["error"]["code"], "not_found");
}

#[tokio::test]
async fn an_oversized_command_gets_an_error_reply() {
    let env = TestEnv::start().await;
    let big = format!("{{\"tenant_id\":\"{}\"}}", "x".repeat(100 * 1024));
    let reply = env
        .nats_request_raw("request", big.into_bytes())
        .await
        .expect("a reply");
    assert_eq!(reply["error"]["code"], "invalid_request");
    assert_eq!(reply["error"]["field"], "body");
    // The listener is still alive.
    let reply = env
        .nats_request("state", &json!({"tenant_id": "a", "project_id": "b"}))
        .await
        .unwrap();
    assert_eq!(reply["error"]["code"], "not_found");
}

/// One service's commands are applied in the order it sent them, though the server answers
/// each in a task of its own: the re-ask after a cancelled reserve must not overtake it.
/// (On several worker threads, as the binary runs: there a task spawned last can run first.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_senders_commands_are_applied_in_the_order_sent() {
    use futures::StreamExt;
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 1_000_000).await;
    let subject = env.command_subject("budget", "request");
    let inbox = env.service.new_inbox();
    let mut replies = env.service.subscribe(inbox.clone()).await.unwrap();
    const SENT: usize = 500;
    for i in 0..SENT {
        let body = json!({"tenant_id": "org1", "project_id": "proj1", "task_id": format!("t{i:04}"),
                          "model": "m", "estimated_tokens": 1});
        env.service
            .publish_with_reply(subject.clone(), inbox.clone(), body.to_string().into())
            .await
            .unwrap();
    }
    env.service.flush().await.unwrap();
    for _ in 0..SENT {
        let reply = tokio::time::timeout(std::time::Duration::from_secs(30), replies.next())
            .await
            .expect("every command answered")
            .unwrap();
        let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(reply["approved"], true, "{reply}");
    }
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let applied: Vec<String> = sqlx::query_scalar(
        "SELECT payload ->> 'task_id' FROM events
          WHERE aggregate_id = 'org1/proj1' AND event_type = 'TokensReserved'
          ORDER BY sequence",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let sent: Vec<String> = (0..SENT).map(|i| format!("t{i:04}")).collect();
    assert_eq!(applied, sent);
}
