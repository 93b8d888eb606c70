//! `/governance/status`, `/governance/roles`, `/stats` and the business gauges of
//! `/metrics`, over real HTTP against budgets and breakers made through the API.

use crate::common;

use std::time::Duration;

use auth::Role;
use common::{eventually, TestEnv};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Reads `path` once the read models have applied every write of the test.
async fn read_after_writes(env: &TestEnv, path: &str) -> Value {
    env.wait_for_own_writes().await;
    let (status, answer) = env.get(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    answer
}

async fn force_open(env: &TestEnv, name: &str) {
    let (status, answer) = env
        .put(&format!("/circuit-breakers/{name}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = env
        .post(&format!("/circuit-breakers/{name}/force_open"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

fn row<'a>(status: &'a Value, tenant: &str, project: &str) -> &'a Value {
    status["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant_id"] == tenant && r["project_id"] == project)
        .unwrap_or_else(|| panic!("{tenant}/{project} in {status}"))
}

async fn four_budgets(env: &TestEnv) {
    env.set_limit("org1", "ok", 1000).await;
    env.set_limit("org1", "warn", 1000).await;
    env.set_limit("org2", "full", 100).await;
    env.reserve("org1", "ok", 100).await;
    env.reserve("org1", "warn", 850).await;
    env.reserve("org2", "full", 100).await;
    // No limit: denied, and listed as no_budget.
    let denied = env.reserve("org3", "none", 10).await;
    assert_eq!(denied["approved"], false);
}

#[tokio::test]
async fn each_budget_gets_its_status_from_the_warning_threshold() {
    let env = TestEnv::start().await;
    four_budgets(&env).await;
    let status = read_after_writes(&env, "/governance/status").await;
    assert_eq!(status["warning_threshold_percent"], 80.0);
    assert_eq!(status["matching"], 4);
    let ok = row(&status, "org1", "ok");
    assert_eq!(
        (
            ok["limit"].as_i64(),
            ok["used"].as_i64(),
            ok["reserved"].as_i64()
        ),
        (Some(1000), Some(0), Some(100))
    );
    assert_eq!(ok["available"], 900);
    assert_eq!(ok["utilisation_percent"], 10.0);
    assert_eq!(ok["status"], "ok");
    assert_eq!(row(&status, "org1", "warn")["status"], "warning");
    assert_eq!(row(&status, "org1", "warn")["utilisation_percent"], 85.0);
    assert_eq!(row(&status, "org2", "full")["status"], "exhausted");
    let none = row(&status, "org3", "none");
    assert_eq!(none["status"], "no_budget");
    assert!(none.get("limit").is_none() && none.get("utilisation_percent").is_none());
    assert_eq!(
        status["counts"],
        json!({"ok": 1, "warning": 1, "exhausted": 1, "no_budget": 1})
    );
    assert_eq!(status["open_dlq_entries"], 0);
}

#[tokio::test]
async fn status_filters_by_tenant_and_status_and_names_a_bad_filter() {
    let env = TestEnv::start_with(&[("GOVERNANCE_WARNING_PERCENT", "90")]).await;
    four_budgets(&env).await;
    let status = read_after_writes(&env, "/governance/status?tenant_id=org1").await;
    assert_eq!(status["matching"], 2);
    assert_eq!(status["warning_threshold_percent"], 90.0);
    // 85 % is below a 90 % threshold.
    assert_eq!(row(&status, "org1", "warn")["status"], "ok");
    let (_, exhausted) = env.get("/governance/status?status=exhausted").await;
    assert_eq!(exhausted["matching"], 1);
    assert_eq!(exhausted["rows"][0]["tenant_id"], "org2");
    let (_, page) = env.get("/governance/status?limit=1&offset=1").await;
    assert_eq!(page["rows"].as_array().unwrap().len(), 1);
    assert_eq!(page["matching"], 4);
    for (query, field) in [
        ("status=broken", "status"),
        ("tenant_id=a%20b", "tenant_id"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("colour=red", "colour"),
    ] {
        let (status, answer) = env.get(&format!("/governance/status?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{query}: {answer}");
    }
}

#[tokio::test]
async fn open_breakers_are_listed_once_for_every_tenant() {
    let env = TestEnv::start().await;
    force_open(&env, "openai_api").await;
    // From the breakers' read model: there once the projector has applied the event.
    let expected = json!([{"name": "openai_api", "state": "FORCED_OPEN", "failures": 0}]);
    let listed = common::eventually(Duration::from_secs(10), || async {
        env.get("/governance/status").await.1["open_breakers"] == expected
    })
    .await;
    assert!(listed, "{}", env.get("/governance/status").await.1);
}

#[tokio::test]
async fn roles_list_permissions_and_the_limits_in_force() {
    let env = TestEnv::start_with(&[("RATE_LIMITS", "viewer=42")]).await;
    let viewer = env.user_token("vera", Role::Viewer).await;
    let (status, answer) = env
        .call(Method::GET, "/governance/roles", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let roles = answer["roles"].as_array().unwrap();
    assert_eq!(roles.len(), Role::ALL.len());
    let viewer = roles.iter().find(|r| r["role"] == "viewer").unwrap();
    assert_eq!(viewer["rate_limit_per_minute"], 42);
    assert_eq!(
        viewer["permissions"],
        json!([
            "read:budget",
            "read:breakers",
            "read:governance",
            "read:system"
        ])
    );
    let admin = roles.iter().find(|r| r["role"] == "admin").unwrap();
    assert_eq!(admin["rate_limit_per_minute"], 600);
}

#[tokio::test]
async fn stats_count_requests_errors_events_breakers_and_budgets() {
    let env = TestEnv::start().await;
    four_budgets(&env).await;
    for _ in 0..5 {
        let (status, _) = env.get("/budget/state?tenant_id=nobody&project_id=x").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    force_open(&env, "search_api").await;
    let _ = read_after_writes(&env, "/healthz").await;
    let (status, stats) = env.get("/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let requests = &stats["requests"];
    // Logins, the writes, the five 404s and the reads above: every one was counted.
    assert!(requests["requests"].as_u64().unwrap() >= 15, "{stats}");
    assert!(
        requests["client_error_rate"].as_f64().unwrap() > 0.0,
        "{stats}"
    );
    assert_eq!(requests["error_rate"], 0.0);
    let latency = &requests["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap());
    assert!(
        stats["events_per_second"].as_f64().unwrap() > 0.0,
        "{stats}"
    );
    assert_eq!(stats["breakers"]["FORCED_OPEN"], 1);
    assert_eq!(
        (
            stats["budgets"]["budgets"].as_i64(),
            stats["budgets"]["total"].as_i64()
        ),
        (Some(3), Some(2100))
    );
    assert_eq!(stats["budgets"]["reserved"], 1050);
    let series = stats["series"].as_array().unwrap();
    assert_eq!(series.len(), 60);
    let last = &series[59];
    assert!(last["requests"].as_u64().unwrap() > 0, "{last}");
    let events: i64 = series.iter().map(|m| m["events"].as_i64().unwrap()).sum();
    assert!(events >= 8, "limits, reservations and a denial: {events}");
}

#[tokio::test]
async fn metrics_carry_budget_use_per_tenant_and_breaker_state_per_name() {
    let env = TestEnv::start_with(&[("METRICS_REFRESH_MS", "200")]).await;
    four_budgets(&env).await;
    force_open(&env, "openai_api").await;
    let _ = read_after_writes(&env, "/healthz").await;
    let scrape = || env.metrics_text();
    let expected = [
        "budget_reserved_tokens{tenant=\"org1\"} 950",
        "budget_reserved_tokens{tenant=\"org2\"} 100",
        "budget_used_tokens{tenant=\"org1\"} 0",
        "breaker_state{name=\"openai_api\"} 3",
        "dlq_open_entries 0",
    ];
    let found = eventually(Duration::from_secs(10), || async {
        let text = scrape().await;
        expected.iter().all(|line| text.contains(line))
    })
    .await;
    assert!(found, "{expected:?} in:\n{}", scrape().await);
}

/// `tenant/project` of each row of an answer, in order.
fn names(status: &Value) -> Vec<String> {
    status["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["tenant_id"].as_str().unwrap(),
                r["project_id"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn status_searches_sorts_and_pages_on_the_server() {
    let env = TestEnv::start().await;
    four_budgets(&env).await;
    env.set_limit("Org4", "Web", 400).await;
    env.reserve("Org4", "Web", 100).await;
    env.wait_for_own_writes().await;

    // Search: `tenant/project` contains the text, ignoring case; the counts per status
    // cover the search (not the status filter), `matching` both.
    let (_, found) = env.get("/governance/status?q=ORG1").await;
    assert_eq!(names(&found), ["org1/ok", "org1/warn"], "{found}");
    assert_eq!(
        found["counts"],
        json!({"ok": 1, "warning": 1, "exhausted": 0, "no_budget": 0})
    );
    let (_, found) = env.get("/governance/status?q=g1%2Fw").await;
    assert_eq!(names(&found), ["org1/warn"], "across the slash: {found}");
    let (_, found) = env.get("/governance/status?q=web&status=ok").await;
    assert_eq!(names(&found), ["Org4/Web"], "{found}");
    assert_eq!(found["matching"], 1);
    let (_, found) = env.get("/governance/status?q=%25").await;
    assert_eq!(found["matching"], 0, "no pattern characters: {found}");
    let (_, all) = env.get("/governance/status?q=%20").await;
    assert_eq!(all["matching"], 5, "blank text searches nothing: {all}");

    // Sort: by utilisation, budgets without a limit first ascending and last descending;
    // ties by name.
    let (_, asc) = env.get("/governance/status?sort=utilisation").await;
    assert_eq!(
        names(&asc),
        ["org3/none", "org1/ok", "Org4/Web", "org1/warn", "org2/full"],
        "{asc}"
    );
    let (_, desc) = env
        .get("/governance/status?sort=utilisation&dir=desc")
        .await;
    assert_eq!(
        names(&desc),
        ["org2/full", "org1/warn", "Org4/Web", "org1/ok", "org3/none"],
        "{desc}"
    );
    let (_, by_available) = env.get("/governance/status?sort=available&dir=desc").await;
    assert_eq!(
        names(&by_available),
        ["org1/ok", "Org4/Web", "org1/warn", "org2/full", "org3/none"],
        "{by_available}"
    );
    let (_, by_limit) = env.get("/governance/status?sort=limit").await;
    assert_eq!(names(&by_limit)[0], "org3/none", "{by_limit}");
    let (_, by_reserved) = env.get("/governance/status?sort=reserved&dir=desc").await;
    assert_eq!(names(&by_reserved)[0], "org1/warn", "{by_reserved}");

    // Pages of one row each, walked to the end, are the whole sorted list exactly once.
    let mut paged = Vec::new();
    for offset in 0..6 {
        let (status, page) = env
            .get(&format!(
                "/governance/status?sort=utilisation&dir=desc&limit=1&offset={offset}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["matching"], 5, "{page}");
        paged.extend(names(&page));
    }
    assert_eq!(paged, names(&desc));

    for (query, field) in [
        ("sort=colour", "sort"),
        ("dir=up", "dir"),
        ("q=a%00b", "q"),
        (&format!("q={}", "x".repeat(130)) as &str, "q"),
        ("min_position=0", "min_position"),
        ("min_position=x", "min_position"),
    ] {
        let (status, answer) = env.get(&format!("/governance/status?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{query}: {answer}");
    }
}

#[tokio::test]
async fn status_with_min_position_shows_the_callers_own_write() {
    let env = TestEnv::start().await;
    env.set_limit("own", "p", 1000).await;
    env.wait_for_own_writes().await;
    for i in 1..=5 {
        let answer = env.reserve("own", "p", 10).await;
        let position = answer["position"].as_i64().unwrap();
        // At once, without waiting for the projector: the read waits for the position.
        let (status, page) = env
            .get(&format!("/governance/status?q=own&min_position={position}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(row(&page, "own", "p")["reserved"], 10 * i, "{page}");
    }
}

#[tokio::test]
async fn stats_count_dead_letters_captured_and_resolved_per_minute() {
    let env = TestEnv::start().await;
    env.dead_letters(&["trend-1", "trend-2", "trend-3"], &["trend-2"])
        .await;
    let stats = read_after_writes(&env, "/stats").await;
    let series = stats["series"].as_array().unwrap();
    let sum = |field: &str| -> i64 { series.iter().map(|m| m[field].as_i64().unwrap()).sum() };
    assert_eq!(
        (sum("dlq_captured"), sum("dlq_resolved")),
        (3, 1),
        "{series:?}"
    );
    // In the minutes they happened (this one, or the one before when the test crossed a
    // minute), and never more than the events of that minute.
    for minute in series {
        let dlq =
            minute["dlq_captured"].as_i64().unwrap() + minute["dlq_resolved"].as_i64().unwrap();
        assert!(dlq <= minute["events"].as_i64().unwrap(), "{minute}");
    }
    assert!(
        series[58..]
            .iter()
            .map(|m| m["dlq_captured"].as_i64().unwrap())
            .sum::<i64>()
            == 3,
        "{series:?}"
    );
    assert_eq!(stats["open_dlq_entries"], 2);
}
