//! Open-loop HTTP load at a fixed rate: requests are sent on schedule whether or not
//! earlier ones have answered, and each latency is measured from its scheduled start, so
//! a stall shows up in the percentiles instead of silently lowering the rate.
//!
//! `http_load <base_url> <token> <mode> <rate_per_s> <seconds>` with mode
//! - `healthz`: `GET /healthz` only (the baseline: routing, middleware, no database);
//! - `mixed`: per 10 requests, 5 `GET /budget/state`, 1 `GET /circuit-breakers`,
//!   4 `POST /budget/request` (a new task each, over 100 budgets `bench`/`p0..p99`);
//! - `reads`, `breakers`, `reservations`: one kind of the mix alone, to measure what each
//!   costs (for profiling; `run.sh` does not use them).
//!
//! Prints one JSON line: ops, rate, p50_ms, p95_ms, p99_ms, max_ms, errors (non-2xx or
//! transport), server_errors (5xx), and per-kind counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

const BUDGETS: usize = 100;

#[derive(Default)]
struct Results {
    latencies: Vec<Duration>,
    /// The same latencies by kind: reads, reservations, breaker lists.
    by_kind: [Vec<Duration>; 3],
    errors: u64,
    server_errors: u64,
    reads: u64,
    reservations: u64,
    breaker_lists: u64,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!(
            "usage: http_load <base_url> <token> healthz|mixed|reads|breakers|reservations <rate_per_s> <seconds>"
        );
        std::process::exit(2);
    }
    let (base, token, mode) = (args[1].clone(), args[2].clone(), args[3].clone());
    let rate: u64 = args[4].parse().expect("rate");
    let seconds: u64 = args[5].parse().expect("seconds");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let results = Arc::new(Mutex::new(Results::default()));
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, results, base, token, mode, run_id) = (
            client.clone(),
            results.clone(),
            base.clone(),
            token.clone(),
            mode.clone(),
            run_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let budget = (n as usize * 7919) % BUDGETS;
            let slot = match mode.as_str() {
                "reads" => 0,
                "breakers" => 5,
                "reservations" => 6,
                _ => n % 10,
            };
            let (kind, request): (usize, _) = match (mode.as_str(), slot) {
                ("healthz", _) => (0, client.get(format!("{base}/healthz"))),
                (_, 0..=4) => (
                    0,
                    client.get(format!(
                        "{base}/budget/state?tenant_id=bench&project_id=p{budget}"
                    )),
                ),
                (_, 5) => (2, client.get(format!("{base}/circuit-breakers"))),
                _ => (
                    1,
                    client
                        .post(format!("{base}/budget/request"))
                        .json(&serde_json::json!({
                            "tenant_id": "bench", "project_id": format!("p{budget}"),
                            "task_id": format!("{run_id}-{n}"), "model": "gpt-4",
                            "estimated_tokens": 10, "ttl_seconds": 120,
                        })),
                ),
            };
            let answer = request.bearer_auth(&token).send().await;
            let (ok, server_error) = match answer {
                Ok(response) => {
                    let status = response.status();
                    let _ = response.bytes().await;
                    (status.is_success(), status.is_server_error())
                }
                Err(_) => (false, false),
            };
            let latency = due.elapsed();
            let mut results = results.lock().await;
            results.latencies.push(latency);
            results.by_kind[kind].push(latency);
            results.errors += u64::from(!ok);
            results.server_errors += u64::from(server_error);
            match kind {
                0 => results.reads += 1,
                1 => results.reservations += 1,
                _ => results.breaker_lists += 1,
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();
    let mut results = Arc::try_unwrap(results)
        .ok()
        .expect("every task is done")
        .into_inner();
    results.latencies.sort();
    for kind in results.by_kind.iter_mut() {
        kind.sort();
    }
    let of = |l: &[Duration], p: f64| {
        if l.is_empty() {
            return 0.0;
        }
        l[((l.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
    };
    let pct = |p: f64| of(&results.latencies, p);
    let kind = |k: usize| {
        serde_json::json!({
            "p50_ms": of(&results.by_kind[k], 0.5),
            "p95_ms": of(&results.by_kind[k], 0.95),
            "p99_ms": of(&results.by_kind[k], 0.99),
        })
    };
    println!(
        "{}",
        serde_json::json!({
            "ops": results.latencies.len(),
            "rate": results.latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "errors": results.errors, "server_errors": results.server_errors,
            "reads": results.reads, "reservations": results.reservations,
            "breaker_lists": results.breaker_lists,
            "by_kind": {"reads": kind(0), "reservations": kind(1), "breaker_lists": kind(2)},
        })
    );
}
