//! The audit report of every run, published on NATS (`<prefix>.audit.sandbox`) for the control
//! plane to keep. Best effort by design: a run never waits for, or fails because of, NATS. Each
//! report is also logged (target `audit`), so nothing is lost silently when NATS is away.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Reports waiting for NATS; past this, new ones are dropped (and counted).
const BACKLOG: usize = 1024;

/// One run, as the control plane records it.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent {
    pub event_type: &'static str,
    pub event_version: u32,
    /// Unique per report; also the `Nats-Msg-Id`, so JetStream drops duplicates.
    pub id: String,
    pub at: String,
    /// The token's subject (username) and role.
    pub who: String,
    pub role: String,
    pub language: String,
    pub code_sha256: String,
    pub code_bytes: usize,
    /// Only when `SANDBOX_AUDIT_INCLUDE_CODE=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub duration_ms: u64,
    /// `None` when the run failed in the engine before the program ended.
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub truncated: bool,
    /// `ok`, `exit_nonzero`, `timeout`, `oom` or `error`.
    pub outcome: &'static str,
    pub instance: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hands reports to a background publisher; never blocks.
pub struct Auditor {
    tx: Option<mpsc::Sender<AuditEvent>>,
    pub include_code: bool,
    metrics: Arc<Metrics>,
}

impl Auditor {
    /// Starts the publisher when `nats_url` is set; connecting happens in the background.
    pub fn start(
        nats_url: Option<&str>,
        nats_creds: Option<std::path::PathBuf>,
        prefix: &str,
        include_code: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        let Some(url) = nats_url else {
            tracing::warn!("NATS_URL is not set: sandbox audit reports are only logged");
            return Auditor {
                tx: None,
                include_code,
                metrics,
            };
        };
        let (tx, rx) = mpsc::channel(BACKLOG);
        let subject = natsauth::subjects::sandbox_reports(prefix);
        tokio::spawn(publish(
            url.to_string(),
            nats_creds,
            subject,
            rx,
            metrics.clone(),
        ));
        Auditor {
            tx: Some(tx),
            include_code,
            metrics,
        }
    }

    pub fn record(&self, event: AuditEvent) {
        tracing::info!(
            target: "audit",
            who = %event.who,
            language = %event.language,
            code_sha256 = %event.code_sha256,
            duration_ms = event.duration_ms,
            exit_code = ?event.exit_code,
            outcome = event.outcome,
            "sandbox run"
        );
        match &self.tx {
            Some(tx) => {
                if tx.try_send(event).is_err() {
                    self.metrics.audit_dropped.inc();
                    tracing::warn!("audit backlog full: report dropped (NATS slow or away)");
                }
            }
            None => self.metrics.audit_dropped.inc(),
        }
    }
}

async fn publish(
    url: String,
    creds: Option<std::path::PathBuf>,
    subject: String,
    mut rx: mpsc::Receiver<AuditEvent>,
    metrics: Arc<Metrics>,
) {
    // The sandbox's own identity: the only one NATS lets publish reports.
    let options = match &creds {
        None => Ok(async_nats::ConnectOptions::new()),
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| format!("NATS_CREDS {}: {e}", path.display())),
    };
    let options = match options {
        Ok(options) => options,
        Err(error) => {
            tracing::error!(%error, "sandbox audit reports are only logged");
            while rx.recv().await.is_some() {
                metrics.audit_dropped.inc();
            }
            return;
        }
    };
    // retry_on_initial_connect: connect() returns at once and the client keeps trying, so the
    // service starts (and runs code) while NATS is down.
    let options = options
        .name("golden-arch-sandbox")
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect();
    let client = match async_nats::connect_with_options(url.as_str(), options).await {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "NATS unusable: sandbox audit reports are only logged");
            while rx.recv().await.is_some() {
                metrics.audit_dropped.inc();
            }
            return;
        }
    };
    while let Some(event) = rx.recv().await {
        let payload = match serde_json::to_vec(&event) {
            Ok(p) => p,
            Err(_) => continue,
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        let sent = tokio::time::timeout(
            Duration::from_secs(5),
            client.publish_with_headers(subject.clone(), headers, payload.into()),
        )
        .await;
        match sent {
            Ok(Ok(())) => metrics.audit_published.inc(),
            Ok(Err(e)) => {
                metrics.audit_dropped.inc();
                tracing::warn!(error = %e, "audit publish failed");
            }
            Err(_) => {
                metrics.audit_dropped.inc();
                tracing::warn!("audit publish timed out (NATS unreachable?)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
