//! Security headers, CORS, CSRF, rate limits and metrics over real HTTP.

use crate::common;

use auth::Role;
use common::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let env = TestEnv::start().await;
    for path in [
        "/healthz",
        "/no/such/route",
        "/budget/state?tenant_id=a&project_id=b",
    ] {
        let response = env.http.get(env.url(path)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn cors_allows_only_listed_origins() {
    let env = TestEnv::start_with(&[("CORS_ORIGINS", "https://dash.example")]).await;
    let preflight = |origin: &'static str| {
        env.http
            .request(Method::OPTIONS, env.url("/budget/request"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("https://dash.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn cors_exposes_where_a_read_stands_and_retry_after_to_listed_origins() {
    let env = TestEnv::start_with(&[("CORS_ORIGINS", "https://dash.example")]).await;
    let response = env
        .http
        .get(env.url("/governance/status"))
        .bearer_auth(&env.admin_token)
        .header("origin", "https://dash.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in ["x-read-position", "retry-after"] {
        assert!(exposed.contains(name), "{name} is not exposed: {exposed}");
    }
}

#[tokio::test]
async fn a_role_over_its_limit_gets_429_with_retry_after() {
    let env = TestEnv::start_with(&[("RATE_LIMITS", "viewer=3")]).await;
    env.set_limit("org1", "proj1", 10).await;
    let viewer = env.user_token("vera", Role::Viewer).await;
    let path = "/budget/state?tenant_id=org1&project_id=proj1";
    for _ in 0..3 {
        // 200, or 404 while the read model catches up: either way, not limited yet.
        let (status, _) = env.call(Method::GET, path, Some(&viewer), None).await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    let response = env
        .http
        .get(env.url(path))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another role's quota is untouched.
    let (status, _) = env.get(path).await;
    assert_ne!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn login_attempts_are_limited_per_ip() {
    let env = TestEnv::start_with(&[("LOGIN_RATE_PER_MINUTE", "3")]).await;
    // The harness already logged in once.
    for _ in 0..2 {
        let (status, _) = env
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"username": "admin", "password": "guess-guess"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = env
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "admin", "password": common::ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits: {body}"
    );
}

#[tokio::test]
async fn cookie_authenticated_writes_need_the_csrf_header() {
    let env = TestEnv::start().await;
    let body = json!({"tenant_id": "org1", "project_id": "proj1", "total_tokens": 10});
    let cookie = format!("cp_session={}", env.admin_token);
    let response = env
        .http
        .put(env.url("/budget/limit"))
        .header("cookie", &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = env
        .http
        .put(env.url("/budget/limit"))
        .header("cookie", &cookie)
        .header("x-requested-with", "golden-arch")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Bearer tokens (services) need no such header.
    let (status, _) = env.put("/budget/limit", body).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "proj1", 10).await;
    env.get("/budget/state?tenant_id=org1&project_id=proj1")
        .await;
    let text = env.metrics_text().await;
    assert!(
        text.lines().any(|l| l.starts_with("api_requests_total{")
            && l.contains("endpoint=\"/budget/state\"")
            && l.contains("method=\"GET\"")),
        "{text}"
    );
    assert!(text.contains("api_request_duration_seconds_bucket"));
    assert!(
        !text.contains("tenant_id=org1"),
        "raw paths never become labels"
    );
}

#[tokio::test]
async fn readyz_reports_database_migrations_and_nats() {
    let env = TestEnv::start().await;
    let response = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ready": true, "database": "ok", "migrations": "ok", "nats": "ok", "events_stream": "ok"})
    );
}

#[tokio::test]
async fn readyz_is_503_naming_nats_when_nats_is_unreachable() {
    // A port nothing listens on: the server starts (commands need only PostgreSQL) but
    // is not ready.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nats://{}", closed.local_addr().unwrap());
    drop(closed);
    let database_url = common::fresh_database().await;
    let config = common::config_with(
        &database_url,
        &common::unique_prefix(),
        &[("NATS_URL", &url)],
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = controlplane::start(config, listener)
        .await
        .expect("starts without NATS");
    let response = reqwest::get(format!("http://{}/readyz", server.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["nats"], "disconnected");
    assert_eq!(body["database"], "ok");
    server.shutdown();
}
