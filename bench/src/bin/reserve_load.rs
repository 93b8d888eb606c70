//! Reservations per second through NATS request/reply.
//!
//! `reserve_load <nats_url> <subject_prefix> <mode: many|hot> <clients> <seconds> <http_url> <admin_token>`
//! (limits are set over HTTP: setting one needs `admin:budget`, which NATS does not carry)
//! prints one JSON line: ops, rate, p50_ms, p99_ms, errors, approved.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::Recorder;
use serde_json::{json, Value};

const BUDGETS: usize = 1000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 8 {
        eprintln!("usage: reserve_load <nats_url> <prefix> <many|hot> <clients> <seconds> <http_url> <admin_token>");
        std::process::exit(2);
    }
    let (url, prefix, mode) = (&args[1], args[2].clone(), args[3].clone());
    let clients: usize = args[4].parse().expect("clients");
    let seconds: u64 = args[5].parse().expect("seconds");
    let (http_url, token) = (&args[6], &args[7]);
    // A few connections, as several service processes would have.
    let mut connections = Vec::new();
    for _ in 0..4 {
        connections.push(bench::Service::connect(url, &prefix).await);
    }
    let budgets = if mode == "hot" { 1 } else { BUDGETS };
    let run = uuid::Uuid::new_v4().simple().to_string();
    // Limits large enough that every reservation is approved: the approve path is measured.
    bench::set_limits(http_url, token, &format!("bench{run}"), budgets).await;
    let approved = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let nats = connections[c % connections.len()].clone();
        let (run, approved) = (run.clone(), approved.clone());
        tasks.push(tokio::spawn(async move {
            let mut recorder = Recorder::default();
            let mut n: usize = 0;
            while Instant::now() < deadline {
                n += 1;
                let budget = (c * 7919 + n * 104_729) % budgets;
                let body = json!({
                    "tenant_id": format!("bench{run}"), "project_id": format!("p{budget}"),
                    "task_id": format!("c{c}-{n}"), "model": "gpt-4", "estimated_tokens": 100,
                });
                let sent = Instant::now();
                match nats
                    .client
                    .request(nats.subject("budget", "request"), body.to_string().into())
                    .await
                {
                    Ok(reply) => {
                        recorder.latencies.push(sent.elapsed());
                        let answer: Value =
                            serde_json::from_slice(&reply.payload).unwrap_or(Value::Null);
                        if answer["approved"] == true {
                            approved.fetch_add(1, Ordering::Relaxed);
                        } else {
                            recorder.errors += 1;
                        }
                    }
                    Err(_) => recorder.errors += 1,
                }
            }
            recorder
        }));
    }
    let mut all = Recorder::default();
    for task in tasks {
        all.merge(task.await.unwrap());
    }
    let mut summary = all.summary(started.elapsed());
    summary["approved"] = json!(approved.load(Ordering::Relaxed));
    summary["mode"] = json!(mode);
    summary["clients"] = json!(clients);
    println!("{summary}");
}
