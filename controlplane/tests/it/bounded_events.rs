//! Every event the write side accepts can be published (docs/adr/013-bounded-events.md):
//! the control plane refuses a NATS server whose `max_payload` is too small for its largest
//! event, and a publisher that still meets an event it cannot publish (the server was
//! reconfigured under it) says so at `/readyz`, `/system/pipeline` and `/metrics`, naming
//! the position and the reason, and carries on by itself once the server takes it.

use crate::common;

use std::time::Duration;

use base64::Engine;
use common::{OwnNats, TestEnv};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A nats-server configuration with NATS's default 1 MiB `max_payload`.
fn small_payload_conf() -> tempfile_conf::Conf {
    tempfile_conf::Conf::new("max_payload: 1048576\n")
}

mod tempfile_conf {
    /// A configuration file removed when dropped.
    pub struct Conf(std::path::PathBuf);

    impl Conf {
        pub fn new(text: &str) -> Conf {
            let path = std::env::temp_dir().join(format!("nats-{}.conf", uuid::Uuid::new_v4()));
            std::fs::write(&path, text).unwrap();
            Conf(path)
        }

        pub fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for Conf {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[tokio::test]
async fn serve_refuses_a_nats_server_too_small_for_the_largest_event() {
    let conf = small_payload_conf();
    let nats = OwnNats::start_with(common::free_port(), common::nats_dir(), conf.path());
    let url = nats.url();
    assert!(common::eventually(Duration::from_secs(10), || common::nats_answers(&url)).await);
    let database_url = common::fresh_database().await;
    let prefix = common::unique_prefix();
    let config = common::config_with(&database_url, &prefix, &[("NATS_URL", &url)]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = match controlplane::start(config, listener).await {
        Ok(server) => {
            server.shutdown();
            panic!("started against a server with max_payload 1 MiB")
        }
        Err(error) => error.to_string(),
    };
    assert!(
        refused.contains("NATS_URL") && refused.contains("max_payload"),
        "the refusal names the variable and the setting: {refused}"
    );
}

async fn readiness(env: &TestEnv) -> Value {
    let answer = env.http.get(env.url("/readyz")).send().await.unwrap();
    answer.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publisher_that_cannot_publish_an_event_says_which_and_why_then_recovers() {
    let mut nats = OwnNats::start(common::free_port(), common::nats_dir());
    let url = nats.url();
    assert!(common::eventually(Duration::from_secs(10), || common::nats_answers(&url)).await);
    let env = TestEnv::start_with(&[("NATS_URL", &url), ("METRICS_REFRESH_MS", "100")]).await;

    // The server is restarted with NATS's default limit under the running control plane.
    let conf = small_payload_conf();
    nats.restart_with(conf.path());
    assert!(common::eventually(Duration::from_secs(10), || common::nats_answers(&url)).await);
    // Let the control plane's client reconnect and learn the new limit.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let payload = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 1024 * 1024]);
    let (status, captured) = env
        .post(
            "/dlq",
            json!({"original_subject": "work.big", "payload": payload, "encoding": "base64",
                   "error": "too big", "attempts": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{captured}");
    let position = captured["position"].as_i64().unwrap();

    let named = common::eventually(Duration::from_secs(20), || async {
        readiness(&env).await["publisher_stuck"]["position"] == position
    })
    .await;
    assert!(named, "/readyz names the event: {}", readiness(&env).await);
    let ready = readiness(&env).await;
    assert!(
        ready["publisher_stuck"]["reason"]
            .as_str()
            .unwrap()
            .contains("max payload"),
        "{ready}"
    );
    let (_, pipeline) = env.get("/system/pipeline").await;
    assert_eq!(
        pipeline["this_process"]["publisher_stuck"]["position"], position,
        "{pipeline}"
    );
    let gauge = format!("pipeline_publisher_stuck_position {position}");
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            env.metrics_text().await.contains(&gauge)
        })
        .await,
        "/metrics shows {gauge}"
    );

    // Back to the project's settings: the event goes out, and the ones behind it.
    nats.restart_with(common::NATS_CONF);
    assert!(common::eventually(Duration::from_secs(10), || common::nats_answers(&url)).await);
    let cleared = common::eventually(Duration::from_secs(30), || async {
        readiness(&env).await.get("publisher_stuck").is_none()
    })
    .await;
    assert!(cleared, "{}", readiness(&env).await);
    let (status, entry) = env
        .get(&format!(
            "/dlq/{}?min_position={position}",
            captured["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "projected once published: {entry}");
}
