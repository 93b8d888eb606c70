//! The sandbox service against a real container engine (DOCKER_HOST): behaviour, isolation,
//! limits, load, validation, auth and cleanup. Every test starts its own service instance on
//! port 0 and ends by checking that none of its containers is left.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use auth::Role;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use common::{containers_of, docker, unique, TestService};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn stdout(v: &Value) -> &str {
    v["stdout"].as_str().unwrap()
}

// ---------------------------------------------------------------- behaviour

#[tokio::test]
async fn hello_world_runs_and_reports_its_output() {
    let s = TestService::start(&[]).await;
    let r = s.python("print('hello')").await;
    assert_eq!(stdout(&r), "hello\n");
    assert_eq!(r["stderr"], "");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["timed_out"], false);
    assert_eq!(r["truncated"], false);
    assert_eq!(r["oom_killed"], false);
    assert!(r["duration_ms"].as_u64().unwrap() < 5000, "{r}");
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn stdin_reaches_the_program_and_ends_with_eof() {
    let s = TestService::start(&[]).await;
    let r = s
        .run(json!({
            "code": "import sys\ndata = sys.stdin.read()\nprint(len(data), data.upper())",
            "language": "python",
            "stdin": "abc\ndef",
        }))
        .await;
    assert_eq!(stdout(&r), "7 ABC\nDEF\n");
    // Without stdin the program sees an empty one, not a hang.
    let r = s.python("import sys; print(repr(sys.stdin.read()))").await;
    assert_eq!(stdout(&r), "''\n");
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn non_zero_exit_codes_and_stderr_are_reported() {
    let s = TestService::start(&[]).await;
    let r = s
        .python("import sys\nprint('out')\nprint('bad thing', file=sys.stderr)\nsys.exit(3)")
        .await;
    assert_eq!(r["exit_code"], 3);
    assert_eq!(stdout(&r), "out\n");
    assert_eq!(r["stderr"], "bad thing\n");
    let r = s.python("raise ValueError('boom')").await;
    assert_eq!(r["exit_code"], 1);
    assert!(
        r["stderr"].as_str().unwrap().contains("ValueError: boom"),
        "{r}"
    );
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn a_program_that_closes_its_output_early_is_still_waited_for() {
    let s = TestService::start(&[]).await;
    let r = s
        .python("import os, time\nprint('bye', flush=True)\nos.close(1)\nos.close(2)\ntime.sleep(0.5)\nos._exit(5)")
        .await;
    assert_eq!(stdout(&r), "bye\n");
    assert_eq!(r["exit_code"], 5, "{r}");
    assert_eq!(r["timed_out"], false);
    assert!(r["duration_ms"].as_u64().unwrap() >= 500, "{r}");
    // ... and still killed at the deadline if it never ends.
    let r = s
        .run(json!({"code": "import os\nos.close(1)\nos.close(2)\nwhile True: pass", "language": "python", "timeout": 1}))
        .await;
    assert_eq!(r["timed_out"], true, "{r}");
    assert_eq!(r["exit_code"], 137);
    s.assert_no_containers_left().await;
}

// ---------------------------------------------------------------- limits

#[tokio::test]
async fn an_infinite_loop_is_killed_at_the_timeout() {
    let s = TestService::start(&[]).await;
    let started = Instant::now();
    let r = s
        .run(json!({"code": "print('started')\nwhile True: pass", "language": "python", "timeout": 1}))
        .await;
    assert_eq!(r["timed_out"], true, "{r}");
    assert_eq!(r["exit_code"], 137);
    assert_eq!(r["oom_killed"], false);
    // Output written before the kill is kept.
    assert_eq!(stdout(&r), "started\n");
    let ms = r["duration_ms"].as_u64().unwrap();
    assert!((1000..1500).contains(&ms), "{ms}");
    assert!(started.elapsed() < Duration::from_secs(10));
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn a_fork_bomb_hits_the_pids_limit() {
    let s = TestService::start(&[("SANDBOX_PIDS_LIMIT", "32")]).await;
    // Counted: how many processes can be started before fork fails.
    let r = s
        .python(
            "import os, time\n\
             n = 0\n\
             try:\n\
             \x20   for _ in range(10000):\n\
             \x20       if os.fork() == 0:\n\
             \x20           time.sleep(30)\n\
             \x20           os._exit(0)\n\
             \x20       n += 1\n\
             except OSError as e:\n\
             \x20   print('fork failed after', n, type(e).__name__)\n",
        )
        .await;
    let out = stdout(&r);
    assert!(out.starts_with("fork failed after"), "{r}");
    let n: u64 = out.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(n < 32, "{n} processes started past a limit of 32");
    assert_eq!(r["timed_out"], false);
    // The classic bomb: contained, ended by the timeout, and the service carries on.
    let r = s
        .run(json!({
            "code": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
            "language": "python",
            "timeout": 2,
        }))
        .await;
    assert_eq!(r["timed_out"], true, "{r}");
    let r = s.python("print('still here')").await;
    assert_eq!(stdout(&r), "still here\n");
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn allocating_past_the_memory_limit_is_killed_and_reported() {
    let s = TestService::start(&[]).await;
    let r = s
        .run(json!({
            "code": "x = b'x' * (256 << 20)\nprint('allocated', len(x))",
            "language": "python",
            "memory_mb": 64,
        }))
        .await;
    assert_eq!(r["oom_killed"], true, "{r}");
    assert_eq!(r["exit_code"], 137);
    assert_eq!(r["timed_out"], false);
    assert_eq!(stdout(&r), "");
    // Within the limit the same program works.
    let r = s
        .run(json!({
            "code": "x = b'x' * (16 << 20)\nprint('allocated', len(x))",
            "language": "python",
            "memory_mb": 128,
        }))
        .await;
    assert_eq!(stdout(&r), format!("allocated {}\n", 16 << 20));
    assert_eq!(r["oom_killed"], false);
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn a_ten_megabyte_print_is_truncated_at_the_cap() {
    let s = TestService::start(&[]).await;
    let r = s
        .python("import sys\nprint('x' * (10 << 20))\nprint('e' * 100, file=sys.stderr)")
        .await;
    assert_eq!(r["truncated"], true);
    assert_eq!(r["exit_code"], 0);
    let out = stdout(&r);
    assert_eq!(out.len(), 64 * 1024);
    assert!(out.bytes().all(|b| b == b'x'));
    // The other stream keeps its own, untouched, allowance.
    assert_eq!(r["stderr"].as_str().unwrap().len(), 101);
    s.assert_no_containers_left().await;
}

// ---------------------------------------------------------------- isolation

#[tokio::test]
async fn writing_outside_tmp_fails() {
    let s = TestService::start(&[]).await;
    let r = s
        .python(
            "import os\n\
             for p in ['/x', '/etc/x', '/usr/x', '/home/x', '/var/tmp/x', '/run/x', '/root/x']:\n\
             \x20   try:\n\
             \x20       open(p, 'w').write('x')\n\
             \x20       print(p, 'WRITABLE')\n\
             \x20   except OSError as e:\n\
             \x20       print(p, 'refused', e.errno)\n\
             open('/tmp/ok', 'w').write('fine')\n\
             print('tmp', open('/tmp/ok').read())\n",
        )
        .await;
    let out = stdout(&r);
    assert!(!out.contains("WRITABLE"), "{out}");
    assert_eq!(out.matches("refused").count(), 7, "{out}");
    assert!(out.ends_with("tmp fine\n"), "{out}");
    // /tmp is size-limited (16 MiB by default).
    let r = s
        .python(
            "try:\n\
             \x20   open('/tmp/big', 'wb').write(b'x' * (32 << 20))\n\
             \x20   print('wrote 32 MiB')\n\
             except OSError as e:\n\
             \x20   print('full', e.errno)\n",
        )
        .await;
    assert_eq!(stdout(&r), "full 28\n", "{r}"); // ENOSPC
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn no_network_is_reachable() {
    let s = TestService::start(&[]).await;
    // A server on this machine's loopback: the container must not reach it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket\n\
         print('interfaces', sorted(n for _, n in socket.if_nameindex()))\n\
         print('routes', len(open('/proc/net/route').read().splitlines()) - 1)\n\
         try:\n\
         \x20   socket.create_connection(('127.0.0.1', {port}), timeout=2)\n\
         \x20   print('CONNECTED')\n\
         except OSError as e:\n\
         \x20   print('refused', type(e).__name__)\n"
    );
    let r = s.python(&code).await;
    let out = stdout(&r);
    assert!(out.contains("interfaces ['lo']"), "{out}");
    assert!(out.contains("routes 0"), "{out}");
    assert!(out.contains("refused"), "{out}");
    assert!(!out.contains("CONNECTED"), "{out}");
    assert!(
        listener.accept().is_err(),
        "the host listener got a connection"
    );
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn the_program_is_not_root_and_holds_no_privileges() {
    let s = TestService::start(&[]).await;
    let r = s
        .python(
            "import os\n\
             print('uid', os.getuid(), os.geteuid(), os.getgid())\n\
             status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n\
             print('caps', status['CapEff'].strip(), status['CapBnd'].strip())\n\
             print('nnp', status['NoNewPrivs'].strip())\n\
             print('seccomp', status['Seccomp'].strip())\n",
        )
        .await;
    let out = stdout(&r);
    assert!(out.contains("uid 65534 65534 65534"), "{out}");
    assert!(
        out.contains("caps 0000000000000000 0000000000000000"),
        "{out}"
    );
    assert!(out.contains("nnp 1"), "{out}");
    // 2 = a seccomp filter is applied: the engine's default profile.
    assert!(out.contains("seccomp 2"), "{out}");
    s.assert_no_containers_left().await;
}

// ---------------------------------------------------------------- load

#[tokio::test]
async fn twenty_concurrent_runs_complete() {
    let s = TestService::start(&[
        ("SANDBOX_MAX_CONCURRENT", "4"),
        ("SANDBOX_QUEUE_SIZE", "32"),
    ])
    .await;
    let runs = (0..20).map(|i| {
        let s = &s;
        async move {
            let (status, _, r) = s
                .execute(json!({"code": format!("print({i} * 2)"), "language": "python"}))
                .await;
            (i, status, r)
        }
    });
    for (i, status, r) in futures::future::join_all(runs).await {
        assert_eq!(status, StatusCode::OK, "{r}");
        assert_eq!(stdout(&r), format!("{}\n", i * 2));
    }
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn past_the_queue_limit_requests_get_429_with_retry_after() {
    let s =
        TestService::start(&[("SANDBOX_MAX_CONCURRENT", "1"), ("SANDBOX_QUEUE_SIZE", "1")]).await;
    let runs = (0..6)
        .map(|_| s.execute(json!({"code": "import time; time.sleep(1.5)", "language": "python"})));
    let results = futures::future::join_all(runs).await;
    let ok = results
        .iter()
        .filter(|(st, _, _)| *st == StatusCode::OK)
        .count();
    let refused: Vec<_> = results
        .iter()
        .filter(|(st, _, _)| *st == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    // One runs, one waits; everything else is refused at once.
    assert_eq!(ok, 2, "{results:?}");
    assert_eq!(refused.len(), 4, "{results:?}");
    for (_, headers, body) in refused {
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1);
        assert_eq!(body["error"]["code"], "queue_full");
    }
    let (_, metrics) = s.get("/metrics").await;
    assert!(
        metrics.contains("sandbox_rejected_total{code=\"queue_full\"} 4"),
        "{metrics}"
    );
    s.assert_no_containers_left().await;
}

// ---------------------------------------------------------------- validation and auth

#[tokio::test]
async fn invalid_requests_get_400_or_422_with_a_clear_message() {
    let s = TestService::start(&[]).await;
    let big = "x".repeat(64 * 1024 + 1);
    let cases = [
        (
            json!({"code": "print(1)", "language": "cobol"}),
            422,
            "unknown_language",
            "language",
        ),
        (
            json!({"code": "", "language": "python"}),
            422,
            "empty_code",
            "code",
        ),
        (
            json!({"code": "  \n", "language": "python"}),
            422,
            "empty_code",
            "code",
        ),
        (
            json!({"code": big, "language": "python"}),
            422,
            "code_too_large",
            "code",
        ),
        (
            json!({"code": "print(1)", "language": "python", "timeout": 31}),
            422,
            "timeout_too_large",
            "timeout",
        ),
        (
            json!({"code": "print(1)", "language": "python", "timeout": -1}),
            422,
            "invalid_timeout",
            "timeout",
        ),
        (
            json!({"code": "print(1)", "language": "python", "memory_mb": 100000}),
            422,
            "memory_too_large",
            "memory_mb",
        ),
        (json!({"language": "python"}), 422, "invalid_field", "code"),
        (
            json!({"code": 5, "language": "python"}),
            422,
            "invalid_field",
            "code",
        ),
        (
            json!({"code": "print(1)", "language": "python", "network": true}),
            422,
            "invalid_field",
            "network",
        ),
    ];
    for (body, status, code, field) in cases {
        let (st, _, r) = s.execute(body.clone()).await;
        assert_eq!(st.as_u16(), status, "{body} → {r}");
        assert_eq!(r["error"]["code"], code, "{body} → {r}");
        assert_eq!(r["error"]["field"], field, "{body} → {r}");
        assert!(!r["error"]["message"].as_str().unwrap().is_empty());
    }
    let r = s.execute(json!({"code": "1", "language": "cobol"})).await.2;
    assert!(
        r["error"]["message"].as_str().unwrap().contains("python"),
        "{r}"
    );
    // Not JSON at all.
    let response = s
        .http
        .post(format!("{}/execute", s.base))
        .bearer_auth(s.token(Role::Developer))
        .header("content-type", "application/json")
        .body("{\"code\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let r: Value = response.json().await.unwrap();
    assert_eq!(r["error"]["code"], "invalid_json");
    // Nothing was run for any of them.
    assert_eq!(s.containers().await, 0);
}

#[tokio::test]
async fn execute_needs_a_valid_token_with_execute_code() {
    let s = TestService::start(&[]).await;
    let body = json!({"code": "print(1)", "language": "python"});
    let (st, headers, r) = s.execute_with(None, body.clone()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(r["error"]["code"], "unauthorized");
    let (st, _, _) = s.execute_with(Some("not-a-jwt"), body.clone()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let other = auth::TokenKeys::new(b"another-secret-another-secret-another", 3600)
        .issue(
            &auth::Grant::unscoped("mallory", Role::Admin),
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    let (st, _, _) = s.execute_with(Some(&other), body.clone()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let expired = s
        .keys
        .issue(
            &auth::Grant::unscoped("alice", Role::Developer),
            chrono::Utc::now().timestamp() - 7200,
        )
        .unwrap();
    let (st, _, _) = s.execute_with(Some(&expired), body.clone()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // A session token is the control plane's, even with the right secret: only the
    // gateway reaches the sandbox, after its own revocation check.
    let session = s.session_token(Role::Admin);
    let (st, _, _) = s.execute_with(Some(&session), body.clone()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "a session token is refused");
    let viewer = s.token(Role::Viewer);
    let (st, _, r) = s.execute_with(Some(&viewer), body.clone()).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("execute:code"));
    // Auth comes before validation: an anonymous bad body is still a 401.
    let (st, _, _) = s.execute_with(None, json!({"language": "cobol"})).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let admin = s.token(Role::Admin);
    let (st, _, _) = s.execute_with(Some(&admin), body).await;
    assert_eq!(st, StatusCode::OK);
    s.assert_no_containers_left().await;
}

// ---------------------------------------------------------------- operations

#[tokio::test]
async fn languages_healthz_and_metrics_answer() {
    let s = TestService::start(&[]).await;
    let (st, body) = s.get("/languages").await;
    assert_eq!(st, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["languages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["name"] == "python"));
    assert_eq!(v["limits"]["max_output_bytes"], 65536);
    // The engine answers /healthz's question within 2 s, or it is 503 (Retry-After): the
    // suite's other tests can keep a shared engine busier than that, so ask as a monitor does.
    let mut asked = 0;
    let (st, body) = loop {
        let (st, body) = s.get("/healthz").await;
        asked += 1;
        if st != StatusCode::SERVICE_UNAVAILABLE || asked == 12 {
            break (st, body);
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    };
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["engine"]["reachable"], true);
    s.python("print(1)").await;
    let (st, metrics) = s.get("/metrics").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        metrics.contains("sandbox_executions_total{language=\"python\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("sandbox_execution_duration_seconds_bucket"));
    assert!(metrics.contains("sandbox_http_requests_total{endpoint=\"/execute\""));
    s.assert_no_containers_left().await;
}

#[tokio::test]
async fn an_unreachable_engine_gives_503_not_a_crash() {
    let s = TestService::start(&[("DOCKER_HOST", "unix:///nonexistent/engine.sock")]).await;
    let (st, body) = s.get("/healthz").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (st, headers, r) = s
        .execute(json!({"code": "print(1)", "language": "python"}))
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(r["error"]["code"], "engine_unavailable");
    assert!(
        !r.to_string().contains("nonexistent"),
        "engine details leak: {r}"
    );
}

#[tokio::test]
async fn leftovers_of_this_instance_are_removed_at_start_and_others_are_not() {
    let instance = unique("t");
    let bystander = unique("t");
    let docker = docker();
    let image = std::env::var("SANDBOX_IMAGES")
        .ok()
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.strip_prefix("python=").map(str::to_string))
        })
        .unwrap_or_else(|| sandbox::config::DEFAULT_PYTHON_IMAGE.to_string());
    // As if a previous process had been killed mid-run.
    for owner in [&instance, &instance, &bystander] {
        docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::new()
                        .name(&unique("ga-leftover-"))
                        .build(),
                ),
                ContainerCreateBody {
                    image: Some(image.clone()),
                    cmd: Some(vec!["true".into()]),
                    labels: Some(HashMap::from([
                        (sandbox::LABEL_SANDBOX.to_string(), "1".to_string()),
                        (sandbox::LABEL_INSTANCE.to_string(), owner.to_string()),
                    ])),
                    host_config: Some(HostConfig {
                        network_mode: Some("none".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .expect("create a leftover");
    }
    assert_eq!(containers_of(&instance).await, 2);
    let s = TestService::start_as(&instance, &[]).await;
    assert_eq!(s.containers().await, 0);
    let (_, metrics) = s.get("/metrics").await;
    assert!(metrics.contains("sandbox_leftover_containers_removed_total 2"));
    // Another instance's container is not ours to remove.
    assert_eq!(containers_of(&bystander).await, 1);
    let other = TestService::start_as(&bystander, &[]).await;
    other.assert_no_containers_left().await;
}

#[tokio::test]
async fn a_client_hanging_up_mid_run_still_gets_its_container_removed() {
    let s = TestService::start(&[]).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let sent = impatient
        .post(format!("{}/execute", s.base))
        .bearer_auth(s.token(Role::Developer))
        .json(&json!({"code": "import time; time.sleep(2)", "language": "python", "timeout": 5}))
        .send()
        .await;
    assert!(sent.is_err(), "the client was meant to give up first");
    // The run goes on to its end, then its container goes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.assert_no_containers_left().await;
    let (_, metrics) = s.get("/metrics").await;
    assert!(
        metrics.contains("sandbox_executions_total{language=\"python\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------- audit

#[tokio::test]
async fn each_run_is_reported_on_nats_without_the_code() {
    let Ok(nats_url) = std::env::var("NATS_URL") else {
        panic!("NATS_URL is not set: start NATS (make test does: scripts/services.sh up)");
    };
    let prefix = unique("sbtest");
    // NATS runs with authentication (docs/nats-auth.md): the harness listens as the
    // administrator, the sandbox publishes with its own identity.
    let account = natsauth::read_account_seed(
        &std::path::PathBuf::from(std::env::var("NATS_AUTH_DIR").expect("NATS_AUTH_DIR is set"))
            .join("account.seed"),
    )
    .unwrap();
    let admin = natsauth::user_creds(&account, &natsauth::Role::Admin, &prefix).unwrap();
    let creds = std::env::temp_dir().join(format!("{prefix}-sandbox.creds"));
    natsauth::write_secret(
        &creds,
        &natsauth::user_creds(&account, &natsauth::Role::Sandbox, &prefix).unwrap(),
    )
    .unwrap();
    let creds = creds.to_str().unwrap().to_string();
    let nats = async_nats::ConnectOptions::with_credentials(&admin)
        .unwrap()
        .connect(&nats_url)
        .await
        .expect("connect to NATS");
    let mut sub = nats
        .subscribe(format!("{prefix}.audit.sandbox"))
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let s = TestService::start(&[
        ("NATS_URL", &nats_url),
        ("NATS_CREDS", &creds),
        ("NATS_SUBJECT_PREFIX", &prefix),
    ])
    .await;
    let code = "import sys; sys.exit(4)";
    s.python(code).await;
    let msg = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut sub))
        .await
        .expect("an audit report within 10 s")
        .unwrap();
    let event: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(event["event_type"], "SandboxCodeExecuted");
    assert_eq!(event["who"], "alice");
    assert_eq!(event["language"], "python");
    assert_eq!(event["exit_code"], 4);
    assert_eq!(event["outcome"], "exit_nonzero");
    assert_eq!(
        event["code_sha256"],
        sandbox::audit::sha256_hex(code.as_bytes())
    );
    assert!(event["duration_ms"].as_u64().is_some());
    assert!(
        event.get("code").is_none(),
        "code must not be sent by default"
    );
    assert!(msg.headers.unwrap().get("Nats-Msg-Id").is_some());

    // With SANDBOX_AUDIT_INCLUDE_CODE=true the code travels too.
    let s2 = TestService::start(&[
        ("NATS_URL", &nats_url),
        ("NATS_CREDS", &creds),
        ("NATS_SUBJECT_PREFIX", &prefix),
        ("SANDBOX_AUDIT_INCLUDE_CODE", "true"),
    ])
    .await;
    s2.python("print(2)").await;
    let msg = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut sub))
        .await
        .expect("a second report")
        .unwrap();
    let event: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(event["code"], "print(2)");
    s.assert_no_containers_left().await;
    s2.assert_no_containers_left().await;
}

#[tokio::test]
async fn runs_go_on_when_nats_is_unreachable() {
    // Port 1 on loopback: nothing listens there.
    let s = TestService::start(&[("NATS_URL", "nats://127.0.0.1:1")]).await;
    let r = s.python("print('no audit bus')").await;
    assert_eq!(stdout(&r), "no audit bus\n");
    s.assert_no_containers_left().await;
}
