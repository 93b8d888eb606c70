//! The dead-letter NATS API: `<prefix>.cmd.dlq.capture` in the `controlplane` queue group,
//! answered like the other commands (every request gets a reply, errors as
//! `{"error":{"code","message","field"?}}`), so a service can hand over a message it gave up
//! on and know it was kept.

use std::sync::Arc;

use async_nats::{Client, Message};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::api::parse_limited;
use crate::dlq::DlqService;
use crate::dlq_api::MAX_CAPTURE_BYTES;
use crate::nats::{expects_reply, json_bytes, send_reply, QUEUE_GROUP};
use crate::store::Actor;
use crate::CommandError;

/// Requests handled at once per process (captures can be large).
const MAX_IN_FLIGHT: usize = 64;

/// Subscribes and serves dead-letter commands until the subscription ends.
pub async fn serve_dlq_commands(
    client: Client,
    prefix: String,
    service: Arc<DlqService>,
) -> Result<(), async_nats::SubscribeError> {
    let subject = format!("{prefix}.cmd.dlq.*");
    let mut subscription = client
        .queue_subscribe(subject.clone(), QUEUE_GROUP.to_string())
        .await?;
    tracing::info!(%subject, "listening for NATS dead-letter commands");
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

async fn handle(client: &Client, service: &DlqService, message: Message) {
    if !expects_reply(&message) {
        return;
    }
    let outcome = dispatch(service, &message).await;
    send_reply(client, &message, outcome.map(|body| json_bytes(&body))).await;
}

async fn dispatch(
    service: &DlqService,
    message: &Message,
) -> Result<serde_json::Value, CommandError> {
    let verb = message.subject.rsplit('.').next().unwrap_or_default();
    let service_name = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Cp-Service"))
        .map(|v| v.as_str().to_string())
        .unwrap_or_else(|| "nats".to_string());
    let actor = Actor::new(service_name, "nats");
    match verb {
        "capture" => {
            let request = parse_limited(&message.payload, MAX_CAPTURE_BYTES)?;
            let answer = service.api_capture(request, &actor).await?;
            serde_json::to_value(answer).map_err(|e| CommandError::Internal(Box::new(e)))
        }
        other => Err(CommandError::NotFound(format!(
            "unknown dead-letter command '{other}' (expected capture)"
        ))),
    }
}
