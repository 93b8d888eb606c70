//! Login, tokens and permissions over real HTTP.

use crate::common;

use auth::Role;
use common::{TestEnv, ADMIN_PASSWORD, JWT_SECRET};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn login_returns_a_token_its_role_and_permissions_and_an_httponly_cookie() {
    let env = TestEnv::start().await;
    let response = env
        .http
        .post(env.url("/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("cp_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["role"], "admin");
    assert!(body["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("admin:budget")));
    let claims = auth::TokenKeys::new(JWT_SECRET.as_bytes(), 60)
        .verify(body["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.sub, "admin");
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_401() {
    let env = TestEnv::start().await;
    for (user, password) in [("admin", "wrong-password"), ("nobody", "whatever-password")] {
        let (status, body) = env
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"username": user, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
}

#[tokio::test]
async fn a_login_body_without_password_is_400_naming_it() {
    let env = TestEnv::start().await;
    let (status, body) = env
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "password");
}

#[tokio::test]
async fn routes_refuse_missing_bad_expired_and_alg_none_tokens() {
    let env = TestEnv::start().await;
    let path = "/budget/state?tenant_id=org1&project_id=proj1";
    let (status, _) = env.call(Method::GET, path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = env.call(Method::GET, path, Some("not-a-jwt"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let other_secret = auth::TokenKeys::new(b"another-secret-another-secret-another", 3600)
        .issue(
            &auth::Grant::unscoped("admin", Role::Admin),
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    let (status, _) = env.call(Method::GET, path, Some(&other_secret), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let expired = auth::TokenKeys::new(JWT_SECRET.as_bytes(), 60)
        .issue(
            &auth::Grant::unscoped("admin", Role::Admin),
            chrono::Utc::now().timestamp() - 3600,
        )
        .unwrap();
    let (status, _) = env.call(Method::GET, path, Some(&expired), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // alg:none with the admin's claims and no signature.
    let valid = env.admin_token.clone();
    let claims = valid.split('.').nth(1).unwrap();
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let (status, _) = env
        .call(
            Method::GET,
            path,
            Some(&format!("{none_header}.{claims}.")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_role_without_the_permission_gets_403() {
    let env = TestEnv::start().await;
    let viewer = env.user_token("vera", Role::Viewer).await;
    let (status, body) = env
        .call(
            Method::PUT,
            "/budget/limit",
            Some(&viewer),
            Some(json!({"tenant_id": "org1", "project_id": "proj1", "total_tokens": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = env
        .call(
            Method::POST,
            "/budget/request",
            Some(&viewer),
            Some(json!({"tenant_id": "org1", "project_id": "proj1", "task_id": "t", "model": "m", "estimated_tokens": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A viewer may read.
    env.set_limit("org1", "proj1", 10).await;
    let (status, _) = env
        .call(
            Method::GET,
            &env.state_path("org1", "proj1"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_session_cookie_authenticates_and_me_describes_the_caller() {
    let env = TestEnv::start().await;
    let response = env
        .http
        .get(env.url("/auth/me"))
        .header(
            "cookie",
            format!("theme=dark; cp_session={}", env.admin_token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["username"], "admin");
    assert_eq!(body["role"], "admin");
}

#[tokio::test]
async fn unknown_routes_answer_json_404() {
    let env = TestEnv::start().await;
    let (status, body) = env.get("/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}
