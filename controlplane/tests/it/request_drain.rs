//! The NATS request server's stop under load: a process that stops taking commands
//! (`serve_requests` cancelled) answers every request NATS delivered to it, and the
//! requests after its stop go to the other members of the queue group — no requester
//! waits for an answer that never comes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use commands::request_server::{serve_requests, Requests};
use commands::CommandError;
use tokio_util::sync::CancellationToken;

use crate::common;

/// Answers every request with its own body.
struct Echo;

impl Requests for Echo {
    async fn answer(&self, message: &async_nats::Message) -> Result<Vec<u8>, CommandError> {
        Ok(message.payload.to_vec())
    }
}

fn listen(
    client: async_nats::Client,
    subject: String,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        serve_requests(client, subject, 64, Arc::new(Echo), shutdown)
            .await
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopping_listener_answers_every_request_it_was_sent() {
    let url = common::nats_url();
    let subject = format!("{}.drain.echo", common::unique_prefix());
    let requester = common::connect(&url).await.unwrap();
    let mut unanswered = Vec::new();
    for round in 0..10 {
        let staying = CancellationToken::new();
        let stopping = CancellationToken::new();
        let stay = listen(
            common::connect(&url).await.unwrap(),
            subject.clone(),
            staying.clone(),
        );
        // Kept open until the round ends: a connection closed at once may lose the last
        // replies written to it (the server's own stop waits for a round trip).
        let stopping_client = common::connect(&url).await.unwrap();
        let stop = listen(stopping_client.clone(), subject.clone(), stopping.clone());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let halt = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let load: Vec<_> = (0..16)
            .map(|w| {
                let (requester, subject, halt, sent) = (
                    requester.clone(),
                    subject.clone(),
                    halt.clone(),
                    sent.clone(),
                );
                tokio::spawn(async move {
                    let mut lost = Vec::new();
                    let mut i = 0;
                    while !halt.load(Ordering::SeqCst) {
                        i += 1;
                        sent.fetch_add(1, Ordering::SeqCst);
                        let body = format!("{round}-{w}-{i}");
                        let request = requester.request(subject.clone(), body.clone().into());
                        match tokio::time::timeout(Duration::from_secs(3), request).await {
                            Ok(Ok(reply)) if reply.payload == body.as_bytes() => {}
                            other => lost.push(format!("{body}: {other:?}")),
                        }
                    }
                    lost
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stopping.cancel();
        stop.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        halt.store(true, Ordering::SeqCst);
        for worker in load {
            unanswered.extend(worker.await.unwrap());
        }
        staying.cancel();
        stay.await.unwrap();
        drop(stopping_client);
        eprintln!("round {round}: {} requests", sent.load(Ordering::SeqCst));
    }
    assert!(
        unanswered.is_empty(),
        "every request was answered: {unanswered:?}"
    );
}
