//! Breaker checks per second through NATS request/reply, next to a plain NATS echo.
//!
//! - `breaker_check_load echo-server <nats_url> <subject>`: answers every request on
//!   `subject` with its own payload (the baseline responder, one process like the
//!   control plane).
//! - `breaker_check_load echo <nats_url> <subject> <clients> <seconds>`
//! - `breaker_check_load check <nats_url> <prefix> <names> <clients> <seconds>`: checks on
//!   `<prefix>.cmd.<service>.breaker.check` (as the bench service, BENCH_NATS_CREDS), spread
//!   over `names` breakers `bench0..`.
//!
//! The load modes print one JSON line: ops, rate, p50_ms, p99_ms, errors (and `allowed`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::Recorder;
use futures::StreamExt;
use serde_json::Value;

/// Connections the clients share, as several service processes would have.
const CONNECTIONS: usize = 4;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("echo-server") if args.len() == 4 => echo_server(&args[2], &args[3]).await,
        Some("echo") if args.len() == 6 => {
            let (clients, seconds) = (args[4].parse().unwrap(), args[5].parse().unwrap());
            let subject = args[3].clone();
            let connect = |url: String| async move { bench::admin_connection(&url).await };
            run(&args[2], connect, clients, seconds, move |_, _| {
                (subject.clone(), b"{\"name\":\"bench0\"}".to_vec())
            })
            .await
        }
        Some("check") if args.len() == 7 => {
            let names: usize = args[4].parse().unwrap();
            let (clients, seconds) = (args[5].parse().unwrap(), args[6].parse().unwrap());
            let prefix = args[3].clone();
            let service = bench::Service::connect(&args[2], &prefix).await;
            let subject = service.subject("breaker", "check");
            let connect = move |url: String| {
                let prefix = prefix.clone();
                async move { bench::Service::connect(&url, &prefix).await.client }
            };
            run(&args[2], connect, clients, seconds, move |c, n| {
                let name = (c * 7919 + n * 104_729) % names;
                (
                    subject.clone(),
                    format!("{{\"name\":\"bench{name}\"}}").into_bytes(),
                )
            })
            .await
        }
        _ => {
            eprintln!(
                "usage: breaker_check_load echo-server <nats> <subject>\n       \
                 breaker_check_load echo <nats> <subject> <clients> <seconds>\n       \
                 breaker_check_load check <nats> <prefix> <names> <clients> <seconds>"
            );
            std::process::exit(2);
        }
    }
}

async fn echo_server(url: &str, subject: &str) {
    let client = bench::admin_connection(url).await;
    let mut subscription = client
        .subscribe(subject.to_string())
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    println!("echo ready");
    while let Some(message) = subscription.next().await {
        if let Some(reply) = message.reply {
            let _ = client.publish(reply, message.payload).await;
        }
    }
}

async fn run<C, F>(
    url: &str,
    connect: C,
    clients: usize,
    seconds: u64,
    request: impl Fn(usize, usize) -> (String, Vec<u8>) + Send + Sync + 'static,
) where
    C: Fn(String) -> F,
    F: std::future::Future<Output = async_nats::Client>,
{
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        connections.push(connect(url.to_string()).await);
    }
    let request = Arc::new(request);
    let allowed = Arc::new(AtomicU64::new(0));
    // A short warm-up so connections and caches are in place before timing.
    let warm_until = Instant::now() + Duration::from_millis(500);
    let deadline = warm_until + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let nats = connections[c % connections.len()].clone();
        let (request, allowed) = (request.clone(), allowed.clone());
        tasks.push(tokio::spawn(async move {
            let mut recorder = Recorder::default();
            let mut n = 0;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                n += 1;
                let (subject, body) = request(c, n);
                let sent = Instant::now();
                let answer = nats.request(subject, body.into()).await;
                if sent < warm_until {
                    continue;
                }
                match answer {
                    Ok(reply) => {
                        recorder.latencies.push(sent.elapsed());
                        let answer: Value =
                            serde_json::from_slice(&reply.payload).unwrap_or(Value::Null);
                        if answer.get("error").is_some() || answer.is_null() {
                            recorder.errors += 1;
                        } else if answer["allowed"] == true {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => recorder.errors += 1,
                }
            }
            recorder
        }));
    }
    let mut total = Recorder::default();
    for task in tasks {
        total.merge(task.await.expect("a client task"));
    }
    let mut summary = total.summary(Duration::from_secs(seconds));
    summary["allowed"] = allowed.load(Ordering::Relaxed).into();
    println!("{summary}");
}
