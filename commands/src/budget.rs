//! Executes budget commands: per-aggregate serialisation in this process, optimistic
//! concurrency against every other process, and a cache of loaded aggregates so a command
//! costs one INSERT transaction instead of a replay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::budget::{budget_aggregate_id, Budget, BudgetCommand, BudgetReply, Totals};
use sqlx::Row;
use tokio::sync::{oneshot, Mutex as AsyncMutex};
use uuid::Uuid;

use crate::store::{Actor, AppendError, EventStore};
use crate::CommandError;

/// How often a command is decided again after losing a race to another process.
const MAX_ATTEMPTS: usize = 20;
/// Reservation → budget entries remembered before the map is cleared.
const RESERVATION_INDEX_CAP: usize = 200_000;

/// The source of "now" for commands, injectable so tests control time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// An aggregate as far as this process has read it.
struct Loaded {
    budget: Budget,
    version: usize,
    /// Until then, writes take the cross-process lock (another process wrote recently).
    contended_until: Option<Instant>,
}

/// How long an aggregate stays in locked mode after a conflict.
const CONTENDED_FOR: Duration = Duration::from_secs(10);

/// A command waiting for its aggregate's writer, and where its answer goes.
struct Pending {
    command: BudgetCommand,
    actor: Actor,
    reply: oneshot::Sender<Result<Outcome, CommandError>>,
}

/// Commands queued for one aggregate; `draining` while a writer task works through them.
#[derive(Default)]
struct Queue {
    items: Vec<Pending>,
    draining: bool,
}

/// One aggregate's cached state and its queue of commands.
#[derive(Default)]
struct SlotInner {
    loaded: AsyncMutex<Option<Loaded>>,
    queue: Mutex<Queue>,
}

type Slot = Arc<SlotInner>;

/// Commands decided together and appended in one statement, at most.
const MAX_BATCH: usize = 256;
/// Commands waiting for one aggregate, at most. While PostgreSQL is slow (a lock on the
/// events table, an overloaded disk) the queue would otherwise grow with every caller;
/// past this bound a command is refused at once (503 `busy`, Retry-After).
const MAX_QUEUED: usize = 4 * MAX_BATCH;
/// How long a caller waits for its command's answer. Past it the caller gets 503
/// `unavailable` (Retry-After): a command not started yet is then dropped, one already
/// sent to PostgreSQL may still be applied, which a retry (same task id) finds.
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// The answer to a command and where its events landed in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub reply: BudgetReply,
    /// The global position of the last event the command wrote; `None` when it wrote
    /// nothing (a repeat, or an expiry that was not due).
    pub position: Option<i64>,
}

impl Outcome {
    fn unchanged(reply: BudgetReply) -> Self {
        Outcome {
            reply,
            position: None,
        }
    }
}

/// Runs budget commands against the event store.
pub struct BudgetService {
    writer: Writer,
    clock: Arc<dyn Clock>,
    slots: Mutex<HashMap<String, Slot>>,
    reservations: Mutex<HashMap<Uuid, String>>,
}

impl BudgetService {
    pub fn new(store: EventStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            writer: Writer {
                store: Arc::new(store),
            },
            clock,
            slots: Mutex::new(HashMap::new()),
            reservations: Mutex::new(HashMap::new()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn store(&self) -> &EventStore {
        &self.writer.store
    }

    fn slot(&self, aggregate_id: &str) -> Slot {
        let mut slots = self.slots.lock().expect("slot map poisoned");
        slots
            .entry(aggregate_id.to_string())
            .or_insert_with(|| Arc::new(SlotInner::default()))
            .clone()
    }

    /// Queues a command behind the others of its aggregate and waits for its answer. The
    /// queue is drained by a task of its own, so a caller that goes away (a dropped HTTP
    /// request) never leaves the aggregate without a writer.
    async fn execute(
        &self,
        aggregate_id: &str,
        command: BudgetCommand,
        actor: &Actor,
    ) -> Result<Outcome, CommandError> {
        let slot = self.slot(aggregate_id);
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut queue = slot.queue.lock().expect("queue poisoned");
            if queue.items.len() >= MAX_QUEUED {
                return Err(CommandError::Busy);
            }
            queue.items.push(Pending {
                command,
                actor: actor.clone(),
                reply,
            });
            !std::mem::replace(&mut queue.draining, true)
        };
        if start_writer {
            let (writer, id) = (self.writer.clone(), aggregate_id.to_string());
            tokio::spawn(async move { writer.drain(&id, &slot).await });
        }
        match tokio::time::timeout(ANSWER_DEADLINE, answer).await {
            Ok(answer) => answer.unwrap_or_else(|_| {
                Err(CommandError::Internal(
                    "the aggregate's writer stopped".into(),
                ))
            }),
            Err(_) => Err(CommandError::Unavailable(
                format!(
                    "no answer from the event store within {} s",
                    ANSWER_DEADLINE.as_secs()
                )
                .into(),
            )),
        }
    }

    pub async fn set_limit(
        &self,
        tenant_id: String,
        project_id: String,
        total_tokens: u64,
        actor: &Actor,
    ) -> Result<Outcome, CommandError> {
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
    ) -> Result<Outcome, CommandError> {
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
    ) -> Result<Outcome, CommandError> {
        let id = self.budget_of(reservation_id, actor).await?;
        self.execute(
            &id,
            BudgetCommand::CommitUsage {
                reservation_id,
                actual_tokens,
            },
            actor,
        )
        .await
    }

    pub async fn release(
        &self,
        reservation_id: Uuid,
        actor: &Actor,
    ) -> Result<Outcome, CommandError> {
        let id = self.budget_of(reservation_id, actor).await?;
        self.execute(
            &id,
            BudgetCommand::ReleaseReservation { reservation_id },
            actor,
        )
        .await
    }

    /// Expires one reservation if it is still open and due.
    pub async fn expire(
        &self,
        aggregate_id: &str,
        reservation_id: Uuid,
        actor: &Actor,
    ) -> Result<Outcome, CommandError> {
        let command = BudgetCommand::ExpireReservation {
            reservation_id,
            now: self.clock.now(),
        };
        self.execute(aggregate_id, command, actor).await
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
        let slot = self.slot(&id);
        let mut guard = slot.loaded.lock().await;
        match guard.as_mut() {
            Some(loaded) => {
                self.writer.catch_up(&id, loaded).await?;
            }
            None => *guard = Some(self.writer.load(&id).await?),
        }
        let loaded = guard.as_ref().expect("loaded above");
        if loaded.version == 0 || loaded.budget.total.is_none() {
            return Ok(None);
        }
        Ok(Some(loaded.budget.totals()))
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

/// The write machinery, cheap to clone into the task that drains an aggregate's queue.
#[derive(Clone)]
struct Writer {
    store: Arc<EventStore>,
}

impl Writer {
    /// Works through an aggregate's queue until it is empty.
    async fn drain(&self, aggregate_id: &str, slot: &SlotInner) {
        let mut guard = slot.loaded.lock().await;
        loop {
            let batch = {
                let mut queue = slot.queue.lock().expect("queue poisoned");
                if queue.items.is_empty() {
                    queue.draining = false;
                    return;
                }
                let take = queue.items.len().min(MAX_BATCH);
                // A caller that stopped waiting (its deadline passed, or it went away)
                // gets no effect it cannot see.
                queue
                    .items
                    .drain(..take)
                    .filter(|pending| !pending.reply.is_closed())
                    .collect::<Vec<_>>()
            };
            self.run_batch(aggregate_id, &mut guard, batch).await;
        }
    }

    /// Group commit: decides every queued command in turn against the cached state and
    /// appends all their events in one statement, so a hot aggregate pays one round trip
    /// per batch instead of one per command. Commands that would record nothing (repeats,
    /// refusals) and any command of an aggregate in locked mode go one by one, through
    /// the checks of [`Writer::execute_one`].
    async fn run_batch(&self, aggregate_id: &str, guard: &mut Option<Loaded>, batch: Vec<Pending>) {
        let batchable = batch.len() > 1
            && guard.as_ref().is_some_and(|l| {
                l.contended_until
                    .is_none_or(|until| until <= Instant::now())
            });
        if !batchable {
            for pending in batch {
                let result = self
                    .execute_one(aggregate_id, guard, pending.command, &pending.actor)
                    .await;
                let _ = pending.reply.send(result);
            }
            return;
        }
        let loaded = guard.as_mut().expect("batchable means loaded");
        let base_version = loaded.version;
        let mut events = Vec::new();
        let mut owners: Vec<usize> = Vec::new();
        let mut decided: Vec<(Pending, BudgetReply, usize)> = Vec::new();
        let mut alone = Vec::new();
        for pending in batch {
            match loaded.budget.decide(pending.command.clone()) {
                Ok((new_events, reply)) if !new_events.is_empty() => {
                    for event in &new_events {
                        loaded.budget.apply(event.clone());
                    }
                    owners.extend(std::iter::repeat_n(decided.len(), new_events.len()));
                    events.extend(new_events);
                    decided.push((pending, reply, events.len() - 1));
                }
                _ => alone.push(pending),
            }
        }
        if !decided.is_empty() {
            let actors: Vec<&Actor> = owners.iter().map(|&i| &decided[i].0.actor).collect();
            match self
                .store
                .append_batch::<Budget>(aggregate_id, base_version, &events, &actors)
                .await
            {
                Ok(positions) => {
                    loaded.version = base_version + events.len();
                    for (pending, reply, last) in decided {
                        let _ = pending.reply.send(Ok(Outcome {
                            reply,
                            position: positions.get(last).copied(),
                        }));
                    }
                }
                Err(AppendError::Conflict) => {
                    // Another process wrote first. The cache holds events that were never
                    // stored: drop it, and decide each command again, one by one.
                    *guard = None;
                    let mut retry: Vec<Pending> = decided.into_iter().map(|(p, _, _)| p).collect();
                    retry.append(&mut alone);
                    alone = retry;
                }
                Err(AppendError::Other(error)) => {
                    // The outcome is unknown: forget the cache; every command is
                    // idempotent, so callers may retry.
                    *guard = None;
                    tracing::warn!(error = ?error, "a batched append failed");
                    for (pending, _, _) in decided {
                        let _ = pending.reply.send(Err(CommandError::Unavailable(
                            "the event store did not confirm the append; retry".into(),
                        )));
                    }
                }
            }
        }
        for pending in alone {
            let result = self
                .execute_one(aggregate_id, guard, pending.command, &pending.actor)
                .await;
            let _ = pending.reply.send(result);
        }
    }

    async fn load(&self, aggregate_id: &str) -> Result<Loaded, CommandError> {
        let mut loaded = Loaded {
            budget: Budget::default(),
            version: 0,
            contended_until: None,
        };
        self.catch_up(aggregate_id, &mut loaded).await?;
        Ok(loaded)
    }

    /// Applies events other processes appended since `loaded.version`. Returns whether any.
    async fn catch_up(
        &self,
        aggregate_id: &str,
        loaded: &mut Loaded,
    ) -> Result<bool, CommandError> {
        let events = self
            .store
            .load::<Budget>(aggregate_id, loaded.version)
            .await?;
        let any = !events.is_empty();
        for (sequence, event) in events {
            loaded.budget.apply(event);
            loaded.version = sequence;
        }
        Ok(any)
    }

    /// Decides and appends one command, retrying after a conflict with another writer.
    async fn execute_one(
        &self,
        aggregate_id: &str,
        guard: &mut Option<Loaded>,
        command: BudgetCommand,
        actor: &Actor,
    ) -> Result<Outcome, CommandError> {
        let mut caught_up = false;
        for _ in 0..MAX_ATTEMPTS {
            if guard.is_none() {
                *guard = Some(self.load(aggregate_id).await?);
                caught_up = true;
            }
            let loaded = guard.as_mut().expect("loaded above");
            if loaded
                .contended_until
                .is_some_and(|until| until > Instant::now())
            {
                match self
                    .execute_locked(aggregate_id, loaded, command.clone(), actor)
                    .await
                {
                    Ok(reply) => return Ok(reply),
                    // A writer that does not take the lock got in first: try again.
                    Err(AppendError::Conflict) => continue,
                    Err(AppendError::Other(error)) => {
                        if matches!(
                            error,
                            CommandError::Unavailable(_) | CommandError::Internal(_)
                        ) {
                            *guard = None;
                        }
                        return Err(error);
                    }
                }
            }
            let decision = loaded.budget.decide(command.clone());
            // An answer that records nothing (a repeat, an error) may rest on a stale cache
            // when another process wrote to this aggregate: read what is new once and decide again.
            let records_nothing = matches!(&decision, Ok((events, _)) if events.is_empty());
            if (records_nothing || decision.is_err()) && !caught_up {
                caught_up = true;
                if self.catch_up(aggregate_id, loaded).await? {
                    continue;
                }
            }
            let (events, reply) = decision?;
            if events.is_empty() {
                return Ok(Outcome::unchanged(reply));
            }
            match self
                .store
                .append::<Budget>(aggregate_id, loaded.version, &events, actor)
                .await
            {
                Ok(position) => {
                    loaded.version += events.len();
                    for event in events {
                        loaded.budget.apply(event);
                    }
                    return Ok(Outcome {
                        reply,
                        position: Some(position),
                    });
                }
                Err(AppendError::Conflict) => {
                    // Another process writes to this aggregate too: take turns from now on.
                    loaded.contended_until = Some(Instant::now() + CONTENDED_FOR);
                    self.catch_up(aggregate_id, loaded).await?;
                    caught_up = true;
                }
                Err(AppendError::Other(error)) => {
                    // The outcome is unknown (the commit may have happened): forget the
                    // cached state so the next command reads the truth.
                    *guard = None;
                    return Err(error);
                }
            }
        }
        Err(CommandError::Busy)
    }

    /// Decide-and-append under the aggregate's cross-process lock: catch up, decide,
    /// insert and commit in one transaction.
    async fn execute_locked(
        &self,
        aggregate_id: &str,
        loaded: &mut Loaded,
        command: BudgetCommand,
        actor: &Actor,
    ) -> Result<Outcome, AppendError> {
        let mut locked = self
            .store
            .lock::<Budget>(aggregate_id)
            .await
            .map_err(AppendError::Other)?;
        for (sequence, event) in locked
            .load::<Budget>(loaded.version)
            .await
            .map_err(AppendError::Other)?
        {
            loaded.budget.apply(event);
            loaded.version = sequence;
        }
        let (events, reply) = loaded
            .budget
            .decide(command)
            .map_err(|e| AppendError::Other(e.into()))?;
        if events.is_empty() {
            return Ok(Outcome::unchanged(reply));
        }
        let position = locked
            .append_and_commit::<Budget>(loaded.version, &events, actor)
            .await?;
        loaded.version += events.len();
        for event in events {
            loaded.budget.apply(event);
        }
        Ok(Outcome {
            reply,
            position: Some(position),
        })
    }
}
