//! Test harness: every test gets its own database, its own NATS subject prefix and its
//! own server on port 0, against the real PostgreSQL and NATS that `make test` starts.

use std::sync::atomic::{AtomicI64, Ordering};
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

/// The NATS identities `make test` made (scripts/services.sh: `nats-identities init`):
/// `account.seed` signs this harness's users, `auth.conf` makes a server trust them.
pub fn nats_auth_dir() -> std::path::PathBuf {
    required("NATS_AUTH_DIR").into()
}

fn account_key() -> natsauth::nkeys::KeyPair {
    natsauth::read_account_seed(&nats_auth_dir().join("account.seed"))
        .expect("NATS_AUTH_DIR holds the account seed")
}

/// The test service every [`TestEnv`] registers (every tenant) and sends commands as.
pub const TEST_SERVICE: &str = "tests";

/// Creds for `role` under subject prefix `prefix`, signed with the account seed.
pub fn creds(role: natsauth::Role, prefix: &str) -> String {
    natsauth::user_creds(&account_key(), &role, prefix).expect("creds are made")
}

/// The administrator's creds (unrestricted: streams, work subjects, forged messages).
fn admin_creds() -> &'static str {
    static CREDS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CREDS.get_or_init(|| creds(natsauth::Role::Admin, "-"))
}

/// A creds file for `role` under `prefix` (for a control plane's NATS_CREDS); removed when
/// the returned guard drops.
pub fn creds_file(role: natsauth::Role, prefix: &str) -> TempFile {
    let path = std::env::temp_dir().join(format!(
        "cp-{prefix}-{}-{}.creds",
        role.name(),
        uuid::Uuid::new_v4().simple()
    ));
    natsauth::write_secret(&path, &creds(role, prefix)).unwrap();
    TempFile(path)
}

/// A file removed on drop.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A client as the administrator (what the harness inspects streams and publishes with).
pub async fn connect(url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::with_credentials(admin_creds())
        .unwrap()
        .connection_timeout(Duration::from_secs(2))
        .connect(url)
        .await
}

/// A client as service `name` under `prefix`: its creds, its own inbox prefix.
pub async fn service_client(url: &str, prefix: &str, name: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_credentials(&creds(
        natsauth::Role::Service(name.to_string()),
        prefix,
    ))
    .unwrap()
    .custom_inbox_prefix(natsauth::subjects::inbox_prefix(prefix, name))
    .connect(url)
    .await
    .expect("a service connects with its creds")
}

/// Registers service `name` in a database (migrating it first) with its tenants (`None`:
/// every tenant).
pub async fn register_service(database_url: &str, name: &str, tenants: Option<&[&str]>) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    commands::store::migrate(&pool).await.unwrap();
    let tenants: Option<Vec<String>> = tenants.map(|t| t.iter().map(|s| s.to_string()).collect());
    commands::services::register(&pool, name, tenants.as_deref())
        .await
        .unwrap();
    pool.close().await;
}

pub fn unique_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// The stream a test's dead-letter advisories are captured into.
pub fn advisory_stream_name(prefix: &str) -> String {
    format!("ADV_{prefix}")
}

/// The one work stream whose dead messages a test's control plane captures.
pub fn work_stream_name(prefix: &str) -> String {
    format!("WORK_{prefix}")
}

/// The stream a test's sandbox run reports are kept in.
pub fn sandbox_audit_stream_name(prefix: &str) -> String {
    format!("SBX_{prefix}")
}

/// The JetStream stream of a test: unique like its subject prefix.
pub fn stream_name(prefix: &str) -> String {
    format!("EV_{prefix}")
}

pub fn config(database_url: &str, prefix: &str) -> Config {
    config_with(database_url, prefix, &[])
}

/// The test configuration with some variables replaced or added.
pub fn config_with(database_url: &str, prefix: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars = vec![
        ("NATS_CREDS", control_plane_creds(prefix)),
        // Generous limits: tests of the limits themselves set their own.
        ("RATE_LIMITS", "admin=100000,operator=100000,developer=100000,auditor=100000,viewer=100000,service=100000".to_string()),
        ("LOGIN_RATE_PER_MINUTE", "10000".to_string()),
        ("APP_ENV", "test".to_string()),
        ("DATABASE_URL", database_url.to_string()),
        ("NATS_URL", nats_url()),
        ("NATS_SUBJECT_PREFIX", prefix.to_string()),
        ("EVENTS_STREAM", stream_name(prefix)),
        // Dead-letter capture watches only this test's work stream, into its own stream.
        ("DLQ_ADVISORY_STREAM", advisory_stream_name(prefix)),
        ("DLQ_WATCH_STREAMS", work_stream_name(prefix)),
        ("SANDBOX_AUDIT_STREAM", sandbox_audit_stream_name(prefix)),
        ("JWT_SECRET", JWT_SECRET.to_string()),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("EXPIRY_INTERVAL_MS", "100".to_string()),
        // The machine is shared and slow: give read-your-writes room.
        ("MIN_POSITION_WAIT_MS", "5000".to_string()),
        ("DB_MAX_CONNECTIONS", "20".to_string()),
    ];
    for (name, value) in extra {
        vars.retain(|(n, _)| n != name);
        vars.push((name, value.to_string()));
    }
    Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .expect("test config is valid")
}

fn control_plane_creds_path(prefix: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("cp-{prefix}-controlplane.creds"))
}

/// The creds file of the control plane of `prefix` (made once; [`TestEnv`] removes it).
pub fn control_plane_creds(prefix: &str) -> String {
    let path = control_plane_creds_path(prefix);
    if !path.exists() {
        natsauth::write_secret(&path, &creds(natsauth::Role::ControlPlane, prefix)).unwrap();
    }
    path.to_str().unwrap().to_string()
}

/// One control plane with its own database and NATS prefix.
pub struct TestEnv {
    pub server: Option<Server>,
    pub base: String,
    pub http: reqwest::Client,
    /// The administrator's connection (streams, work subjects).
    pub nats: async_nats::Client,
    /// The connection of [`TEST_SERVICE`]: what commands are sent with.
    pub service: async_nats::Client,
    pub prefix: String,
    pub database_url: String,
    pub admin_token: String,
    /// The highest `position` any command answer of this test carried (0: none yet).
    pub last_position: AtomicI64,
    /// Every `position` command answers carried, for [`TestEnv::wait_for_own_writes`].
    positions: std::sync::Mutex<Vec<i64>>,
    /// The PostgreSQL cluster of [`TestEnv::start_alone`] (declared after `server`, so it
    /// stops after the server does).
    own_postgres: Option<OwnPostgres>,
}

/// `TEST_LOG=1` (or a filter such as `TEST_LOG=commands=debug,warn`) prints the logs of
/// every server a test starts in this process, so a failing test can be read; without it
/// the suite stays quiet.
pub fn init_test_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let Ok(filter) = std::env::var("TEST_LOG") else {
            return;
        };
        let filter = if filter == "1" || filter == "true" {
            "info".to_owned()
        } else {
            filter
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        Self::start_with(&[]).await
    }

    /// Starts with some configuration variables replaced (see [`config_with`]).
    pub async fn start_with(extra: &[(&str, &str)]) -> TestEnv {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, extra).await
    }

    /// Starts on a PostgreSQL cluster of the test's own. For a test that holds a transaction
    /// with a transaction id open for seconds (a lock, a held-back commit): the commit-order
    /// horizon (`pg_snapshot_xmin`) is the whole cluster's, so on the shared cluster it would
    /// hold back the publishers and projectors of every test running beside it.
    pub async fn start_alone(extra: &[(&str, &str)]) -> TestEnv {
        let postgres = OwnPostgres::start();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut env = Self::start_as(postgres.url(), unique_prefix(), listener, extra).await;
        env.own_postgres = Some(postgres);
        env
    }

    /// Starts on a listener the test prepared (e.g. with small socket buffers).
    pub async fn start_on(listener: tokio::net::TcpListener, extra: &[(&str, &str)]) -> TestEnv {
        Self::start_as(fresh_database().await, unique_prefix(), listener, extra).await
    }

    /// Starts on a database and subject prefix (and so events stream) the test chose.
    pub async fn start_as(
        database_url: String,
        prefix: String,
        listener: tokio::net::TcpListener,
        extra: &[(&str, &str)],
    ) -> TestEnv {
        init_test_logs();
        let server = controlplane::start(config_with(&database_url, &prefix, extra), listener)
            .await
            .expect("the control plane starts");
        let base = format!("http://{}", server.addr);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let nats = connect(&nats_url()).await.expect("connect to NATS");
        register_service(&database_url, TEST_SERVICE, None).await;
        let service = service_client(&nats_url(), &prefix, TEST_SERVICE).await;
        let mut env = TestEnv {
            server: Some(server),
            base,
            http,
            nats,
            service,
            prefix,
            database_url,
            admin_token: String::new(),
            last_position: AtomicI64::new(0),
            positions: std::sync::Mutex::new(Vec::new()),
            own_postgres: None,
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

    /// The events stream of this test.
    pub fn stream(&self) -> String {
        stream_name(&self.prefix)
    }

    fn remember_position(&self, answer: &Value) {
        if let Some(position) = answer["position"].as_i64() {
            self.last_position.fetch_max(position, Ordering::SeqCst);
            self.positions.lock().unwrap().push(position);
        }
    }

    /// Waits until every event this test's commands wrote is in the read models. Waiting
    /// for the newest position alone covers only its own aggregate: the projector applies
    /// two batches at once, and the later one can commit first (docs/pipeline.md).
    pub async fn wait_for_own_writes(&self) {
        let positions = self.positions.lock().unwrap().clone();
        let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
        for position in positions {
            let applied =
                projections::query::wait_until_applied(&pool, position, Duration::from_secs(10))
                    .await
                    .unwrap();
            assert!(applied, "event {position} is applied within 10 s");
        }
        pool.close().await;
    }

    /// `/budget/state` reading this test's own writes: with `min_position` set to the
    /// highest position the test's commands answered with (state is eventually consistent).
    pub fn state_path(&self, tenant: &str, project: &str) -> String {
        let mut path = format!("/budget/state?tenant_id={tenant}&project_id={project}");
        let position = self.last_position.load(Ordering::SeqCst);
        if position > 0 {
            path.push_str(&format!("&min_position={position}"));
        }
        path
    }

    /// The body of a NATS `state` request reading this test's own writes.
    pub fn state_body(&self, tenant: &str, project: &str) -> Value {
        let mut body = json!({"tenant_id": tenant, "project_id": project});
        let position = self.last_position.load(Ordering::SeqCst);
        if position > 0 {
            body["min_position"] = json!(position);
        }
        body
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
        self.remember_position(&value);
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

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        let response = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        response.text().await.unwrap()
    }

    /// Reserves `tokens` of tenant/project for a fresh task (as admin); the answer.
    pub async fn reserve(&self, tenant: &str, project: &str, tokens: u64) -> Value {
        let (status, answer) = self
            .post(
                "/budget/request",
                json!({"tenant_id": tenant, "project_id": project,
                       "task_id": format!("t{}", uuid::Uuid::new_v4().simple()),
                       "model": "gpt-4", "estimated_tokens": tokens}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
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

    /// Captures a dead letter with this id over HTTP (as admin), then resolves the ones
    /// in `resolve` (without a requeue).
    pub async fn dead_letters(&self, ids: &[&str], resolve: &[&str]) {
        for id in ids {
            let (status, answer) = self
                .post(
                    "/dlq",
                    json!({"id": id, "original_subject": "orders.created", "payload": {"n": 1},
                           "error": "schema mismatch", "attempts": 3}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{answer}");
        }
        for id in resolve {
            let (status, answer) = self
                .post(&format!("/dlq/{id}/resolve"), json!({"note": "done"}))
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    }

    /// Where [`TEST_SERVICE`] sends `<area>.<verb>`.
    pub fn command_subject(&self, area: &str, verb: &str) -> String {
        natsauth::subjects::command(&self.prefix, TEST_SERVICE, area, verb)
    }

    /// A NATS request on `<prefix>.cmd.tests.budget.<verb>`; `None` on time-out.
    pub async fn nats_request(&self, verb: &str, body: &Value) -> Option<Value> {
        self.nats_request_raw(verb, serde_json::to_vec(body).unwrap())
            .await
    }

    pub async fn nats_request_raw(&self, verb: &str, bytes: Vec<u8>) -> Option<Value> {
        let subject = self.command_subject("budget", verb);
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            self.service.request(subject, bytes.into()),
        )
        .await
        .ok()?
        .ok()?;
        let value: Value = serde_json::from_slice(&reply.payload).expect("NATS replies are JSON");
        self.remember_position(&value);
        Some(value)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        delete_stream(self.stream());
        delete_stream(advisory_stream_name(&self.prefix));
        delete_stream(work_stream_name(&self.prefix));
        delete_stream(sandbox_audit_stream_name(&self.prefix));
        let _ = std::fs::remove_file(control_plane_creds_path(&self.prefix));
    }
}

/// Removes a test's JetStream stream and its audit anchor stream, if any (the NATS server
/// outlives the tests). Best effort, on a thread of its own because `Drop` cannot await.
pub fn delete_stream(stream: String) {
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok(client) = connect(&nats_url()).await {
                let js = async_nats::jetstream::new(client);
                for name in [streams::anchors::anchor_stream_name(&stream), stream] {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), js.delete_stream(&name)).await;
                }
            }
        });
    })
    .join();
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

/// Polls `check` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many events the log holds.
pub async fn event_count(database_url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

/// How many messages the stream holds (0 when it does not exist yet or NATS is away).
pub async fn stream_count(stream: &str) -> u64 {
    let Ok(client) = connect(&nats_url()).await else {
        return 0;
    };
    let js = async_nats::jetstream::new(client);
    match js.get_stream(stream).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// One message of the events stream.
pub struct StreamedEvent {
    pub subject: String,
    pub message_id: String,
    pub envelope: streams::EventEnvelope,
}

/// Every message of the events stream, in stream order.
pub async fn stream_messages(stream: &str) -> Vec<StreamedEvent> {
    let client = connect(&nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut events = js.get_stream(stream).await.unwrap();
    let state = events.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for seq in state.first_sequence..=state.last_sequence {
        let message = events.get_raw_message(seq).await.unwrap();
        out.push(StreamedEvent {
            subject: message.subject.to_string(),
            message_id: message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_string())
                .unwrap_or_default(),
            envelope: serde_json::from_slice(&message.payload).unwrap(),
        });
    }
    out
}

/// Waits until the event table and the stream hold the same number of events and the
/// read models have applied the newest event; panics after `timeout`.
pub async fn wait_for_pipeline(database_url: &str, stream: &str, timeout: Duration) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let caught_up = eventually(timeout, || async {
        let (count, last): (i64, Option<i64>) =
            sqlx::query_as("SELECT count(*), max(global_position) FROM events")
                .fetch_one(&pool)
                .await
                .unwrap();
        let Some(last) = last else { return true };
        stream_count(stream).await == count as u64
            && projections::query::is_applied(&pool, last).await.unwrap()
    })
    .await;
    pool.close().await;
    assert!(
        caught_up,
        "the publisher and projector caught up within {timeout:?}"
    );
}

/// The read models as JSON rows, ordered: for comparing live and rebuilt state.
pub async fn read_model_rows(database_url: &str) -> (Vec<Value>, Vec<Value>) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let budgets: Vec<(Value,)> =
        sqlx::query_as("SELECT to_jsonb(b) FROM read_budgets b ORDER BY aggregate_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let reservations: Vec<(Value,)> =
        sqlx::query_as("SELECT to_jsonb(r) FROM read_reservations r ORDER BY reservation_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    (
        budgets.into_iter().map(|(v,)| v).collect(),
        reservations.into_iter().map(|(v,)| v).collect(),
    )
}

/// Asserts that every budget's read-model row equals a fold of its events.
pub async fn assert_read_model_matches_the_log(database_url: &str) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'Budget' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (id,) in ids {
        let folded = fold_budget(database_url, &id).await;
        let row: Option<(Option<i64>, i64, i64, i64)> = sqlx::query_as(
            "SELECT total, used, reserved,
                    (SELECT count(*) FROM read_reservations r WHERE r.aggregate_id = b.aggregate_id AND r.status = 'open')
               FROM read_budgets b WHERE aggregate_id = $1",
        )
        .bind(&id)
        .fetch_optional(&pool)
        .await
        .unwrap();
        let (total, used, reserved, open) =
            row.unwrap_or_else(|| panic!("{id} is in the read model"));
        assert_eq!(
            (
                total.map(|t| t as u64),
                used as u64,
                reserved as u64,
                open as usize
            ),
            (
                folded.total,
                folded.used,
                folded.reserved,
                folded.open.len()
            ),
            "read model of {id} equals the fold of its events"
        );
    }
    pool.close().await;
}

/// A `controlplane serve` process on port 0 and the URL it listens on.
pub struct ServeProcess {
    pub child: tokio::process::Child,
    pub url: String,
    _creds: TempFile,
}

impl ServeProcess {
    /// Starts `controlplane serve` with this test's database, prefix and stream.
    pub async fn start(database_url: &str, prefix: &str, nats_url: &str) -> ServeProcess {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let creds = creds_file(natsauth::Role::ControlPlane, prefix);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_controlplane"))
            .arg("serve")
            .env("NATS_CREDS", creds.path())
            .env("APP_ENV", "test")
            .env("DATABASE_URL", database_url)
            .env("NATS_URL", nats_url)
            .env("NATS_SUBJECT_PREFIX", prefix)
            .env("EVENTS_STREAM", stream_name(prefix))
            .env("DLQ_ADVISORY_STREAM", advisory_stream_name(prefix))
            .env("DLQ_WATCH_STREAMS", work_stream_name(prefix))
            .env("SANDBOX_AUDIT_STREAM", sandbox_audit_stream_name(prefix))
            .env("JWT_SECRET", JWT_SECRET)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("MIN_POSITION_WAIT_MS", "5000")
            // Load tests, not rate-limit tests: generous limits.
            .env("RATE_LIMITS", "admin=100000,operator=100000,developer=100000,auditor=100000,viewer=100000,service=100000")
            .env("LOGIN_RATE_PER_MINUTE", "10000")
            .env("PORT", "0")
            .env("RATE_LIMITS", "admin=100000,service=100000,operator=100000")
            .env("LOGIN_RATE_PER_MINUTE", "10000")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
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
        ServeProcess {
            child,
            url,
            _creds: creds,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// `kill -TERM`, and the exit status once the process has stopped.
    pub async fn sigterm(&mut self) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM sent");
        self.child.wait().await.unwrap()
    }

    /// `kill -9`.
    pub async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }
}

/// Logs in as admin on a serve process.
pub async fn admin_token_at(http: &reqwest::Client, url: &str) -> String {
    let answer: Value = http
        .post(format!("{url}/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().unwrap().to_string()
}

/// How many messages a stream holds on the NATS server at `nats_url`.
pub async fn stream_count_at(nats_url: &str, stream: &str) -> u64 {
    let Ok(client) = connect(nats_url).await else {
        return 0;
    };
    let js = async_nats::jetstream::new(client);
    match js.get_stream(stream).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// The `Nats-Msg-Id` of every message of a stream.
pub async fn stream_message_ids_at(nats_url: &str, stream: &str) -> Vec<String> {
    let client = connect(nats_url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut events = js.get_stream(stream).await.unwrap();
    let state = events.info().await.unwrap().state.clone();
    let mut ids = Vec::new();
    if state.messages == 0 {
        return ids;
    }
    for seq in state.first_sequence..=state.last_sequence {
        let message = events.get_raw_message(seq).await.unwrap();
        ids.push(
            message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_string())
                .unwrap_or_default(),
        );
    }
    ids
}

/// Asserts the zero-loss invariants: the stream holds exactly one message per event
/// (ids `events/<position>`, no duplicates), and the read models equal a fold of the log.
pub async fn assert_exactly_once(database_url: &str, nats_url: &str, stream: &str) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let caught_up = eventually(Duration::from_secs(60), || async {
        let (count, last): (i64, Option<i64>) =
            sqlx::query_as("SELECT count(*), max(global_position) FROM events")
                .fetch_one(&pool)
                .await
                .unwrap();
        let Some(last) = last else { return true };
        stream_count_at(nats_url, stream).await >= count as u64
            && projections::query::is_applied(&pool, last).await.unwrap()
    })
    .await;
    assert!(caught_up, "the publisher and the projector caught up");
    let positions: Vec<(i64,)> = sqlx::query_as("SELECT global_position FROM events ORDER BY 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut ids = stream_message_ids_at(nats_url, stream).await;
    let on_stream = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), on_stream, "no event is on the stream twice");
    let mut expected: Vec<String> = positions.iter().map(|(p,)| format!("events/{p}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "every event is on the stream, exactly once");
    assert_read_model_matches_the_log(database_url).await;
}

/// The project's nats-server settings (max_payload), as scripts/services.sh uses them.
pub const NATS_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/nats.conf");

/// A free TCP port on 127.0.0.1 (for a server of the test's own).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory name for a nats-server's store.
pub fn nats_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("cp-nats-{}", uuid::Uuid::new_v4().simple()))
}

/// A nats-server of this test's own (JetStream, file store), so it can be stopped.
pub struct OwnNats {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
    /// The trust it runs with (an `auth.conf` of `nats-identities`).
    auth: std::path::PathBuf,
}

impl OwnNats {
    pub fn start(port: u16, dir: std::path::PathBuf) -> OwnNats {
        Self::start_with(port, dir, NATS_CONF)
    }

    /// Started with the configuration file `conf` (e.g. a smaller `max_payload`) and the
    /// project's authentication (`auth.conf`, as scripts/services.sh starts NATS).
    pub fn start_with(port: u16, dir: std::path::PathBuf, conf: &str) -> OwnNats {
        Self::start_trusting(port, dir, conf, nats_auth_dir().join("auth.conf"))
    }

    /// Started with the project's settings and the trust in `auth` (a deployment of the
    /// test's own, e.g. to revoke a key in it).
    pub fn start_trusting(
        port: u16,
        dir: std::path::PathBuf,
        conf: &str,
        auth: std::path::PathBuf,
    ) -> OwnNats {
        std::fs::create_dir_all(&dir).unwrap();
        let combined = Self::write_config(&dir, conf, &auth);
        let child = std::process::Command::new("nats-server")
            .arg("-c")
            .arg(&combined)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/services.sh installs it)");
        OwnNats {
            child,
            port,
            dir,
            auth,
        }
    }

    /// nats-server 2.9 resolves `include` relative to the including file: one file.
    fn write_config(
        dir: &std::path::Path,
        conf: &str,
        auth: &std::path::Path,
    ) -> std::path::PathBuf {
        let combined = dir.join("server.conf");
        let text =
            std::fs::read_to_string(conf).unwrap() + "\n" + &std::fs::read_to_string(auth).unwrap();
        std::fs::write(&combined, text).unwrap();
        combined
    }

    /// Writes the configuration again from the project's settings and the (changed) trust
    /// file, and has the running server reload it (SIGHUP), as an operator would.
    pub fn reload(&self) {
        Self::write_config(&self.dir, NATS_CONF, &self.auth);
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "SIGHUP to nats-server");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server and starts it again on the same port and store with `conf`.
    pub fn restart_with(&mut self, conf: &str) {
        self.stop();
        let auth = std::mem::take(&mut self.auth);
        *self = Self::start_trusting(self.port, std::mem::take(&mut self.dir), conf, auth);
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn nats_answers(url: &str) -> bool {
    async_nats::ConnectOptions::with_credentials(admin_creds())
        .unwrap()
        .connection_timeout(Duration::from_millis(500))
        .connect(url)
        .await
        .is_ok()
}

/// A PostgreSQL server of this test's own (Debian's binaries, a cluster in a temporary
/// directory, a free port), so it can be restarted without touching other tests.
pub struct OwnPostgres {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    pub port: u16,
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL is installed (scripts/services.sh installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())
            .expect("an initdb under /usr/lib/postgresql");
        let dir = std::env::temp_dir().join(format!("cp-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = OwnPostgres { dir, bin, port };
        // initdb and pg_ctl refuse to run as root: run them as `postgres`, owning the dir.
        pg.as_postgres_user("chown", &["-R", "postgres", pg.dir.to_str().unwrap()], true);
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "--auth=trust", "-U", "postgres", "-N"],
        );
        pg.pg_ctl(&["start", "-w"]);
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_string()
    }

    fn as_postgres_user(&self, program: &str, args: &[&str], plain: bool) {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let status = if plain {
            if !root {
                return; // not root: the files are already the runner's
            }
            std::process::Command::new(program).args(args).status()
        } else if root {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--", program])
                .args(args)
                .stdout(std::process::Stdio::null())
                .status()
        } else {
            std::process::Command::new(program)
                .args(args)
                .stdout(std::process::Stdio::null())
                .status()
        };
        assert!(status.unwrap().success(), "{program} {args:?}");
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        self.as_postgres_user(program.to_str().unwrap(), args, false);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let log = self.dir.join("log").to_str().unwrap().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let mut all = vec!["-D", &data, "-l", &log, "-o", &options];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    /// `pg_ctl restart -m fast`: every session is cut, the server comes back.
    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast", "-w"]);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", program.to_str().unwrap()])
            .args(["-D", &data, "stop", "-m", "immediate"])
            .stdout(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
