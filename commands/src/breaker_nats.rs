//! The circuit-breaker NATS API: `<prefix>.cmd.breaker.record`, `.check` and `.status` in
//! the `controlplane` queue group, answered like the budget commands (every request gets a
//! reply, errors as `{"error":{"code","message","field"?}}`).
//!
//! It also keeps the checks of every process current: a process that changed a breaker
//! announces its name on `<prefix>.breaker.changed` (core NATS, every process receives it),
//! and the others read that breaker's new events before their next check. An announcement
//! lost while NATS is away is covered by the check cache's maximum age.

use std::sync::Arc;

use async_nats::{Client, Message};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::api::{parse, MAX_COMMAND_BYTES};
use crate::breaker::BreakerService;
use crate::nats::{error_body, QUEUE_GROUP};
use crate::store::Actor;
use crate::CommandError;

/// Requests handled at once per process; more wait in the subscription buffer.
const MAX_IN_FLIGHT: usize = 512;

/// Subscribes and serves breaker commands until the subscription ends.
pub async fn serve_breaker_commands(
    client: Client,
    prefix: String,
    service: Arc<BreakerService>,
) -> Result<(), async_nats::SubscribeError> {
    let subject = format!("{prefix}.cmd.breaker.*");
    let mut subscription = client
        .queue_subscribe(subject.clone(), QUEUE_GROUP.to_string())
        .await?;
    tracing::info!(%subject, "listening for NATS breaker commands");
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(message) = subscription.next().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let client = client.clone();
        let service = service.clone();
        tokio::spawn(async move {
            handle(&client, &service, message).await;
            drop(permit);
        });
    }
    Ok(())
}

async fn handle(client: &Client, service: &BreakerService, message: Message) {
    let Some(reply_to) = message.reply.clone() else {
        tracing::warn!(subject = %message.subject, "NATS command without a reply subject ignored");
        return;
    };
    let bytes = match dispatch(service, &message).await {
        Ok(bytes) => bytes,
        Err(error) => {
            if matches!(
                error,
                CommandError::Internal(_) | CommandError::Unavailable(_)
            ) {
                tracing::error!(subject = %message.subject, error = ?error, "NATS command failed");
            }
            serde_json::to_vec(&error_body(&error)).unwrap_or_else(|_| b"{}".to_vec())
        }
    };
    if let Err(error) = client.publish(reply_to, bytes.into()).await {
        tracing::warn!(%error, "could not send a NATS reply");
    }
}

fn to_bytes<T: Serialize>(value: T) -> Result<Vec<u8>, CommandError> {
    serde_json::to_vec(&value).map_err(|e| CommandError::Internal(Box::new(e)))
}

async fn dispatch(service: &BreakerService, message: &Message) -> Result<Vec<u8>, CommandError> {
    if message.payload.len() > MAX_COMMAND_BYTES {
        return Err(CommandError::invalid(
            "body",
            format!("must be at most {MAX_COMMAND_BYTES} bytes"),
        ));
    }
    let verb = message.subject.rsplit('.').next().unwrap_or_default();
    let service_name = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Cp-Service"))
        .map(|v| v.as_str().to_string())
        .unwrap_or_else(|| "nats".to_string());
    let actor = Actor::new(service_name, "nats");
    let payload = &message.payload;
    match verb {
        "check" => to_bytes(service.api_check(parse(payload)?, &actor).await?),
        "record" => to_bytes(service.api_record(parse(payload)?, &actor).await?),
        "status" => to_bytes(service.api_status(parse(payload)?).await?),
        other => Err(CommandError::NotFound(format!(
            "unknown breaker command '{other}' (expected check, record or status)"
        ))),
    }
}

/// A change announcement.
#[derive(Debug, Serialize, Deserialize)]
struct Changed {
    name: String,
    /// The announcing process, so it skips its own announcements.
    origin: String,
}

/// Announces this process's breaker changes and applies the other processes' ones, until
/// the subscription ends.
pub async fn sync_breaker_changes(
    client: Client,
    prefix: String,
    service: Arc<BreakerService>,
) -> Result<(), async_nats::SubscribeError> {
    let subject = format!("{prefix}.breaker.changed");
    let origin = uuid::Uuid::new_v4().to_string();
    let mut subscription = client.subscribe(subject.clone()).await?;
    let mut changes = service.subscribe_changes();
    {
        let client = client.clone();
        let subject = subject.clone();
        let origin = origin.clone();
        tokio::spawn(async move {
            loop {
                let name = match changes.recv().await {
                    Ok(name) => name,
                    // Too many changes at once: the other processes' cache age covers it.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                let body = Changed {
                    name,
                    origin: origin.clone(),
                };
                let Ok(bytes) = serde_json::to_vec(&body) else {
                    continue;
                };
                if let Err(error) = client.publish(subject.clone(), bytes.into()).await {
                    tracing::debug!(%error, "could not announce a breaker change");
                }
            }
        });
    }
    while let Some(message) = subscription.next().await {
        match serde_json::from_slice::<Changed>(&message.payload) {
            Ok(changed) if changed.origin != origin => service.invalidate(&changed.name),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "ignored a malformed breaker announcement"),
        }
    }
    Ok(())
}
