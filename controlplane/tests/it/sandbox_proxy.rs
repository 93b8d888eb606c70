//! `/sandbox/*` through the gateway: a stand-in sandbox service (its HTTP contract,
//! docs/sandbox.md) records what reaches it, so the test checks what the proxy forwards
//! (a sandbox token for the caller's session, never the session token; the body byte for byte) and what it passes back (status, body,
//! `Retry-After`); and the proxy's own answers: permissions, the CSRF rule for cookies,
//! no sandbox configured, a sandbox that does not answer. The real sandbox behind the proxy
//! is exercised by the dashboard's end-to-end run when a container engine is available.

use crate::common;

use std::sync::{Arc, Mutex};

use auth::Role;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// What the stand-in saw: (Authorization header, body) per `/execute`.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A stand-in sandbox on a free port: `/languages` and `/execute` as the real one answers
/// them; code `busy` gets the real service's 429 with `Retry-After`.
async fn fake_sandbox() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/languages",
            get(|| async {
                axum::Json(json!({"languages": [{"name": "python", "image": "py:latest"}],
                    "limits": {"default_timeout": 5.0, "max_timeout": 30.0, "default_memory_mb": 128,
                    "max_memory_mb": 512, "cpus": 1.0, "pids_limit": 64, "max_code_bytes": 65536,
                    "max_stdin_bytes": 65536, "max_output_bytes": 65536}}))
            }),
        )
        .route(
            "/execute",
            post({
                let seen = seen.clone();
                move |headers: HeaderMap, body: Bytes| {
                    let seen = seen.clone();
                    async move {
                        let auth = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        seen.lock().unwrap().push((auth, body.to_vec()));
                        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                        if request["code"] == "busy" {
                            return (
                                AxumStatus::TOO_MANY_REQUESTS,
                                [("retry-after", "5")],
                                axum::Json(json!({"error": {"code": "queue_full", "message": "busy", "field": null}})),
                            )
                                .into_response();
                        }
                        axum::Json(json!({"stdout": "hi\n", "stderr": "", "exit_code": 0,
                            "duration_ms": 12, "timed_out": false, "truncated": false, "oom_killed": false}))
                        .into_response()
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// `authorization` is `Bearer <t>` where `t` is a sandbox token (refused by the control
/// plane, accepted by the sandbox's keys) carrying the user and session of `session`.
fn assert_sandbox_token_for(authorization: &str, session: &str) {
    let token = authorization
        .strip_prefix("Bearer ")
        .expect("a bearer token");
    assert_ne!(token, session, "never the session token itself");
    let sessions = auth::TokenKeys::new(common::JWT_SECRET.as_bytes(), 3600);
    assert!(sessions.verify(token).is_err(), "not usable as a session");
    let sandbox = auth::TokenKeys::new(common::JWT_SECRET.as_bytes(), 3600)
        .with_audience(auth::SANDBOX_AUDIENCE);
    let (carried, of) = (
        sandbox.verify(token).unwrap(),
        sessions.verify(session).unwrap(),
    );
    assert_eq!(
        (carried.sub, carried.sid, carried.ver),
        (of.sub, of.sid, of.ver)
    );
    assert!(carried.exp <= chrono::Utc::now().timestamp() + auth::SANDBOX_TOKEN_SECONDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_forwards_runs_with_a_sandbox_token_for_the_caller_and_passes_the_answer_back()
{
    let (sandbox, seen) = fake_sandbox().await;
    let env = TestEnv::start_with(&[("SANDBOX_URL", sandbox.as_str())]).await;
    let developer = env.user_token("proxy-dev", Role::Developer).await;

    // Bytes pass through unchanged (key order, spacing, escapes).
    let body = r#"{"language":"python",  "code":"print('h\u00e9')","timeout":2}"#;
    let response = env
        .http
        .post(env.url("/sandbox/execute"))
        .bearer_auth(&developer)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["stdout"], "hi\n");
    assert_eq!(answer["exit_code"], 0);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_sandbox_token_for(&seen[0].0, &developer);
        assert_eq!(seen[0].1, body.as_bytes());
    }

    // The sandbox's refusals come back as they are, with Retry-After.
    let response = env
        .http
        .post(env.url("/sandbox/execute"))
        .bearer_auth(&developer)
        .json(&json!({"language": "python", "code": "busy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "5");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "queue_full");

    // Languages and limits.
    let (status, languages) = env
        .call(Method::GET, "/sandbox/languages", Some(&developer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{languages}");
    assert_eq!(languages["languages"][0]["name"], "python");
    assert_eq!(languages["limits"]["max_timeout"], 30.0);

    // A browser session: the cookie's session is the one forwarded, and the CSRF rule holds.
    let cookie = format!("cp_session={developer}");
    let refused = env
        .http
        .post(env.url("/sandbox/execute"))
        .header("cookie", &cookie)
        .json(&json!({"language": "python", "code": "print(1)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "no X-Requested-With"
    );
    let response = env
        .http
        .post(env.url("/sandbox/execute"))
        .header("cookie", &cookie)
        .header("x-requested-with", "XMLHttpRequest")
        .json(&json!({"language": "python", "code": "print(1)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_sandbox_token_for(&seen.lock().unwrap().last().unwrap().0, &developer);

    // Roles without execute:code never reach the sandbox; bad bodies are 400s naming `body`.
    let before = seen.lock().unwrap().len();
    for role in [Role::Viewer, Role::Operator, Role::Auditor] {
        let token = env.user_token(&format!("proxy-{role:?}"), role).await;
        let (status, body) = env
            .call(
                Method::POST,
                "/sandbox/execute",
                Some(&token),
                Some(json!({"language": "python", "code": "print(1)"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}: {body}");
    }
    let (status, _) = env
        .call(Method::POST, "/sandbox/execute", None, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = env
        .http
        .post(env.url("/sandbox/execute"))
        .bearer_auth(&developer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "body");
    assert_eq!(seen.lock().unwrap().len(), before);
}

/// The sandbox cannot see revocations, so a revoked session must not reach it: the proxy
/// refuses it, and the session token itself is no key to the sandbox (it takes only the
/// sandbox tokens the proxy mints, checked above).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_ended_by_logout_runs_nothing_in_the_sandbox() {
    let (sandbox, seen) = fake_sandbox().await;
    let env = TestEnv::start_with(&[("SANDBOX_URL", sandbox.as_str())]).await;
    let developer = env.user_token("proxy-revoked", Role::Developer).await;
    let run = || {
        env.http
            .post(env.url("/sandbox/execute"))
            .bearer_auth(&developer)
            .json(&json!({"language": "python", "code": "print(1)"}))
            .send()
    };
    assert_eq!(run().await.unwrap().status(), StatusCode::OK);
    let response = env
        .http
        .post(env.url("/auth/logout"))
        .bearer_auth(&developer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(run().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "only the run before the logout arrived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_sandbox_the_proxy_answers_503_in_json() {
    // Nothing listens on a port just freed.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    for url in ["-", closed.as_str()] {
        let env = TestEnv::start_with(&[("SANDBOX_URL", url)]).await;
        for (method, path, body) in [
            (Method::GET, "/sandbox/languages", None),
            (
                Method::POST,
                "/sandbox/execute",
                Some(json!({"language": "python", "code": "print(1)"})),
            ),
        ] {
            let (status, answer) = env.call(method, path, Some(&env.admin_token), body).await;
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{url} {path}: {answer}"
            );
            assert!(answer["error"]["message"].is_string(), "{answer}");
        }
    }
}
