//! The dead-letter NATS API: `<prefix>.cmd.dlq.capture` in the `controlplane` queue group,
//! answered like the other commands (every request gets a reply, errors as
//! `{"error":{"code","message","field"?}}`), so a service can hand over a message it gave up
//! on and know it was kept.

use std::sync::Arc;

use async_nats::{Client, Message};
use tokio_util::sync::CancellationToken;

use crate::api::parse_limited;
use crate::dlq::DlqService;
use crate::dlq_api::MAX_CAPTURE_BYTES;
use crate::request_server::{json_bytes, serve_requests, verb_and_actor, Requests};
use crate::CommandError;

/// Requests handled at once per process (captures can be large).
const MAX_IN_FLIGHT: usize = 64;

struct DlqRequests(Arc<DlqService>);

impl Requests for DlqRequests {
    async fn answer(&self, message: &Message) -> Result<Vec<u8>, CommandError> {
        dispatch(&self.0, message)
            .await
            .map(|body| json_bytes(&body))
    }
}

/// Serves dead-letter commands until `shutdown` (then answers what it took, and returns).
pub async fn serve_dlq_commands(
    client: Client,
    prefix: String,
    service: Arc<DlqService>,
    shutdown: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    let subject = format!("{prefix}.cmd.dlq.*");
    let area = Arc::new(DlqRequests(service));
    serve_requests(client, subject, MAX_IN_FLIGHT, area, shutdown).await
}

async fn dispatch(
    service: &DlqService,
    message: &Message,
) -> Result<serde_json::Value, CommandError> {
    // The capture's own limit applies to its body (parse_limited below names it).
    let (verb, actor) = verb_and_actor(message, usize::MAX)?;
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
