//! The NATS command API: core request/reply on `<prefix>.cmd.budget.<verb>` in the queue
//! group `controlplane`, so several processes share the load. Every request gets an
//! answer, including malformed and oversized ones.

use std::sync::Arc;

use async_nats::{Client, Message};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::api::{parse, BudgetReads, MAX_COMMAND_BYTES};
use crate::budget::BudgetService;
use crate::store::Actor;
use crate::CommandError;

/// The queue group every control-plane process joins.
pub const QUEUE_GROUP: &str = "controlplane";
/// Requests handled at once per process; more wait in the subscription buffer.
const MAX_IN_FLIGHT: usize = 512;

/// The error body, as over HTTP: `{"error":{"code","message","field"?}}`.
pub fn error_body(error: &CommandError) -> serde_json::Value {
    let mut body = json!({"code": error.code(), "message": error.public_message()});
    if let Some(field) = error.field() {
        body["field"] = json!(field);
    }
    json!({ "error": body })
}

/// Subscribes and serves budget commands until the subscription ends.
pub async fn serve_budget_commands(
    client: Client,
    prefix: String,
    service: Arc<BudgetService>,
    reads: Arc<dyn BudgetReads>,
) -> Result<(), async_nats::SubscribeError> {
    let subject = format!("{prefix}.cmd.budget.*");
    let mut subscription = client
        .queue_subscribe(subject.clone(), QUEUE_GROUP.to_string())
        .await?;
    tracing::info!(%subject, "listening for NATS budget commands");
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(message) = subscription.next().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let client = client.clone();
        let service = service.clone();
        let reads = reads.clone();
        tokio::spawn(async move {
            handle(&client, &service, reads.as_ref(), message).await;
            drop(permit);
        });
    }
    Ok(())
}

async fn handle(
    client: &Client,
    service: &BudgetService,
    reads: &dyn BudgetReads,
    message: Message,
) {
    if !expects_reply(&message) {
        return;
    }
    let outcome = dispatch(service, reads, &message).await;
    send_reply(client, &message, outcome.map(|body| json_bytes(&body))).await;
}

/// Whether a command message can be answered; one without a reply subject is ignored (and
/// not executed), with a warning.
pub(crate) fn expects_reply(message: &Message) -> bool {
    if message.reply.is_none() {
        tracing::warn!(subject = %message.subject, "NATS command without a reply subject ignored");
        return false;
    }
    true
}

/// Sends a command's answer: its body, or the error as `{"error":{…}}` (server-side
/// failures are logged). Every NATS command listener replies through here.
pub(crate) async fn send_reply(
    client: &Client,
    message: &Message,
    outcome: Result<Vec<u8>, CommandError>,
) {
    let Some(reply_to) = message.reply.clone() else {
        return;
    };
    let bytes = outcome.unwrap_or_else(|error| {
        if matches!(
            error,
            CommandError::Internal(_) | CommandError::Unavailable(_)
        ) {
            tracing::error!(subject = %message.subject, error = ?error, "NATS command failed");
        }
        json_bytes(&error_body(&error))
    });
    if let Err(error) = client.publish(reply_to, bytes.into()).await {
        tracing::warn!(%error, "could not send a NATS reply");
    }
}

/// A JSON reply body.
pub(crate) fn json_bytes(body: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec())
}

fn to_value<T: Serialize>(value: T) -> Result<serde_json::Value, CommandError> {
    serde_json::to_value(value).map_err(|e| CommandError::Internal(Box::new(e)))
}

async fn dispatch(
    service: &BudgetService,
    reads: &dyn BudgetReads,
    message: &Message,
) -> Result<serde_json::Value, CommandError> {
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
        "request" => to_value(service.api_reserve(parse(payload)?, &actor).await?),
        "commit" => to_value(service.api_commit(parse(payload)?, &actor).await?),
        "release" => to_value(service.api_release(parse(payload)?, &actor).await?),
        "state" => to_value(reads.state(parse(payload)?).await?),
        other => Err(CommandError::NotFound(format!(
            "unknown budget command '{other}' (expected request, commit, release or state)"
        ))),
    }
}
