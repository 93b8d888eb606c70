//! Shared helpers for the load clients: latency recording and summaries.

use std::time::Duration;

/// Latencies of one run, and what it counts.
#[derive(Default)]
pub struct Recorder {
    pub latencies: Vec<Duration>,
    pub errors: u64,
}

impl Recorder {
    pub fn merge(&mut self, other: Recorder) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
    }

    /// `{"ops","rate","p50_ms","p99_ms","errors"}` for a run that lasted `elapsed`.
    pub fn summary(mut self, elapsed: Duration) -> serde_json::Value {
        self.latencies.sort();
        let pct = |p: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
            self.latencies[i].as_secs_f64() * 1000.0
        };
        serde_json::json!({
            "ops": self.latencies.len(),
            "rate": self.latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "errors": self.errors,
        })
    }
}

/// Sets a limit large enough that every reservation is approved on `budgets` budgets
/// `<tenant>/p0` … `<tenant>/p<budgets-1>` over HTTP (setting a limit needs
/// `admin:budget`, which NATS does not carry).
pub async fn set_limits(http_url: &str, token: &str, tenant: &str, budgets: usize) {
    let http = reqwest::Client::new();
    for b in 0..budgets {
        let body = serde_json::json!({"tenant_id": tenant, "project_id": format!("p{b}"), "total_tokens": 1_000_000_000_000u64});
        let answer: serde_json::Value = http
            .put(format!("{http_url}/budget/limit"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("set limit")
            .json()
            .await
            .expect("a JSON answer");
        assert!(answer.get("error").is_none(), "{answer}");
    }
}

/// A load client's NATS connection as the benchmark's service (the creds file in
/// `BENCH_NATS_CREDS`, which bench/lib.sh makes with `controlplane service add bench`):
/// commands go to `<prefix>.cmd.<service>.<area>.<verb>`, replies under its inbox prefix.
#[derive(Clone)]
pub struct Service {
    pub client: async_nats::Client,
    name: String,
    prefix: String,
}

impl Service {
    pub async fn connect(url: &str, prefix: &str) -> Service {
        let path = std::env::var("BENCH_NATS_CREDS")
            .expect("BENCH_NATS_CREDS names the benchmark service's creds (bench/lib.sh)");
        let creds = std::fs::read_to_string(&path).expect("BENCH_NATS_CREDS is readable");
        let name = natsauth::creds_name(&creds).expect("a creds file");
        let client = async_nats::ConnectOptions::with_credentials(&creds)
            .expect("a creds file")
            .custom_inbox_prefix(natsauth::subjects::inbox_prefix(prefix, &name))
            .connect(url)
            .await
            .expect("connect to NATS");
        Service {
            client,
            name,
            prefix: prefix.to_string(),
        }
    }

    /// Where this service sends `<area>.<verb>`.
    pub fn subject(&self, area: &str, verb: &str) -> String {
        natsauth::subjects::command(&self.prefix, &self.name, area, verb)
    }
}

/// A NATS connection as the administrator (`$NATS_AUTH_DIR/admin.creds`): for observers of
/// the events subjects and the plain-NATS baselines, which no service may use.
pub async fn admin_connection(url: &str) -> async_nats::Client {
    let dir = std::env::var("NATS_AUTH_DIR").expect("NATS_AUTH_DIR is set (scripts/services.sh)");
    async_nats::ConnectOptions::with_credentials_file(
        std::path::Path::new(&dir).join("admin.creds"),
    )
    .await
    .expect("the administrator's creds")
    .connect(url)
    .await
    .expect("connect to NATS")
}
