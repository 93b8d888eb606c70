//! Runs commands against one aggregate type: an in-process cache of loaded aggregates,
//! one async mutex per aggregate (commands to one aggregate take turns in this process),
//! optimistic appends that catch up and decide again after losing to another process,
//! and a cross-process advisory-lock mode for an aggregate that saw a conflict recently.
//!
//! This is `BudgetService`'s execution loop made generic over the aggregate (any type
//! with a pure [`Decide::decide`]). `BreakerService` uses it; `BudgetService` keeps its
//! own copy until the event-pipeline changes to it (appends returning a global position)
//! have landed, and can then move onto this one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_es::Aggregate;
use tokio::sync::Mutex as AsyncMutex;

use crate::store::{Actor, AppendError, EventStore};
use crate::CommandError;

/// How often a command is decided again after losing a race to another process.
const MAX_ATTEMPTS: usize = 20;
/// How long an aggregate stays in locked mode after a conflict.
const CONTENDED_FOR: Duration = Duration::from_secs(10);
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

struct SlotInner<A> {
    loaded: AsyncMutex<Option<Loaded<A>>>,
    /// Set when another process announced a change: the next read catches up.
    stale: AtomicBool,
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
}

impl<A> Executor<A>
where
    A: Decide + Send + Sync,
    A::Command: Clone,
    A::Error: Into<CommandError>,
{
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            slots: Mutex::new(HashMap::new()),
        }
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
            // Only slots nobody holds right now can go; their state is in the store.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slots
            .entry(aggregate_id.to_string())
            .or_insert_with(|| {
                Arc::new(SlotInner {
                    loaded: AsyncMutex::new(None),
                    stale: AtomicBool::new(false),
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

    async fn load(&self, aggregate_id: &str) -> Result<Loaded<A>, CommandError> {
        let mut loaded = Loaded {
            aggregate: A::default(),
            version: 0,
            contended_until: None,
            refreshed_at: Instant::now(),
        };
        self.catch_up(aggregate_id, &mut loaded).await?;
        Ok(loaded)
    }

    /// Applies events other processes appended since `loaded.version`. Returns whether any.
    async fn catch_up(
        &self,
        aggregate_id: &str,
        loaded: &mut Loaded<A>,
    ) -> Result<bool, CommandError> {
        let started = Instant::now();
        let events = self.store.load::<A>(aggregate_id, loaded.version).await?;
        let any = !events.is_empty();
        for (sequence, event) in events {
            loaded.aggregate.apply(event);
            loaded.version = sequence;
        }
        loaded.refreshed_at = started;
        Ok(any)
    }

    /// Reads an aggregate through `read`. The cached state is used when it was read from
    /// the store less than `max_age` ago and no change was announced since; otherwise (and
    /// always with `max_age: None`) what other processes appended is read first.
    pub async fn read<R>(
        &self,
        aggregate_id: &str,
        max_age: Option<Duration>,
        read: impl FnOnce(&Loaded<A>) -> R,
    ) -> Result<R, CommandError> {
        let slot = self.slot(aggregate_id);
        let mut guard = slot.loaded.lock().await;
        let stale = slot.stale.swap(false, Ordering::AcqRel);
        match guard.as_mut() {
            None => *guard = Some(self.load(aggregate_id).await?),
            Some(loaded) => {
                let fresh = max_age.is_some_and(|age| loaded.refreshed_at.elapsed() < age);
                if stale || !fresh {
                    if let Err(error) = self.catch_up(aggregate_id, loaded).await {
                        if stale {
                            slot.stale.store(true, Ordering::Release);
                        }
                        return Err(error);
                    }
                }
            }
        }
        Ok(read(guard.as_ref().expect("loaded above")))
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

    /// Marks every cached aggregate as out of date (announcements may have been missed).
    pub fn invalidate_all(&self) {
        let slots = self.slots.lock().expect("slot map poisoned");
        for slot in slots.values() {
            slot.stale.store(true, Ordering::Release);
        }
    }

    /// Decides and appends one command, retrying after a conflict with another writer.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        actor: &Actor,
    ) -> Result<Executed<A::Reply>, CommandError> {
        let slot = self.slot(aggregate_id);
        let mut guard = slot.loaded.lock().await;
        let mut caught_up = false;
        if slot.stale.swap(false, Ordering::AcqRel) {
            if let Some(loaded) = guard.as_mut() {
                self.catch_up(aggregate_id, loaded).await?;
                caught_up = true;
            }
        }
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
                    Ok(executed) => return Ok(executed),
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
            let decision = loaded.aggregate.decide(command.clone());
            // An answer that records nothing (a repeat, an error) may rest on a stale cache
            // when another process wrote to this aggregate: read what is new once and decide again.
            let records_nothing = matches!(&decision, Ok((events, _)) if events.is_empty());
            if (records_nothing || decision.is_err()) && !caught_up {
                caught_up = true;
                if self.catch_up(aggregate_id, loaded).await? {
                    continue;
                }
            }
            let (events, reply) = decision.map_err(Into::into)?;
            if events.is_empty() {
                return Ok(Executed {
                    reply,
                    appended: 0,
                    position: None,
                });
            }
            match self
                .store
                .append::<A>(aggregate_id, loaded.version, &events, actor)
                .await
            {
                Ok(position) => {
                    let appended = events.len();
                    loaded.version += appended;
                    for event in events {
                        loaded.aggregate.apply(event);
                    }
                    return Ok(Executed {
                        reply,
                        appended,
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
        loaded: &mut Loaded<A>,
        command: A::Command,
        actor: &Actor,
    ) -> Result<Executed<A::Reply>, AppendError> {
        let mut locked = self
            .store
            .lock::<A>(aggregate_id)
            .await
            .map_err(AppendError::Other)?;
        for (sequence, event) in locked
            .load::<A>(loaded.version)
            .await
            .map_err(AppendError::Other)?
        {
            loaded.aggregate.apply(event);
            loaded.version = sequence;
        }
        loaded.refreshed_at = Instant::now();
        let (events, reply) = loaded
            .aggregate
            .decide(command)
            .map_err(|e| AppendError::Other(e.into()))?;
        if events.is_empty() {
            return Ok(Executed {
                reply,
                appended: 0,
                position: None,
            });
        }
        let position = locked
            .append_and_commit::<A>(loaded.version, &events, actor)
            .await?;
        let appended = events.len();
        loaded.version += appended;
        for event in events {
            loaded.aggregate.apply(event);
        }
        Ok(Executed {
            reply,
            appended,
            position: Some(position),
        })
    }
}
