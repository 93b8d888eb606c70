//! Test harness: every test gets its own database, its own NATS subject prefix and its
//! own server on port 0, against the real PostgreSQL and NATS that `make test` starts.
#![allow(dead_code)]

use std::time::Duration;

use controlplane::{Config, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789abcdef";

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the suite with `make test`, which starts PostgreSQL and NATS"
        )
    })
}

/// A fresh, migrated-on-start database; returns its URL.
pub async fn fresh_database() -> String {
    let admin_url = required("DATABASE_URL");
    let name = format!("cp_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("connect to the admin database");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create the test database");
    admin.close().await;
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("DATABASE_URL has a database name");
    let base = base.to_string();
    // Keep any query parameters of the admin URL (sslmode, …).
    let query = admin_url
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{name}{query}")
}

pub fn nats_url() -> String {
    required("NATS_URL")
}

pub fn unique_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

pub fn config(database_url: &str, prefix: &str) -> Config {
    let vars = [
        ("APP_ENV", "test".to_string()),
        ("DATABASE_URL", database_url.to_string()),
        ("NATS_URL", nats_url()),
        ("NATS_SUBJECT_PREFIX", prefix.to_string()),
        ("JWT_SECRET", JWT_SECRET.to_string()),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("EXPIRY_INTERVAL_MS", "100".to_string()),
        ("DB_MAX_CONNECTIONS", "20".to_string()),
    ];
    Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .expect("test config is valid")
}

/// One control plane with its own database and NATS prefix.
pub struct TestEnv {
    pub server: Option<Server>,
    pub base: String,
    pub http: reqwest::Client,
    pub nats: async_nats::Client,
    pub prefix: String,
    pub database_url: String,
    pub admin_token: String,
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        let database_url = fresh_database().await;
        let prefix = unique_prefix();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = controlplane::start(config(&database_url, &prefix), listener)
            .await
            .expect("the control plane starts");
        let base = format!("http://{}", server.addr);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let nats = async_nats::connect(nats_url())
            .await
            .expect("connect to NATS");
        let mut env = TestEnv {
            server: Some(server),
            base,
            http,
            nats,
            prefix,
            database_url,
            admin_token: String::new(),
        };
        env.admin_token = env.login("admin", ADMIN_PASSWORD).await;
        // The NATS listener subscribes in the background: wait until it answers.
        for _ in 0..100 {
            if env
                .nats_request("state", &json!({"tenant_id": "warm", "project_id": "up"}))
                .await
                .is_some()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        env
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let response = self
            .http
            .post(self.url("/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login as {username}");
        response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Creates a user with `role` and returns a token for it.
    pub async fn user_token(&self, username: &str, role: auth::Role) -> String {
        let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
        gateway::users::upsert_user(&pool, username, "password-1234", role)
            .await
            .unwrap();
        pool.close().await;
        self.login(username, "password-1234").await
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::POST,
            path,
            Some(&self.admin_token),
            Some(body),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::PUT,
            path,
            Some(&self.admin_token),
            Some(body),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(&self.admin_token), None)
            .await
    }

    pub async fn set_limit(&self, tenant: &str, project: &str, total: u64) {
        let (status, body) = self
            .put(
                "/budget/limit",
                json!({"tenant_id": tenant, "project_id": project, "total_tokens": total}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// A NATS request on `<prefix>.cmd.budget.<verb>`; `None` on time-out.
    pub async fn nats_request(&self, verb: &str, body: &Value) -> Option<Value> {
        self.nats_request_raw(verb, serde_json::to_vec(body).unwrap())
            .await
    }

    pub async fn nats_request_raw(&self, verb: &str, bytes: Vec<u8>) -> Option<Value> {
        let subject = format!("{}.cmd.budget.{verb}", self.prefix);
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            self.nats.request(subject, bytes.into()),
        )
        .await
        .ok()?
        .ok()?;
        Some(serde_json::from_slice(&reply.payload).expect("NATS replies are JSON"))
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

/// Folds the stored events of a budget with the domain's own `apply`.
pub async fn fold_budget(database_url: &str, aggregate_id: &str) -> domain::budget::Budget {
    use cqrs_es::Aggregate;
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT payload::jsonb FROM events WHERE aggregate_type = 'Budget' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(aggregate_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let mut budget = domain::budget::Budget::default();
    for (payload,) in rows {
        budget.apply(serde_json::from_value(payload).unwrap());
    }
    budget
}
