//! Prometheus metrics of one service instance, in a registry of its own (so several instances
//! can live in one test process).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Finished runs by language and outcome (`ok`, `exit_nonzero`, `timeout`, `oom`, `error`).
    pub executions: IntCounterVec,
    pub execution_seconds: HistogramVec,
    /// Requests refused before running, by error code (`queue_full`, `unknown_language`, ...).
    pub rejected: IntCounterVec,
    pub running: IntGauge,
    pub waiting: IntGauge,
    pub truncated: IntCounter,
    pub leftovers_removed: IntCounter,
    pub audit_published: IntCounter,
    pub audit_dropped: IntCounter,
    pub http_requests: IntCounterVec,
    pub http_seconds: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let executions = IntCounterVec::new(
            Opts::new(
                "sandbox_executions_total",
                "Finished runs by language and outcome",
            ),
            &["language", "outcome"],
        )
        .expect("metric");
        let execution_seconds = HistogramVec::new(
            HistogramOpts::new(
                "sandbox_execution_duration_seconds",
                "Wall-clock time of a run, container start to exit",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
            &["language"],
        )
        .expect("metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "sandbox_rejected_total",
                "Requests refused before running, by error code",
            ),
            &["code"],
        )
        .expect("metric");
        let running = IntGauge::new("sandbox_running", "Runs holding a runner").expect("metric");
        let waiting =
            IntGauge::new("sandbox_queued", "Requests waiting for a runner").expect("metric");
        let truncated = IntCounter::new(
            "sandbox_output_truncated_total",
            "Runs whose output was cut at the per-stream cap",
        )
        .expect("metric");
        let leftovers_removed = IntCounter::new(
            "sandbox_leftover_containers_removed_total",
            "Containers of this instance removed by the start-up or periodic sweep",
        )
        .expect("metric");
        let audit_published = IntCounter::new(
            "sandbox_audit_published_total",
            "Audit reports handed to NATS",
        )
        .expect("metric");
        let audit_dropped = IntCounter::new(
            "sandbox_audit_dropped_total",
            "Audit reports not sent (NATS not configured, unreachable or backlogged)",
        )
        .expect("metric");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "sandbox_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "endpoint", "status"],
        )
        .expect("metric");
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "sandbox_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["endpoint"],
        )
        .expect("metric");
        for collector in [
            Box::new(executions.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(execution_seconds.clone()),
            Box::new(rejected.clone()),
            Box::new(running.clone()),
            Box::new(waiting.clone()),
            Box::new(truncated.clone()),
            Box::new(leftovers_removed.clone()),
            Box::new(audit_published.clone()),
            Box::new(audit_dropped.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_seconds.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        Metrics {
            registry,
            executions,
            execution_seconds,
            rejected,
            running,
            waiting,
            truncated,
            leftovers_removed,
            audit_published,
            audit_dropped,
            http_requests,
            http_seconds,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding never fails");
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
