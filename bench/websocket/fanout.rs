//! WebSocket fan-out: commit-to-client latency with many subscribers, and idle connections
//! held with the server's memory per connection.
//!
//! `ws_fanout latency <nats_url> <prefix> <http_url> <token> <clients> <rate/s> <seconds>`
//! `ws_fanout idle <http_url> <token> <connections> <server_pid>`
//! Each prints one JSON line.
//!
//! Latency = arrival at the client − the event's `recorded_at` (its transaction's start;
//! same machine, same clock). The baseline in the same run is one core-NATS subscriber on
//! the events subjects: commit → JetStream, which every WebSocket frame comes after.
//!
//! Every client subscribes to everything with `"batch": true` and reads every frame (one
//! that stopped reading would be cut off and counted). `BENCH_WS_SAMPLED` (50) of them
//! take the latency of every event they receive; the others only count this run's events
//! in each frame, so the client process, on the same two cores as the server, stays cheap.
//! The baseline and the sampling clients run on a runtime (an OS thread) of their own, as
//! if they were separate processes, so their readings do not wait behind the counting
//! clients in one scheduler's queue. The clients are fastwebsockets readers: tungstenite zeroes its read
//! buffer before every read and validates every text frame's UTF-8, two extra passes over
//! 750 MB/s at half the peak; here only the 50 sampling clients validate (they parse).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::Recorder;
use chrono::{DateTime, Utc};
use fastwebsockets::{Frame, OpCode, Payload, WebSocket};
use futures::StreamExt;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use memchr::memmem::Finder;
use serde_json::{json, Value};
use tokio::sync::Mutex;

const BUDGETS: usize = 1000;

fn since(recorded_at: DateTime<Utc>) -> Duration {
    (Utc::now() - recorded_at).to_std().unwrap_or_default()
}

/// The `recorded_at` of an event frame, found without parsing the whole frame (1,000
/// clients share two cores with the server: the client must stay cheap).
fn recorded_at(frame: &str) -> Option<DateTime<Utc>> {
    let start = frame.find("\"recorded_at\":\"")? + "\"recorded_at\":\"".len();
    let end = start + frame[start..].find('"')?;
    frame[start..end].parse().ok()
}

/// The `recorded_at` of every event of this run (`tag`: its aggregate ids' prefix) in an
/// `event` or `events` frame; an event's `recorded_at` follows its `aggregate_id`.
fn recorded_ats<'a>(frame: &'a str, tag: &'a Finder) -> impl Iterator<Item = DateTime<Utc>> + 'a {
    tag.find_iter(frame.as_bytes())
        .filter_map(|at| recorded_at(&frame[at..]))
}

/// What the clients received, counted by all of them.
#[derive(Default)]
struct Received {
    frames: AtomicU64,
    events: AtomicU64,
    bytes: AtomicU64,
}

type Ws = WebSocket<TokioIo<Upgraded>>;

/// Runs hyper's connection task (the HTTP/1 upgrade) on the tokio runtime.
struct Spawn;

impl<F> hyper::rt::Executor<F> for Spawn
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future);
    }
}

async fn connect(http_url: &str, token: &str) -> Result<Ws, String> {
    let authority = http_url.trim_start_matches("http://").trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    let request = hyper::Request::builder()
        .uri(format!("{http_url}/ws"))
        .header("host", authority)
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header(
            "sec-websocket-key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("sec-websocket-version", "13")
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let (ws, _) = fastwebsockets::handshake::client(&Spawn, request, stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Sends one text frame.
async fn send_text(ws: &mut Ws, text: String) {
    ws.write_frame(Frame::text(Payload::Owned(text.into_bytes())))
        .await
        .expect("send a frame");
}

/// The next text frame's payload, `None` once the connection ends. Pings are answered
/// (a pong) by the library as they are read.
async fn next_text(ws: &mut Ws) -> Option<Frame<'static>> {
    loop {
        match ws.read_frame().await {
            Ok(frame) if frame.opcode == OpCode::Text => return Some(frame),
            Ok(frame) if frame.opcode == OpCode::Close => return None,
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

async fn open(http_url: &str, token: &str, topics: Value) -> Ws {
    let mut ws = loop {
        match connect(http_url, token).await {
            Ok(ws) => break ws,
            Err(error) => {
                eprintln!("connect: {error}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let subscribe = json!({"type": "subscribe", "topics": topics, "batch": true});
    send_text(&mut ws, subscribe.to_string()).await;
    while let Some(frame) = next_text(&mut ws).await {
        if memchr::memmem::find(&frame.payload, b"\"subscribed\"").is_some() {
            break;
        }
    }
    ws
}

/// CPU time so far, in clock ticks (100 a second on Linux), of the machine (busy, all
/// cores), of this process, and of the server's threads: its WebSocket fan-out threads
/// (`ws-fanout`) and the rest (commands, pipeline, HTTP).
#[derive(Default, Clone, Copy)]
struct CpuTicks {
    machine: u64,
    clients: u64,
    fanout: u64,
    server_rest: u64,
}

const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime of a `/proc/…/stat` line (fields 14 and 15, after the command's `)`).
fn stat_ticks(stat: &str) -> u64 {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn cpu_ticks(server_pid: Option<&str>) -> CpuTicks {
    let read = |path: String| std::fs::read_to_string(path).unwrap_or_default();
    // The first line of /proc/stat: user nice system idle iowait irq softirq steal …
    let machine = read("/proc/stat".into())
        .lines()
        .next()
        .map(|line| {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            v.iter().take(8).sum::<u64>()
                - v.get(3).copied().unwrap_or(0)
                - v.get(4).copied().unwrap_or(0)
        })
        .unwrap_or(0);
    let mut ticks = CpuTicks {
        machine,
        clients: stat_ticks(&read("/proc/self/stat".into())),
        ..CpuTicks::default()
    };
    if let Some(pid) = server_pid {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let path = task.path();
            let used = stat_ticks(&read(format!("{}/stat", path.display())));
            if read(format!("{}/comm", path.display())).trim() == "ws-fanout" {
                ticks.fanout += used;
            } else {
                ticks.server_rest += used;
            }
        }
    }
    ticks
}

/// Cores used between two readings.
fn cores(before: u64, after: u64, seconds: f64) -> f64 {
    after.saturating_sub(before) as f64 / TICKS_PER_SECOND / seconds
}

async fn latency(args: &[String]) {
    let (nats_url, prefix, http_url, token) = (&args[0], &args[1], &args[2], &args[3]);
    let clients: usize = args[4].parse().expect("clients");
    let rate: f64 = args[5].parse().expect("rate");
    let seconds: u64 = args[6].parse().expect("seconds");
    let run = uuid::Uuid::new_v4().simple().to_string();
    bench::set_limits(http_url, token, &format!("ws{run}"), BUDGETS).await;
    let service = bench::Service::connect(nats_url, prefix).await;

    // The observers (the baseline subscriber and the sampling clients) run on a runtime of
    // their own, one thread beside the two that carry the load and the counting clients:
    // a real client is its own process, and a reading that waited in one scheduler's queue
    // behind 950 counting clients would time the load client, not the server.
    let observers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("observers")
        .enable_all()
        .build()
        .expect("a runtime");

    // Baseline: commit → JetStream for the same events, on a NATS connection of its own.
    let baseline = Arc::new(Mutex::new(Recorder::default()));
    let (subject, url) = (
        format!("{prefix}.events.Budget.ws{run}.>"),
        nats_url.clone(),
    );
    let subscribed = observers
        .spawn(async move {
            let client = bench::admin_connection(&url).await;
            let subscriber = client.subscribe(subject).await.expect("subscribe");
            (client, subscriber)
        })
        .await
        .expect("the baseline subscribes");
    {
        let baseline = baseline.clone();
        observers.spawn(async move {
            let (_client, mut events) = subscribed;
            while let Some(message) = events.next().await {
                if let Some(at) = std::str::from_utf8(&message.payload)
                    .ok()
                    .and_then(recorded_at)
                {
                    baseline.lock().await.latencies.push(since(at));
                }
            }
        });
    }

    // Every client subscribes to everything it may, with batched frames.
    let sampled: usize = std::env::var("BENCH_WS_SAMPLED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        .min(clients);
    let measuring = Arc::new(AtomicBool::new(false));
    let received = Arc::new(Received::default());
    let mut readers = Vec::new();
    let mut recorders = Vec::new();
    let tag = Arc::new(Finder::new(&format!("\"aggregate_id\":\"ws{run}/")).into_owned());
    for client in 0..clients {
        let sample = client < sampled;
        let (url, token) = (http_url.clone(), token.clone());
        let opening = async move {
            let everything = json!(["budget", "dlq", "breakers", "audit", "stats"]);
            open(&url, &token, everything).await
        };
        let runtime = if sample {
            observers.handle().clone()
        } else {
            tokio::runtime::Handle::current()
        };
        let mut ws = runtime.spawn(opening).await.expect("a client connects");
        // Each reader records into its own slot; the slots are read after the readers stop.
        let recorder = Arc::new(std::sync::Mutex::new(Recorder::default()));
        recorders.push(recorder.clone());
        let (measuring, tag, received) = (measuring.clone(), tag.clone(), received.clone());
        readers.push(runtime.spawn(async move {
            // The server does not fragment its messages: each text frame is a whole one.
            while let Some(frame) = next_text(&mut ws).await {
                let bytes: &[u8] = &frame.payload;
                received.frames.fetch_add(1, Ordering::Relaxed);
                received
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                let events = if sample {
                    let text = std::str::from_utf8(bytes).expect("a text frame is UTF-8");
                    let mut at = recorded_ats(text, &tag).peekable();
                    if at.peek().is_some() && measuring.load(Ordering::Relaxed) {
                        let mut recorder = recorder.lock().unwrap();
                        let before = recorder.latencies.len();
                        recorder.latencies.extend(at.map(since));
                        recorder.latencies.len() - before
                    } else {
                        at.count()
                    }
                } else {
                    tag.find_iter(bytes).count()
                };
                received.events.fetch_add(events as u64, Ordering::Relaxed);
            }
            // Closed by the server, or the connection failed.
            recorder.lock().unwrap().errors += 1;
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    baseline.lock().await.latencies.clear();
    measuring.store(true, Ordering::Relaxed);

    // Paced reservations over the 1,000 budgets.
    let commands = Arc::new(Mutex::new(Recorder::default()));
    // CPU of the server (when BENCH_SERVER_PID names it), the clients and the machine
    // over the paced load.
    let server_pid = std::env::var("BENCH_SERVER_PID").ok();
    let cpu_before = cpu_ticks(server_pid.as_deref());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n: u64 = 0;
    let mut tasks = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        n += 1;
        let (service, run, commands) = (service.clone(), run.clone(), commands.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"tenant_id": format!("ws{run}"), "project_id": format!("p{}", n as usize % BUDGETS), "task_id": format!("t{n}"), "model": "m", "estimated_tokens": 1});
            let sent = Instant::now();
            let reply = tokio::time::timeout(
                Duration::from_secs(10),
                service.client.request(
                    service.subject("budget", "request"),
                    serde_json::to_vec(&body).unwrap().into(),
                ),
            )
            .await;
            match reply {
                Ok(Ok(_)) => commands.lock().await.latencies.push(sent.elapsed()),
                _ => commands.lock().await.errors += 1,
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_ticks(server_pid.as_deref());
    let busy =
        |f: fn(&CpuTicks) -> u64| cores(f(&cpu_before), f(&cpu_after), elapsed.as_secs_f64());
    let commands = std::mem::take(&mut *commands.lock().await).summary(elapsed);
    // Every approved reservation is one event for every client. Let the last ones arrive
    // (10 s at most), then stop the readers.
    let expected = commands["ops"].as_u64().unwrap_or(0) * clients as u64;
    let drain = Instant::now() + Duration::from_secs(10);
    while received.events.load(Ordering::Relaxed) < expected && Instant::now() < drain {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for reader in &readers {
        reader.abort();
    }
    let mut clients_recorder = Recorder::default();
    for recorder in recorders {
        clients_recorder.merge(std::mem::take(&mut *recorder.lock().unwrap()));
    }
    let samples = clients_recorder.latencies.len();
    let ws = clients_recorder.summary(elapsed);
    let js = std::mem::take(&mut *baseline.lock().await).summary(elapsed);
    observers.shutdown_background();
    println!(
        "{}",
        json!({
            "clients": clients, "sampled_clients": sampled, "rate": commands["rate"],
            "commands": commands["ops"], "command_errors": commands["errors"],
            "events_expected": expected,
            "events_received": received.events.load(Ordering::Relaxed),
            "frames_received": received.frames.load(Ordering::Relaxed),
            "bytes_received": received.bytes.load(Ordering::Relaxed),
            "latency_samples": samples,
            "ws_p50_ms": ws["p50_ms"], "ws_p99_ms": ws["p99_ms"], "ws_closed": ws["errors"],
            "js_p50_ms": js["p50_ms"], "js_p99_ms": js["p99_ms"],
            "cpu_machine_cores": busy(|t| t.machine), "cpu_clients_cores": busy(|t| t.clients),
            "cpu_fanout_cores": busy(|t| t.fanout), "cpu_server_rest_cores": busy(|t| t.server_rest),
        })
    );
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn idle(args: &[String]) {
    let (http_url, token) = (&args[0], &args[1]);
    let connections: usize = args[2].parse().expect("connections");
    let pid = &args[3];
    let before = rss_kib(pid);
    let mut held = Vec::with_capacity(connections);
    let started = Instant::now();
    // Opened in batches of 100 in parallel: a burst of 10,000 handshakes at once would
    // only measure the accept queue.
    for batch in 0..connections.div_ceil(100) {
        let n = 100.min(connections - batch * 100);
        let opened = futures::future::join_all(
            (0..n).map(|_| open(http_url, token, json!(["budget", "breakers"]))),
        )
        .await;
        held.extend(opened);
    }
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid);
    // Still alive: every connection answers an application ping.
    let mut alive = 0;
    for ws in held.iter_mut().step_by(100) {
        send_text(ws, r#"{"type":"ping"}"#.into()).await;
        while let Some(frame) = next_text(ws).await {
            if memchr::memmem::find(&frame.payload, b"pong").is_some() {
                alive += 1;
                break;
            }
        }
    }
    println!(
        "{}",
        json!({
            "connections": held.len(), "open_seconds": open_seconds,
            "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_connection": (after.saturating_sub(before)) as f64 / held.len() as f64,
            "sampled_alive": alive, "sampled": held.len().div_ceil(100),
        })
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("latency") if args.len() == 9 => latency(&args[2..]).await,
        Some("idle") if args.len() == 6 => idle(&args[2..]).await,
        _ => {
            eprintln!("usage: ws_fanout latency <nats_url> <prefix> <http_url> <token> <clients> <rate> <seconds>\n       ws_fanout idle <http_url> <token> <connections> <server_pid>");
            std::process::exit(2);
        }
    }
}
