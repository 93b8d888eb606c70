//! The read models' contiguous watermark (migrations/0018_projection_watermark.sql, ADR 023):
//! batches that commit in either order, the step function case by case, a process of an
//! earlier version, replay, and the live projector under concurrent writers (the watermark
//! never covers an event that is not applied, and reaches the end of the log).

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::TestEnv;
use projections::apply::{apply_batch, BatchSpan};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use streams::{EventEnvelope, LogPosition};

/// A migrated database of its own, without a server (nothing else writes the checkpoint).
async fn database() -> PgPool {
    let url = common::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    commands::store::migrate(&pool).await.unwrap();
    pool
}

/// `n` events of aggregates no read model keeps (the versions still move), one aggregate
/// each, in commit order.
async fn events(pool: &PgPool, n: usize) -> Vec<EventEnvelope> {
    for i in 0..n {
        // One transaction each: one transaction id each.
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata)
             VALUES ('WatermarkTest', $1, 1, 'Noted', '1', '{}', '{}')",
        )
        .bind(format!("a{i}"))
        .execute(pool)
        .await
        .unwrap();
    }
    // All of them, committed: not through the commit-order horizon, which another test's
    // open transaction on the shared cluster can hold back.
    let sql = format!(
        "SELECT {} FROM events ORDER BY {}",
        streams::envelope::SELECT_ENVELOPE,
        streams::envelope::COMMIT_ORDER
    );
    sqlx::query(&sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| EventEnvelope::from_row(row).unwrap())
        .collect()
}

fn span(from: Option<&EventEnvelope>, to: &EventEnvelope) -> BatchSpan {
    BatchSpan {
        stream_seq: None,
        from: from.map_or_else(LogPosition::start, EventEnvelope::position),
        to: to.position(),
        floor: None,
    }
}

/// (watermark position, ahead from, ahead to) as the row holds them.
async fn state(pool: &PgPool) -> (Option<i64>, Option<i64>, Option<i64>) {
    sqlx::query_as(
        "SELECT watermark_position, ahead_from_position, ahead_to_position
           FROM projection_checkpoints WHERE name = 'read_models'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Applies `batch` with `span` in a transaction of its own, committed.
async fn apply(pool: &PgPool, batch: &[EventEnvelope], span: &BatchSpan) {
    let mut tx = pool.begin().await.unwrap();
    apply_batch(&mut tx, batch, Some(span)).await.unwrap();
    tx.commit().await.unwrap();
}

/// Two batches in flight at once, each in its own transaction: whichever writes the
/// checkpoint row second waits for the first one's commit and sees its values, so the
/// watermark ends at the later batch's end in both orders, and never covers the later
/// batch before the earlier one has committed.
#[tokio::test]
async fn two_batches_committing_in_either_order_end_at_the_same_watermark() {
    let pool = database().await;
    let e = events(&pool, 8).await;
    assert_eq!(e.len(), 8);

    // The later batch commits first: its range waits ahead, and the watermark is unknown
    // until the first batch of the projector (which starts at the beginning) commits.
    apply(&pool, &e[2..4], &span(Some(&e[1]), &e[3])).await;
    assert_eq!(
        state(&pool).await,
        (None, Some(e[1].global_position), Some(e[3].global_position))
    );
    assert_eq!(
        projections::query::read_position(&pool).await.unwrap(),
        None
    );
    apply(&pool, &e[0..2], &span(None, &e[1])).await;
    assert_eq!(
        state(&pool).await,
        (Some(e[3].global_position), None, None),
        "the earlier batch takes the range ahead in"
    );

    // Both in flight: the earlier one writes first and holds the row until it commits;
    // the later one waits for it and then moves the watermark to its own end.
    let mut earlier = pool.begin().await.unwrap();
    apply_batch(&mut earlier, &e[4..6], Some(&span(Some(&e[3]), &e[5])))
        .await
        .unwrap();
    let later = {
        let pool = pool.clone();
        let batch = e[6..8].to_vec();
        let span = span(Some(&e[5]), &e[7]);
        tokio::spawn(async move { apply(&pool, &batch, &span).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!later.is_finished(), "the later batch waits for the row");
    assert_eq!(state(&pool).await.0, Some(e[3].global_position));
    earlier.commit().await.unwrap();
    later.await.unwrap();
    assert_eq!(state(&pool).await, (Some(e[7].global_position), None, None));
}

/// The other order: the later batch writes the row first; the earlier one waits for its
/// commit, then finds its range ahead and joins it.
#[tokio::test]
async fn the_later_batch_writing_first_is_joined_by_the_earlier_one() {
    let pool = database().await;
    let e = events(&pool, 6).await;
    apply(&pool, &e[0..2], &span(None, &e[1])).await;

    let mut later = pool.begin().await.unwrap();
    apply_batch(&mut later, &e[4..6], Some(&span(Some(&e[3]), &e[5])))
        .await
        .unwrap();
    let earlier = {
        let pool = pool.clone();
        let batch = e[2..4].to_vec();
        let span = span(Some(&e[1]), &e[3]);
        tokio::spawn(async move { apply(&pool, &batch, &span).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !earlier.is_finished(),
        "the earlier batch waits for the row"
    );
    // The later one commits with its range ahead (the earlier one, waiting, sees it then
    // and takes it in).
    later.commit().await.unwrap();
    earlier.await.unwrap();
    assert_eq!(state(&pool).await, (Some(e[5].global_position), None, None));
}

/// A batch that applies nothing (a redelivery) still moves the watermark over its range.
#[tokio::test]
async fn a_redelivered_batch_moves_the_watermark_too() {
    let pool = database().await;
    let e = events(&pool, 4).await;
    // Applied without a span (as `controlplane replay`'s per-event code or a test would):
    // the versions move, the watermark does not.
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(apply_batch(&mut tx, &e, None).await.unwrap(), 4);
    tx.commit().await.unwrap();
    assert_eq!(state(&pool).await.0, None);
    apply(&pool, &e, &span(None, &e[3])).await;
    assert_eq!(state(&pool).await.0, Some(e[3].global_position));
}

/// The step function, case by case (positions stand for commit keys here: transaction
/// ids equal to them).
#[tokio::test]
async fn the_watermark_step_joins_touching_ranges_keeps_the_newest_and_takes_the_floor() {
    let pool = database().await;
    type State = (Option<i64>, Option<i64>, Option<i64>);
    /// (watermark, ahead from, ahead to), batch (from, to), floor -> expected
    type Case = (State, Option<(i64, i64)>, Option<i64>, State);
    let cases: &[Case] = &[
        // Unknown watermark: a batch from the start sets it, another waits ahead.
        (
            (None, None, None),
            Some((0, 5)),
            None,
            (Some(5), None, None),
        ),
        (
            (None, None, None),
            Some((5, 9)),
            None,
            (None, Some(5), Some(9)),
        ),
        // In order; overlapping the watermark (a redelivery); entirely before it.
        (
            (Some(5), None, None),
            Some((5, 9)),
            None,
            (Some(9), None, None),
        ),
        (
            (Some(9), None, None),
            Some((3, 12)),
            None,
            (Some(12), None, None),
        ),
        (
            (Some(9), None, None),
            Some((1, 4)),
            None,
            (Some(9), None, None),
        ),
        // Ahead of it, then the gap filled: the two become one.
        (
            (Some(5), None, None),
            Some((9, 12)),
            None,
            (Some(5), Some(9), Some(12)),
        ),
        (
            (Some(5), Some(9), Some(12)),
            Some((5, 9)),
            None,
            (Some(12), None, None),
        ),
        // Filling only part of the gap leaves the range ahead.
        (
            (Some(5), Some(9), Some(12)),
            Some((5, 7)),
            None,
            (Some(7), Some(9), Some(12)),
        ),
        // A range touching the one ahead joins it; one apart replaces it.
        (
            (Some(5), Some(9), Some(12)),
            Some((12, 15)),
            None,
            (Some(5), Some(9), Some(15)),
        ),
        (
            (Some(5), Some(9), Some(12)),
            Some((7, 9)),
            None,
            (Some(5), Some(7), Some(12)),
        ),
        (
            (Some(5), Some(9), Some(12)),
            Some((20, 25)),
            None,
            (Some(5), Some(20), Some(25)),
        ),
        // The floor: everything up to it is applied, and a range ahead it reaches joins.
        (
            (Some(5), Some(20), Some(25)),
            None,
            Some(18),
            (Some(18), Some(20), Some(25)),
        ),
        (
            (Some(5), Some(20), Some(25)),
            None,
            Some(20),
            (Some(25), None, None),
        ),
        (
            (None, Some(20), Some(25)),
            Some((25, 30)),
            Some(22),
            (Some(30), None, None),
        ),
        (
            (Some(30), None, None),
            None,
            Some(7),
            (Some(30), None, None),
        ),
    ];
    for (before, batch, floor, expected) in cases {
        let got: State = sqlx::query_as(
            "SELECT s.watermark_position, s.ahead_from_position, s.ahead_to_position
               FROM projection_watermark_step(
                      $1::text::xid8, $1, $2::text::xid8, $2, $3::text::xid8, $3,
                      $4::text::xid8, $4, $5::text::xid8, $5, $6::text::xid8, $6) s",
        )
        .bind(before.0)
        .bind(before.1)
        .bind(before.2)
        .bind(batch.map(|b| b.0))
        .bind(batch.map(|b| b.1))
        .bind(*floor)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(got, *expected, "{before:?} + {batch:?}, floor {floor:?}");
    }
}

/// A process of an earlier version moves the checkpoint without keeping the watermark:
/// the watermark becomes unknown rather than stale, and `min_position` falls back to the
/// event's own aggregate until a current projector's first batch sets it again.
#[tokio::test]
async fn a_checkpoint_written_by_an_earlier_version_makes_the_watermark_unknown() {
    let pool = database().await;
    let e = events(&pool, 3).await;
    apply(&pool, &e[0..2], &span(None, &e[1])).await;
    assert_eq!(state(&pool).await.0, Some(e[1].global_position));
    // What the previous version's statement does (it names none of the new columns).
    sqlx::query(
        "UPDATE projection_checkpoints SET applied = applied + 1, last_position = $1, updated_at = now()
          WHERE name = 'read_models'",
    )
    .bind(e[2].global_position)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(state(&pool).await, (None, None, None));
    let mut tx = pool.begin().await.unwrap();
    apply_batch(&mut tx, &e[2..3], None).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        projections::query::is_applied(&pool, e[2].global_position)
            .await
            .unwrap(),
        "per aggregate while the watermark is unknown"
    );
    apply(&pool, &e[0..3], &span(None, &e[2])).await;
    assert_eq!(state(&pool).await.0, Some(e[2].global_position));
}

/// Waits until the watermark is the last event of the log in commit order.
async fn watermark_at_the_end(pool: &PgPool, timeout: Duration) -> (Option<i64>, i64) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (watermark, last): (Option<i64>, i64) = sqlx::query_as(
            "SELECT (SELECT watermark_position FROM projection_checkpoints WHERE name = 'read_models'),
                    (SELECT global_position FROM events
                      ORDER BY transaction_id DESC, global_position DESC LIMIT 1)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if watermark == Some(last) || tokio::time::Instant::now() > deadline {
            return (watermark, last);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The live projector under concurrent writers, two batches in flight: sampled over and
/// over in one statement (one snapshot), every event at or before the watermark is applied
/// (its aggregate's version has it), and when the writers stop the watermark is the last
/// event. Then a replay: the watermark is still the last event, and moves on with the next
/// events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_concurrent_writers_the_watermark_never_covers_an_unapplied_event() {
    let env = Arc::new(TestEnv::start().await);
    let budgets: Vec<(String, String)> = (0..12)
        .map(|i| (format!("org{}", i % 3), format!("p{i}")))
        .collect();
    for (tenant, project) in &budgets {
        env.set_limit(tenant, project, 1_000_000).await;
    }
    let pool = PgPool::connect(&env.database_url).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicU64::new(0));
    let ahead_seen = Arc::new(AtomicU64::new(0));
    let checker = {
        let (pool, stop, samples, ahead_seen) = (
            pool.clone(),
            stop.clone(),
            samples.clone(),
            ahead_seen.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (watermark, ahead, unapplied): (Option<i64>, bool, Option<i64>) =
                    sqlx::query_as(
                        "SELECT c.watermark_position, c.ahead_from_tx IS NOT NULL,
                                (SELECT e.global_position FROM events e
                                   LEFT JOIN projection_versions v
                                     ON v.aggregate_type = e.aggregate_type
                                    AND v.aggregate_id = e.aggregate_id
                                  WHERE (e.transaction_id, e.global_position)
                                        <= (c.watermark_tx, c.watermark_position)
                                    AND COALESCE(v.version, 0) < e.sequence
                                  LIMIT 1)
                           FROM projection_checkpoints c WHERE c.name = 'read_models'",
                    )
                    .fetch_optional(&pool)
                    .await
                    .unwrap()
                    .unwrap_or((None, false, None));
                assert_eq!(
                    unapplied, None,
                    "the watermark {watermark:?} covers an event that is not applied"
                );
                samples.fetch_add(1, Ordering::Relaxed);
                if ahead {
                    ahead_seen.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let env = env.clone();
            let budgets = budgets.clone();
            tokio::spawn(async move {
                for i in 0..60 {
                    let (tenant, project) = &budgets[(w * 7 + i) % budgets.len()];
                    let (status, body) = env
                        .post(
                            "/budget/request",
                            json!({"tenant_id": tenant, "project_id": project,
                                   "task_id": format!("w{w}-{i}"), "model": "m",
                                   "estimated_tokens": 10}),
                        )
                        .await;
                    assert_eq!(status, StatusCode::OK, "{body}");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let (watermark, last) = watermark_at_the_end(&pool, Duration::from_secs(30)).await;
    stop.store(true, Ordering::Relaxed);
    checker.await.unwrap();
    assert_eq!(
        watermark,
        Some(last),
        "the watermark reaches the end of the log"
    );
    assert!(samples.load(Ordering::Relaxed) > 10, "the checker ran");
    eprintln!(
        "{} samples, {} with a range ahead of the watermark",
        samples.load(Ordering::Relaxed),
        ahead_seen.load(Ordering::Relaxed)
    );

    // Every read answers it, in the header and the body.
    let (tenant, project) = &budgets[0];
    let response = env
        .http
        .get(env.url(&format!(
            "/budget/state?tenant_id={tenant}&project_id={project}"
        )))
        .bearer_auth(&env.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-read-position"],
        last.to_string().as_str()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["read_position"], last);

    // A replay rebuilds up to the last event, which stays the watermark; the projector
    // moves it on from there.
    projections::replay::replay(&pool, |_, _| {}).await.unwrap();
    assert_eq!(state(&pool).await, (Some(last), None, None));
    let (_, answer) = env
        .post(
            "/budget/request",
            json!({"tenant_id": tenant, "project_id": project, "task_id": "after-replay",
                   "model": "m", "estimated_tokens": 10}),
        )
        .await;
    let (watermark, last) = watermark_at_the_end(&pool, Duration::from_secs(30)).await;
    assert_eq!(watermark, Some(last));
    assert_eq!(Some(last), answer["position"].as_i64());
}
