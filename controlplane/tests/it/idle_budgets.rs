//! Memory of budgets that stop closing reservations (issue 16's soak): a budget forgets
//! its old closings when it closes another, so one that went idle kept its last two
//! minutes of closings for as long as it stayed cached. The expiry worker's
//! `forget_old_closings` drops them once no command can recall them, and what a command
//! decides does not depend on whether they were dropped. Real PostgreSQL, through the
//! budget service itself, on a clock the test moves.

use crate::common;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use commands::budget::{BudgetService, FORGET_MARGIN_SECONDS};
use commands::clock::Clock;
use commands::store::{self, Actor, EventStore};
use commands::CommandError;
use domain::budget::{BudgetReply, CLOSED_RETENTION_SECONDS};
use uuid::Uuid;

struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, seconds: i64) {
        *self.0.lock().unwrap() += Duration::seconds(seconds);
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Closings held, once the budgets' queue tasks have let go of them: a budget in use is
/// skipped by `closings_held` (and by `forget_old_closings`), and its task holds it for a
/// moment after its answer went out.
async fn held(service: &BudgetService, expected: usize) -> usize {
    let mut held = service.closings_held();
    for _ in 0..100 {
        if held == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        held = service.closings_held();
    }
    held
}

/// Calls `forget_old_closings` until it has dropped `expected` closings (a budget in use
/// is skipped until the next call, as in the expiry worker), for at most 2 s; returns how
/// many it dropped in all.
async fn forget(service: &BudgetService, expected: usize) -> usize {
    let mut dropped = service.forget_old_closings();
    for _ in 0..100 {
        if dropped >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        dropped += service.forget_old_closings();
    }
    dropped
}

const BUDGETS: usize = 20;
const PER_BUDGET: usize = 25;

/// `BUDGETS` budgets with `PER_BUDGET` reservations each, every one committed; returns the
/// reservations.
async fn busy_then_idle(service: &BudgetService, actor: &Actor) -> Vec<Uuid> {
    let mut reservations = Vec::new();
    for b in 0..BUDGETS {
        service
            .set_limit("idle".into(), format!("p{b}"), 1_000_000, actor)
            .await
            .expect("limit");
        for r in 0..PER_BUDGET {
            let reserved = service
                .reserve(
                    "idle".into(),
                    format!("p{b}"),
                    format!("t{r}"),
                    "m".into(),
                    10,
                    600,
                    actor,
                )
                .await
                .expect("reserve");
            let BudgetReply::Reserved { reservation_id, .. } = reserved.reply else {
                panic!("not approved: {:?}", reserved.reply);
            };
            service
                .commit(reservation_id, 7, actor)
                .await
                .expect("commit");
            reservations.push(reservation_id);
        }
    }
    reservations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_budget_drops_its_closings_once_no_command_can_recall_them() {
    let pool = store::connect(&common::fresh_database().await, 8)
        .await
        .expect("connect");
    store::migrate(&pool).await.expect("migrate");
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let service = BudgetService::new(EventStore::new(pool), clock.clone());
    let actor = Actor::new("test", "test");
    let reservations = busy_then_idle(&service, &actor).await;
    let closings = BUDGETS * PER_BUDGET;
    assert_eq!(held(&service, closings).await, closings);
    assert_eq!(
        service.indexed_reservations(),
        0,
        "the reservation → budget map keeps open reservations only"
    );

    // Within the window the budgets keep every closing, and a repeat gets the first answer.
    clock.advance(CLOSED_RETENTION_SECONDS - 1);
    assert_eq!(service.forget_old_closings(), 0);
    assert_eq!(held(&service, closings).await, closings);
    let repeat = service
        .commit(reservations[0], 7, &actor)
        .await
        .expect("repeat");
    assert_eq!(repeat.appended, 0, "a repeat records nothing");

    // Past the window no command recalls them, dropped or not: a repeat is unknown (404)
    // and records nothing, although the closing is still in memory...
    clock.advance(2);
    assert_eq!(
        held(&service, closings).await,
        closings,
        "nothing dropped yet"
    );
    let late = service.commit(reservations[1], 7, &actor).await;
    assert!(
        matches!(late, Err(CommandError::NotFound(_))),
        "a repeat after the window is unknown: {late:?}"
    );
    // ...and the margin for commands still in a queue keeps them a little longer.
    assert_eq!(service.forget_old_closings(), 0);

    // Past the margin every idle budget drops them all: nothing stays but the budgets.
    clock.advance(FORGET_MARGIN_SECONDS);
    assert_eq!(forget(&service, closings).await, closings);
    assert_eq!(held(&service, 0).await, 0);
    let after = service.commit(reservations[2], 7, &actor).await;
    assert!(
        matches!(after, Err(CommandError::NotFound(_))),
        "the same answer once dropped: {after:?}"
    );
    let release = service.release(reservations[3], &actor).await;
    assert!(
        matches!(release, Err(CommandError::NotFound(_))),
        "a release too: {release:?}"
    );

    // The budgets go on as before: a new reservation, committed and repeated.
    let reserved = service
        .reserve(
            "idle".into(),
            "p0".into(),
            "again".into(),
            "m".into(),
            10,
            600,
            &actor,
        )
        .await
        .expect("reserve again");
    let BudgetReply::Reserved { reservation_id, .. } = reserved.reply else {
        panic!("not approved: {:?}", reserved.reply);
    };
    service
        .commit(reservation_id, 7, &actor)
        .await
        .expect("commit");
    let again = service
        .commit(reservation_id, 7, &actor)
        .await
        .expect("repeat");
    assert_eq!(again.appended, 0);
    assert_eq!(held(&service, 1).await, 1);
}
