//! One sender's NATS commands join their aggregates' queues in the order they arrived.
//!
//! The request server answers every message in a task of its own, so a slow lookup (a
//! sender's tenants, a reservation's budget) holds up nobody else. Left at that, two
//! commands a service sent in a row could reach their aggregate's queue in the other order:
//! the re-ask a client sends after a cancelled reserve could be applied first, its
//! reservation released, and the late original then open a second one for the same task.
//!
//! So each message takes a [`Turn`] in its sender's [`Lines`] (one line per
//! `<prefix>.cmd.<service>.<area>`) as it arrives. It prepares at once, in parallel with the
//! others, but joins its aggregate's queue ([`join_in_order`], called by the executor) only
//! after the sender's previous message joined its own queue or finished. The wait is only
//! for that earlier message's preparation; nothing waits for another command's write.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

use tokio::sync::oneshot::{self, error::TryRecvError};

/// Lines kept at most before the ones with nobody waiting are dropped (the senders are the
/// services NATS let in, so this is only a guard).
const MAX_LINES: usize = 10_000;

/// The last turn of every line; owned by one request server's receive loop.
#[derive(Default)]
pub struct Lines {
    last: HashMap<String, oneshot::Receiver<()>>,
}

impl Lines {
    /// The next turn in the line of `subject` (its sender and area: the subject without
    /// the verb).
    pub fn take_turn(&mut self, subject: &str) -> Turn {
        let line = subject
            .rsplit_once('.')
            .map_or(subject, |(line, _verb)| line);
        if self.last.len() >= MAX_LINES {
            self.last.retain(|_, gone| still_waiting(gone));
        }
        let (gone, next_waits) = oneshot::channel();
        let before = self
            .last
            .insert(line.to_owned(), next_waits)
            .and_then(|mut before| still_waiting(&mut before).then_some(before));
        Turn {
            before,
            gone: Some(gone),
        }
    }
}

/// Whether the message a receiver stands for has not gone yet (a value, or a dropped
/// sender, means it has).
fn still_waiting(receiver: &mut oneshot::Receiver<()>) -> bool {
    matches!(receiver.try_recv(), Err(TryRecvError::Empty))
}

/// One message's place in its line.
pub struct Turn {
    /// Resolves (or errs) once the message before this one has gone.
    before: Option<oneshot::Receiver<()>>,
    /// Sent when this message has gone, so the next may.
    gone: Option<oneshot::Sender<()>>,
}

impl Turn {
    async fn arrive(&mut self) {
        // Waited for in place, not taken out: a wait given up half way (the executor's
        // deadline) leaves it in the turn, whose drop then passes the turn on only after it.
        if let Some(before) = self.before.as_mut() {
            // An error means the sender side was dropped without a send, which only a
            // runtime shutting down does: nothing is left to wait for.
            let _ = before.await;
            self.before = None;
        }
    }

    fn go(mut self) {
        if let Some(gone) = self.gone.take() {
            let _ = gone.send(());
        }
    }
}

impl Drop for Turn {
    /// A message that joined no queue (a read, an error) still keeps its place: the next
    /// one goes once this one's predecessor has.
    fn drop(&mut self) {
        let Some(gone) = self.gone.take() else { return };
        let Some(mut before) = self.before.take() else {
            let _ = gone.send(());
            return;
        };
        if !still_waiting(&mut before) {
            let _ = gone.send(());
            return;
        }
        // Without a runtime (shutting down) `gone` is dropped, which also lets the next go.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = before.await;
                let _ = gone.send(());
            });
        }
    }
}

tokio::task_local! {
    static TURN: RefCell<Option<Turn>>;
}

/// Runs `answer` (one message's handling) holding `turn`.
pub fn in_line<F: Future>(turn: Turn, answer: F) -> impl Future<Output = F::Output> {
    TURN.scope(RefCell::new(Some(turn)), answer)
}

/// Runs `join` (putting a command into its aggregate's queue) once the message being
/// handled may: after the same sender's previous one. Outside a NATS request (HTTP, the
/// expiry sweep) it runs at once.
pub async fn join_in_order<T>(join: impl FnOnce() -> T) -> T {
    let turn = TURN
        .try_with(|turn| turn.borrow_mut().take())
        .ok()
        .flatten();
    let Some(mut turn) = turn else {
        return join();
    };
    turn.arrive().await;
    let joined = join();
    turn.go();
    joined
}

/// Gives up the place in line of the message being handled: a read joins no queue, and
/// the sender's next command need not wait for it.
pub fn leave_line() {
    let turn = TURN
        .try_with(|turn| turn.borrow_mut().take())
        .ok()
        .flatten();
    drop(turn);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// Runs one message's handling: `prepare` (how long its lookups take), then the join,
    /// which records `name` in `joined`.
    fn handle(
        turn: Turn,
        prepare: Duration,
        name: &'static str,
        joined: &Arc<Mutex<Vec<&'static str>>>,
    ) -> tokio::task::JoinHandle<()> {
        let joined = joined.clone();
        tokio::spawn(in_line(turn, async move {
            tokio::time::sleep(prepare).await;
            join_in_order(|| joined.lock().unwrap().push(name)).await;
        }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_later_command_that_prepares_faster_still_joins_second() {
        let mut lines = Lines::default();
        let joined = Arc::new(Mutex::new(Vec::new()));
        let first = lines.take_turn("cp.cmd.billing.budget.request");
        let second = lines.take_turn("cp.cmd.billing.budget.release");
        let slow = handle(first, Duration::from_millis(50), "first", &joined);
        let fast = handle(second, Duration::ZERO, "second", &joined);
        fast.await.unwrap();
        slow.await.unwrap();
        assert_eq!(*joined.lock().unwrap(), ["first", "second"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_senders_do_not_wait() {
        let mut lines = Lines::default();
        let joined = Arc::new(Mutex::new(Vec::new()));
        let billing = lines.take_turn("cp.cmd.billing.budget.request");
        let search = lines.take_turn("cp.cmd.search.budget.request");
        let slow = handle(billing, Duration::from_millis(200), "billing", &joined);
        let fast = handle(search, Duration::ZERO, "search", &joined);
        fast.await.unwrap();
        assert_eq!(
            *joined.lock().unwrap(),
            ["search"],
            "search waited for billing"
        );
        slow.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_that_joins_nothing_keeps_its_place() {
        let mut lines = Lines::default();
        let joined = Arc::new(Mutex::new(Vec::new()));
        let first = lines.take_turn("cp.cmd.billing.budget.request");
        let read = lines.take_turn("cp.cmd.billing.budget.state");
        let third = lines.take_turn("cp.cmd.billing.budget.request");
        let slow = handle(first, Duration::from_millis(50), "first", &joined);
        // The read finishes at once without joining a queue.
        tokio::spawn(in_line(read, async { leave_line() }))
            .await
            .unwrap();
        handle(third, Duration::ZERO, "third", &joined)
            .await
            .unwrap();
        slow.await.unwrap();
        assert_eq!(*joined.lock().unwrap(), ["first", "third"]);
    }

    /// The executor stops waiting for a turn at its deadline (the wait is inside it): that
    /// message joins nothing, and the next still goes only after the one before it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_past_its_deadline_while_waiting_joins_nothing_and_keeps_its_place() {
        let mut lines = Lines::default();
        let joined = Arc::new(Mutex::new(Vec::new()));
        let first = lines.take_turn("cp.cmd.billing.budget.request");
        let late = lines.take_turn("cp.cmd.billing.budget.request");
        let third = lines.take_turn("cp.cmd.billing.budget.request");
        let slow = handle(first, Duration::from_millis(200), "first", &joined);
        let gave_up = {
            let joined = joined.clone();
            tokio::spawn(in_line(late, async move {
                tokio::time::timeout(
                    Duration::from_millis(20),
                    join_in_order(|| joined.lock().unwrap().push("late")),
                )
                .await
                .is_err()
            }))
        };
        assert!(gave_up.await.unwrap(), "the wait ended at the deadline");
        handle(third, Duration::ZERO, "third", &joined)
            .await
            .unwrap();
        slow.await.unwrap();
        assert_eq!(*joined.lock().unwrap(), ["first", "third"]);
    }

    #[tokio::test]
    async fn outside_a_request_the_join_runs_at_once() {
        assert_eq!(join_in_order(|| 7).await, 7);
    }

    #[tokio::test]
    async fn a_line_whose_last_message_has_gone_makes_no_one_wait() {
        let mut lines = Lines::default();
        let first = lines.take_turn("cp.cmd.billing.budget.request");
        in_line(first, join_in_order(|| ())).await;
        let second = lines.take_turn("cp.cmd.billing.budget.request");
        assert!(second.before.is_none());
    }
}
