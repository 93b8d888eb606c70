//! One events stream, one database: the stream carries the deployment id of the database
//! that made it, and a process of another database neither publishes to it nor reads it.

use crate::common;

use std::time::Duration;

use common::{eventually, fresh_database, stream_count, unique_prefix, TestEnv};
use controlplane::StartError;
use reqwest::StatusCode;
use serde_json::Value;
use streams::setup::owner_of;
use streams::{events_stream_config, EventsStream};

async fn deployment_of(database_url: &str) -> String {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let id = streams::load_deployment_id(&pool).await.unwrap();
    pool.close().await;
    id
}

async fn jetstream() -> async_nats::jetstream::Context {
    async_nats::jetstream::new(common::connect(&common::nats_url()).await.unwrap())
}

/// The deployment id in the stream's description (`None`: no stream, or no id).
async fn stream_owner(stream: &str) -> Option<String> {
    let stream = jetstream().await.get_stream(stream).await.ok()?;
    let description = stream.cached_info().config.description.clone()?;
    owner_of(&description).map(str::to_string)
}

async fn readyz(env: &TestEnv) -> (StatusCode, Value) {
    let response = env.http.get(env.url("/readyz")).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// A control plane whose stream holds one event of its own.
async fn started_with_one_event() -> (TestEnv, String) {
    let env = TestEnv::start().await;
    env.set_limit("acme", "one", 1_000).await;
    let stream = env.stream();
    let published = eventually(Duration::from_secs(10), || async {
        stream_count(&stream).await == 1
    })
    .await;
    assert!(published, "the first event did not reach {stream}");
    (env, stream)
}

#[tokio::test]
async fn a_second_database_cannot_start_on_the_events_stream_of_another() {
    let (env, stream) = started_with_one_event().await;
    let ours = deployment_of(&env.database_url).await;
    assert_eq!(stream_owner(&stream).await.as_deref(), Some(ours.as_str()));

    // Another database, configured with the same prefix and stream.
    let other = fresh_database().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = match controlplane::start(common::config(&other, &env.prefix), listener).await {
        Ok(server) => {
            server.shutdown();
            panic!("a second database started on the stream of another");
        }
        Err(error) => error,
    };
    assert!(matches!(error, StartError::ForeignStream(_)), "{error}");
    let message = error.to_string();
    assert!(message.contains(&stream), "{message}");
    assert!(message.contains(&ours), "{message}");
    assert!(message.contains(&deployment_of(&other).await), "{message}");
    // The stream is still the first database's, and holds its one event only.
    assert_eq!(stream_owner(&stream).await.as_deref(), Some(ours.as_str()));
    assert_eq!(stream_count(&stream).await, 1);
}

#[tokio::test]
async fn a_stream_made_before_deployment_ids_is_marked_as_this_ones_and_used() {
    let (database_url, prefix) = (fresh_database().await, unique_prefix());
    let stream = common::stream_name(&prefix);
    // The stream as a version without deployment ids made it.
    let mut old = events_stream_config(&EventsStream::new(
        stream.clone(),
        prefix.clone(),
        String::new(),
    ));
    old.description = Some("Golden Arch events in commit order (one message per event)".into());
    jetstream().await.create_stream(old).await.unwrap();
    assert_eq!(stream_owner(&stream).await, None);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let env = TestEnv::start_as(database_url, prefix, listener, &[]).await;
    let ours = deployment_of(&env.database_url).await;
    assert_eq!(stream_owner(&stream).await.as_deref(), Some(ours.as_str()));
    env.set_limit("acme", "one", 1_000).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stream_count(&stream).await == 1
        })
        .await
    );
    assert_eq!(readyz(&env).await.1["events_stream"], "ok");
    let (_, pipeline) = env.get("/system/pipeline").await;
    assert_eq!(pipeline["deployment"], ours.as_str());
    assert_eq!(pipeline["stream_owner_when_foreign"], Value::Null);
}

#[tokio::test]
async fn a_running_process_stops_using_a_stream_another_deployment_took() {
    let (env, stream) = started_with_one_event().await;

    // Another deployment's stream under the same name: the old one deleted and made again
    // with another id (the running process may make it again first: then try again).
    let theirs = uuid::Uuid::new_v4().to_string();
    let config = events_stream_config(&EventsStream::new(
        stream.clone(),
        env.prefix.clone(),
        theirs.clone(),
    ));
    let js = jetstream().await;
    let mut taken = false;
    for _ in 0..20 {
        let _ = js.delete_stream(&stream).await;
        if js.create_stream(config.clone()).await.is_ok() {
            taken = true;
            break;
        }
    }
    assert!(taken, "could not make the other deployment's stream");

    // The publisher checks every second; readiness names the problem.
    let refused = eventually(Duration::from_secs(15), || async {
        let (status, body) = readyz(&env).await;
        status == StatusCode::SERVICE_UNAVAILABLE && body["events_stream"] == "foreign"
    })
    .await;
    assert!(refused, "readyz: {:?}", readyz(&env).await);
    // The operator's view names both deployments.
    let (status, pipeline) = env.get("/system/pipeline").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        pipeline["deployment"],
        deployment_of(&env.database_url).await
    );
    assert_eq!(pipeline["stream_owner_when_foreign"], theirs.as_str());
    // Commands still work (they need PostgreSQL only), and their events stay off the
    // other deployment's stream.
    env.set_limit("acme", "two", 2_000).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stream_count(&stream).await, 0);
    assert_eq!(
        stream_owner(&stream).await.as_deref(),
        Some(theirs.as_str())
    );
    assert_eq!(common::event_count(&env.database_url).await, 2);
}
