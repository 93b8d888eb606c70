//! Circuit breakers over real NATS, HTTP and PostgreSQL, in one process and in two.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::TestEnv;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A request on `<prefix>.cmd.tests.breaker.<verb>` (as the test service), retried while
/// the listener is still subscribing (no responders); panics after 10 s without an answer.
async fn breaker(nats: &async_nats::Client, prefix: &str, verb: &str, body: Vec<u8>) -> Value {
    let subject = natsauth::subjects::command(prefix, common::TEST_SERVICE, "breaker", verb);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            nats.request(subject.clone(), body.clone().into()),
        )
        .await;
        if let Ok(Ok(reply)) = attempt {
            return serde_json::from_slice(&reply.payload).expect("NATS replies are JSON");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer on {subject}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn check(env: &TestEnv, name: &str) -> Value {
    breaker(
        &env.service,
        &env.prefix,
        "check",
        json!({ "name": name }).to_string().into_bytes(),
    )
    .await
}

/// A `GET /circuit-breakers` answer without the call counts (which move with every flush):
/// state, failures and `next_retry` of each breaker.
fn states(list: &Value) -> Value {
    let breakers = list["breakers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, b)| {
            let mut kept = serde_json::Map::new();
            for key in ["state", "failures", "next_retry"] {
                if let Some(v) = b.get(key) {
                    kept.insert(key.to_string(), v.clone());
                }
            }
            (name.clone(), Value::Object(kept))
        })
        .collect::<serde_json::Map<_, _>>();
    json!({ "breakers": breakers })
}

async fn record(env: &TestEnv, name: &str, outcome: &str) -> Value {
    breaker(
        &env.service,
        &env.prefix,
        "record",
        json!({"name": name, "outcome": outcome, "error": "connection refused"})
            .to_string()
            .into_bytes(),
    )
    .await
}

/// Polls `GET /circuit-breakers` until `name` is in `state` (the retry worker runs every
/// 100 ms in tests); panics after 10 s.
async fn wait_for_state(env: &TestEnv, name: &str, state: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = env.get("/circuit-breakers").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["breakers"][name]["state"] == state {
            return body["breakers"][name].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never reached {state}");
}

#[tokio::test]
async fn a_breaker_opens_half_opens_and_closes_over_nats() {
    let env = TestEnv::start().await;
    let (status, body) = env
        .put(
            "/circuit-breakers/openai_api",
            json!({"failure_threshold": 2, "open_seconds": 1, "half_open_max_calls": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], true);
    assert_eq!(body["config"]["failure_threshold"], 2);

    assert_eq!(
        check(&env, "openai_api").await,
        json!({"allowed": true, "state": "CLOSED"})
    );
    let first = record(&env, "openai_api", "failure").await;
    assert_eq!(
        (first["counted"].as_bool(), first["state"].as_str()),
        (Some(true), Some("CLOSED")),
        "{first}"
    );
    assert_eq!(first["failures"], 1);
    let second = record(&env, "openai_api", "failure").await;
    assert_eq!(second["state"], "OPEN", "{second}");
    assert_eq!(second["changed_by"], "nats:tests");
    assert!(second["next_retry"].is_string());
    // A check while open refuses and writes nothing.
    assert_eq!(
        check(&env, "openai_api").await,
        json!({"allowed": false, "state": "OPEN"})
    );

    let (_, list) = env.get("/circuit-breakers").await;
    let listed = &list["breakers"]["openai_api"];
    assert_eq!(listed["state"], "OPEN", "{list}");
    assert_eq!(listed["failures"], 2);
    assert!(listed["next_retry"].is_string());

    // The worker turns it half-open after open_seconds, without any call.
    let half_open = wait_for_state(&env, "openai_api", "HALF_OPEN").await;
    assert!(half_open.get("next_retry").is_none(), "{half_open}");
    let (_, shown) = env.get("/circuit-breakers/openai_api").await;
    assert_eq!(shown["changed_by"], "worker:breaker-retry", "{shown}");

    // One trial permit, then refusals; its success closes the breaker.
    assert_eq!(
        check(&env, "openai_api").await,
        json!({"allowed": true, "state": "HALF_OPEN", "trial": true})
    );
    assert_eq!(
        check(&env, "openai_api").await,
        json!({"allowed": false, "state": "HALF_OPEN"})
    );
    let closed = record(&env, "openai_api", "success").await;
    assert_eq!(closed["state"], "CLOSED", "{closed}");
    assert_eq!(closed["failures"], 0);
    assert_eq!(
        check(&env, "openai_api").await,
        json!({"allowed": true, "state": "CLOSED"})
    );
}

#[tokio::test]
async fn checks_and_uneventful_successes_record_nothing() {
    let env = TestEnv::start().await;
    for _ in 0..20 {
        assert_eq!(check(&env, "database").await["allowed"], true);
    }
    let success = record(&env, "database", "success").await;
    assert_eq!(success["counted"], false, "{success}");
    let (_, list) = env.get("/circuit-breakers").await;
    assert_eq!(list, json!({"breakers": {}}));
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (events,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_type = 'CircuitBreaker'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(events, 0);
    // The first failure registers the defaults, and the actor is in the event.
    record(&env, "database", "failure").await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, payload ->> 'actor' FROM events
          WHERE aggregate_type = 'CircuitBreaker' ORDER BY sequence",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("BreakerRegistered".into(), "nats:tests".into()),
            ("FailureRecorded".into(), "nats:tests".into()),
        ]
    );
    pool.close().await;
}

#[tokio::test]
async fn malformed_breaker_commands_get_an_error_reply_naming_the_field() {
    let env = TestEnv::start().await;
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("check", b"{not json".to_vec(), "invalid_request", "body"),
        ("check", b"{}".to_vec(), "invalid_request", "name"),
        (
            "check",
            br#"{"name":"has space"}"#.to_vec(),
            "invalid_request",
            "name",
        ),
        (
            "record",
            br#"{"name":"db","outcome":"maybe"}"#.to_vec(),
            "invalid_request",
            "outcome",
        ),
        (
            "record",
            br#"{"name":"db"}"#.to_vec(),
            "invalid_request",
            "outcome",
        ),
        (
            "record",
            br#"{"name":"db","outcome":"failure","extra":1}"#.to_vec(),
            "invalid_request",
            "extra",
        ),
    ];
    for (verb, body, code, field) in cases {
        let reply = breaker(&env.service, &env.prefix, verb, body.clone()).await;
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert_eq!(
            reply["error"]["field"],
            field,
            "{verb} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let reply = breaker(&env.service, &env.prefix, "explode", b"{}".to_vec()).await;
    assert_eq!(reply["error"]["code"], "not_found");
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(100 * 1024));
    let reply = breaker(&env.service, &env.prefix, "check", big.into_bytes()).await;
    assert_eq!(reply["error"]["field"], "body");
    // Still alive.
    assert_eq!(check(&env, "db").await["allowed"], true);
}

#[tokio::test]
async fn http_routes_check_their_permissions() {
    let env = TestEnv::start().await;
    let viewer = env.user_token("vera", auth::Role::Viewer).await;
    let service = env.user_token("svc", auth::Role::Service).await;
    let operator = env.user_token("otto", auth::Role::Operator).await;
    let call = |method: reqwest::Method, path: &'static str, token: Option<String>| {
        let env = &env;
        async move {
            let body = (method == reqwest::Method::PUT).then(|| json!({"failure_threshold": 3}));
            env.call(method, path, token.as_deref(), body).await.0
        }
    };
    use reqwest::Method;
    assert_eq!(
        call(Method::GET, "/circuit-breakers", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(Method::GET, "/circuit-breakers", Some(viewer.clone())).await,
        StatusCode::OK
    );
    assert_eq!(
        call(Method::PUT, "/circuit-breakers/db", Some(viewer.clone())).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Method::PUT, "/circuit-breakers/db", Some(service.clone())).await,
        StatusCode::OK
    );
    for path in [
        "/circuit-breakers/db/reset",
        "/circuit-breakers/db/force_open",
        "/circuit-breakers/db/disable",
        "/circuit-breakers/reset_all",
    ] {
        assert_eq!(
            call(Method::POST, path, Some(service.clone())).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            call(Method::POST, path, Some(operator.clone())).await,
            StatusCode::OK,
            "{path}"
        );
    }
    let (status, body) = env
        .call(
            Method::POST,
            "/circuit-breakers/db/reset",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
}

#[tokio::test]
async fn bad_http_input_is_a_400_naming_the_field() {
    let env = TestEnv::start().await;
    let cases = [
        (
            "/circuit-breakers/db",
            json!({"failure_threshold": 0}),
            "failure_threshold",
        ),
        (
            "/circuit-breakers/db",
            json!({"open_seconds": 100_000}),
            "open_seconds",
        ),
        (
            "/circuit-breakers/db",
            json!({"half_open_max_calls": "two"}),
            "half_open_max_calls",
        ),
        ("/circuit-breakers/db", json!({"threshold": 3}), "threshold"),
        ("/circuit-breakers/a%20b", json!({}), "name"),
        (
            &format!("/circuit-breakers/{}", "n".repeat(65)),
            json!({}),
            "name",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = env.put(path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{path}: {answer}");
    }
    let (status, answer) = env.post("/circuit-breakers/a*b/reset", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "name");
    let (status, answer) = env
        .call(
            reqwest::Method::PUT,
            "/circuit-breakers/db",
            Some(&env.admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "body");
}

#[tokio::test]
async fn overrides_and_reset_all_are_recorded_with_who_did_them() {
    let env = TestEnv::start().await;
    let (status, forced) = env
        .post("/circuit-breakers/payments/force_open", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(
        (forced["state"].as_str(), forced["changed_by"].as_str()),
        (Some("FORCED_OPEN"), Some("http:admin"))
    );
    // Forcing again changes nothing.
    let (_, again) = env
        .post("/circuit-breakers/payments/force_open", json!({}))
        .await;
    assert_eq!(again["changed"], false);
    assert_eq!(
        check(&env, "payments").await,
        json!({"allowed": false, "state": "FORCED_OPEN"})
    );
    // A failure while forced open counts nothing.
    assert_eq!(record(&env, "payments", "failure").await["counted"], false);

    let (_, disabled) = env
        .post("/circuit-breakers/search/disable", json!({}))
        .await;
    assert_eq!(disabled["state"], "DISABLED");
    assert_eq!(
        check(&env, "search").await,
        json!({"allowed": true, "state": "DISABLED"})
    );
    record(&env, "flaky", "failure").await;

    let (status, reset) = env.post("/circuit-breakers/reset_all", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(reset["reset"], json!(["flaky", "payments", "search"]));
    let (_, list) = env.get("/circuit-breakers").await;
    assert_eq!(
        states(&list),
        json!({"breakers": {
            "flaky": {"state": "CLOSED", "failures": 0},
            "payments": {"state": "CLOSED", "failures": 0},
            "search": {"state": "CLOSED", "failures": 0},
        }})
    );
    let (_, shown) = env.get("/circuit-breakers/payments").await;
    assert_eq!(shown["changed_by"], "http:admin", "{shown}");
    // Checks see the reset at once in this process.
    assert_eq!(check(&env, "payments").await["allowed"], true);
    let (_, nothing) = env.post("/circuit-breakers/reset_all", json!({})).await;
    assert_eq!(nothing["reset"], json!([]));
}

/// Starts `controlplane serve` as a real process on port 0 and returns it and its URL.
async fn spawn_process(database_url: &str, prefix: &str) -> (tokio::process::Child, String) {
    // Read once, as the process starts (it has when it prints where it listens).
    let creds = common::creds_file(natsauth::Role::ControlPlane, prefix);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .arg("serve")
        .env("NATS_CREDS", creds.path())
        .env("APP_ENV", "test")
        .env("DATABASE_URL", database_url)
        .env("NATS_URL", common::nats_url())
        .env("NATS_SUBJECT_PREFIX", prefix)
        // Each test its own JetStream stream, like its own subject prefix.
        .env("EVENTS_STREAM", format!("EV_{prefix}"))
        .env("JWT_SECRET", common::JWT_SECRET)
        .env("ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("EXPIRY_INTERVAL_MS", "100")
        .env("PORT", "0")
        .env("RATE_LIMITS", "admin=100000,service=100000,operator=100000")
        .env("LOGIN_RATE_PER_MINUTE", "10000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn controlplane");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the process starts in time")
        .unwrap()
        .expect("it prints where it listens");
    let url = line.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://"), "{line}");
    (child, url)
}

/// `n` concurrent checks over NATS (the queue group spreads them over both processes).
async fn checks(nats: &async_nats::Client, prefix: &str, name: &str, n: usize) -> Vec<Value> {
    join_all((0..n).map(|_| {
        breaker(
            nats,
            prefix,
            "check",
            json!({ "name": name }).to_string().into_bytes(),
        )
    }))
    .await
}

/// Polls until every one of 40 concurrent checks answers `state`; panics after 10 s.
async fn wait_until_all_checks_say(
    nats: &async_nats::Client,
    prefix: &str,
    name: &str,
    state: &str,
) {
    for _ in 0..100 {
        let answers = checks(nats, prefix, name, 40).await;
        if answers.iter().all(|a| a["state"] == state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the processes never agreed on {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_serve_processes_agree_on_breaker_state_and_trial_permits() {
    let database_url = common::fresh_database().await;
    let prefix = common::unique_prefix();
    let (_a, url_a) = spawn_process(&database_url, &prefix).await;
    let (_b, url_b) = spawn_process(&database_url, &prefix).await;
    common::register_service(&database_url, common::TEST_SERVICE, None).await;
    let nats = common::service_client(&common::nats_url(), &prefix, common::TEST_SERVICE).await;
    let http = reqwest::Client::new();
    let token: String = http
        .post(format!("{url_a}/auth/login"))
        .json(&json!({"username": "admin", "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let list = |url: String| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            http.get(format!("{url}/circuit-breakers"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let configured = http
        .put(format!("{url_b}/circuit-breakers/llm"))
        .bearer_auth(&token)
        .json(&json!({"failure_threshold": 5, "open_seconds": 1, "half_open_max_calls": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), StatusCode::OK);
    // Both processes answer checks, and both see it closed (it is cached in each now).
    wait_until_all_checks_say(&nats, &prefix, "llm", "CLOSED").await;

    // Five concurrent failures, spread over both processes, open it exactly once.
    let reports = join_all((0..5).map(|_| {
        breaker(
            &nats,
            &prefix,
            "record",
            json!({"name": "llm", "outcome": "failure"})
                .to_string()
                .into_bytes(),
        )
    }))
    .await;
    assert!(reports.iter().all(|r| r["counted"] == true), "{reports:?}");
    let (a, b) = (
        states(&list(url_a.clone()).await),
        states(&list(url_b.clone()).await),
    );
    assert_eq!(a, b);
    assert_eq!(a["breakers"]["llm"]["state"], "OPEN", "{a}");
    assert_eq!(a["breakers"]["llm"]["failures"], 5);
    let answers = checks(&nats, &prefix, "llm", 40).await;
    assert!(
        answers
            .iter()
            .all(|a| a["state"] == "OPEN" || a["state"] == "HALF_OPEN"),
        "{answers:?}"
    );

    // Half-open: however many checks race over both processes, exactly 3 trials are allowed.
    for _ in 0..200 {
        if list(url_a.clone()).await["breakers"]["llm"]["state"] == "HALF_OPEN" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answers = checks(&nats, &prefix, "llm", 40).await;
    let allowed = answers.iter().filter(|a| a["allowed"] == true).count();
    assert_eq!(allowed, 3, "{answers:?}");
    assert!(answers.iter().all(|a| a["state"] == "HALF_OPEN"));

    // A reset on one process is seen by the checks of both.
    let reset = http
        .post(format!("{url_a}/circuit-breakers/llm/reset"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    wait_until_all_checks_say(&nats, &prefix, "llm", "CLOSED").await;
    let (a, b) = (states(&list(url_a).await), states(&list(url_b).await));
    assert_eq!(a, b);
    assert_eq!(
        a["breakers"]["llm"],
        json!({"state": "CLOSED", "failures": 0})
    );
}

#[tokio::test]
async fn a_change_nobody_announced_reaches_checks_with_the_next_sweep() {
    use commands::breaker::BreakerService;
    use commands::clock::SystemClock;
    use commands::store::{Actor, EventStore};
    let env = TestEnv::start().await;
    // The server caches the breaker.
    assert_eq!(check(&env, "quiet").await["state"], "CLOSED");
    // A writer that announces nothing (as if the announcement were lost).
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let silent = BreakerService::new(EventStore::new(pool), std::sync::Arc::new(SystemClock));
    silent
        .force_open("quiet", &Actor::new("elsewhere", "test"), None)
        .await
        .unwrap();
    // The sweep runs every 100 ms in tests; the cache age bound alone would take 2 s.
    let started = std::time::Instant::now();
    while check(&env, "quiet").await["state"] != "FORCED_OPEN" {
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "the change was not picked up by a sweep"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The breakers' read model (`read_breakers`, fed by the projector) says what the log says
/// (`GET /circuit-breakers` reads the latest event of each breaker), and a replay rebuilds
/// exactly the same rows.
#[tokio::test]
async fn the_breakers_read_model_follows_the_log_and_a_replay_rebuilds_it() {
    let env = TestEnv::start().await;
    let (status, body) = env
        .put(
            "/circuit-breakers/openai_api",
            json!({"failure_threshold": 2, "open_seconds": 600, "half_open_max_calls": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    record(&env, "openai_api", "failure").await;
    assert_eq!(record(&env, "openai_api", "failure").await["state"], "OPEN");
    record(&env, "vector_db", "failure").await;
    for (name, action) in [
        ("search", "force_open"),
        ("mailer", "disable"),
        ("mailer", "reset"),
    ] {
        let (status, body) = env
            .post(&format!("/circuit-breakers/{name}/{action}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{name} {action}: {body}");
    }
    common::wait_for_pipeline(&env.database_url, &env.stream(), Duration::from_secs(30)).await;

    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let rows = || async {
        let rows: Vec<(Value,)> =
            sqlx::query_as("SELECT to_jsonb(b) FROM read_breakers b ORDER BY name")
                .fetch_all(&pool)
                .await
                .unwrap();
        rows.into_iter().map(|(row,)| row).collect::<Vec<_>>()
    };
    let live = rows().await;
    let (_, list) = env.get("/circuit-breakers").await;
    let listed = list["breakers"].as_object().unwrap();
    assert_eq!(live.len(), listed.len(), "{live:?} vs {list}");
    for row in &live {
        let name = row["name"].as_str().unwrap();
        let from_log = &listed[name];
        assert_eq!(row["state"], from_log["state"], "{name}");
        assert_eq!(row["failures"], from_log["failures"], "{name}");
        assert_eq!(
            row["next_retry"].is_string(),
            from_log["next_retry"].is_string(),
            "{name}: next_retry only while OPEN"
        );
    }
    let states: Vec<(&str, &str)> = live
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("mailer", "CLOSED"),
            ("openai_api", "OPEN"),
            ("search", "FORCED_OPEN"),
            ("vector_db", "CLOSED")
        ]
    );

    projections::replay::replay(&pool, |_, _| {}).await.unwrap();
    assert_eq!(rows().await, live, "the replay rebuilds the same rows");
}

#[tokio::test]
async fn transitions_list_openings_with_their_cause_and_overrides_with_who_newest_first() {
    let env = TestEnv::start().await;
    let name = "transitions-db";
    let (status, _) = env
        .put(
            &format!("/circuit-breakers/{name}"),
            json!({"failure_threshold": 2, "open_seconds": 60}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    record(&env, name, "failure").await;
    record(&env, name, "failure").await; // opens
                                         // An override says why; a bad reason is a 400 naming it, and changes nothing.
    for (body, field) in [
        (json!({"reason": "x".repeat(513)}), "reason"),
        (json!({"reason": "two\nlines"}), "reason"),
        (json!({"why": "no"}), "why"),
        (json!({"reason": 5}), "reason"),
    ] {
        let (status, answer) = env
            .post(&format!("/circuit-breakers/{name}/force_open"), body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, _) = env
        .post(
            &format!("/circuit-breakers/{name}/force_open"),
            json!({"reason": " db maintenance "}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = env
        .post(&format!("/circuit-breakers/{name}/reset"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // No body at all is an override without a reason.
    let response = env
        .http
        .post(env.url(&format!("/circuit-breakers/{name}/disable")))
        .bearer_auth(&env.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = env
        .post(&format!("/circuit-breakers/{name}/reset"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = env
        .get(&format!("/circuit-breakers/{name}/transitions"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let transitions = body["transitions"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = transitions
        .iter()
        .map(|t| {
            (
                t["event_type"].as_str().unwrap(),
                t["state"].as_str().unwrap(),
                t["actor"].as_str().unwrap(),
            )
        })
        .collect();
    let service_actor = format!("nats:{}", common::TEST_SERVICE);
    assert_eq!(
        summary,
        vec![
            ("BreakerReset", "CLOSED", "http:admin"),
            ("BreakerDisabled", "DISABLED", "http:admin"),
            ("BreakerReset", "CLOSED", "http:admin"),
            ("BreakerForcedOpen", "FORCED_OPEN", "http:admin"),
            // The service whose subject the failures came on (NATS vouches for it).
            ("BreakerOpened", "OPEN", service_actor.as_str()),
        ],
        "{body}"
    );
    assert_eq!(transitions[3]["reason"], "db maintenance");
    assert!(transitions[1].get("reason").is_none(), "{body}");
    assert_eq!(transitions[4]["error"], "connection refused");
    assert_eq!(transitions[4]["from"], "CLOSED");
    assert!(
        transitions[0]["position"].as_i64().unwrap() > transitions[4]["position"].as_i64().unwrap()
    );

    let (_, body) = env
        .get(&format!("/circuit-breakers/{name}/transitions?limit=1"))
        .await;
    assert_eq!(body["transitions"].as_array().unwrap().len(), 1);
    // By kind: the openings with their cause; the operators' changes with who and why.
    let kinds = |body: &Value| -> Vec<String> {
        body["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["event_type"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, body) = env
        .get(&format!(
            "/circuit-breakers/{name}/transitions?kind=openings"
        ))
        .await;
    assert_eq!(kinds(&body), ["BreakerOpened"], "{body}");
    assert_eq!(body["transitions"][0]["error"], "connection refused");
    let (_, body) = env
        .get(&format!(
            "/circuit-breakers/{name}/transitions?kind=overrides&limit=2"
        ))
        .await;
    assert_eq!(kinds(&body), ["BreakerReset", "BreakerDisabled"], "{body}");
    let (_, body) = env
        .get(&format!(
            "/circuit-breakers/{name}/transitions?kind=overrides"
        ))
        .await;
    assert_eq!(body["transitions"][3]["reason"], "db maintenance", "{body}");
    assert_eq!(body["transitions"][3]["actor"], "http:admin", "{body}");
    let (_, body) = env.get("/circuit-breakers/never-seen/transitions").await;
    assert_eq!(body, json!({"transitions": []}));
    for (path, field) in [
        (
            format!("/circuit-breakers/{name}/transitions?limit=0"),
            "limit",
        ),
        (
            format!("/circuit-breakers/{name}/transitions?limit=101"),
            "limit",
        ),
        (
            format!("/circuit-breakers/{name}/transitions?since=1"),
            "since",
        ),
        (
            "/circuit-breakers/bad%20name/transitions".to_string(),
            "name",
        ),
        (
            format!("/circuit-breakers/{name}/transitions?kind=closings"),
            "kind",
        ),
    ] {
        let (status, body) = env.get(&path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
}

#[tokio::test]
async fn the_list_has_each_breakers_failure_rate_over_the_last_five_minutes() {
    let env = TestEnv::start().await;
    let name = "rated-api";
    // Two failures (not enough to open it), then eight successes: 10 calls, 20 % failed.
    // Successes while closed write no event; they are counted all the same.
    for outcome in ["failure", "failure", "success", "success"] {
        record(&env, name, outcome).await;
    }
    for _ in 0..6 {
        record(&env, name, "success").await;
    }
    // Counts reach the table on each pass of the retry worker (every 100 ms in tests).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let last = loop {
        let (_, body) = env.get("/circuit-breakers").await;
        let last = body["breakers"][name].clone();
        if last["recent_calls"] == 10 || tokio::time::Instant::now() >= deadline {
            break last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(last["recent_calls"], 10, "ten calls are counted: {last}");
    assert_eq!(last["recent_failures"], 2, "{last}");
    assert_eq!(last["failure_rate"], 0.2, "{last}");
    assert_eq!(last["state"], "CLOSED", "{last}");
    assert_eq!(last["failures"], 0, "the successes cleared the run: {last}");
    // Kept per breaker and minute; every process adds to the same rows.
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (rows, calls): (i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(successes + failures)::bigint FROM breaker_outcomes WHERE name = $1",
    )
    .bind(name)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!((1..=2).contains(&rows), "one row per minute: {rows}");
    assert_eq!(calls, 10);
    pool.close().await;
}
