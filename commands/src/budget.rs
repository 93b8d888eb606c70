//! Budget commands: validation and tenant scope, the reservation → budget index, and the
//! expiry worker's queries. Commands run on the shared [`Executor`] (per-budget queue with
//! group commit, cache, conflict handling, bounds), like every other aggregate's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use domain::budget::{
    budget_aggregate_id, Budget, BudgetCommand, BudgetReply, Totals, CLOSED_RETENTION_SECONDS,
};
use sqlx::Row;
use uuid::Uuid;

use crate::clock::Clock;
use crate::executor::{Decide, Decision, Executed, Executor};
use crate::store::{Actor, EventStore};
use crate::CommandError;

/// Reservation → budget entries remembered before the map is cleared. The map holds the
/// open reservations this process made or looked up: an entry goes when its reservation
/// closes here, so with reservations committed as they end it stays small; abandoned ones
/// stay until they expire. (It held every reservation until the cap before, and the
/// soak's RSS climbed ~20 MiB between two clears, issue 16.)
const RESERVATION_INDEX_CAP: usize = 200_000;

/// How much longer than `CLOSED_RETENTION_SECONDS` a cached budget keeps a closing before
/// [`BudgetService::forget_old_closings`] drops it. A command's `now` is read before it
/// waits in its budget's queue (at most the executor's deadline, 10 s); one decided after
/// the drop still treats what was dropped as forgotten as long as its `now` is less than
/// this much older than the drop's.
pub const FORGET_MARGIN_SECONDS: i64 = 30;

impl Decide for Budget {
    type Reply = BudgetReply;

    fn decide(&self, command: BudgetCommand) -> Decision<Self> {
        Budget::decide(self, command)
    }
}

/// Runs budget commands against the event store.
pub struct BudgetService {
    executor: Executor<Budget>,
    clock: Arc<dyn Clock>,
    reservations: Mutex<HashMap<Uuid, String>>,
}

impl BudgetService {
    pub fn new(store: EventStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            executor: Executor::new(store),
            clock,
            reservations: Mutex::new(HashMap::new()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn store(&self) -> &EventStore {
        self.executor.store()
    }

    async fn execute(
        &self,
        aggregate_id: &str,
        command: BudgetCommand,
        actor: &Actor,
    ) -> Result<Executed<BudgetReply>, CommandError> {
        self.executor.execute(aggregate_id, command, actor).await
    }

    pub async fn set_limit(
        &self,
        tenant_id: String,
        project_id: String,
        total_tokens: u64,
        actor: &Actor,
    ) -> Result<Executed<BudgetReply>, CommandError> {
        domain::validate_id(&tenant_id)
            .map_err(|e| CommandError::invalid("tenant_id", e.to_string()))?;
        domain::validate_id(&project_id)
            .map_err(|e| CommandError::invalid("project_id", e.to_string()))?;
        actor.may_act_on("tenant_id", &tenant_id)?;
        let id = budget_aggregate_id(&tenant_id, &project_id);
        self.execute(
            &id,
            BudgetCommand::SetLimit {
                tenant_id,
                project_id,
                total_tokens,
            },
            actor,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn reserve(
        &self,
        tenant_id: String,
        project_id: String,
        task_id: String,
        model: String,
        estimated_tokens: u64,
        ttl_seconds: u64,
        actor: &Actor,
    ) -> Result<Executed<BudgetReply>, CommandError> {
        domain::validate_id(&tenant_id)
            .map_err(|e| CommandError::invalid("tenant_id", e.to_string()))?;
        domain::validate_id(&project_id)
            .map_err(|e| CommandError::invalid("project_id", e.to_string()))?;
        actor.may_act_on("tenant_id", &tenant_id)?;
        let id = budget_aggregate_id(&tenant_id, &project_id);
        let command = BudgetCommand::ReserveTokens {
            tenant_id,
            project_id,
            reservation_id: Uuid::new_v4(),
            task_id,
            model,
            estimated_tokens,
            ttl_seconds,
            now: self.clock.now(),
        };
        let outcome = self.execute(&id, command, actor).await?;
        if let BudgetReply::Reserved { reservation_id, .. } = &outcome.reply {
            self.remember(*reservation_id, &id);
        }
        Ok(outcome)
    }

    pub async fn commit(
        &self,
        reservation_id: Uuid,
        actual_tokens: u64,
        actor: &Actor,
    ) -> Result<Executed<BudgetReply>, CommandError> {
        let id = self.budget_of(reservation_id, actor).await?;
        let outcome = self
            .execute(
                &id,
                BudgetCommand::CommitUsage {
                    reservation_id,
                    actual_tokens,
                    now: self.clock.now(),
                },
                actor,
            )
            .await?;
        self.closed(reservation_id);
        Ok(outcome)
    }

    pub async fn release(
        &self,
        reservation_id: Uuid,
        actor: &Actor,
    ) -> Result<Executed<BudgetReply>, CommandError> {
        let id = self.budget_of(reservation_id, actor).await?;
        let outcome = self
            .execute(
                &id,
                BudgetCommand::ReleaseReservation {
                    reservation_id,
                    now: self.clock.now(),
                },
                actor,
            )
            .await?;
        self.closed(reservation_id);
        Ok(outcome)
    }

    /// Expires one reservation if it is still open and due.
    pub async fn expire(
        &self,
        aggregate_id: &str,
        reservation_id: Uuid,
        actor: &Actor,
    ) -> Result<Executed<BudgetReply>, CommandError> {
        let command = BudgetCommand::ExpireReservation {
            reservation_id,
            now: self.clock.now(),
        };
        let outcome = self.execute(aggregate_id, command, actor).await?;
        if let BudgetReply::Expired { expired: true, .. } = outcome.reply {
            self.closed(reservation_id);
        }
        Ok(outcome)
    }

    /// The current totals of a budget, including what other processes wrote.
    pub async fn state(
        &self,
        tenant_id: &str,
        project_id: &str,
    ) -> Result<Option<Totals>, CommandError> {
        domain::validate_id(tenant_id)
            .map_err(|e| CommandError::invalid("tenant_id", e.to_string()))?;
        domain::validate_id(project_id)
            .map_err(|e| CommandError::invalid("project_id", e.to_string()))?;
        let id = budget_aggregate_id(tenant_id, project_id);
        self.executor
            .read(&id, None, |loaded| {
                (loaded.version > 0 && loaded.aggregate.total.is_some())
                    .then(|| loaded.aggregate.totals())
            })
            .await
    }

    /// Open reservations whose TTL has passed, oldest deadline first (for the expiry worker).
    ///
    /// Read from the reservations read model (an index of open ones by deadline), not the
    /// event table: searching the log for reservations without a closing event read the
    /// whole log on every pass. The read model may lag the log by a moment: a reservation
    /// closed since is offered again and the aggregate refuses to expire it (nothing is
    /// recorded), and one not projected yet expires on a later pass — late, never early.
    pub async fn due_reservations(&self, limit: i64) -> Result<Vec<(String, Uuid)>, CommandError> {
        let rows = sqlx::query(
            "SELECT aggregate_id, reservation_id
               FROM read_reservations
              WHERE status = 'open' AND expires_at <= $1
              ORDER BY expires_at
              LIMIT $2",
        )
        .bind(self.clock.now())
        .bind(limit)
        .fetch_all(self.store().pool())
        .await?;
        let due = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(due)
    }

    /// Drops, from every cached budget, the closed reservations that no command can
    /// recall any more: closed more than `CLOSED_RETENTION_SECONDS` plus
    /// [`FORGET_MARGIN_SECONDS`] ago. A budget forgets its old closings when it closes
    /// another; one that stopped (a project gone quiet) kept its last two minutes of
    /// closings for as long as it was cached, up to 100,000 budgets × 10,000 closings, and
    /// the process's memory grew with every budget that went idle (issue 16's soak).
    /// Nothing a command decides changes (`Budget::forget_closed_before`). Returns how many
    /// closings were dropped.
    pub fn forget_old_closings(&self) -> usize {
        let cutoff = self.clock.now()
            - chrono::Duration::seconds(CLOSED_RETENTION_SECONDS + FORGET_MARGIN_SECONDS);
        let mut forgotten = 0;
        self.executor
            .tidy_cached(|budget| forgotten += budget.forget_closed_before(cutoff));
        forgotten
    }

    /// Closed reservations held in the cached budgets that no command or read holds right
    /// now (for tests and measurements).
    pub fn closings_held(&self) -> usize {
        let mut held = 0;
        self.executor
            .tidy_cached(|budget| held += budget.closings_held());
        held
    }

    /// A reservation closed (or was already): a repeat finds its budget in the log (an
    /// indexed lookup), so the map keeps only open ones.
    fn closed(&self, reservation_id: Uuid) {
        self.reservations
            .lock()
            .expect("index poisoned")
            .remove(&reservation_id);
    }

    /// Reservations in the reservation → budget map (for tests and measurements).
    pub fn indexed_reservations(&self) -> usize {
        self.reservations.lock().expect("index poisoned").len()
    }

    fn remember(&self, reservation_id: Uuid, aggregate_id: &str) {
        let mut index = self.reservations.lock().expect("index poisoned");
        if index.len() >= RESERVATION_INDEX_CAP {
            index.clear();
        }
        index.insert(reservation_id, aggregate_id.to_string());
    }

    /// The budget a reservation belongs to, from memory or from the event store. Another
    /// tenant's reservation is as unknown to a scoped caller as one that never existed.
    async fn budget_of(&self, reservation_id: Uuid, actor: &Actor) -> Result<String, CommandError> {
        let id = self.find_budget_of(reservation_id).await?;
        let tenant = id.split('/').next().unwrap_or_default();
        if actor.scope.allows(tenant) {
            Ok(id)
        } else {
            Err(unknown_reservation(reservation_id))
        }
    }

    async fn find_budget_of(&self, reservation_id: Uuid) -> Result<String, CommandError> {
        if let Some(id) = self
            .reservations
            .lock()
            .expect("index poisoned")
            .get(&reservation_id)
        {
            return Ok(id.clone());
        }
        let row = sqlx::query(
            "SELECT aggregate_id FROM events
              WHERE aggregate_type = 'Budget' AND (payload ->> 'reservation_id') = $1
              LIMIT 1",
        )
        .bind(reservation_id.to_string())
        .fetch_optional(self.store().pool())
        .await?;
        match row {
            Some(row) => {
                let id: String = row.try_get("aggregate_id")?;
                self.remember(reservation_id, &id);
                Ok(id)
            }
            None => Err(unknown_reservation(reservation_id)),
        }
    }
}

fn unknown_reservation(reservation_id: Uuid) -> CommandError {
    CommandError::NotFound(format!("reservation {reservation_id} does not exist"))
}
