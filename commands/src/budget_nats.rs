//! The NATS command API: core request/reply on `<prefix>.cmd.<service>.budget.<verb>` in the queue
//! group `controlplane`, so several processes share the load. Every request gets an
//! answer, including malformed and oversized ones.

use std::sync::Arc;

use async_nats::{Client, Message};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::api::{parse, BudgetReads, StateRequest, MAX_COMMAND_BYTES};
use crate::arrival_order::leave_line;
use crate::budget::BudgetService;
use crate::request_server::{json_bytes, serve_requests, Requests, Senders};
use crate::CommandError;

/// Requests handled at once per process; more wait in the subscription buffer.
const MAX_IN_FLIGHT: usize = 512;

struct BudgetRequests {
    service: Arc<BudgetService>,
    reads: Arc<dyn BudgetReads>,
    senders: Arc<Senders>,
}

impl Requests for BudgetRequests {
    async fn answer(&self, message: &Message) -> Result<Vec<u8>, CommandError> {
        dispatch(&self.service, self.reads.as_ref(), &self.senders, message)
            .await
            .map(|body| json_bytes(&body))
    }
}

/// Serves budget commands until `shutdown` (then answers what it took, and returns).
pub async fn serve_budget_commands(
    client: Client,
    senders: Arc<Senders>,
    service: Arc<BudgetService>,
    reads: Arc<dyn BudgetReads>,
    shutdown: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    let subject = senders.listener_subject("budget");
    let area = Arc::new(BudgetRequests {
        service,
        reads,
        senders,
    });
    serve_requests(client, subject, MAX_IN_FLIGHT, area, shutdown).await
}

fn to_value<T: Serialize>(value: T) -> Result<serde_json::Value, CommandError> {
    serde_json::to_value(value).map_err(|e| CommandError::Internal(Box::new(e)))
}

async fn dispatch(
    service: &BudgetService,
    reads: &dyn BudgetReads,
    senders: &Senders,
    message: &Message,
) -> Result<serde_json::Value, CommandError> {
    let (verb, actor) = senders.verb_and_actor(message, MAX_COMMAND_BYTES).await?;
    let payload = &message.payload;
    match verb {
        "request" => to_value(service.api_reserve(parse(payload)?, &actor).await?),
        "commit" => to_value(service.api_commit(parse(payload)?, &actor).await?),
        "release" => to_value(service.api_release(parse(payload)?, &actor).await?),
        "state" => {
            leave_line();
            let request: StateRequest = parse(payload)?;
            actor.may_act_on("tenant_id", &request.tenant_id)?;
            to_value(reads.state(request).await?)
        }
        other => Err(CommandError::NotFound(format!(
            "unknown budget command '{other}' (expected request, commit, release or state)"
        ))),
    }
}
