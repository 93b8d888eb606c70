//! One aggregate's queue, worked through by a task of its own: the commands waiting at a
//! moment are decided in turn against the cached state and appended in one statement
//! (group commit of one aggregate; the event store then joins appends of every aggregate
//! waiting at that moment, docs/adr/007). Commands that record nothing, and every command
//! of an aggregate that saw a conflict recently, go one by one through [`execute_one`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Decide, Executed, Loaded, SlotInner};
use crate::store::{Actor, AppendError, EventStore};
use crate::CommandError;

/// How often a command is decided again after losing a race to another process.
const MAX_ATTEMPTS: usize = 20;
/// How long an aggregate stays in locked mode after a conflict.
const CONTENDED_FOR: Duration = Duration::from_secs(10);
/// Commands decided together and appended in one statement, at most.
pub(super) const MAX_BATCH: usize = 256;

/// A place in the executor's count of commands accepted and not yet answered; given back
/// when dropped, whichever way the command leaves (answered, given up on, refused).
pub(super) struct Counted(Arc<AtomicUsize>);

impl Counted {
    /// A place, if fewer than `limit` are taken.
    pub(super) fn take(pending: &Arc<AtomicUsize>, limit: usize) -> Option<Counted> {
        pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Counted(pending.clone()))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A command waiting for its aggregate's task, and where its answer goes.
pub(super) struct Pending<A: Decide> {
    pub(super) command: A::Command,
    pub(super) actor: Actor,
    pub(super) reply: oneshot::Sender<Result<Executed<A::Reply>, CommandError>>,
    pub(super) _counted: Counted,
}

/// Commands queued for one aggregate; `draining` while a task works through them.
pub(super) struct Queue<A: Decide> {
    pub(super) items: Vec<Pending<A>>,
    pub(super) draining: bool,
}

impl<A: Decide> Default for Queue<A> {
    fn default() -> Self {
        Queue {
            items: Vec::new(),
            draining: false,
        }
    }
}

/// Works through an aggregate's queue until it is empty. The cached state is locked for
/// one batch at a time, so reads (a breaker check that must catch up) wait for a batch,
/// not for the whole queue.
pub(super) async fn drain<A>(store: &EventStore, aggregate_id: &str, slot: &SlotInner<A>)
where
    A: Decide,
    A::Command: Clone,
    A::Error: Into<CommandError>,
{
    loop {
        let mut guard = slot.loaded.lock().await;
        let batch = {
            let mut queue = slot.queue.lock().expect("queue poisoned");
            if queue.items.is_empty() {
                queue.draining = false;
                // `drain` keeps the vector's room for the longest queue this aggregate
                // ever had; an idle one (most of the cached aggregates) should hold none.
                queue.items = Vec::new();
                return;
            }
            let take = queue.items.len().min(MAX_BATCH);
            // A caller that stopped waiting (its deadline passed, or it went away) gets
            // no effect it cannot see.
            queue
                .items
                .drain(..take)
                .filter(|pending| !pending.reply.is_closed())
                .collect::<Vec<_>>()
        };
        if batch.is_empty() {
            continue;
        }
        // Another process announced a change: read it before deciding.
        let mut caught_up = false;
        if slot.stale.swap(false, Ordering::AcqRel) {
            if let Some(loaded) = guard.as_mut() {
                match catch_up(store, aggregate_id, loaded).await {
                    Ok(_) => caught_up = true,
                    // Not known to be current: the commands load it again (and answer
                    // the error if PostgreSQL is still away).
                    Err(_) => *guard = None,
                }
            }
        }
        run_batch(store, aggregate_id, &mut guard, batch, caught_up).await;
    }
}

/// Group commit: decides every queued command in turn against the cached state and
/// appends all their events in one statement, so a hot aggregate pays one round trip per
/// batch instead of one per command.
async fn run_batch<A>(
    store: &EventStore,
    aggregate_id: &str,
    guard: &mut Option<Loaded<A>>,
    batch: Vec<Pending<A>>,
    caught_up: bool,
) where
    A: Decide,
    A::Command: Clone,
    A::Error: Into<CommandError>,
{
    let batchable = batch.len() > 1
        && guard.as_ref().is_some_and(|l| {
            l.contended_until
                .is_none_or(|until| until <= Instant::now())
        });
    if !batchable {
        one_by_one(store, aggregate_id, guard, batch, caught_up).await;
        return;
    }
    let loaded = guard.as_mut().expect("batchable means loaded");
    let base_version = loaded.version;
    let mut events = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    // Each decided command, its reply, its number of events and the index of its last.
    let mut decided: Vec<(Pending<A>, A::Reply, usize, usize)> = Vec::new();
    let mut alone = Vec::new();
    for pending in batch {
        match loaded.aggregate.decide(pending.command.clone()) {
            Ok((new_events, reply)) if !new_events.is_empty() => {
                for event in &new_events {
                    loaded.aggregate.apply(event.clone());
                }
                let count = new_events.len();
                owners.extend(std::iter::repeat_n(decided.len(), count));
                events.extend(new_events);
                decided.push((pending, reply, count, events.len() - 1));
            }
            _ => alone.push(pending),
        }
    }
    if !decided.is_empty() {
        let actors: Vec<&Actor> = owners.iter().map(|&i| &decided[i].0.actor).collect();
        match store
            .append_batch::<A>(aggregate_id, base_version, &events, &actors)
            .await
        {
            Ok(positions) => {
                loaded.version = base_version + events.len();
                for (pending, reply, appended, last) in decided {
                    let _ = pending.reply.send(Ok(Executed {
                        reply,
                        appended,
                        position: positions.get(last).copied(),
                    }));
                }
            }
            Err(AppendError::Conflict) => {
                // Another process wrote first. The cache holds events that were never
                // stored: drop it, and decide each command again, one by one.
                *guard = None;
                let mut retry: Vec<Pending<A>> =
                    decided.into_iter().map(|(p, _, _, _)| p).collect();
                retry.append(&mut alone);
                alone = retry;
            }
            Err(AppendError::Other(error)) => {
                // The outcome is unknown: forget the cache; every command is idempotent,
                // so callers may retry.
                *guard = None;
                tracing::warn!(error = ?error, aggregate = A::TYPE, "a batched append failed");
                for (pending, _, _, _) in decided {
                    let _ = pending.reply.send(Err(CommandError::Unavailable(
                        "the event store did not confirm the append; retry".into(),
                    )));
                }
            }
        }
    }
    one_by_one(store, aggregate_id, guard, alone, false).await;
}

/// Answers each command in turn through [`execute_one`].
async fn one_by_one<A>(
    store: &EventStore,
    aggregate_id: &str,
    guard: &mut Option<Loaded<A>>,
    commands: Vec<Pending<A>>,
    caught_up: bool,
) where
    A: Decide,
    A::Command: Clone,
    A::Error: Into<CommandError>,
{
    for pending in commands {
        let result = execute_one(
            store,
            aggregate_id,
            guard,
            pending.command,
            &pending.actor,
            caught_up,
        )
        .await;
        let _ = pending.reply.send(result);
    }
}

pub(super) async fn load<A: Decide>(
    store: &EventStore,
    aggregate_id: &str,
) -> Result<Loaded<A>, CommandError> {
    let mut loaded = Loaded {
        aggregate: A::default(),
        version: 0,
        contended_until: None,
        refreshed_at: Instant::now(),
    };
    catch_up(store, aggregate_id, &mut loaded).await?;
    Ok(loaded)
}

/// Applies events other processes appended since `loaded.version`. Returns whether any.
pub(super) async fn catch_up<A: Decide>(
    store: &EventStore,
    aggregate_id: &str,
    loaded: &mut Loaded<A>,
) -> Result<bool, CommandError> {
    let started = Instant::now();
    let events = store.load::<A>(aggregate_id, loaded.version).await?;
    let any = !events.is_empty();
    for (sequence, event) in events {
        loaded.aggregate.apply(event);
        loaded.version = sequence;
    }
    loaded.refreshed_at = started;
    Ok(any)
}

/// Decides and appends one command, retrying after a conflict with another writer.
/// `caught_up`: the cached state was read from the store just now.
async fn execute_one<A>(
    store: &EventStore,
    aggregate_id: &str,
    guard: &mut Option<Loaded<A>>,
    command: A::Command,
    actor: &Actor,
    mut caught_up: bool,
) -> Result<Executed<A::Reply>, CommandError>
where
    A: Decide,
    A::Command: Clone,
    A::Error: Into<CommandError>,
{
    for _ in 0..MAX_ATTEMPTS {
        if guard.is_none() {
            *guard = Some(load(store, aggregate_id).await?);
            caught_up = true;
        }
        let loaded = guard.as_mut().expect("loaded above");
        if loaded
            .contended_until
            .is_some_and(|until| until > Instant::now())
        {
            match execute_locked(store, aggregate_id, loaded, command.clone(), actor).await {
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
            if catch_up(store, aggregate_id, loaded).await? {
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
        match store
            .append::<A>(aggregate_id, loaded.version, &events, actor)
            .await
        {
            Ok(position) => return Ok(applied(loaded, events, reply, position)),
            Err(AppendError::Conflict) => {
                // Another process writes to this aggregate too: take turns from now on.
                loaded.contended_until = Some(Instant::now() + CONTENDED_FOR);
                catch_up(store, aggregate_id, loaded).await?;
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

/// Decide-and-append under the aggregate's cross-process lock: catch up, decide, insert
/// and commit in one transaction.
async fn execute_locked<A>(
    store: &EventStore,
    aggregate_id: &str,
    loaded: &mut Loaded<A>,
    command: A::Command,
    actor: &Actor,
) -> Result<Executed<A::Reply>, AppendError>
where
    A: Decide,
    A::Error: Into<CommandError>,
{
    let mut locked = store
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
    Ok(applied(loaded, events, reply, position))
}

/// The cached state after its own appended events.
fn applied<A: Decide>(
    loaded: &mut Loaded<A>,
    events: Vec<A::Event>,
    reply: A::Reply,
    position: i64,
) -> Executed<A::Reply> {
    let appended = events.len();
    loaded.version += appended;
    for event in events {
        loaded.aggregate.apply(event);
    }
    Executed {
        reply,
        appended,
        position: Some(position),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back_when_dropped() {
        let pending = Arc::new(AtomicUsize::new(0));
        let taken: Vec<Counted> = (0..3).filter_map(|_| Counted::take(&pending, 3)).collect();
        assert_eq!(taken.len(), 3);
        assert!(Counted::take(&pending, 3).is_none(), "past the bound");
        drop(taken);
        assert_eq!(pending.load(Ordering::Acquire), 0);
        assert!(Counted::take(&pending, 3).is_some());
    }
}
