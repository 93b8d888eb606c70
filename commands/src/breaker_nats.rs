//! The circuit-breaker NATS API: `<prefix>.cmd.<service>.breaker.record`, `.check` and `.status` in
//! the `controlplane` queue group, answered like the budget commands (every request gets a
//! reply, errors as `{"error":{"code","message","field"?}}`).
//!
//! It also keeps the checks of every process current: a process that changed a breaker
//! announces its name on `<prefix>.breaker.changed` (core NATS, every process receives it),
//! and the others read that breaker's new events before their next check. An announcement
//! lost while NATS is away is covered by the check cache's maximum age.

use std::sync::Arc;

use async_nats::{Client, Message};
use domain::breaker::{validate_breaker_name, BreakerState};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::{parse, MAX_COMMAND_BYTES};
use crate::arrival_order::leave_line;
use crate::breaker::{BreakerService, CheckAnswer};
use crate::breaker_api::NameRequest;
use crate::request_server::{serve_requests, Requests, Senders};
use crate::CommandError;

/// Requests handled at once per process; more wait in the subscription buffer.
const MAX_IN_FLIGHT: usize = 512;

struct BreakerRequests(Arc<BreakerService>, Arc<Senders>);

impl Requests for BreakerRequests {
    /// Most checks are answered from the cache right where they arrive: no task, no wait.
    fn quick(&self, message: &Message) -> Option<Vec<u8>> {
        quick_check(&self.0, &self.1, message).map(|answer| check_reply(answer).to_vec())
    }

    async fn answer(&self, message: &Message) -> Result<Vec<u8>, CommandError> {
        dispatch(&self.0, &self.1, message).await
    }
}

/// Serves breaker commands until `shutdown` (then answers what it took, and returns).
pub async fn serve_breaker_commands(
    client: Client,
    senders: Arc<Senders>,
    service: Arc<BreakerService>,
    shutdown: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    let subject = senders.listener_subject("breaker");
    let area = Arc::new(BreakerRequests(service, senders));
    serve_requests(client, subject, MAX_IN_FLIGHT, area, shutdown).await
}

/// A well-formed check from a known sender whose answer is cached and fresh; anything
/// else (bad input and unknown senders included, for their error replies) takes the full
/// path.
fn quick_check(
    service: &BreakerService,
    senders: &Senders,
    message: &Message,
) -> Option<CheckAnswer> {
    if !message.subject.ends_with(".check") || message.payload.len() > MAX_COMMAND_BYTES {
        return None;
    }
    senders.cached_verb_and_actor(message)?;
    let request: NameRequest = serde_json::from_slice(&message.payload).ok()?;
    validate_breaker_name(&request.name).ok()?;
    service.try_check_cached(&request.name)
}

/// The check reply as `api_check` serialises it, without building JSON each time.
fn check_reply(answer: CheckAnswer) -> &'static [u8] {
    use BreakerState::*;
    match (answer.allowed, answer.state, answer.trial) {
        (true, Closed, false) => br#"{"allowed":true,"state":"CLOSED"}"#,
        (true, Disabled, false) => br#"{"allowed":true,"state":"DISABLED"}"#,
        (false, Open, false) => br#"{"allowed":false,"state":"OPEN"}"#,
        (false, HalfOpen, false) => br#"{"allowed":false,"state":"HALF_OPEN"}"#,
        (false, ForcedOpen, false) => br#"{"allowed":false,"state":"FORCED_OPEN"}"#,
        (true, HalfOpen, true) => br#"{"allowed":true,"state":"HALF_OPEN","trial":true}"#,
        // Not produced by a cached check; kept total for safety.
        _ => br#"{"error":{"code":"internal","message":"internal error"}}"#,
    }
}

fn to_bytes<T: Serialize>(value: T) -> Result<Vec<u8>, CommandError> {
    serde_json::to_vec(&value).map_err(|e| CommandError::Internal(Box::new(e)))
}

async fn dispatch(
    service: &BreakerService,
    senders: &Senders,
    message: &Message,
) -> Result<Vec<u8>, CommandError> {
    let (verb, actor) = senders.verb_and_actor(message, MAX_COMMAND_BYTES).await?;
    let payload = &message.payload;
    match verb {
        "check" => to_bytes(service.api_check(parse(payload)?, &actor).await?),
        "record" => to_bytes(service.api_record(parse(payload)?, &actor).await?),
        "status" => {
            leave_line();
            to_bytes(service.api_status(parse(payload)?).await?)
        }
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
    let mut helpers = AbortOnDrop(Vec::new());
    {
        let client = client.clone();
        let subject = subject.clone();
        let origin = origin.clone();
        helpers.0.push(tokio::spawn(async move {
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
        }));
    }
    {
        // Announcements published while this connection was down are lost: when it comes
        // back, every cached breaker is read again before its next check.
        let (client, service) = (client.clone(), service.clone());
        helpers.0.push(tokio::spawn(async move {
            let mut was_down = false;
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let up = client.connection_state() == async_nats::connection::State::Connected;
                if !up {
                    was_down = true;
                } else if was_down {
                    was_down = false;
                    service.invalidate_all();
                    tracing::info!("NATS reconnected: breaker caches will be re-read");
                }
            }
        }));
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

/// Stops the helper tasks when the listener stops (or its task is aborted).
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
