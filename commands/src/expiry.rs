//! Releases reservations whose TTL passed without a commit or release, and drops from
//! memory the closed reservations that no command can recall any more
//! ([`BudgetService::forget_old_closings`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::budget::BudgetService;
use crate::store::Actor;

/// Reservations expired per pass; the next pass takes the rest.
const BATCH: i64 = 500;

/// How often the cached budgets are rid of closings no command recalls. Each pass visits
/// every cached budget (at most 100,000), so not on every expiry tick.
const FORGET_INTERVAL: Duration = Duration::from_secs(10);

/// Runs forever, one pass every `interval`. Several processes may run it at once: an
/// expiry is idempotent, so the loser of a race records nothing.
pub async fn run_expiry_worker(service: Arc<BudgetService>, interval: Duration) {
    let actor = Actor::new("expiry-worker", "worker");
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut forgot_at = Instant::now();
    loop {
        ticker.tick().await;
        if let Err(error) = expire_due(&service, &actor).await {
            tracing::warn!(error = ?error, "reservation expiry pass failed; retrying next tick");
        }
        if forgot_at.elapsed() >= FORGET_INTERVAL {
            let forgotten = service.forget_old_closings();
            tracing::debug!(forgotten, "closed reservations dropped from idle budgets");
            forgot_at = Instant::now();
        }
    }
}

/// One pass: expires every due reservation it finds. Returns how many it expired.
pub async fn expire_due(
    service: &BudgetService,
    actor: &Actor,
) -> Result<usize, crate::CommandError> {
    let due = service.due_reservations(BATCH).await?;
    let mut expired = 0;
    for (aggregate_id, reservation_id) in due {
        match service.expire(&aggregate_id, reservation_id, actor).await {
            Ok(crate::executor::Executed {
                reply: domain::budget::BudgetReply::Expired { expired: true, .. },
                ..
            }) => expired += 1,
            Ok(_) => {}
            Err(error) => tracing::warn!(%reservation_id, error = ?error, "could not expire"),
        }
    }
    if expired > 0 {
        tracing::info!(expired, "expired reservations");
    }
    Ok(expired)
}
