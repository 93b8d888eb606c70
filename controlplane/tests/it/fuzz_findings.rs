//! Inputs schemathesis found that used to end in a 5xx or a broken body; each must now be
//! a 400 naming the field.

use crate::common;

use common::TestEnv;
use reqwest::StatusCode;
use serde_json::json;

async fn assert_names(env: &TestEnv, path: &str, field: &str) {
    let (status, answer) = env.get(path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
    assert_eq!(answer["error"]["field"], field, "{path}: {answer}");
}

#[tokio::test]
async fn a_min_position_no_event_has_is_a_400_not_a_503() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 100).await;
    // Past the end of the log: waiting would never end.
    assert_names(
        &env,
        "/budget/state?tenant_id=org1&project_id=proj1&min_position=9223372036854775806",
        "min_position",
    )
    .await;
    // A position a command answered with still reads the caller's own write.
    let (status, answer) = env.get(&env.state_path("org1", "proj1")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["total"], 100);
}

#[tokio::test]
async fn audit_filters_with_a_nul_byte_or_an_unstorable_date_are_400s() {
    let env = TestEnv::start().await;
    for route in ["/audit/events", "/audit/export"] {
        assert_names(
            &env,
            &format!("{route}?aggregate_type=%00x"),
            "aggregate_type",
        )
        .await;
        assert_names(&env, &format!("{route}?event_type=a%0Ab"), "event_type").await;
        assert_names(&env, &format!("{route}?to=-200000-01-01T00:00:00Z"), "to").await;
    }
    // A plain export still streams.
    let (status, _) = env.get("/audit/export?aggregate_type=Budget").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn dead_letter_reads_with_a_min_position_no_event_has_are_400s() {
    let env = TestEnv::start().await;
    assert_names(
        &env,
        "/dlq?min_position=9223372036854775806",
        "min_position",
    )
    .await;
    assert_names(
        &env,
        "/dlq/some-entry?min_position=9223372036854775806",
        "min_position",
    )
    .await;
}

#[tokio::test]
async fn a_redrive_slower_than_one_message_per_1000_s_is_a_400_not_a_panic() {
    let env = TestEnv::start().await;
    for rate in [json!(1e-300), json!(0.0001), json!(0)] {
        let (status, answer) = env.post("/dlq/redrive", json!({ "rate": rate })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{rate}: {answer}");
        assert_eq!(answer["error"]["field"], "rate", "{answer}");
    }
    // The process is still serving.
    let (status, _) = env.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}
