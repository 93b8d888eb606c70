//! A slow PostgreSQL: the events table locked for 12 s while callers keep coming. Memory
//! stays bounded (an aggregate's queue holds at most 1,024 commands, the executor of an
//! aggregate type at most 4,096; past that a command is refused at once with 503 `busy`),
//! and every caller gets an answer within the 10 s deadline (503 `unavailable`,
//! Retry-After; over NATS the error reply) instead of waiting without end. Budgets,
//! breakers and dead letters run on the same executor; each is tried here. Commands that
//! had not reached PostgreSQL when their caller gave up are never applied.
//!
//! Each test locks a PostgreSQL cluster of its own: a transaction held open for seconds
//! would hold back the commit-order horizon of every test beside it on the shared one.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::executor::{Bounds, Executor};
use commands::store::{Actor, EventStore};
use common::TestEnv;
use domain::budget::{Budget, BudgetCommand};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::task::JoinHandle;

/// How long the events table stays locked.
const HOLD: Duration = Duration::from_secs(12);

/// One caller's answer.
struct Answer {
    status: StatusCode,
    retry_after: bool,
    body: Value,
    /// When it came, from the first caller's start.
    at: Duration,
    /// The caller's number.
    caller: usize,
}

/// Another session takes a lock that blocks every append (reads still work) and lets it
/// go after `hold`.
async fn lock_appends(database_url: &str, hold: Duration) -> (PgPool, JoinHandle<()>) {
    let pool = PgPool::connect(database_url).await.unwrap();
    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        locker.rollback().await.unwrap();
    });
    (pool, release)
}

/// `callers` HTTP requests at once (as the admin), the `i`th made by `request(env, i)`.
async fn flood(
    env: &Arc<TestEnv>,
    callers: usize,
    request: impl Fn(&TestEnv, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Vec<Answer> {
    let request = Arc::new(request);
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let (env, request) = (env.clone(), request.clone());
            tokio::spawn(async move {
                let answer = request(&env, caller)
                    .bearer_auth(&env.admin_token)
                    .send()
                    .await
                    .expect("an answer, not a client time-out");
                let status = answer.status();
                let retry_after = answer.headers().contains_key("retry-after");
                let body: Value = answer.json().await.unwrap();
                Answer {
                    status,
                    retry_after,
                    body,
                    at: started.elapsed(),
                    caller,
                }
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Every caller got a success (one of `ok`) or a 503 that says when to retry; some were
/// refused at once (the queue is bounded) and some were told the deadline passed; nobody
/// waited much past the 10 s deadline.
fn assert_bounded(what: &str, answers: &[Answer], ok: &[StatusCode]) {
    let slowest = answers.iter().map(|a| a.at).max().unwrap();
    let code = |a: &Answer, code: &str| {
        a.status == StatusCode::SERVICE_UNAVAILABLE && a.body["error"]["code"] == code
    };
    let busy = answers.iter().filter(|a| code(a, "busy")).count();
    let unavailable = answers.iter().filter(|a| code(a, "unavailable")).count();
    eprintln!(
        "{what}, locked events table: {busy} refused at once (queue full), {unavailable} \
         unavailable after the deadline, slowest answer {slowest:?}"
    );
    // Requests sent after the lock ended (the machine may be slow to send 1,400) succeed.
    for answer in answers {
        assert!(
            ok.contains(&answer.status) || answer.status == StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {} {}",
            answer.status,
            answer.body
        );
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                answer.retry_after,
                "{what}: a 503 says when to retry: {}",
                answer.body
            );
        }
    }
    assert!(
        unavailable > 0,
        "{what}: callers past the deadline are told so"
    );
    assert!(busy > 0, "{what}: the aggregate's queue is bounded");
    assert!(
        slowest < Duration::from_secs(20),
        "{what}: every caller is answered soon after the 10 s deadline ({slowest:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_event_table_gets_bounded_queues_and_503s_not_endless_waits() {
    let env = Arc::new(TestEnv::start_alone(&[]).await);
    env.set_limit("org1", "slow", 1_000_000_000).await;
    let (pool, release) = lock_appends(&env.database_url, HOLD).await;
    let answers = flood(&env, 1_400, |env, i| {
        env.http.post(env.url("/budget/request")).json(
            &json!({"tenant_id": "org1", "project_id": "slow",
                          "task_id": format!("slow-{i}"), "model": "m",
                          "estimated_tokens": 1}),
        )
    })
    .await;
    release.await.unwrap();
    assert_bounded("reservations", &answers, &[StatusCode::OK]);

    // Once the lock is gone the service works again, and of the commands refused while it
    // was held only those already sent to PostgreSQL (one batch at most) were applied.
    let recovered = common::eventually(Duration::from_secs(15), || async {
        let (status, _) = env
            .post(
                "/budget/request",
                json!({"tenant_id": "org1", "project_id": "slow", "task_id": "after",
                       "model": "m", "estimated_tokens": 1}),
            )
            .await;
        status == StatusCode::OK
    })
    .await;
    assert!(
        recovered,
        "reservations succeed again once the lock is gone"
    );
    let refused: Vec<String> = answers
        .iter()
        .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .map(|a| format!("slow-{}", a.caller))
        .collect();
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE aggregate_id = 'org1/slow' AND payload->>'task_id' = ANY($1)",
    )
    .bind(&refused)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        applied <= 256,
        "{applied} refused commands were applied; at most the batch in flight may be"
    );
    pool.close().await;
}

/// Breaker changes over HTTP and outcomes over NATS wait in the same bounded queue as
/// budgets; a NATS caller gets the error reply (`busy` or `unavailable`), never silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn breaker_commands_are_bounded_too_over_http_and_nats() {
    let env = Arc::new(TestEnv::start_alone(&[]).await);
    let (status, body) = env
        .put(
            "/circuit-breakers/slowdep",
            json!({"failure_threshold": 1000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (pool, release) = lock_appends(&env.database_url, HOLD).await;
    let outcomes = {
        let env = env.clone();
        tokio::spawn(async move { nats_records(&env, "slowdep", 200).await })
    };
    // Each configuration differs from the one before it, so each records an event.
    let answers = flood(&env, 1_400, |env, i| {
        env.http
            .put(env.url("/circuit-breakers/slowdep"))
            .json(&json!({"failure_threshold": 2 + i % 500}))
    })
    .await;
    let outcomes = outcomes.await.unwrap();
    release.await.unwrap();
    assert_bounded("breaker changes", &answers, &[StatusCode::OK]);

    let slowest = outcomes.iter().map(|(_, at)| *at).max().unwrap();
    let refused = |code: &str| {
        outcomes
            .iter()
            .filter(|(reply, _)| reply["error"]["code"] == code)
            .count()
    };
    for (reply, _) in &outcomes {
        let error = &reply["error"]["code"];
        assert!(
            error.is_null() || error == "busy" || error == "unavailable",
            "a NATS outcome during the lock: {reply}"
        );
    }
    assert!(
        refused("unavailable") + refused("busy") > 0,
        "NATS callers are told the event store is slow"
    );
    assert!(
        slowest < Duration::from_secs(20),
        "every NATS caller is answered soon after the deadline ({slowest:?})"
    );
    let recovered = common::eventually(Duration::from_secs(15), || async {
        let (status, _) = env
            .put("/circuit-breakers/slowdep", json!({"failure_threshold": 7}))
            .await;
        status == StatusCode::OK
    })
    .await;
    assert!(
        recovered,
        "breaker changes succeed again once the lock is gone"
    );
    pool.close().await;
}

/// `n` outcome reports on `name` over NATS at once, with a client time-out longer than the
/// server's deadline (so what is measured is the server's answer): each reply and when it
/// came.
async fn nats_records(env: &TestEnv, name: &str, n: usize) -> Vec<(Value, Duration)> {
    let subject = env.command_subject("breaker", "record");
    let started = Instant::now();
    let requests = (0..n).map(|_| {
        let body = json!({"name": name, "outcome": "failure", "error": "timeout"});
        let request = async_nats::Request::new()
            .payload(body.to_string().into())
            .timeout(Some(Duration::from_secs(30)));
        let (service, subject) = (env.service.clone(), subject.clone());
        async move {
            let reply = service
                .send_request(subject, request)
                .await
                .expect("a NATS reply, not a time-out");
            let value: Value = serde_json::from_slice(&reply.payload).unwrap();
            (value, started.elapsed())
        }
    });
    futures::future::join_all(requests).await
}

/// Dead-letter captures: one entry captured over and over (its queue fills), answered
/// 201/200 or 503 like every other command.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letter_captures_are_bounded_too() {
    let env = Arc::new(TestEnv::start_alone(&[]).await);
    let (pool, release) = lock_appends(&env.database_url, HOLD).await;
    let answers = flood(&env, 1_400, |env, _| {
        env.http.post(env.url("/dlq")).json(&json!({
            "id": "hot-letter", "original_subject": "orders.created",
            "payload": {"order": 7}, "error": "schema mismatch", "attempts": 4}))
    })
    .await;
    release.await.unwrap();
    assert_bounded(
        "dead-letter captures",
        &answers,
        &[StatusCode::CREATED, StatusCode::OK],
    );
    let recovered = common::eventually(Duration::from_secs(15), || async {
        let (status, _) = env
            .post(
                "/dlq",
                json!({"id": "after", "original_subject": "orders.created",
                       "payload": {"order": 8}, "error": "x", "attempts": 1}),
            )
            .await;
        status == StatusCode::CREATED
    })
    .await;
    assert!(recovered, "captures succeed again once the lock is gone");
    pool.close().await;
}

/// The bound across aggregates: commands of many different aggregates (every dead letter,
/// every budget is one) are counted together, so memory does not grow with their number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_of_many_aggregates_share_one_bound() {
    let postgres = common::OwnPostgres::start();
    let url = postgres.url();
    let pool = commands::store::connect(&url, 8).await.unwrap();
    commands::store::migrate(&pool).await.unwrap();
    let bounds = Bounds {
        per_aggregate: 4,
        total: 32,
        deadline: Duration::from_secs(2),
    };
    let executor =
        Arc::new(Executor::<Budget>::new(EventStore::new(pool.clone())).with_bounds(bounds));
    let (locker, release) = lock_appends(&url, Duration::from_secs(4)).await;
    let actor = Actor::new("test", "test");
    let started = Instant::now();
    let set_limit = |i: usize| {
        let (executor, actor) = (executor.clone(), actor.clone());
        async move {
            let command = BudgetCommand::SetLimit {
                tenant_id: format!("t{i}"),
                project_id: "p".into(),
                total_tokens: 10,
            };
            let id = format!("t{i}/p");
            let result = executor.execute(&id, command, &actor).await;
            (result.map_err(|e| e.code()), started.elapsed())
        }
    };
    let results = futures::future::join_all((0..100).map(set_limit)).await;
    let count = |code: &str| {
        results
            .iter()
            .filter(|(r, _)| matches!(r, Err(c) if *c == code))
            .count()
    };
    assert_eq!(count("busy"), 100 - 32, "past the bound, refused at once");
    assert_eq!(
        count("unavailable"),
        32,
        "the accepted ones waited for the deadline"
    );
    let slowest = results.iter().map(|(_, at)| *at).max().unwrap();
    assert!(slowest < Duration::from_secs(4), "{slowest:?}");
    release.await.unwrap();
    // The places come back as the abandoned commands leave: the executor works again.
    let recovered = common::eventually(Duration::from_secs(10), || async {
        set_limit(1_000).await.0.is_ok()
    })
    .await;
    assert!(recovered, "commands run again once the lock is gone");
    locker.close().await;
}
