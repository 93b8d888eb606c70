//! Runs the commands of one aggregate type (budgets, breakers, dead letters, sandbox runs):
//! an in-process cache of loaded aggregates, one queue per aggregate worked through by a
//! task of its own (commands to one aggregate take turns in this process, and those that
//! wait together are decided together and appended in one statement: group commit,
//! docs/adr/007 and 017), optimistic appends that catch up and decide again after losing
//! to another process, and a cross-process advisory-lock mode for an aggregate that saw a
//! conflict recently.
//!
//! Every command path is bounded: an aggregate's queue and the commands waiting in the
//! whole executor have a ceiling (past it a command is refused at once with `busy`), and a
//! caller waits at most [`Bounds::deadline`] for its answer (then `unavailable`). Both are
//! 503 with Retry-After over HTTP and an error reply over NATS, so a slow PostgreSQL costs
//! bounded memory and bounded waits (issue 16).

mod batch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_es::Aggregate;
use tokio::sync::{oneshot, Mutex as AsyncMutex};

use crate::arrival_order::join_in_order;
use crate::store::{Actor, EventStore};
use crate::CommandError;

/// Cached aggregates kept before idle ones are dropped (they are reloaded on demand).
const SLOT_CAP: usize = 100_000;

/// An aggregate whose commands are decided by a pure function of its state.
pub trait Decide: Aggregate + Default {
    /// The answer a command gets, computed together with its events.
    type Reply;

    fn decide(&self, command: Self::Command) -> Decision<Self>;
}

/// The events a command records and the answer it gets, or the rule it broke.
pub type Decision<A> =
    Result<(Vec<<A as Aggregate>::Event>, <A as Decide>::Reply), <A as Aggregate>::Error>;

/// How much may wait, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Commands waiting in one aggregate's queue (not counting the batch being written).
    /// While PostgreSQL is slow the queue would otherwise grow with every caller.
    pub per_aggregate: usize,
    /// Commands accepted and not yet answered across every aggregate of the executor: the
    /// per-aggregate bound alone lets memory grow with the number of aggregates (every
    /// dead-letter capture is an aggregate of its own).
    pub total: usize,
    /// How long a caller waits for its answer. Past it the caller gets `unavailable`: a
    /// command not started yet is then dropped, one already sent to PostgreSQL may still
    /// be applied, which a retry finds (every command is idempotent).
    pub deadline: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            per_aggregate: 4 * batch::MAX_BATCH,
            total: 16 * batch::MAX_BATCH,
            deadline: Duration::from_secs(10),
        }
    }
}

/// An aggregate as far as this process has read it.
pub struct Loaded<A> {
    pub aggregate: A,
    /// The sequence of the last event applied (0 = none).
    pub version: usize,
    /// Until then, writes take the cross-process lock (another process wrote recently).
    contended_until: Option<Instant>,
    /// When this process last read the event store for this aggregate.
    refreshed_at: Instant,
}

/// One aggregate's cached state and its queue of commands.
struct SlotInner<A: Decide> {
    loaded: AsyncMutex<Option<Loaded<A>>>,
    /// Set when another process announced a change: the next read catches up.
    stale: AtomicBool,
    queue: Mutex<batch::Queue<A>>,
}

type Slot<A> = Arc<SlotInner<A>>;

/// The result of an executed command.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed<R> {
    pub reply: R,
    /// How many events the command appended (0 when it changed nothing).
    pub appended: usize,
    /// The global position of the last event appended (none when nothing was), for
    /// read-your-writes (`min_position`).
    pub position: Option<i64>,
}

/// Executes commands of aggregate type `A` against the event store.
pub struct Executor<A: Decide> {
    store: EventStore,
    slots: Mutex<HashMap<String, Slot<A>>>,
    bounds: Bounds,
    /// Commands accepted and not yet answered, across every aggregate.
    pending: Arc<AtomicUsize>,
}

impl<A> Executor<A>
where
    A: Decide + Send + Sync + 'static,
    A::Command: Clone + Send + 'static,
    A::Reply: Send + 'static,
    A::Error: Into<CommandError> + Send,
{
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            slots: Mutex::new(HashMap::new()),
            bounds: Bounds::default(),
            pending: Arc::default(),
        }
    }

    /// The same executor with other bounds (the defaults suit production).
    pub fn with_bounds(mut self, bounds: Bounds) -> Self {
        self.bounds = bounds;
        self
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    fn slot(&self, aggregate_id: &str) -> Slot<A> {
        let mut slots = self.slots.lock().expect("slot map poisoned");
        if let Some(slot) = slots.get(aggregate_id) {
            return slot.clone();
        }
        if slots.len() >= SLOT_CAP {
            // Only slots nobody holds right now can go (a queued command's task holds its
            // slot); their state is in the store.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slots
            .entry(aggregate_id.to_string())
            .or_insert_with(|| {
                Arc::new(SlotInner {
                    loaded: AsyncMutex::new(None),
                    stale: AtomicBool::new(false),
                    queue: Mutex::default(),
                })
            })
            .clone()
    }

    /// Marks a cached aggregate as out of date (another process wrote to it): the next
    /// read catches up whatever its allowed age.
    pub fn invalidate(&self, aggregate_id: &str) {
        let slots = self.slots.lock().expect("slot map poisoned");
        if let Some(slot) = slots.get(aggregate_id) {
            slot.stale.store(true, Ordering::Release);
        }
    }

    /// Reads an aggregate through `read`. The cached state is used when it was read from
    /// the store less than `max_age` ago and no change was announced since; otherwise (and
    /// always with `max_age: None`) what other processes appended is read first. Waits at
    /// most the deadline (behind a batch being written, or for PostgreSQL).
    pub async fn read<R>(
        &self,
        aggregate_id: &str,
        max_age: Option<Duration>,
        read: impl FnOnce(&Loaded<A>) -> R,
    ) -> Result<R, CommandError> {
        let slot = self.slot(aggregate_id);
        let within = tokio::time::timeout(self.bounds.deadline, async {
            let mut guard = slot.loaded.lock().await;
            let stale = slot.stale.swap(false, Ordering::AcqRel);
            match guard.as_mut() {
                None => *guard = Some(batch::load(&self.store, aggregate_id).await?),
                Some(loaded) => {
                    let fresh = max_age.is_some_and(|age| loaded.refreshed_at.elapsed() < age);
                    if stale || !fresh {
                        if let Err(error) = batch::catch_up(&self.store, aggregate_id, loaded).await
                        {
                            if stale {
                                slot.stale.store(true, Ordering::Release);
                            }
                            return Err(error);
                        }
                    }
                }
            }
            Ok(read(guard.as_ref().expect("loaded above")))
        })
        .await;
        within.unwrap_or_else(|_| Err(self.past_deadline()))
    }

    /// Reads a cached aggregate without waiting and without I/O: `None` when it is not
    /// cached, is busy (a command or a read holds it), is older than `max_age`, or another
    /// process announced a change. Callers then take the [`Self::read`] path.
    pub fn try_read_cached<R>(
        &self,
        aggregate_id: &str,
        max_age: Duration,
        read: impl FnOnce(&Loaded<A>) -> R,
    ) -> Option<R> {
        let slot = self
            .slots
            .lock()
            .expect("slot map poisoned")
            .get(aggregate_id)?
            .clone();
        if slot.stale.load(Ordering::Acquire) {
            return None;
        }
        let guard = slot.loaded.try_lock().ok()?;
        let loaded = guard.as_ref()?;
        (loaded.refreshed_at.elapsed() < max_age).then(|| read(loaded))
    }

    /// A sweep read the latest version of every aggregate from the store (absent: none),
    /// starting at `read_at`. Cached aggregates at that version count as read at `read_at`;
    /// those behind it are marked stale. One query then keeps every cache fresh, instead of
    /// one per aggregate whose cache ages out.
    pub fn confirm_versions(&self, versions: &HashMap<String, usize>, read_at: Instant) {
        let slots: Vec<(String, Slot<A>)> = self
            .slots
            .lock()
            .expect("slot map poisoned")
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect();
        for (id, slot) in slots {
            // A busy aggregate is being read or written right now: nothing to confirm.
            let Ok(mut guard) = slot.loaded.try_lock() else {
                continue;
            };
            let Some(loaded) = guard.as_mut() else {
                continue;
            };
            let stored = versions.get(&id).copied().unwrap_or(0);
            if loaded.version == stored {
                loaded.refreshed_at = loaded.refreshed_at.max(read_at);
            } else if loaded.version < stored {
                slot.stale.store(true, Ordering::Release);
            }
            // Ahead of the sweep: this process appended after the sweep read.
        }
    }

    /// Changes every cached aggregate that no command or read holds right now, through
    /// `change`; returns how many it reached. Busy ones are skipped (the next call reaches
    /// them). For changes that alter nothing a command decides, such as dropping what no
    /// command can use any more ([`crate::budget::BudgetService::forget_old_closings`]).
    pub fn tidy_cached(&self, mut change: impl FnMut(&mut A)) -> usize {
        let slots: Vec<Slot<A>> = self
            .slots
            .lock()
            .expect("slot map poisoned")
            .values()
            .cloned()
            .collect();
        let mut reached = 0;
        for slot in slots {
            let Ok(mut guard) = slot.loaded.try_lock() else {
                continue;
            };
            if let Some(loaded) = guard.as_mut() {
                change(&mut loaded.aggregate);
                reached += 1;
            }
        }
        reached
    }

    /// Marks every cached aggregate as out of date (announcements may have been missed).
    pub fn invalidate_all(&self) {
        let slots = self.slots.lock().expect("slot map poisoned");
        for slot in slots.values() {
            slot.stale.store(true, Ordering::Release);
        }
    }

    /// Queues a command behind the others of its aggregate and waits for its answer (at
    /// most the deadline, counted from the call: a NATS command's wait for its turn in its
    /// sender's line included). The queue is worked through by a task of its own, so a caller
    /// that goes away (a dropped HTTP request) never leaves the aggregate without a writer.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        actor: &Actor,
    ) -> Result<Executed<A::Reply>, CommandError> {
        // Counted from here until the command is answered or dropped (see `Counted`).
        let counted =
            batch::Counted::take(&self.pending, self.bounds.total).ok_or(CommandError::Busy)?;
        let slot = self.slot(aggregate_id);
        let (reply, answer) = oneshot::channel();
        // One deadline for the whole command: its turn in its sender's line included.
        let deadline = tokio::time::Instant::now() + self.bounds.deadline;
        // A NATS command joins behind the ones its sender sent before it (arrival_order).
        let joined = tokio::time::timeout_at(
            deadline,
            join_in_order(|| {
                let mut queue = slot.queue.lock().expect("queue poisoned");
                if queue.items.len() >= self.bounds.per_aggregate {
                    return Err(CommandError::Busy);
                }
                queue.items.push(batch::Pending {
                    command,
                    actor: actor.clone(),
                    reply,
                    _counted: counted,
                });
                Ok(!std::mem::replace(&mut queue.draining, true))
            }),
        )
        .await;
        // Past the deadline before its turn came: it joined no queue (the line moves on).
        let start_task = joined.map_err(|_| self.past_deadline())??;
        if start_task {
            let (store, id) = (self.store.clone(), aggregate_id.to_string());
            tokio::spawn(async move { batch::drain(&store, &id, &slot).await });
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(answer) => answer.unwrap_or_else(|_| {
                Err(CommandError::Internal(
                    "the aggregate's queue task stopped".into(),
                ))
            }),
            Err(_) => Err(self.past_deadline()),
        }
    }

    fn past_deadline(&self) -> CommandError {
        CommandError::Unavailable(
            format!(
                "no answer from the event store within {} s",
                self.bounds.deadline.as_secs_f32()
            )
            .into(),
        )
    }
}
