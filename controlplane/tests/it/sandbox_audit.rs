//! The sandbox's run reports (published on `<prefix>.audit.sandbox` as sandbox/src/audit.rs
//! does) become `SandboxRun` events: once each, also when sent twice or while the control
//! plane is down; a malformed report is refused without stopping the intake.

use crate::common;

use std::time::Duration;

use common::TestEnv;
use serde_json::{json, Value};

fn report(id: &str, exit_code: i64) -> Value {
    json!({
        "event_type": "SandboxCodeExecuted", "event_version": 1, "id": id,
        "at": "2026-11-27T12:00:00+00:00", "who": "alice", "role": "developer",
        "language": "python", "code_sha256": "ab".repeat(32), "code_bytes": 14,
        "duration_ms": 412, "exit_code": exit_code, "timed_out": false, "oom_killed": false,
        "truncated": false, "outcome": if exit_code == 0 { "ok" } else { "exit_nonzero" },
        "instance": "default"
    })
}

/// Publishes like the sandbox: core NATS, `Nats-Msg-Id` = the report id.
async fn publish(env: &TestEnv, body: &Value) {
    let mut headers = async_nats::HeaderMap::new();
    let id = body["id"].as_str().unwrap_or("malformed").to_string();
    headers.insert("Nats-Msg-Id", id.as_str());
    env.nats
        .publish_with_headers(
            format!("{}.audit.sandbox", env.prefix),
            headers,
            body.to_string().into(),
        )
        .await
        .unwrap();
    env.nats.flush().await.unwrap();
}

async fn recorded_runs(env: &TestEnv) -> Vec<Value> {
    let (status, page) = env
        .get("/audit/events?aggregate_type=SandboxRun&limit=100")
        .await;
    assert!(status.is_success(), "{page}");
    page["events"].as_array().unwrap().clone()
}

/// The intake creates its stream in the background: waits until the subject is kept.
async fn wait_for_intake(env: &TestEnv) {
    common::eventually(Duration::from_secs(10), || async {
        async_nats::jetstream::new(env.nats.clone())
            .get_stream(common::sandbox_audit_stream_name(&env.prefix))
            .await
            .is_ok()
    })
    .await;
}

async fn wait_for_runs(env: &TestEnv, count: usize) -> Vec<Value> {
    let mut runs = Vec::new();
    for _ in 0..400 {
        runs = recorded_runs(env).await;
        if runs.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runs
}

#[tokio::test]
async fn a_report_is_recorded_once_even_when_sent_twice() {
    let env = TestEnv::start().await;
    wait_for_intake(&env).await;
    publish(&env, &report("run-1", 0)).await;
    publish(&env, &report("run-1", 0)).await;
    publish(&env, &json!({"id": "run-bad", "who": "alice"})).await;
    publish(&env, &report("run-2", 3)).await;

    let runs = wait_for_runs(&env, 2).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["aggregate_id"], "run-1");
    assert_eq!(runs[0]["event_type"], "SandboxCodeExecuted");
    assert_eq!(runs[0]["payload"]["who"], "alice");
    assert_eq!(runs[0]["payload"]["code_sha256"], "ab".repeat(32));
    assert_eq!(runs[1]["aggregate_id"], "run-2");
    assert_eq!(runs[1]["payload"]["exit_code"], 3);
    assert_eq!(
        runs[0]["metadata"]["user"], "sandbox:default",
        "who recorded it: {}",
        runs[0]["metadata"]
    );
    // Nothing more arrives later (the duplicate and the malformed one are gone for good).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recorded_runs(&env).await.len(), 2);
}

#[tokio::test]
async fn reports_sent_while_the_control_plane_is_down_are_recorded_when_it_returns() {
    let mut env = TestEnv::start().await;
    wait_for_intake(&env).await;
    env.server.take().unwrap().shutdown();
    publish(&env, &report("while-down", 0)).await;
    // (A pull request of the stopped process may still take the report; it comes back
    // after the consumer's ack wait, as it would after a crash.)

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = controlplane::start(
        common::config_with(&env.database_url, &env.prefix, &[]),
        listener,
    )
    .await
    .unwrap();
    env.base = format!("http://{}", server.addr);
    env.server = Some(server);
    let runs = wait_for_runs(&env, 1).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["aggregate_id"], "while-down");
}

#[tokio::test]
async fn a_person_lists_their_own_recent_runs_from_the_audit_log() {
    let env = TestEnv::start().await;
    wait_for_intake(&env).await;
    let by = |id: &str, who: &str, exit_code: i64| {
        let mut report = report(id, exit_code);
        report["who"] = json!(who);
        report
    };
    publish(&env, &by("a-1", "alice", 0)).await;
    publish(&env, &by("b-1", "bob", 0)).await;
    publish(&env, &by("a-2", "alice", 3)).await;
    publish(&env, &by("a-3", "alice", 0)).await;
    assert_eq!(wait_for_runs(&env, 4).await.len(), 4);

    let alice = env.user_token("alice", auth::Role::Developer).await;
    let runs = |token: String, query: &'static str| {
        let env = &env;
        async move {
            env.call(
                reqwest::Method::GET,
                &format!("/sandbox/runs{query}"),
                Some(&token),
                None,
            )
            .await
        }
    };
    let (status, body) = runs(alice.clone(), "").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let listed: Vec<&str> = body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["a-3", "a-2", "a-1"], "only hers, newest first");
    let a2 = &body["runs"][1];
    assert_eq!(a2["exit_code"], 3);
    assert_eq!(a2["outcome"], "exit_nonzero");
    assert_eq!(a2["language"], "python");
    assert!(a2["position"].as_i64().unwrap() > 0);
    assert!(a2.get("code").is_none(), "no code in the list: {a2}");
    let (_, body) = runs(alice.clone(), "?limit=1").await;
    assert_eq!(body["runs"].as_array().unwrap().len(), 1);
    assert_eq!(body["runs"][0]["id"], "a-3");
    let (status, body) = runs(alice, "?limit=0").await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "limit");
    // Someone without runs has none; a viewer may not run code, nor list runs.
    let carol = env.user_token("carol", auth::Role::Developer).await;
    let (_, body) = runs(carol, "").await;
    assert_eq!(body, json!({"runs": []}));
    let viewer = env.user_token("vera", auth::Role::Viewer).await;
    let (status, _) = runs(viewer, "").await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
}
