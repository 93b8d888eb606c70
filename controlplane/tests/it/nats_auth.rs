//! NATS authentication and subject permissions, tried as an attacker with network access
//! to NATS (or a service's own credentials) would, against the real nats-server `make test`
//! starts with authentication on (docs/nats-auth.md). Each test has its own database,
//! subject prefix and streams.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use common::{creds, TestEnv, TEST_SERVICE};
use futures::StreamExt;
use natsauth::{subjects, Role};
use serde_json::{json, Value};

/// A client as `role` under the test's prefix, collecting the errors the server sends it.
async fn client_as(env: &TestEnv, role: Role) -> (Client, Arc<Mutex<Vec<String>>>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let inbox = subjects::inbox_prefix(&env.prefix, role.name());
    let client = ConnectOptions::with_credentials(&creds(role, &env.prefix))
        .unwrap()
        .custom_inbox_prefix(inbox)
        .event_callback(move |event| {
            let seen = seen.clone();
            async move {
                if let Event::ServerError(error) = event {
                    seen.lock().unwrap().push(error.to_string());
                }
            }
        })
        .connect(common::nats_url())
        .await
        .expect("connects with its creds");
    (client, errors)
}

/// Waits until the server has refused something naming `subject` on this connection.
async fn refused(errors: &Arc<Mutex<Vec<String>>>, subject: &str) {
    let told = common::eventually(Duration::from_secs(5), || async {
        errors
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("Permissions Violation") && e.contains(subject))
    })
    .await;
    assert!(
        told,
        "the server refused {subject}: {:?}",
        errors.lock().unwrap()
    );
}

/// Nothing arrives on `subscription` within half a second.
async fn nothing_arrives(subscription: &mut async_nats::Subscriber) {
    let got = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await;
    assert!(got.is_err(), "a message arrived: {got:?}");
}

/// The reservation request of a fresh task.
fn reserve_body(tenant: &str) -> Value {
    json!({"tenant_id": tenant, "project_id": "p1",
           "task_id": format!("t{}", uuid::Uuid::new_v4().simple()),
           "model": "m", "estimated_tokens": 10})
}

async fn request(client: &Client, subject: String, body: &Value) -> Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject, serde_json::to_vec(body).unwrap().into()),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    serde_json::from_slice(&reply.payload).unwrap()
}

#[tokio::test]
async fn a_client_without_credentials_is_refused() {
    let _env = TestEnv::start().await;
    let anonymous = ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(common::nats_url())
        .await;
    assert!(anonymous.is_err(), "an anonymous client connected");
    // Creds signed by an account the server does not trust are refused as well.
    let stranger =
        natsauth::user_creds(&natsauth::nkeys::KeyPair::new_account(), &Role::Admin, "cp").unwrap();
    let forged = ConnectOptions::with_credentials(&stranger)
        .unwrap()
        .connection_timeout(Duration::from_secs(2))
        .connect(common::nats_url())
        .await;
    assert!(forged.is_err(), "a self-made identity connected");
}

#[tokio::test]
async fn a_service_cannot_listen_on_the_command_subjects_or_join_the_queue_group() {
    let env = TestEnv::start().await;
    let (rogue, errors) = client_as(&env, Role::Service("rogue".into())).await;
    let all_commands = format!("{}.cmd.>", env.prefix);
    let listener = subjects::area_listener(&env.prefix, "budget");
    let mut queue = rogue
        .queue_subscribe(listener.clone(), "controlplane".into())
        .await
        .unwrap();
    let mut wiretap = rogue.subscribe(all_commands.clone()).await.unwrap();
    refused(&errors, &listener).await;
    refused(&errors, &all_commands).await;
    // Every request is answered by the control plane; none reaches the rogue.
    for _ in 0..10 {
        let answer = request(
            &env.service,
            env.command_subject("breaker", "check"),
            &json!({"name": "llm"}),
        )
        .await;
        assert_eq!(answer["allowed"], true, "{answer}");
    }
    nothing_arrives(&mut queue).await;
    nothing_arrives(&mut wiretap).await;
}

#[tokio::test]
async fn a_service_cannot_publish_events_sandbox_reports_or_another_services_commands() {
    let env = TestEnv::start().await;
    let mut watch = env
        .nats
        .subscribe(format!("{}.>", env.prefix))
        .await
        .unwrap();
    env.nats.flush().await.unwrap();
    let (rogue, errors) = client_as(&env, Role::Service("rogue".into())).await;
    let forged_event = format!("{}.events.budget.org1", env.prefix);
    let report = subjects::sandbox_reports(&env.prefix);
    let as_tests = subjects::command(&env.prefix, TEST_SERVICE, "budget", "request");
    let stream_api = "$JS.API.STREAM.DELETE.".to_string() + &env.stream();
    for subject in [&forged_event, &report, &as_tests, &stream_api] {
        rogue
            .publish(
                subject.clone(),
                br#"{"transaction_id":1e30}"#.to_vec().into(),
            )
            .await
            .unwrap();
    }
    rogue.flush().await.unwrap();
    for subject in [&forged_event, &report, &as_tests, &stream_api] {
        refused(&errors, subject).await;
    }
    nothing_arrives(&mut watch).await;
    assert!(
        common::connect(&common::nats_url())
            .await
            .map(async_nats::jetstream::new)
            .unwrap()
            .get_stream(env.stream())
            .await
            .is_ok(),
        "the events stream is still there"
    );
}

#[tokio::test]
async fn a_service_cannot_read_another_services_replies() {
    let env = TestEnv::start().await;
    let (rogue, errors) = client_as(&env, Role::Service("rogue".into())).await;
    let their_inbox = format!("{}.>", subjects::inbox_prefix(&env.prefix, TEST_SERVICE));
    let mut stolen = rogue.subscribe(their_inbox.clone()).await.unwrap();
    let mut everything = rogue.subscribe(">".to_string()).await.unwrap();
    refused(&errors, &their_inbox).await;
    refused(&errors, "\">\"").await;
    env.set_limit("org1", "p1", 100).await;
    let answer = env
        .nats_request("request", &reserve_body("org1"))
        .await
        .expect("answered");
    assert!(answer["reservation_id"].is_string(), "{answer}");
    nothing_arrives(&mut stolen).await;
    nothing_arrives(&mut everything).await;
}

#[tokio::test]
async fn a_forged_cp_service_header_does_not_change_the_recorded_actor() {
    let env = TestEnv::start().await;
    env.set_limit("org1", "p1", 100).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Cp-Service", "admin");
    let reply = env
        .service
        .request_with_headers(
            env.command_subject("budget", "request"),
            headers,
            serde_json::to_vec(&reserve_body("org1")).unwrap().into(),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert!(answer["reservation_id"].is_string(), "{answer}");
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let actors: Vec<(String, String)> = sqlx::query_as(
        "SELECT metadata->>'user', metadata->>'via' FROM events WHERE event_type = 'TokensReserved'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert!(!actors.is_empty());
    for actor in actors {
        assert_eq!(actor, (TEST_SERVICE.to_string(), "nats".to_string()));
    }
}

#[tokio::test]
async fn only_the_sandbox_may_publish_sandbox_reports() {
    let env = TestEnv::start().await;
    let report = subjects::sandbox_reports(&env.prefix);
    let mut watch = env.nats.subscribe(report.clone()).await.unwrap();
    env.nats.flush().await.unwrap();
    // The control plane itself may not: a requeued dead letter cannot become a report.
    let (control_plane, errors) = client_as(&env, Role::ControlPlane).await;
    control_plane
        .publish(report.clone(), b"{}".to_vec().into())
        .await
        .unwrap();
    control_plane.flush().await.unwrap();
    refused(&errors, &report).await;
    nothing_arrives(&mut watch).await;
    // The sandbox may, and nothing else.
    let (sandbox, errors) = client_as(&env, Role::Sandbox).await;
    sandbox
        .publish(report.clone(), b"{}".to_vec().into())
        .await
        .unwrap();
    let command = env.command_subject("budget", "state");
    sandbox
        .publish(command.clone(), b"{}".to_vec().into())
        .await
        .unwrap();
    sandbox.flush().await.unwrap();
    let arrived = tokio::time::timeout(Duration::from_secs(5), watch.next()).await;
    assert!(
        matches!(arrived, Ok(Some(_))),
        "the sandbox's report arrives"
    );
    refused(&errors, &command).await;
}

#[tokio::test]
async fn a_scoped_service_cannot_act_on_another_tenant_over_nats() {
    let env = TestEnv::start().await;
    common::register_service(&env.database_url, "billing-a", Some(&["orgA"])).await;
    let billing = common::service_client(&common::nats_url(), &env.prefix, "billing-a").await;
    let subject = |verb: &str| subjects::command(&env.prefix, "billing-a", "budget", verb);
    env.set_limit("orgA", "p1", 1000).await;
    env.set_limit("orgB", "p1", 1000).await;

    let own = request(&billing, subject("request"), &reserve_body("orgA")).await;
    assert!(own["reservation_id"].is_string(), "{own}");
    let theirs = request(&billing, subject("request"), &reserve_body("orgB")).await;
    assert_eq!(theirs["error"]["code"], "forbidden", "{theirs}");
    let state = request(
        &billing,
        subject("state"),
        &json!({"tenant_id": "orgB", "project_id": "p1"}),
    )
    .await;
    assert_eq!(state["error"]["code"], "forbidden", "{state}");

    // Another tenant's reservation id is not there for this service.
    let b_reservation = env.reserve("orgB", "p1", 10).await["reservation_id"].clone();
    let commit = request(
        &billing,
        subject("commit"),
        &json!({"reservation_id": b_reservation, "actual_tokens": 1_000_000_000_000_u64}),
    )
    .await;
    assert_eq!(commit["error"]["code"], "not_found", "{commit}");
    let release = request(
        &billing,
        subject("release"),
        &json!({"reservation_id": b_reservation}),
    )
    .await;
    assert_eq!(release["error"]["code"], "not_found", "{release}");
    // Its own reservation it can settle; breaker commands work as before.
    let commit = request(
        &billing,
        subject("commit"),
        &json!({"reservation_id": own["reservation_id"], "actual_tokens": 5}),
    )
    .await;
    assert!(commit.get("error").is_none(), "{commit}");
    let check = request(
        &billing,
        subjects::command(&env.prefix, "billing-a", "breaker", "check"),
        &json!({"name": "llm"}),
    )
    .await;
    assert_eq!(check["allowed"], true, "{check}");
}

#[tokio::test]
async fn an_unregistered_service_may_do_nothing_and_removal_takes_effect_within_seconds() {
    let env = TestEnv::start().await;
    let ghost = common::service_client(&common::nats_url(), &env.prefix, "ghost").await;
    let subject = subjects::command(&env.prefix, "ghost", "breaker", "check");
    let answer = request(&ghost, subject.clone(), &json!({"name": "llm"})).await;
    assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
    assert_eq!(answer["error"]["field"], "service", "{answer}");

    common::register_service(&env.database_url, "ghost", None).await;
    let allowed = common::eventually(Duration::from_secs(5), || async {
        request(&ghost, subject.clone(), &json!({"name": "llm"})).await["allowed"] == true
    })
    .await;
    assert!(allowed, "a registered service is served within seconds");

    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    assert!(commands::services::remove(&pool, "ghost").await.unwrap());
    pool.close().await;
    let refused = common::eventually(Duration::from_secs(5), || async {
        request(&ghost, subject.clone(), &json!({"name": "llm"})).await["error"]["code"]
            == "forbidden"
    })
    .await;
    assert!(refused, "a removed service is refused within seconds");
}

#[tokio::test]
async fn service_add_registers_the_tenants_and_writes_working_creds() {
    let env = TestEnv::start().await;
    let dir = std::env::temp_dir().join(format!("svc-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("summariser.creds");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_controlplane"))
            .args(args)
            .env("APP_ENV", "test")
            .env("DATABASE_URL", &env.database_url)
            .env("NATS_SUBJECT_PREFIX", &env.prefix)
            .env(
                "NATS_ACCOUNT_SEED_FILE",
                common::nats_auth_dir().join("account.seed"),
            )
            .output()
            .unwrap()
    };
    let made = run(&[
        "service",
        "add",
        "summariser",
        "--tenants",
        "orgA,orgC",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{made:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the creds file is private");

    let client = ConnectOptions::with_credentials_file(&out)
        .await
        .unwrap()
        .custom_inbox_prefix(subjects::inbox_prefix(&env.prefix, "summariser"))
        .connect(common::nats_url())
        .await
        .expect("the creds connect");
    let subject = subjects::command(&env.prefix, "summariser", "budget", "request");
    env.set_limit("orgC", "p1", 100).await;
    env.set_limit("orgB", "p1", 100).await;
    let own = request(&client, subject.clone(), &reserve_body("orgC")).await;
    assert!(own["reservation_id"].is_string(), "{own}");
    let other = request(&client, subject, &reserve_body("orgB")).await;
    assert_eq!(other["error"]["code"], "forbidden", "{other}");

    // Bad input is named.
    let bad = run(&["service", "add", "Bad.Name", "--all-tenants"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("service name"),
        "{bad:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A leaked creds file is revoked in the account (`nats-identities revoke`) and the server
/// reloads its configuration: the key can no longer connect, its open connection is cut,
/// and the service's new creds (and everyone else's) keep working. On a nats-server and a
/// deployment of the test's own, since it changes the server's trust.
#[tokio::test]
async fn revoked_creds_are_refused_and_cut_off_after_a_reload() {
    let deployment = common::nats_dir().with_extension("auth");
    let prefix = common::unique_prefix();
    natsauth::deployment::init(&deployment, &prefix).unwrap();
    let nats = common::OwnNats::start_trusting(
        common::free_port(),
        common::nats_dir(),
        common::NATS_CONF,
        deployment.join("auth.conf"),
    );
    let connect = |creds: String| {
        let url = nats.url();
        async move {
            ConnectOptions::with_credentials(&creds)
                .unwrap()
                .connection_timeout(Duration::from_secs(2))
                .max_reconnects(Some(1))
                .connect(url)
                .await
        }
    };
    let admin = std::fs::read_to_string(deployment.join("admin.creds")).unwrap();
    assert!(
        common::eventually(Duration::from_secs(10), || {
            let admin = admin.clone();
            async { connect(admin).await.is_ok() }
        })
        .await,
        "the server starts"
    );
    let account = natsauth::read_account_seed(&deployment.join("account.seed")).unwrap();
    let service = Role::Service("leaky".into());
    let leaked = natsauth::user_creds(&account, &service, &prefix).unwrap();
    let open = connect(leaked.clone())
        .await
        .expect("the creds work before");

    let leaked_file = deployment.join("leaky.creds");
    std::fs::write(&leaked_file, &leaked).unwrap();
    let (key, _) =
        natsauth::deployment::revoke(&deployment, leaked_file.to_str().unwrap()).unwrap();
    assert_eq!(key, natsauth::creds_user_key(&leaked).unwrap());
    // Revoked as of this second: a JWT issued in the same second is covered too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = natsauth::user_creds(&account, &service, &prefix).unwrap();
    nats.reload();

    // SIGHUP returns before the server has reloaded (on a busy machine, a while before):
    // refusal is awaited, not expected on the first try.
    assert!(
        common::eventually(Duration::from_secs(10), || {
            let leaked = leaked.clone();
            async {
                tokio::time::timeout(Duration::from_secs(5), connect(leaked))
                    .await
                    .map(|c| c.is_err())
                    .unwrap_or(true)
            }
        })
        .await,
        "the revoked creds connect no more"
    );
    assert!(
        common::eventually(Duration::from_secs(10), || {
            let open = &open;
            async move { open.connection_state() != async_nats::connection::State::Connected }
        })
        .await,
        "the revoked key's open connection is cut"
    );
    connect(fresh).await.expect("the service's new creds work");
    let admin = std::fs::read_to_string(deployment.join("admin.creds")).unwrap();
    connect(admin)
        .await
        .expect("other identities are untouched");
    let _ = std::fs::remove_dir_all(&deployment);
}
