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
