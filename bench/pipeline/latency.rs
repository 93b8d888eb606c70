//! Commit-to-JetStream and commit-to-projection latency under a paced reservation load.
//!
//! `pipeline_latency <nats_url> <prefix> <rate/s> <seconds> <http_url> <admin_token> <database_url> [commit]`
//! prints one JSON line: ops, rate, errors, js_p50_ms, js_p99_ms, proj_p50_ms, proj_p99_ms,
//! proj_samples. With `commit`, every approved reservation is committed right after its
//! answer (as a worker does after its model call), so nothing stays open for its TTL; the
//! rate is then of reservations, and each carries two commands (both in the p99).
//!
//! Commit → JetStream: a core-NATS subscription on `<prefix>.events.>` sees every message the
//! publisher puts on the stream; latency = arrival − the event's `recorded_at` (its
//! transaction's start; each append is one statement, so that is its commit to within the
//! statement's duration). Commit → projection: one command in ten is a sample; ONE watcher
//! asks every millisecond, in one query for all samples still waiting, which of them the
//! read model has applied (their aggregate's version in `projection_versions` reached
//! their sequence); latency = that moment − `recorded_at`. (A poller per sample, as
//! before, put thousands of queries a second on the PostgreSQL it measured.) Same machine,
//! same clock. The same query also says when the read models' contiguous watermark (every
//! event before it in commit order applied too, what `min_position` waits for) reached the
//! sample: `wm_p50_ms`, `wm_p99_ms`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::Recorder;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Mutex;

const BUDGETS: usize = 1000;

fn ms_since(recorded_at: DateTime<Utc>) -> Duration {
    (Utc::now() - recorded_at).to_std().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let commit = match args.get(8).map(String::as_str) {
        None => false,
        Some("commit") => true,
        Some(other) => {
            eprintln!("the 8th argument may only be `commit`, not {other:?}");
            std::process::exit(2);
        }
    };
    if !(8..=9).contains(&args.len()) {
        eprintln!("usage: pipeline_latency <nats_url> <prefix> <rate> <seconds> <http_url> <admin_token> <database_url> [commit]");
        std::process::exit(2);
    }
    let (nats_url, prefix) = (&args[1], args[2].clone());
    let rate: f64 = args[3].parse().expect("rate");
    let seconds: u64 = args[4].parse().expect("seconds");
    let (http_url, token, database_url) = (&args[5], &args[6], &args[7]);
    // A run's budgets are `lat<run>/p0` … `lat<run>/p999`. BENCH_LATENCY_RUN keeps the same
    // ones across runs (the soak: one set of budgets for the whole soak, as a platform has,
    // rather than 1,000 new budgets a minute that go idle); by default each run is new.
    let run = std::env::var("BENCH_LATENCY_RUN")
        .unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string());
    bench::set_limits(http_url, token, &format!("lat{run}"), BUDGETS).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(database_url)
        .await
        .expect("connect to PostgreSQL");
    // Events are observed as the administrator; commands are sent as the bench service.
    let nats = bench::admin_connection(nats_url).await;
    let service = bench::Service::connect(nats_url, &prefix).await;

    // Commit → JetStream, for every event of this run.
    let js_latencies = Arc::new(Mutex::new(Recorder::default()));
    let mut events = nats
        .subscribe(format!("{prefix}.events.Budget.lat{run}.>"))
        .await
        .expect("subscribe");
    let collector = {
        let js_latencies = js_latencies.clone();
        tokio::spawn(async move {
            while let Some(message) = events.next().await {
                let envelope: Value = serde_json::from_slice(&message.payload).unwrap();
                if let Some(at) = envelope["recorded_at"]
                    .as_str()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                {
                    js_latencies.lock().await.latencies.push(ms_since(at));
                }
            }
        })
    };
    // Let the first limits' events drain before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    js_latencies.lock().await.latencies.clear();

    let proj = Arc::new(Mutex::new(Recorder::default()));
    let watermark = Arc::new(Mutex::new(Recorder::default()));
    // Positions of the samples the watcher still waits for.
    let waiting: Arc<std::sync::Mutex<Vec<i64>>> = Arc::default();
    let loading = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = tokio::spawn(watch_projection(
        pool.clone(),
        waiting.clone(),
        loading.clone(),
        proj.clone(),
        watermark.clone(),
    ));
    let commands = Arc::new(Mutex::new(Recorder::default()));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n: u64 = 0;
    let mut tasks = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        n += 1;
        let (service, run) = (service.clone(), run.clone());
        let (commands, waiting) = (commands.clone(), waiting.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"tenant_id": format!("lat{run}"), "project_id": format!("p{}", n as usize % BUDGETS), "task_id": format!("t{n}"), "model": "m", "estimated_tokens": 1});
            let Some(answer) = timed_request(&service, "request", &body, &commands).await else {
                return;
            };
            let Some(position) = answer["position"].as_i64() else {
                commands.lock().await.errors += 1;
                return;
            };
            if commit {
                let body = json!({"reservation_id": answer["reservation_id"], "actual_tokens": 1});
                if timed_request(&service, "commit", &body, &commands).await.is_none() {
                    return;
                }
            }
            if !n.is_multiple_of(10) {
                return;
            }
            waiting.lock().unwrap().push(position);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();
    loading.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(30), watcher).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    collector.abort();
    let commands = std::mem::take(&mut *commands.lock().await).summary(elapsed);
    let js = std::mem::take(&mut *js_latencies.lock().await).summary(elapsed);
    let proj = std::mem::take(&mut *proj.lock().await).summary(elapsed);
    let watermark = std::mem::take(&mut *watermark.lock().await).summary(elapsed);
    println!(
        "{}",
        json!({
            "ops": commands["ops"], "rate": commands["rate"], "errors": commands["errors"],
            "cmd_p50_ms": commands["p50_ms"], "cmd_p99_ms": commands["p99_ms"],
            "js_p50_ms": js["p50_ms"], "js_p99_ms": js["p99_ms"], "js_samples": js["ops"],
            "proj_p50_ms": proj["p50_ms"], "proj_p99_ms": proj["p99_ms"], "proj_samples": proj["ops"],
            "wm_p50_ms": watermark["p50_ms"], "wm_p99_ms": watermark["p99_ms"], "wm_samples": watermark["ops"],
        })
    );
}

/// Sends one budget command and records its latency; `None` (and an error counted) when no
/// answer came within 10 s or the answer is not JSON.
async fn timed_request(
    service: &bench::Service,
    verb: &str,
    body: &Value,
    commands: &Mutex<Recorder>,
) -> Option<Value> {
    let sent = Instant::now();
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        service.client.request(
            service.subject("budget", verb),
            serde_json::to_vec(body).unwrap().into(),
        ),
    )
    .await;
    let Ok(Ok(reply)) = reply else {
        commands.lock().await.errors += 1;
        return None;
    };
    commands.lock().await.latencies.push(sent.elapsed());
    let answer = serde_json::from_slice::<Value>(&reply.payload).ok();
    if answer.is_none() {
        commands.lock().await.errors += 1;
    }
    answer
}

/// Every millisecond, one query for all waiting samples: those applied to the read model
/// are recorded and dropped. Ends when the load is over and nothing waits any more.
async fn watch_projection(
    pool: sqlx::PgPool,
    waiting: Arc<std::sync::Mutex<Vec<i64>>>,
    loading: Arc<std::sync::atomic::AtomicBool>,
    proj: Arc<Mutex<Recorder>>,
    watermark: Arc<Mutex<Recorder>>,
) {
    // Samples whose aggregate has them, still waiting for the watermark.
    let mut behind_watermark: std::collections::HashSet<i64> = Default::default();
    loop {
        let mut positions = waiting.lock().unwrap().clone();
        positions.extend(behind_watermark.iter().copied());
        if positions.is_empty() {
            if !loading.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
        } else {
            let applied: Vec<(i64, DateTime<Utc>, bool)> = sqlx::query_as(
                "SELECT e.global_position, e.recorded_at,
                        COALESCE((e.transaction_id, e.global_position)
                                 <= (c.watermark_tx, c.watermark_position), false)
                   FROM events e
                   JOIN projection_versions v
                     ON v.aggregate_type = e.aggregate_type AND v.aggregate_id = e.aggregate_id
                   LEFT JOIN projection_checkpoints c ON c.name = 'read_models'
                  WHERE e.global_position = ANY($1) AND v.version >= e.sequence",
            )
            .bind(&positions)
            .fetch_all(&pool)
            .await
            .expect("read the projection's progress");
            if !applied.is_empty() {
                let mut recorder = proj.lock().await;
                let mut covered = watermark.lock().await;
                let mut done = std::collections::HashSet::new();
                for (position, recorded_at, under_watermark) in &applied {
                    if !behind_watermark.contains(position) {
                        recorder.latencies.push(ms_since(*recorded_at));
                        done.insert(*position);
                    }
                    if *under_watermark {
                        covered.latencies.push(ms_since(*recorded_at));
                        behind_watermark.remove(position);
                    } else {
                        behind_watermark.insert(*position);
                    }
                }
                waiting.lock().unwrap().retain(|p| !done.contains(p));
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
