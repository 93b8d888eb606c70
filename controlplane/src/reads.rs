//! Budget reads served from the read models: the glue between the write side's
//! [`BudgetReads`] contract and the projections.

use std::time::Duration;

use commands::api::{BudgetReads, StateRequest, StateResponse, TotalsBody};
use commands::CommandError;
use domain::budget::budget_aggregate_id;
use futures::future::BoxFuture;
use projections::query::{await_min_position, MinPosition};
use sqlx::PgPool;

/// Reads from `read_budgets` / `read_reservations`, waiting for `min_position` first.
pub struct ReadModelReads {
    pub pool: PgPool,
    /// How long a `min_position` read waits before answering `not_yet_applied`.
    pub wait: Duration,
}

impl BudgetReads for ReadModelReads {
    fn state(&self, request: StateRequest) -> BoxFuture<'_, Result<StateResponse, CommandError>> {
        Box::pin(async move {
            domain::validate_id(&request.tenant_id)
                .map_err(|e| CommandError::invalid("tenant_id", e.to_string()))?;
            domain::validate_id(&request.project_id)
                .map_err(|e| CommandError::invalid("project_id", e.to_string()))?;
            match await_min_position(&self.pool, request.min_position, self.wait).await? {
                MinPosition::Ready => {}
                MinPosition::Invalid(why) => {
                    return Err(CommandError::invalid("min_position", why))
                }
                MinPosition::NotYetApplied(position) => {
                    return Err(CommandError::NotYetApplied(position))
                }
            }
            let id = budget_aggregate_id(&request.tenant_id, &request.project_id);
            match projections::query::budget_state(&self.pool, &id).await? {
                Some(state) => Ok(StateResponse {
                    tenant_id: state.tenant_id,
                    project_id: state.project_id,
                    totals: TotalsBody {
                        total: state.total,
                        used: state.used,
                        reserved: state.reserved,
                        available: state.available,
                        open_reservations: state.open_reservations,
                    },
                    read_position: state.read_position,
                }),
                None => Err(CommandError::NotFound(format!(
                    "no budget is set for {}/{}",
                    request.tenant_id, request.project_id
                ))),
            }
        })
    }
}
