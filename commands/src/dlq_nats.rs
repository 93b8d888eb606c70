//! The dead-letter NATS API: `<prefix>.cmd.<service>.dlq.capture` in the `controlplane` queue group,
//! answered like the other commands (every request gets a reply, errors as
//! `{"error":{"code","message","field"?}}`), so a service can hand over a message it gave up
//! on and know it was kept.

use std::sync::Arc;

use async_nats::{Client, Message};
use tokio_util::sync::CancellationToken;

use crate::api::parse_limited;
use crate::dlq::DlqService;
use crate::dlq_api::MAX_CAPTURE_BYTES;
use crate::request_server::{json_bytes, serve_requests, Requests, Senders};
use crate::CommandError;

/// Requests handled at once per process (captures can be large).
const MAX_IN_FLIGHT: usize = 64;

struct DlqRequests(Arc<DlqService>, Arc<Senders>);

impl Requests for DlqRequests {
    async fn answer(&self, message: &Message) -> Result<Vec<u8>, CommandError> {
        dispatch(&self.0, &self.1, message)
            .await
            .map(|body| json_bytes(&body))
    }
}

/// Serves dead-letter commands until `shutdown` (then answers what it took, and returns).
pub async fn serve_dlq_commands(
    client: Client,
    senders: Arc<Senders>,
    service: Arc<DlqService>,
    shutdown: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    let subject = senders.listener_subject("dlq");
    let area = Arc::new(DlqRequests(service, senders));
    serve_requests(client, subject, MAX_IN_FLIGHT, area, shutdown).await
}

async fn dispatch(
    service: &DlqService,
    senders: &Senders,
    message: &Message,
) -> Result<serde_json::Value, CommandError> {
    // The capture's own limit applies to its body (parse_limited below names it).
    let (verb, actor) = senders.verb_and_actor(message, usize::MAX).await?;
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
