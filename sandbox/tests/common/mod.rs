//! A sandbox service per test, in-process on port 0, against the real container engine named
//! by DOCKER_HOST. Each instance labels its containers with its own instance id, so tests
//! running in parallel only ever count (and sweep) their own.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use auth::{Role, TokenKeys};
use bollard::Docker;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

pub const SECRET_LEN: usize = 48;

/// The engine the tests run against. Absent means the engine was not set up: fail loudly
/// rather than pass without having run anything.
pub fn docker_host() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.trim().is_empty() => h,
        _ => panic!(
            "DOCKER_HOST is not set: these tests run real containers. Start the engine with \
             `scripts/sandbox-engine.sh up && . .data/sandbox.env` (make test does this)."
        ),
    }
}

pub fn docker() -> Docker {
    let host = docker_host();
    Docker::connect_with_unix(&host, 60, bollard::API_DEFAULT_VERSION)
        .unwrap_or_else(|e| panic!("cannot reach the engine at DOCKER_HOST={host}: {e}"))
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

pub struct TestService {
    pub base: String,
    pub instance: String,
    /// Sandbox tokens (`auth::SANDBOX_AUDIENCE`), as the gateway mints them.
    pub keys: TokenKeys,
    session_keys: TokenKeys,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestService {
    /// A service with the defaults of a test run, plus `overrides` (environment names).
    pub async fn start(overrides: &[(&str, &str)]) -> TestService {
        let instance = unique("t");
        Self::start_as(&instance, overrides).await
    }

    pub async fn start_as(instance: &str, overrides: &[(&str, &str)]) -> TestService {
        let secret = format!("{}{}", unique(""), unique(""))[..SECRET_LEN].to_string();
        let mut env: HashMap<String, String> = HashMap::from([
            ("APP_ENV".into(), "test".into()),
            ("JWT_SECRET".into(), secret.clone()),
            ("DOCKER_HOST".into(), docker_host()),
            ("SANDBOX_INSTANCE".into(), instance.to_string()),
        ]);
        for name in ["SANDBOX_IMAGES", "SANDBOX_RUNTIME"] {
            if let Ok(v) = std::env::var(name) {
                env.insert(name.into(), v);
            }
        }
        for (k, v) in overrides {
            env.insert(k.to_string(), v.to_string());
        }
        let config = sandbox::Config::from_lookup(|k| env.get(k).cloned()).expect("test config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            sandbox::serve(listener, config).await.unwrap();
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let service = TestService {
            base,
            instance: instance.to_string(),
            keys: TokenKeys::new(secret.as_bytes(), 3600).with_audience(auth::SANDBOX_AUDIENCE),
            session_keys: TokenKeys::new(secret.as_bytes(), 3600),
            http,
            server,
        };
        // Wait until it listens and answers (the start-up sweep runs before serving).
        for _ in 0..200 {
            if service
                .http
                .get(format!("{}/languages", service.base))
                .send()
                .await
                .is_ok()
            {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sandbox service did not start");
    }

    /// A control-plane session token (what login issues) signed with the same secret.
    pub fn session_token(&self, role: Role) -> String {
        self.session_keys
            .issue(
                &auth::Grant::unscoped("alice", role),
                chrono::Utc::now().timestamp(),
            )
            .unwrap()
    }

    /// A sandbox token, as the gateway mints one per proxied request.
    pub fn token(&self, role: Role) -> String {
        self.keys
            .issue(
                &auth::Grant::unscoped("alice", role),
                chrono::Utc::now().timestamp(),
            )
            .unwrap()
    }

    /// `POST /execute` as a developer (who holds `execute:code`).
    pub async fn execute(&self, body: Value) -> (StatusCode, HeaderMap, Value) {
        let token = self.token(Role::Developer);
        self.execute_with(Some(&token), body).await
    }

    pub async fn execute_with(
        &self,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = self.http.post(format!("{}/execute", self.base)).json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let json = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, headers, json)
    }

    /// Runs Python code and expects a 200; the result.
    pub async fn python(&self, code: &str) -> Value {
        self.run(serde_json::json!({"code": code, "language": "python"}))
            .await
    }

    pub async fn run(&self, body: Value) -> Value {
        let (status, _, json) = self.execute(body).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// Containers carrying this instance's label, in any state.
    pub async fn containers(&self) -> usize {
        containers_of(&self.instance).await
    }

    /// Every test ends here: nothing of its own may be left on the engine.
    pub async fn assert_no_containers_left(&self) {
        // Removal happens before the response is sent; allow the engine a moment anyway.
        for _ in 0..20 {
            if self.containers().await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "containers of instance {} were left behind: {}",
            self.instance,
            self.containers().await
        );
    }
}

pub async fn containers_of(instance: &str) -> usize {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={instance}", sandbox::LABEL_INSTANCE)],
    )]);
    sandbox::executor::containers_labelled(&docker(), &filters)
        .await
        .expect("list containers")
        .len()
}
