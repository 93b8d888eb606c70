//! One NATS request server for every command area (budgets, breakers, dead letters):
//! subscribe in the queue group, bound the requests in flight, answer each one in a task
//! (one sender's commands still reach their aggregates in arrival order, [`arrival_order`]),
//! and on shutdown stop taking requests while answering every one already taken.
//! The areas only say how a request is answered ([`Requests`]).
//!
//! [`arrival_order`]: crate::arrival_order

use std::future::Future;
use std::sync::Arc;

use async_nats::{Client, Message};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::arrival_order::{in_line, Lines};
use crate::services::ServiceDirectory;
use crate::store::Actor;
use crate::CommandError;

/// The queue group every control-plane process joins.
pub const QUEUE_GROUP: &str = "controlplane";
/// The error body, as over HTTP: `{"error":{"code","message","field"?}}`.
pub fn error_body(error: &CommandError) -> serde_json::Value {
    let mut body = json!({"code": error.code(), "message": error.public_message()});
    if let Some(field) = error.field() {
        body["field"] = json!(field);
    }
    json!({ "error": body })
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

/// How one command area answers its NATS requests.
pub trait Requests: Send + Sync + 'static {
    /// An answer that needs neither a task nor a wait (the breaker's cached checks), or
    /// `None` to take the full path.
    fn quick(&self, _message: &Message) -> Option<Vec<u8>> {
        None
    }

    /// The answer's body, or the error to send as `{"error":{…}}`.
    fn answer(
        &self,
        message: &Message,
    ) -> impl Future<Output = Result<Vec<u8>, CommandError>> + Send;
}

/// Serves `subject` in the queue group until `shutdown`, with at most `max_in_flight`
/// requests answered at once (more wait in the subscription's buffer).
///
/// On shutdown the subscription is drained: the server sends the group's next requests to
/// the other processes, the ones already delivered here are still answered, and this
/// returns once every answer is sent. (The drain ends at the server's PONG to the PING
/// after the UNSUB, so requests still on the wire arrive first: async-nats is patched for
/// it, vendor/README.md.)
pub async fn serve_requests<R: Requests>(
    client: Client,
    subject: String,
    max_in_flight: usize,
    area: Arc<R>,
    shutdown: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    let mut subscription = client
        .queue_subscribe(subject.clone(), QUEUE_GROUP.to_string())
        .await?;
    tracing::info!(%subject, "listening for NATS commands");
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let mut lines = Lines::default();
    let mut draining = false;
    loop {
        let message = tokio::select! {
            message = subscription.next() => message,
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                if let Err(error) = subscription.drain().await {
                    tracing::warn!(%subject, %error, "could not drain the NATS subscription");
                    break;
                }
                continue;
            }
        };
        let Some(message) = message else { break };
        if let (Some(answer), Some(reply_to)) = (area.quick(&message), &message.reply) {
            if let Err(error) = client.publish(reply_to.clone(), answer.into()).await {
                tracing::warn!(%error, "could not send a NATS reply");
            }
            continue;
        }
        if !expects_reply(&message) {
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (client, area) = (client.clone(), area.clone());
        let turn = lines.take_turn(&message.subject);
        tokio::spawn(async move {
            let outcome = in_line(turn, area.answer(&message)).await;
            send_reply(&client, &message, outcome).await;
            drop(permit);
        });
    }
    // Every request taken is answered before this returns.
    let _ = permits.acquire_many(max_in_flight as u32).await;
    tracing::info!(%subject, "NATS command listener stopped");
    Ok(())
}

/// Who may send commands: the subject prefix (the sender is the token after
/// `<prefix>.cmd.`, which only that service may publish on) and the registered services.
pub struct Senders {
    pub prefix: String,
    pub directory: Arc<ServiceDirectory>,
}

impl Senders {
    /// The subject one area listens on: `<prefix>.cmd.*.<area>.*`.
    pub fn listener_subject(&self, area: &str) -> String {
        natsauth::subjects::area_listener(&self.prefix, area)
    }

    /// The verb and the sending service of a command subject.
    fn sender_and_verb<'a>(
        &self,
        message: &'a Message,
    ) -> Result<(&'a str, &'a str), CommandError> {
        natsauth::subjects::sender_and_verb(&self.prefix, &message.subject).ok_or_else(|| {
            CommandError::NotFound(format!(
                "'{}' is not a command subject ({}.cmd.<service>.<area>.<verb>)",
                message.subject, self.prefix
            ))
        })
    }

    /// The verb and the actor of a cached sender, without a wait (`None`: not cached, or
    /// not a command subject).
    pub fn cached_verb_and_actor<'a>(&self, message: &'a Message) -> Option<(&'a str, Actor)> {
        let (service, verb) = self.sender_and_verb(message).ok()?;
        let actor = self.directory.cached_actor(service)?.ok()?;
        Some((verb, actor))
    }

    /// The verb of a command (`request` of `<prefix>.cmd.billing.budget.request`) and who
    /// sent it: the service the subject names, with its registered tenants. A `Cp-Service`
    /// header is ignored: the subject is what NATS vouches for. A body larger than
    /// `max_bytes` is refused, naming the limit.
    pub async fn verb_and_actor<'a>(
        &self,
        message: &'a Message,
        max_bytes: usize,
    ) -> Result<(&'a str, Actor), CommandError> {
        if message.payload.len() > max_bytes {
            return Err(CommandError::invalid(
                "body",
                format!("must be at most {max_bytes} bytes"),
            ));
        }
        let (service, verb) = self.sender_and_verb(message)?;
        Ok((verb, self.directory.actor(service).await?))
    }
}
