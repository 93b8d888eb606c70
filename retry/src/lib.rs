//! retry: the back-off loop every long-running worker shares (the publisher, the
//! projector, the WebSocket live feed, dead-letter capture, the sandbox audit intake).
//!
//! Each of them runs a task that returns when NATS or PostgreSQL goes away, and must start
//! it again: at once after a clean end, after a pause that grows while it keeps failing, so
//! a long outage costs a try every few seconds rather than a busy loop of errors in the log.
//! The workers say only what they run and what they log ([`forever`]).
#![forbid(unsafe_code)]

use std::future::Future;
use std::time::Duration;

/// The pause after the first failure in a row.
pub const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// The longest pause: how soon a worker notices that its dependency is back.
pub const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Pauses that double from [`FIRST_PAUSE`] to [`LONGEST_PAUSE`] while failures follow one
/// another, and start over after a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_PAUSE }
    }
}

impl Backoff {
    /// The pause after this failure; the next one is twice as long, up to the longest.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        pause
    }

    /// A success: the next failure pauses [`FIRST_PAUSE`] again.
    pub fn succeeded(&mut self) {
        self.next = FIRST_PAUSE;
    }
}

/// Runs `attempt` for the life of the process: again at once when it returns `Ok`, and
/// after a [`Backoff`] pause when it fails. `on_error` is told each error and the pause
/// that follows it (to log it, or count it) before the pause.
///
/// `attempt` is a closure that returns a future, not an async closure: the future of an
/// async closure that borrows its captures cannot be proven `Send` on stable Rust, and
/// every worker runs on `tokio::spawn`. State kept between attempts (where a reader
/// resumes) therefore lives behind a shared reference, e.g. an atomic.
pub async fn forever<E, F: Future<Output = Result<(), E>>>(
    mut attempt: impl FnMut() -> F,
    mut on_error: impl FnMut(E, Duration),
) {
    let mut backoff = Backoff::default();
    loop {
        match attempt().await {
            Ok(()) => backoff.succeeded(),
            Err(error) => {
                let pause = backoff.failed();
                on_error(error, pause);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_200_ms_up_to_5_s() {
        let mut backoff = Backoff::default();
        let pauses: Vec<u128> = (0..8).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(pauses, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn a_success_starts_the_pauses_over() {
        let mut backoff = Backoff::default();
        backoff.failed();
        backoff.failed();
        backoff.succeeded();
        assert_eq!(backoff.failed(), FIRST_PAUSE);
    }

    #[tokio::test]
    async fn forever_runs_again_after_success_and_failure_and_reports_each_error() {
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let mut reported = Vec::new();
        // Fails, succeeds, fails: the second failure pauses 200 ms again (the success reset
        // the back-off). The fourth attempt never ends, which ends the test.
        let run = forever(
            || async {
                let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                match attempt {
                    1 | 3 => Err(attempt),
                    2 => Ok(()),
                    _ => std::future::pending().await,
                }
            },
            |error, pause| reported.push((error, pause)),
        );
        let ended = tokio::time::timeout(Duration::from_secs(2), run).await;
        assert!(ended.is_err(), "forever never returns");
        assert_eq!(attempts.into_inner(), 4);
        assert_eq!(reported, [(1, FIRST_PAUSE), (3, FIRST_PAUSE)]);
    }
}
