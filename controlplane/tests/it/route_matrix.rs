//! Every declared route (`gateway::routes::ROUTES`), called by every role and without a
//! token, over real HTTP: a role without the route's permission gets 403, a caller
//! without a token 401, and a role with it the route's success (or, for routes this file
//! has no sample for, some answer that is neither 401/403, nor a 5xx, nor "no such route").
//! A route someone adds to the table is walked here without touching this file.

use crate::common;

use std::collections::BTreeSet;

use auth::Role;
use common::{TestEnv, ADMIN_PASSWORD};
use gateway::routes::{Access, RouteSpec, ROUTES};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const BREAKER: &str = "matrix-dependency";

/// A request for one route, and the statuses a permitted caller may get.
struct Sample {
    path: String,
    body: Option<Value>,
    ok: Vec<u16>,
}

fn sample(path: &str, body: Option<Value>, ok: &[u16]) -> Sample {
    Sample {
        path: path.to_string(),
        body,
        ok: ok.to_vec(),
    }
}

/// A fresh open reservation (admin), so commit and release have something to act on.
async fn reservation(env: &TestEnv) -> String {
    let (status, answer) = env
        .post(
            "/budget/request",
            json!({"tenant_id": "org1", "project_id": "proj1",
                   "task_id": format!("t{}", uuid::Uuid::new_v4().simple()),
                   "model": "gpt-4", "estimated_tokens": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["reservation_id"].as_str().unwrap().to_string()
}

async fn sample_for(env: &TestEnv, route: &RouteSpec) -> Sample {
    let b = BREAKER;
    match (route.method, route.path) {
        ("GET", "/healthz" | "/readyz" | "/metrics" | "/openapi.json" | "/docs/") => {
            sample(route.path, None, &[200])
        }
        // 303 to /docs/, which the client follows.
        ("GET", "/docs") => sample("/docs", None, &[200]),
        ("GET", "/docs/{file}") => sample("/docs/swagger-ui.css", None, &[200]),
        ("POST", "/auth/login") => sample(
            "/auth/login",
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            &[200],
        ),
        ("POST", "/auth/logout") | ("GET", "/auth/me") => sample(route.path, None, &[200]),
        ("PUT", "/budget/limit") => sample(
            route.path,
            Some(json!({"tenant_id": "org1", "project_id": "proj1", "total_tokens": 1_000_000})),
            &[200],
        ),
        ("POST", "/budget/request") => sample(
            route.path,
            Some(json!({"tenant_id": "org1", "project_id": "proj1",
                        "task_id": format!("t{}", uuid::Uuid::new_v4().simple()),
                        "model": "gpt-4", "estimated_tokens": 10})),
            &[200],
        ),
        ("POST", "/budget/commit") => sample(
            route.path,
            Some(json!({"reservation_id": reservation(env).await, "actual_tokens": 5})),
            &[200],
        ),
        ("POST", "/budget/release") => sample(
            route.path,
            Some(json!({"reservation_id": reservation(env).await})),
            &[200],
        ),
        ("GET", "/budget/state") => sample(&env.state_path("org1", "proj1"), None, &[200]),
        ("GET", "/budget/reservations" | "/budget/usage") => sample(
            &format!("{}?tenant_id=org1&project_id=proj1", route.path),
            None,
            &[200],
        ),
        ("GET", "/circuit-breakers/{name}") => {
            sample(&format!("/circuit-breakers/{b}"), None, &[200])
        }
        ("PUT", "/circuit-breakers/{name}") => sample(
            &format!("/circuit-breakers/{b}"),
            Some(json!({"failure_threshold": 5})),
            &[200],
        ),
        ("POST", p) if p.starts_with("/circuit-breakers/{name}/") => {
            sample(&p.replace("{name}", b), None, &[200])
        }
        ("GET", "/circuit-breakers")
        | ("POST", "/circuit-breakers/reset_all")
        | ("GET", "/audit/events" | "/audit/export" | "/audit/verify")
        | (
            "GET",
            "/system/pipeline" | "/system/health" | "/stats" | "/governance/status"
            | "/governance/roles",
        ) => sample(route.path, None, &[200]),
        // No sandbox behind the proxy (SANDBOX_URL=-, below): past the permission, a 503.
        // tests/sandbox_proxy.rs covers the forwarding.
        ("GET", "/sandbox/languages") => sample(route.path, None, &[503]),
        ("POST", "/sandbox/execute") => sample(
            route.path,
            Some(json!({"language": "python", "code": "print(1)"})),
            &[503],
        ),
        // A plain GET is not an upgrade: the handler answers 400 naming `upgrade`.
        ("GET", "/ws") => sample("/ws", None, &[400]),
        // Not known to this file: fill path parameters, send an empty object.
        (method, path) => {
            let mut filled = String::new();
            let mut inside = false;
            for c in path.chars() {
                match c {
                    '{' => inside = true,
                    '}' => {
                        inside = false;
                        filled.push_str("sample");
                    }
                    _ if inside => {}
                    c => filled.push(c),
                }
            }
            let body = matches!(method, "POST" | "PUT" | "PATCH").then(|| json!({}));
            sample(&filled, body, &[])
        }
    }
}

fn permitted(access: Access, role: Option<Role>) -> bool {
    match access {
        Access::Public | Access::InHandler => true,
        Access::Authenticated => role.is_some(),
        Access::Permission(p) => role.is_some_and(|r| r.permissions().contains(&p)),
    }
}

#[tokio::test]
async fn every_route_answers_every_role_as_the_matrix_says() {
    let env = TestEnv::start_with(&[("SANDBOX_URL", "-")]).await;
    env.set_limit("org1", "proj1", 1_000_000).await;
    let (status, body) = env
        .put(&format!("/circuit-breakers/{BREAKER}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut tokens: Vec<(Option<Role>, Option<String>)> = vec![(None, None)];
    for role in Role::ALL {
        let token = env.user_token(&format!("m_{}", role.as_str()), role).await;
        tokens.push((Some(role), Some(token)));
    }

    let mut failures = Vec::new();
    let mut checked = 0;
    for route in ROUTES {
        for (role, token) in &tokens {
            let sample = sample_for(&env, route).await;
            let method = Method::from_bytes(route.method.as_bytes()).unwrap();
            // Logout ends the session it is called with: give it one of its own.
            let token = match (route.path, role) {
                ("/auth/logout", Some(role)) => Some(
                    env.login(&format!("m_{}", role.as_str()), "password-1234")
                        .await,
                ),
                _ => token.clone(),
            };
            let (status, answer) = env
                .call(method, &sample.path, token.as_deref(), sample.body)
                .await;
            checked += 1;
            let who = role.map(|r| r.as_str()).unwrap_or("anonymous");
            let code = answer["error"]["code"].as_str().unwrap_or_default();
            let wrong = if permitted(route.access, *role) {
                if !sample.ok.is_empty() {
                    (!sample.ok.contains(&status.as_u16()))
                        .then(|| format!("expected one of {:?}", sample.ok))
                } else if matches!(status.as_u16(), 401 | 403 | 405) || status.is_server_error() {
                    Some("expected neither 401/403/405 nor a 5xx".into())
                } else if status == StatusCode::NOT_FOUND
                    && code == "not_found"
                    && answer["error"]["message"] == "no such route"
                {
                    Some("the route is not mounted".into())
                } else {
                    None
                }
            } else if role.is_none() {
                (status != StatusCode::UNAUTHORIZED || code != "unauthenticated")
                    .then(|| "expected 401 unauthenticated".into())
            } else {
                (status != StatusCode::FORBIDDEN || code != "forbidden")
                    .then(|| "expected 403 forbidden".into())
            };
            if let Some(why) = wrong {
                let answer: String = answer.to_string().chars().take(200).collect();
                failures.push(format!(
                    "{} {} as {who}: {status} {answer} — {why}",
                    route.method, sample.path
                ));
            }
        }
    }
    assert_eq!(checked, ROUTES.len() * (Role::ALL.len() + 1));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_wrong_role_is_refused_before_the_handler_reads_the_body() {
    // The table decides first: a viewer's write with a broken body is 403, not 400.
    let env = TestEnv::start().await;
    let viewer = env.user_token("vic", Role::Viewer).await;
    let (status, answer) = env
        .call(
            Method::POST,
            "/budget/request",
            Some(&viewer),
            Some(json!({"not": "a reservation"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(
        answer["error"]["message"],
        "missing permission write:budget"
    );
}

#[tokio::test]
async fn the_live_openapi_document_lists_every_declared_route() {
    let env = TestEnv::start().await;
    let (status, doc) = env.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let declared: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, declared);
    // The browsable page loads its script from this server, under the CSP.
    let page = env.http.get(env.url("/docs/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-initializer.js") && csp.contains("script-src 'self'"));
    let init = env
        .http
        .get(env.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}
