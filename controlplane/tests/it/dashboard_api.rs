//! What the dashboard reads beside the rest of the API: a budget's open reservations and
//! its usage over time (`/budget/reservations`, `/budget/usage`), the health card
//! (`/system/health`), and the built app served at `/` next to the JSON API.

use crate::common;

use std::time::Duration;

use common::TestEnv;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn open_reservations_lists_the_open_ones_soonest_expiry_first() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "p1", 10_000).await;
    env.set_limit("org1", "other", 10_000).await;
    let committed = env.reserve("org1", "p1", 100).await;
    let first = env.reserve("org1", "p1", 200).await;
    let second = env.reserve("org1", "p1", 300).await;
    env.reserve("org1", "other", 400).await;
    let (status, answer) = env
        .post(
            "/budget/commit",
            json!({"reservation_id": committed["reservation_id"], "actual_tokens": 50}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    env.wait_for_own_writes().await;

    let (status, list) = env
        .get("/budget/reservations?tenant_id=org1&project_id=p1")
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reservation_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            first["reservation_id"].as_str().unwrap(),
            second["reservation_id"].as_str().unwrap()
        ],
        "the committed one and the other budget's are left out: {list}"
    );
    assert_eq!(list["open"], 2);
    assert_eq!(list["items"][0]["allocated"], 200);
    assert_eq!(list["items"][0]["model"], "gpt-4");

    let (status, one) = env
        .get("/budget/reservations?tenant_id=org1&project_id=p1&limit=1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["open"], 2, "the count covers every open reservation");
}

#[tokio::test]
async fn dashboard_reads_name_the_bad_field() {
    let env = TestEnv::start().await;
    for (path, field) in [
        (
            "/budget/reservations?tenant_id=org1&project_id=p1&limit=0",
            "limit",
        ),
        (
            "/budget/reservations?tenant_id=org%201&project_id=p1",
            "tenant_id",
        ),
        ("/budget/reservations?tenant_id=org1", "project_id"),
        (
            "/budget/usage?tenant_id=org1&project_id=p1&minutes=0",
            "minutes",
        ),
        (
            "/budget/usage?tenant_id=org1&project_id=p1&minutes=1441",
            "minutes",
        ),
        (
            "/budget/usage?tenant_id=org1&project_id=p1&bucket=5",
            "bucket",
        ),
        (
            "/budget/usage?tenant_id=org1&project_id=p1&min_position=0",
            "min_position",
        ),
        (
            "/budget/usage?tenant_id=org1&project_id=p1&min_position=999999999",
            "min_position",
        ),
    ] {
        let (status, answer) = env.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{path}: {answer}");
    }
}

#[tokio::test]
async fn usage_with_min_position_shows_the_callers_own_write() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "p1", 10_000).await;
    for i in 1..=5 {
        let answer = env.reserve("org1", "p1", 100).await;
        let position = answer["position"].as_i64().unwrap();
        // At once: the read waits until the read model has applied the reservation.
        let (status, usage) = env
            .get(&format!(
                "/budget/usage?tenant_id=org1&project_id=p1&minutes=5&min_position={position}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        let last = usage["points"].as_array().unwrap().last().cloned();
        assert_eq!(
            last.map(|p| p["reserved"].clone()),
            Some(json!(100 * i)),
            "{usage}"
        );
    }
}

#[tokio::test]
async fn usage_shows_the_budget_per_minute_and_replay_rebuilds_it() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "p1", 10_000).await;
    let reservation = env.reserve("org1", "p1", 1000).await;
    let (status, answer) = env
        .post(
            "/budget/commit",
            json!({"reservation_id": reservation["reservation_id"], "actual_tokens": 600}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    env.reserve("org1", "p1", 250).await;
    env.wait_for_own_writes().await;

    let (status, usage) = env
        .get("/budget/usage?tenant_id=org1&project_id=p1&minutes=5")
        .await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(usage["bucket_seconds"], 60);
    let points = usage["points"].as_array().unwrap();
    assert!(
        (1..=5).contains(&points.len()),
        "one point per minute of the window since the budget exists: {usage}"
    );
    let last = points.last().unwrap();
    assert_eq!(
        (&last["total"], &last["used"], &last["reserved"]),
        (&json!(10_000), &json!(600), &json!(250)),
        "{usage}"
    );
    assert!(usage["burn_rate_tokens_per_hour"].as_f64().unwrap() >= 0.0);

    // An unknown budget has no points and projects nothing.
    let (status, empty) = env
        .get("/budget/usage?tenant_id=org1&project_id=nothing")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["points"], json!([]));
    assert_eq!(empty["projected_exhaustion_at"], Value::Null);

    // A replay rebuilds the series from the log: the budget's latest minute is the same.
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let latest = "SELECT total, used, reserved FROM read_budget_usage
                   WHERE aggregate_id = 'org1/p1' ORDER BY minute DESC LIMIT 1";
    let live: (Option<i64>, i64, i64) = sqlx::query_as(latest).fetch_one(&pool).await.unwrap();
    projections::replay::replay(&pool, |_, _| {}).await.unwrap();
    let rebuilt: (Option<i64>, i64, i64) = sqlx::query_as(latest).fetch_one(&pool).await.unwrap();
    assert_eq!(live, (Some(10_000), 600, 250));
    assert_eq!(rebuilt, live);
    pool.close().await;
}

#[tokio::test]
async fn health_card_says_whether_the_sandbox_answers() {
    let env = TestEnv::start_with(&[("SANDBOX_URL", "http://127.0.0.1:9")]).await;
    let (status, health) = env.get("/system/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["sandbox"], "unreachable", "{health}");
    assert_eq!(health["database"], "ok", "{health}");
    assert_eq!(health["nats"], "ok", "{health}");

    let env = TestEnv::start_with(&[("SANDBOX_URL", "-")]).await;
    let (_, health) = env.get("/system/health").await;
    assert_eq!(health["sandbox"], "not_configured", "{health}");
}

/// A built app in a temporary directory, as `vite build` lays it out.
fn built_app() -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    std::fs::create_dir_all(dir.path().join("assets")).unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>Golden Arch</title><script type=module src=/assets/app-1a2b3c.js></script>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("assets/app-1a2b3c.js"),
        "console.log('dashboard');".repeat(100),
    )
    .unwrap();
    // What `frontend/scripts/precompress.mjs` writes beside a file (stand-in bytes: the
    // server sends them as they are).
    std::fs::write(dir.path().join("assets/app-1a2b3c.js.br"), PRECOMPRESSED_BR).unwrap();
    std::fs::write(dir.path().join("favicon.svg"), "<svg/>").unwrap();
    dir
}

const PRECOMPRESSED_BR: &[u8] = b"brotli bytes made at build time";

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(std::path::PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("cp-ui-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }

        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn fetch(env: &TestEnv, path: &str, accept: &str) -> reqwest::Response {
    env.http
        .get(env.url(path))
        .header(header::ACCEPT, accept)
        .bearer_auth(&env.admin_token)
        .send()
        .await
        .unwrap()
}

const NAVIGATION: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

#[tokio::test]
async fn the_built_app_is_served_beside_the_api() {
    let app = built_app();
    let env = TestEnv::start_with(&[("UI_DIR", app.path().to_str().unwrap())]).await;

    // The app at `/`, for a browser and for curl alike; never cached.
    for accept in [NAVIGATION, "*/*"] {
        let page = fetch(&env, "/", accept).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(page.text().await.unwrap().contains("Golden Arch"));
    }
    // Hashed assets: cached for a year, compressed when the client takes gzip.
    let asset = env
        .http
        .get(env.url("/assets/app-1a2b3c.js"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(
        asset.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(asset.headers()[header::CONTENT_ENCODING], "gzip");
    assert!(asset.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .contains("javascript"));
    // A file compressed at build time is sent as it is, not compressed again.
    let precompressed = env
        .http
        .get(env.url("/assets/app-1a2b3c.js"))
        .header(header::ACCEPT_ENCODING, "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(precompressed.headers()[header::CONTENT_ENCODING], "br");
    assert_eq!(
        precompressed.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(precompressed.bytes().await.unwrap(), PRECOMPRESSED_BR);
    // The CSP and the other security headers are on the app too.
    assert!(asset
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .is_some());
    let icon = fetch(&env, "/favicon.svg", "*/*").await;
    assert_eq!(icon.status(), StatusCode::OK);

    // A navigation to an app route gets the app, also where an API route has that path
    // (`/dlq`) and below app routes; API clients keep their JSON.
    for path in [
        "/governance",
        "/budget",
        "/dlq",
        "/budget/org1/p1",
        "/login",
    ] {
        let page = fetch(&env, path, NAVIGATION).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_eq!(page.headers()[header::VARY], "Accept", "{path}");
        assert!(
            page.text().await.unwrap().contains("<!doctype html>"),
            "{path}"
        );
    }
    let api = fetch(&env, "/dlq", "application/json").await;
    assert_eq!(api.status(), StatusCode::OK);
    let list: Value = api.json().await.unwrap();
    assert!(list["items"].is_array(), "{list}");

    // Unknown paths, missing assets and anything outside the build stay JSON 404s.
    for (path, accept) in [
        ("/nope", NAVIGATION),
        ("/budget/org1/p1", "*/*"),
        ("/assets/missing.js", "*/*"),
        ("/assets/../index.html", "*/*"),
        ("/assets/%2e%2e/%2e%2e/Cargo.toml", "*/*"),
        ("/.env", "*/*"),
    ] {
        let answer = fetch(&env, path, accept).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    let post = env
        .http
        .post(env.url("/"))
        .bearer_auth(&env.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_built_app_the_root_says_how_to_build_it() {
    let env = TestEnv::start_with(&[("UI_DIR", "/nonexistent/dist")]).await;
    let answer = tokio::time::timeout(Duration::from_secs(10), fetch(&env, "/", NAVIGATION))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("make run"),
        "{body}"
    );
}

#[tokio::test]
async fn large_json_reads_are_gzipped_for_clients_that_take_them_and_streams_are_not() {
    use std::io::Read;
    let env = TestEnv::start().await;
    for project in ["p1", "p2", "p3", "p4", "p5"] {
        env.set_limit("zip", project, 1_000).await;
    }
    env.wait_for_own_writes().await;
    let get = |path: &str, encoding: Option<&str>| {
        let mut request = env.http.get(env.url(path)).bearer_auth(&env.admin_token);
        if let Some(encoding) = encoding {
            request = request.header(header::ACCEPT_ENCODING, encoding);
        }
        request.send()
    };

    let plain = get("/audit/events?limit=100", None).await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain = plain.bytes().await.unwrap();
    assert!(plain.len() > 1024, "a page of five events is over 1 KiB");

    let zipped = get("/audit/events?limit=100", Some("gzip")).await.unwrap();
    assert_eq!(zipped.status(), StatusCode::OK);
    assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
    let zipped = zipped.bytes().await.unwrap();
    assert!(
        zipped.len() < plain.len() / 2,
        "{} of {}",
        zipped.len(),
        plain.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&unzipped).unwrap(),
        serde_json::from_slice::<Value>(&plain).unwrap(),
        "the same page, compressed"
    );

    // The streamed NDJSON goes out line by line, as written.
    let export = get("/audit/export", Some("gzip")).await.unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    assert!(export.headers().get(header::CONTENT_ENCODING).is_none());
    assert!(export.text().await.unwrap().lines().count() >= 5);
}
