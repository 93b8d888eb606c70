//! Group commit across aggregates: appends of different aggregates that wait for a writer
//! at the same time are inserted in one statement (one transaction), and a conflict of one
//! of them never fails the others. Real PostgreSQL, through the event store itself.

use crate::common;

use std::collections::HashSet;

use commands::store::{self, Actor, AppendError, EventStore};
use domain::budget::{Budget, BudgetEvent};
use futures::future::join_all;
use sqlx::{PgPool, Row};

fn limit_set(tenant: &str) -> BudgetEvent {
    BudgetEvent::BudgetLimitSet {
        tenant_id: tenant.to_string(),
        project_id: "p".to_string(),
        total: 1000,
        previous_total: None,
    }
}

async fn migrated_pool() -> PgPool {
    let url = common::fresh_database().await;
    let pool = store::connect(&url, 16).await.expect("connect");
    store::migrate(&pool).await.expect("migrate");
    pool
}

/// (aggregate id, sequence, transaction id) of every stored event.
async fn stored(pool: &PgPool) -> Vec<(String, i64, String)> {
    sqlx::query(
        "SELECT aggregate_id, sequence, transaction_id::text AS tx FROM events ORDER BY global_position",
    )
    .fetch_all(pool)
    .await
    .expect("read events")
    .iter()
    .map(|row| {
        (
            row.get("aggregate_id"),
            row.get("sequence"),
            row.get("tx"),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_of_many_aggregates_share_transactions() {
    let pool = migrated_pool().await;
    let store = EventStore::new(pool.clone());
    let actor = Actor::new("test", "test");
    let ids: Vec<String> = (0..300).map(|i| format!("t{i}/p")).collect();
    let results = join_all(ids.iter().map(|id| {
        let events = [limit_set(id)];
        let (store, actor) = (&store, &actor);
        async move { store.append::<Budget>(id, 0, &events, actor).await }
    }))
    .await;
    let mut positions = HashSet::new();
    for result in results {
        match result {
            Ok(position) => assert!(positions.insert(position), "a position was returned twice"),
            Err(_) => panic!("an append of a fresh aggregate failed"),
        }
    }
    let events = stored(&pool).await;
    assert_eq!(events.len(), 300, "every append is stored once");
    let stored_ids: HashSet<&str> = events.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(stored_ids.len(), 300);
    let transactions: HashSet<&str> = events.iter().map(|(_, _, tx)| tx.as_str()).collect();
    // 300 appends queued at once, four writers: most go in shared statements.
    assert!(
        transactions.len() <= 100,
        "300 appends took {} transactions; expected them grouped",
        transactions.len()
    );
    // Each caller got the position of its own event.
    let by_position: Vec<i64> = sqlx::query_scalar("SELECT global_position FROM events")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(positions, by_position.into_iter().collect::<HashSet<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_in_a_shared_statement_fails_only_its_own_aggregate() {
    let pool = migrated_pool().await;
    let store = EventStore::new(pool.clone());
    let actor = Actor::new("test", "test");
    // "taken/p" already has its first event: appending at version 0 again conflicts.
    store
        .append::<Budget>("taken/p", 0, &[limit_set("taken")], &actor)
        .await
        .map_err(|_| "first append")
        .unwrap();
    for round in 0..5 {
        let ids: Vec<String> = (0..100).map(|i| format!("r{round}-{i}/p")).collect();
        let mut appends: Vec<_> = ids
            .iter()
            .map(|id| (id.clone(), vec![limit_set(id)]))
            .collect();
        appends.insert(50, ("taken/p".to_string(), vec![limit_set("taken")]));
        let results = join_all(
            appends
                .iter()
                .map(|(id, events)| store.append::<Budget>(id, 0, events, &actor)),
        )
        .await;
        for ((id, _), result) in appends.iter().zip(results) {
            match (id.as_str(), result) {
                ("taken/p", Err(AppendError::Conflict)) => {}
                ("taken/p", _) => panic!("the conflicting append was not refused as a conflict"),
                (_, Ok(_)) => {}
                (other, Err(_)) => panic!("{other} failed because of another aggregate"),
            }
        }
    }
    let events = stored(&pool).await;
    assert_eq!(events.len(), 1 + 5 * 100, "nothing lost, nothing doubled");
    let taken: Vec<_> = events.iter().filter(|(id, _, _)| id == "taken/p").collect();
    assert_eq!(taken.len(), 1);
}

/// One event store serves every aggregate type: budgets and breakers written at the same
/// moment through their services share statements (ADR 007, ADR 017).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_and_breakers_on_one_store_share_transactions() {
    use commands::breaker::BreakerService;
    use commands::budget::BudgetService;
    use commands::clock::SystemClock;
    use domain::breaker::BreakerConfig;
    use std::sync::Arc;

    let pool = migrated_pool().await;
    let store = EventStore::new(pool.clone());
    let budgets = BudgetService::new(store.clone(), Arc::new(SystemClock));
    let breakers = BreakerService::new(store, Arc::new(SystemClock));
    let actor = Actor::new("test", "test");
    let limits =
        join_all((0..150).map(|i| budgets.set_limit(format!("t{i}"), "p".into(), 1000, &actor)));
    let configs = join_all((0..150).map(|i| {
        let config = BreakerConfig {
            failure_threshold: 3,
            ..BreakerConfig::default()
        };
        let (breakers, actor) = (&breakers, &actor);
        async move { breakers.configure(&format!("dep{i}"), config, actor).await }
    }));
    let (limits, configs) = futures::join!(limits, configs);
    assert!(limits.iter().all(Result::is_ok), "every limit is set");
    assert!(
        configs.iter().all(Result::is_ok),
        "every breaker is configured"
    );

    let mixed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT transaction_id FROM events GROUP BY transaction_id
             HAVING count(DISTINCT aggregate_type) > 1) shared",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        mixed > 0,
        "no transaction held both a budget's and a breaker's event"
    );
}
