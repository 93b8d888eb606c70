//! Concurrency limit with a bounded queue. At most `max_concurrent` runs at once, at most
//! `queue_size` more waiting; past that a request is refused at once (429), and one that waited
//! `queue_timeout` without a runner is refused too (503). Both carry Retry-After.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

pub struct Admission {
    runners: Arc<Semaphore>,
    /// Running + waiting.
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    max_concurrent: usize,
    queue_timeout: Duration,
    retry_after_secs: u64,
}

/// A place in the system (running or waiting); given back on drop.
pub struct Ticket {
    admitted: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The right to run now: a ticket and a runner.
pub struct Permit {
    _ticket: Ticket,
    _runner: OwnedSemaphorePermit,
}

impl Admission {
    /// `retry_after` is what a refused client is told to wait: about one typical run.
    pub fn new(
        max_concurrent: usize,
        queue_size: usize,
        queue_timeout: Duration,
        retry_after: Duration,
    ) -> Self {
        Admission {
            runners: Arc::new(Semaphore::new(max_concurrent)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: max_concurrent + queue_size,
            max_concurrent,
            queue_timeout,
            retry_after_secs: retry_after.as_secs().max(1),
        }
    }

    /// Takes a place or refuses at once with 429.
    pub fn enter(&self) -> Result<Ticket, ApiError> {
        let mut current = self.admitted.load(Ordering::Acquire);
        loop {
            if current >= self.capacity {
                return Err(ApiError::QueueFull {
                    retry_after_secs: self.retry_after_secs,
                });
            }
            match self.admitted.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(Ticket {
                        admitted: self.admitted.clone(),
                    })
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Waits for a runner, at most the queue timeout (then 503).
    pub async fn run(&self, ticket: Ticket) -> Result<Permit, ApiError> {
        match tokio::time::timeout(self.queue_timeout, self.runners.clone().acquire_owned()).await {
            Ok(Ok(runner)) => Ok(Permit {
                _ticket: ticket,
                _runner: runner,
            }),
            _ => Err(ApiError::Unavailable {
                code: "queue_timeout",
                message: "no runner became free in time; retry later".into(),
                retry_after_secs: self.retry_after_secs,
            }),
        }
    }

    /// Runs holding a runner now.
    pub fn running(&self) -> usize {
        self.max_concurrent - self.runners.available_permits()
    }

    /// Requests waiting for a runner.
    pub fn waiting(&self) -> usize {
        self.admitted
            .load(Ordering::Acquire)
            .saturating_sub(self.running())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_runners_plus_queue_requests_are_refused_with_429() {
        let a = Admission::new(1, 1, Duration::from_millis(50), Duration::from_secs(3));
        let first = a.run(a.enter().unwrap()).await.unwrap();
        let second = a.enter().unwrap();
        match a.enter() {
            Err(ApiError::QueueFull { retry_after_secs }) => assert_eq!(retry_after_secs, 3),
            _ => panic!("third request must be refused"),
        }
        assert_eq!((a.running(), a.waiting()), (1, 1));
        // The waiting one times out with 503 while the runner is held.
        let waited = a.run(second).await;
        assert!(matches!(waited, Err(ApiError::Unavailable { .. })));
        drop(first);
        assert_eq!((a.running(), a.waiting()), (0, 0));
        assert!(a.run(a.enter().unwrap()).await.is_ok());
    }
}
