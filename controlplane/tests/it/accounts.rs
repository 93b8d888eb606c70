//! Accounts (issue 18): the users API, tenant scopes at every HTTP entrance and on the
//! WebSocket, sessions that end on logout and on a change of the account, and the login's
//! own defences. Everything over real HTTP and WebSocket against a real server.

use crate::common;

use std::time::Duration;

use common::{eventually, TestEnv, ADMIN_PASSWORD};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// Adds an account through the API and logs it in.
async fn add_user(env: &TestEnv, admin: &str, name: &str, role: &str, tenants: Value) -> String {
    let (status, body) = env
        .call(
            Method::POST,
            "/users",
            Some(admin),
            Some(json!({"username": name, "password": "password-1234", "role": role, "tenants": tenants})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    env.login(name, "password-1234").await
}

/// `/ws` with a bearer token (retried while the live feed starts).
async fn open_socket(
    env: &TestEnv,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = format!("{}/ws", env.base.replacen("http://", "ws://", 1))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    for _ in 0..200 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(request.clone()).await {
            return ws;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the WebSocket never opened");
}

async fn status_of(env: &TestEnv, token: &str, path: &str) -> StatusCode {
    env.call(Method::GET, path, Some(token), None).await.0
}

#[tokio::test]
async fn an_admin_manages_accounts_and_every_change_is_an_audited_event() {
    let env = TestEnv::start().await;
    let admin = env.admin_token.clone();
    let viewer = add_user(&env, &admin, "vera", "viewer", json!(["org1", "org1"])).await;

    let (status, me) = env.call(Method::GET, "/auth/me", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["tenants"], json!(["org1"]), "{me}");

    let (status, list) = env.call(Method::GET, "/users", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let vera = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "vera")
        .expect("vera is listed");
    assert_eq!(
        (vera["role"].clone(), vera["disabled"].clone()),
        (json!("viewer"), json!(false))
    );
    assert!(vera.get("password_hash").is_none());

    // Only admins manage accounts.
    assert_eq!(
        status_of(&env, &viewer, "/users").await,
        StatusCode::FORBIDDEN
    );

    let (status, body) = env
        .call(
            Method::POST,
            "/users",
            Some(&admin),
            Some(json!({"username": "vera", "password": "password-1234", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = env
        .call(
            Method::POST,
            "/users",
            Some(&admin),
            Some(json!({"username": "x", "password": "password-1234", "role": "root"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("role"))
    );
    let (status, body) = env
        .call(
            Method::PATCH,
            "/users/vera",
            Some(&admin),
            Some(json!({"tenants": ["org1", "bad tenant"]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("tenants[1]"))
    );
    let (status, _) = env
        .call(
            Method::PATCH,
            "/users/nobody",
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An admin cannot lock themselves out.
    let (status, body) = env
        .call(
            Method::PATCH,
            "/users/admin",
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("role"))
    );
    let (status, _) = env
        .call(
            Method::PATCH,
            "/users/admin",
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, changed) = env
        .call(
            Method::PATCH,
            "/users/vera",
            Some(&admin),
            Some(json!({"role": "operator", "tenants": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (changed["role"].clone(), changed["tenants"].clone()),
        (json!("operator"), Value::Null)
    );
    let (status, _) = env
        .call(
            Method::POST,
            "/users/vera/password",
            Some(&admin),
            Some(json!({"password": "another-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    env.login("vera", "another-password").await;

    // The log says who did what to whom, and never a password.
    let (status, events) = env
        .call(
            Method::GET,
            "/audit/events?aggregate_type=UserAccount&limit=100",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let items = events["events"].as_array().expect("a list of events");
    let kinds: Vec<&str> = items
        .iter()
        .filter(|e| e["aggregate_id"] == "vera")
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "UserAdded",
            "UserRoleChanged",
            "UserTenantsChanged",
            "UserPasswordReset"
        ],
        "{events}"
    );
    let text = events.to_string();
    assert!(!text.contains("another-password") && !text.contains("argon2"));
    assert!(
        items
            .iter()
            .filter(|e| e["aggregate_id"] == "vera")
            .all(|e| e["metadata"]["user"] == "admin"),
        "{events}"
    );
}

#[tokio::test]
async fn a_changed_disabled_or_logged_out_account_loses_its_open_sessions() {
    let env = TestEnv::start().await;
    let admin = env.admin_token.clone();
    let first = add_user(&env, &admin, "olga", "operator", Value::Null).await;
    let second = env.login("olga", "password-1234").await;
    assert_eq!(status_of(&env, &first, "/auth/me").await, StatusCode::OK);

    // Logout ends that session only.
    let response = env
        .http
        .post(env.url("/auth/logout"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        status_of(&env, &first, "/auth/me").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_of(&env, &second, "/auth/me").await, StatusCode::OK);

    // A role change ends every session of the account, and its WebSocket.
    let mut ws = open_socket(&env, &second).await;
    ws.send(Message::text(
        json!({"type": "subscribe", "topics": ["budget"]}).to_string(),
    ))
    .await
    .unwrap();
    let (status, _) = env
        .call(
            Method::PATCH,
            "/users/olga",
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        status_of(&env, &second, "/auth/me").await,
        StatusCode::UNAUTHORIZED
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Close(frame)) => return frame.map(|f| f.reason.to_string()),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the socket closes within seconds");
    assert_eq!(closed.as_deref(), Some("session ended: log in again"));

    // The new role is what a new login carries; disabling ends it and refuses logins.
    let third = env.login("olga", "password-1234").await;
    let (_, me) = env.call(Method::GET, "/auth/me", Some(&third), None).await;
    assert_eq!(me["role"], "viewer");
    let (status, _) = env
        .call(
            Method::PATCH,
            "/users/olga",
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        status_of(&env, &third, "/auth/me").await,
        StatusCode::UNAUTHORIZED
    );
    let response = env
        .http
        .post(env.url("/auth/login"))
        .json(&json!({"username": "olga", "password": "password-1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_change_made_through_another_replica_ends_sessions_here_within_seconds() {
    let env = TestEnv::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other =
        TestEnv::start_as(env.database_url.clone(), env.prefix.clone(), listener, &[]).await;
    let admin = env.admin_token.clone();
    let token = add_user(&env, &admin, "rita", "viewer", Value::Null).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            status_of(&other, &token, "/auth/me").await == StatusCode::OK
        })
        .await,
        "the other replica learns of the new account"
    );
    let (status, _) = env
        .call(
            Method::POST,
            "/users/rita/password",
            Some(&admin),
            Some(json!({"password": "new-password-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(5), || async {
            status_of(&other, &token, "/auth/me").await == StatusCode::UNAUTHORIZED
        })
        .await,
        "the other replica refuses the old session within seconds"
    );
}

#[tokio::test]
async fn a_scoped_caller_sees_and_acts_on_its_tenants_only() {
    let env = TestEnv::start().await;
    let admin = env.admin_token.clone();
    env.set_limit("org1", "p", 10_000).await;
    env.set_limit("org2", "p", 10_000).await;
    let theirs = env.reserve("org2", "p", 10).await;
    let their_reservation = theirs["reservation_id"].as_str().unwrap().to_string();
    let service = add_user(&env, &admin, "svc-org1", "service", json!(["org1"])).await;
    let viewer = add_user(&env, &admin, "view-org1", "viewer", json!(["org1"])).await;

    // Writes: another tenant is refused by name; its reservation id is unknown.
    let reserve = |tenant: &str| json!({"tenant_id": tenant, "project_id": "p", "task_id": "t", "model": "m", "estimated_tokens": 10});
    let (status, body) = env
        .call(
            Method::POST,
            "/budget/request",
            Some(&service),
            Some(reserve("org2")),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::FORBIDDEN, json!("tenant_id")),
        "{body}"
    );
    let (status, body) = env
        .call(
            Method::POST,
            "/budget/request",
            Some(&service),
            Some(reserve("org1")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for verb in ["commit", "release"] {
        let (status, body) = env
            .call(
                Method::POST,
                &format!("/budget/{verb}"),
                Some(&service),
                Some(json!({"reservation_id": their_reservation, "actual_tokens": 1_000_000_000_000u64})),
            )
            .await;
        // A release has no actual_tokens: 400 names it before the scope is looked at.
        if verb == "commit" {
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        }
    }
    let (status, body) = env
        .call(
            Method::POST,
            "/budget/release",
            Some(&service),
            Some(json!({"reservation_id": their_reservation})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = env
        .call(
            Method::POST,
            "/budget/release",
            Some(&admin),
            Some(json!({"reservation_id": their_reservation})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the unscoped admin still can");

    // Reads: refused by name, or filtered.
    env.wait_for_own_writes().await;
    for path in [
        "/budget/state?tenant_id=org2&project_id=p",
        "/budget/reservations?tenant_id=org2&project_id=p",
        "/budget/usage?tenant_id=org2&project_id=p",
        "/governance/status?tenant_id=org2",
    ] {
        assert_eq!(
            status_of(&env, &viewer, path).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (_, body) = env
                .call(Method::GET, "/governance/status", Some(&viewer), None)
                .await;
            body["rows"].as_array().is_some_and(|rows| !rows.is_empty())
        })
        .await
    );
    let (_, status_body) = env
        .call(Method::GET, "/governance/status", Some(&viewer), None)
        .await;
    let tenants: Vec<&str> = status_body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["org1"], "{status_body}");
    assert_eq!(status_body["matching"], 1);
    let (_, stats) = env.call(Method::GET, "/stats", Some(&viewer), None).await;
    assert_eq!(stats["budgets"]["budgets"], 1, "{stats}");
    let (_, all) = env.call(Method::GET, "/stats", Some(&admin), None).await;
    assert_eq!(all["budgets"]["budgets"], 2, "{all}");
}

#[tokio::test]
async fn a_scoped_viewer_gets_no_budget_event_of_another_tenant_on_the_websocket() {
    let env = TestEnv::start().await;
    let admin = env.admin_token.clone();
    let viewer = add_user(&env, &admin, "view-org1", "viewer", json!(["org1"])).await;
    let mut ws = open_socket(&env, &viewer).await;
    // From the start of the log, so replayed and live events are both checked.
    ws.send(Message::text(
        json!({"type": "subscribe", "topics": ["budget"], "since": 0}).to_string(),
    ))
    .await
    .unwrap();
    env.set_limit("org2", "p", 1000).await;
    env.reserve("org2", "p", 10).await;
    env.set_limit("org1", "p", 1000).await;
    let mine = env.reserve("org1", "p", 10).await;
    let last = mine["position"].as_i64().unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
            let events = match frame["type"].as_str() {
                Some("event") => vec![frame.clone()],
                Some("events") => frame["events"].as_array().unwrap().clone(),
                _ => continue,
            };
            for event in events {
                seen.push(event["aggregate_id"].as_str().unwrap().to_string());
                if event["position"].as_i64() == Some(last) {
                    return;
                }
            }
        }
    })
    .await
    .expect("the viewer's own tenant's events arrive");
    assert!(seen.iter().all(|id| id == "org1/p"), "{seen:?}");
    assert!(!seen.is_empty());
}

#[tokio::test]
async fn login_refuses_a_non_json_body_and_limits_failures_per_account() {
    let env = TestEnv::start().await;
    // What a cross-site HTML form can send without a preflight.
    let response = env
        .http
        .post(env.url("/auth/login"))
        .header("content-type", "text/plain")
        .body(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "content-type");

    let attempt = |password: &'static str| {
        env.http
            .post(env.url("/auth/login"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
    };
    for _ in 0..10 {
        assert_eq!(
            attempt("wrong-password").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let refused = attempt(ADMIN_PASSWORD).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    // Another account is not locked by this one's failures.
    env.user_token("bob", auth::Role::Viewer).await;
}

#[tokio::test]
async fn metrics_need_the_scrape_secret_or_a_token_that_may_read_the_system() {
    let secret = "scrape-secret-0123456789";
    let env = TestEnv::start_with(&[("METRICS_TOKEN", secret)]).await;
    env.set_limit("org-secret", "p", 1000).await;
    let scrape = |token: Option<String>| {
        let mut request = env.http.get(env.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, body) = scrape(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains("org-secret") && !body.contains("api_requests_total"));
    assert_eq!(
        scrape(Some("wrong-secret-0123456789".into())).await.0,
        StatusCode::UNAUTHORIZED
    );
    let service = env.user_token("svc", auth::Role::Service).await;
    assert_eq!(scrape(Some(service)).await.0, StatusCode::FORBIDDEN);
    let (status, body) = scrape(Some(secret.into())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("api_requests_total"), "{body}");
    let viewer = env.user_token("vic", auth::Role::Viewer).await;
    assert_eq!(scrape(Some(viewer)).await.0, StatusCode::OK);
}
