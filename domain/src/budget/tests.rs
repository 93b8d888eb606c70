//! Given/when/then tests, one rule each.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::budget::{BudgetCommand, BudgetEvent, DenialReason};

type BudgetTest = TestFramework<Budget>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn rid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn limit_set(total: u64) -> BudgetEvent {
    BudgetEvent::BudgetLimitSet {
        tenant_id: "org1".into(),
        project_id: "proj1".into(),
        total,
        previous_total: None,
    }
}

fn reserved(n: u128, task: &str, allocated: u64, used: u64, reserved: u64) -> BudgetEvent {
    BudgetEvent::TokensReserved {
        tenant_id: "org1".into(),
        project_id: "proj1".into(),
        reservation_id: rid(n),
        task_id: task.into(),
        model: "gpt-4".into(),
        allocated,
        expires_at: t0() + Duration::seconds(600),
        used,
        reserved,
    }
}

fn reserve(n: u128, task: &str, estimated: u64) -> BudgetCommand {
    BudgetCommand::ReserveTokens {
        tenant_id: "org1".into(),
        project_id: "proj1".into(),
        reservation_id: rid(n),
        task_id: task.into(),
        model: "gpt-4".into(),
        estimated_tokens: estimated,
        ttl_seconds: 600,
        now: t0(),
    }
}

fn decide(given: Vec<BudgetEvent>, command: BudgetCommand) -> Result<BudgetReply, BudgetError> {
    let mut budget = Budget::default();
    for event in given {
        budget.apply(event);
    }
    budget.decide(command).map(|(_, reply)| reply)
}

#[test]
fn setting_a_limit_records_it() {
    BudgetTest::with(())
        .given_no_previous_events()
        .when(BudgetCommand::SetLimit {
            tenant_id: "org1".into(),
            project_id: "proj1".into(),
            total_tokens: 100_000,
        })
        .then_expect_events(vec![limit_set(100_000)]);
}

#[test]
fn changing_a_limit_records_the_previous_one() {
    BudgetTest::with(())
        .given(vec![limit_set(100)])
        .when(BudgetCommand::SetLimit {
            tenant_id: "org1".into(),
            project_id: "proj1".into(),
            total_tokens: 50,
        })
        .then_expect_events(vec![BudgetEvent::BudgetLimitSet {
            tenant_id: "org1".into(),
            project_id: "proj1".into(),
            total: 50,
            previous_total: Some(100),
        }]);
}

#[test]
fn a_reservation_that_fits_is_approved() {
    BudgetTest::with(())
        .given(vec![limit_set(1000)])
        .when(reserve(1, "t1", 400))
        .then_expect_events(vec![reserved(1, "t1", 400, 0, 400)]);
}

#[test]
fn a_reservation_that_exactly_fills_the_budget_is_approved() {
    BudgetTest::with(())
        .given(vec![limit_set(1000), reserved(1, "t1", 600, 0, 600)])
        .when(reserve(2, "t2", 400))
        .then_expect_events(vec![reserved(2, "t2", 400, 0, 1000)]);
}

#[test]
fn a_reservation_past_the_limit_is_denied_and_recorded() {
    BudgetTest::with(())
        .given(vec![limit_set(1000), reserved(1, "t1", 700, 0, 700)])
        .when(reserve(2, "t2", 301))
        .then_expect_events(vec![BudgetEvent::ReservationDenied {
            tenant_id: "org1".into(),
            project_id: "proj1".into(),
            task_id: "t2".into(),
            model: "gpt-4".into(),
            requested: 301,
            reason: DenialReason::InsufficientBudget,
            available: 300,
        }]);
}

#[test]
fn used_tokens_count_against_the_limit() {
    let given = vec![
        limit_set(1000),
        reserved(1, "t1", 500, 0, 500),
        BudgetEvent::UsageCommitted {
            reservation_id: rid(1),
            allocated: 500,
            actual_tokens: 900,
            overage: 400,
            late: false,
            used: 900,
            reserved: 0,
            closed_at: None,
        },
    ];
    let reply = decide(given, reserve(2, "t2", 101)).unwrap();
    assert!(matches!(
        reply,
        BudgetReply::Denied {
            reason: DenialReason::InsufficientBudget,
            available: 100,
            ..
        }
    ));
}

#[test]
fn a_reservation_without_a_limit_is_denied_as_no_budget() {
    BudgetTest::with(())
        .given_no_previous_events()
        .when(reserve(1, "t1", 1))
        .then_expect_events(vec![BudgetEvent::ReservationDenied {
            tenant_id: "org1".into(),
            project_id: "proj1".into(),
            task_id: "t1".into(),
            model: "gpt-4".into(),
            requested: 1,
            reason: DenialReason::NoBudget,
            available: 0,
        }]);
}

#[test]
fn the_same_task_gets_its_open_reservation_back_without_a_new_event() {
    BudgetTest::with(())
        .given(vec![limit_set(1000), reserved(1, "t1", 400, 0, 400)])
        .when(reserve(2, "t1", 400))
        .then_expect_events(vec![]);
    let reply = decide(
        vec![limit_set(1000), reserved(1, "t1", 400, 0, 400)],
        reserve(2, "t1", 400),
    )
    .unwrap();
    assert!(matches!(
        reply,
        BudgetReply::Reserved { reservation_id, existing: true, allocated: 400, .. } if reservation_id == rid(1)
    ));
}

#[test]
fn a_task_whose_reservation_closed_may_reserve_again() {
    BudgetTest::with(())
        .given(vec![
            limit_set(1000),
            reserved(1, "t1", 400, 0, 400),
            BudgetEvent::ReservationReleased {
                reservation_id: rid(1),
                allocated: 400,
                used: 0,
                reserved: 0,
                closed_at: None,
            },
        ])
        .when(reserve(2, "t1", 100))
        .then_expect_events(vec![reserved(2, "t1", 100, 0, 100)]);
}

#[test]
fn lowering_the_limit_below_usage_is_allowed_and_stops_new_reservations() {
    let given = vec![limit_set(1000), reserved(1, "t1", 800, 0, 800)];
    let reply = decide(
        given.clone(),
        BudgetCommand::SetLimit {
            tenant_id: "org1".into(),
            project_id: "proj1".into(),
            total_tokens: 100,
        },
    )
    .unwrap();
    assert!(
        matches!(reply, BudgetReply::LimitSet { totals } if totals.available == 0 && totals.reserved == 800)
    );
    let mut lowered = given;
    lowered.push(BudgetEvent::BudgetLimitSet {
        tenant_id: "org1".into(),
        project_id: "proj1".into(),
        total: 100,
        previous_total: Some(1000),
    });
    assert!(matches!(
        decide(lowered, reserve(2, "t2", 1)).unwrap(),
        BudgetReply::Denied {
            reason: DenialReason::InsufficientBudget,
            ..
        }
    ));
}

#[test]
fn committing_moves_the_allocation_from_reserved_to_actual_usage() {
    BudgetTest::with(())
        .given(vec![limit_set(1000), reserved(1, "t1", 400, 0, 400)])
        .when(BudgetCommand::CommitUsage {
            reservation_id: rid(1),
            actual_tokens: 350,
            now: t0(),
        })
        .then_expect_events(vec![BudgetEvent::UsageCommitted {
            reservation_id: rid(1),
            allocated: 400,
            actual_tokens: 350,
            overage: 0,
            late: false,
            used: 350,
            reserved: 0,
            closed_at: Some(t0()),
        }]);
}

#[test]
fn committing_more_than_allocated_is_recorded_as_overage() {
    BudgetTest::with(())
        .given(vec![limit_set(1000), reserved(1, "t1", 400, 0, 400)])
        .when(BudgetCommand::CommitUsage {
            reservation_id: rid(1),
            actual_tokens: 450,
            now: t0(),
        })
        .then_expect_events(vec![BudgetEvent::UsageCommitted {
            reservation_id: rid(1),
            allocated: 400,
            actual_tokens: 450,
            overage: 50,
            late: false,
            used: 450,
            reserved: 0,
            closed_at: Some(t0()),
        }]);
}

/// Reservation 1 (400 tokens) committed with 350, at `closed_at`.
fn committed(closed_at: Option<DateTime<Utc>>) -> Vec<BudgetEvent> {
    vec![
        limit_set(1000),
        reserved(1, "t1", 400, 0, 400),
        BudgetEvent::UsageCommitted {
            reservation_id: rid(1),
            allocated: 400,
            actual_tokens: 350,
            overage: 0,
            late: false,
            used: 350,
            reserved: 0,
            closed_at,
        },
    ]
}

fn committed_history() -> Vec<BudgetEvent> {
    then(committed(None), vec![reserved(2, "t2", 100, 350, 100)])
}

#[test]
fn repeating_a_commit_records_nothing_and_returns_the_first_answer() {
    BudgetTest::with(())
        .given(committed_history())
        .when(BudgetCommand::CommitUsage {
            reservation_id: rid(1),
            actual_tokens: 350,
            now: t0(),
        })
        .then_expect_events(vec![]);
    let reply = decide(
        committed_history(),
        BudgetCommand::CommitUsage {
            reservation_id: rid(1),
            actual_tokens: 350,
            now: t0(),
        },
    )
    .unwrap();
    // The totals are those right after the first commit, not today's.
    assert!(matches!(
        reply,
        BudgetReply::Committed { actual_tokens: 350, totals, .. } if totals.used == 350 && totals.reserved == 0
    ));
}

#[test]
fn committing_again_with_another_amount_is_a_conflict() {
    BudgetTest::with(())
        .given(committed_history())
        .when(BudgetCommand::CommitUsage {
            reservation_id: rid(1),
            actual_tokens: 999,
            now: t0(),
        })
        .then_expect_error(BudgetError::AlreadyCommitted {
            reservation_id: rid(1),
            actual_tokens: 350,
        });
}

#[test]
fn committing_a_released_reservation_is_refused() {
    BudgetTest::with(())
        .given(vec![
            limit_set(1000),
            reserved(1, "t1", 400, 0, 400),
            BudgetEvent::ReservationReleased {
                reservation_id: rid(1),
                allocated: 400,
                used: 0,
                reserved: 0,
                closed_at: None,
            },
        ])
        .when(BudgetCommand::CommitUsage {
            reservation_id: rid(1),
            actual_tokens: 10,
            now: t0(),
        })
        .then_expect_error(BudgetError::ReservationReleased(rid(1)));
}

#[test]
fn committing_an_unknown_reservation_is_refused() {
    BudgetTest::with(())
        .given(vec![limit_set(1000)])
        .when(BudgetCommand::CommitUsage {
            reservation_id: rid(9),
            actual_tokens: 10,
            now: t0(),
        })
        .then_expect_error(BudgetError::UnknownReservation(rid(9)));
}

#[test]
fn releasing_returns_the_allocation() {
    BudgetTest::with(())
        .given(vec![limit_set(1000), reserved(1, "t1", 400, 0, 400)])
        .when(BudgetCommand::ReleaseReservation {
            reservation_id: rid(1),
            now: t0(),
        })
        .then_expect_events(vec![BudgetEvent::ReservationReleased {
            reservation_id: rid(1),
            allocated: 400,
            used: 0,
            reserved: 0,
            closed_at: Some(t0()),
        }]);
}

#[test]
fn releasing_twice_records_nothing() {
    BudgetTest::with(())
        .given(vec![
            limit_set(1000),
            reserved(1, "t1", 400, 0, 400),
            BudgetEvent::ReservationReleased {
                reservation_id: rid(1),
                allocated: 400,
                used: 0,
                reserved: 0,
                closed_at: None,
            },
        ])
        .when(BudgetCommand::ReleaseReservation {
            reservation_id: rid(1),
            now: t0(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn releasing_a_committed_reservation_is_refused() {
    BudgetTest::with(())
        .given(committed_history())
        .when(BudgetCommand::ReleaseReservation {
            reservation_id: rid(1),
            now: t0(),
        })
        .then_expect_error(BudgetError::AlreadyCommitted {
            reservation_id: rid(1),
            actual_tokens: 350,
        });
}

#[test]
fn a_reservation_past_its_ttl_expires() {
    BudgetTest::with(())
        .given(vec![limit_set(1000), reserved(1, "t1", 400, 0, 400)])
        .when(BudgetCommand::ExpireReservation {
            reservation_id: rid(1),
            now: t0() + Duration::seconds(600),
        })
        .then_expect_events(vec![BudgetEvent::ReservationExpired {
            reservation_id: rid(1),
            allocated: 400,
            used: 0,
            reserved: 0,
            closed_at: Some(t0() + Duration::seconds(600)),
        }]);
}

#[test]
fn a_reservation_within_its_ttl_does_not_expire() {
    BudgetTest::with(())
        .given(vec![limit_set(1000), reserved(1, "t1", 400, 0, 400)])
        .when(BudgetCommand::ExpireReservation {
            reservation_id: rid(1),
            now: t0() + Duration::seconds(599),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_closed_reservation_does_not_expire() {
    BudgetTest::with(())
        .given(committed_history())
        .when(BudgetCommand::ExpireReservation {
            reservation_id: rid(1),
            now: t0() + Duration::seconds(6000),
        })
        .then_expect_events(vec![]);
}

fn expired_history() -> Vec<BudgetEvent> {
    expired(None)
}

/// Reservation 1 (400 tokens) expired at `closed_at`.
fn expired(closed_at: Option<DateTime<Utc>>) -> Vec<BudgetEvent> {
    vec![
        limit_set(1000),
        reserved(1, "t1", 400, 0, 400),
        BudgetEvent::ReservationExpired {
            reservation_id: rid(1),
            allocated: 400,
            used: 0,
            reserved: 0,
            closed_at,
        },
    ]
}

#[test]
fn a_late_commit_of_an_expired_reservation_is_recorded_as_late_usage() {
    BudgetTest::with(())
        .given(expired_history())
        .when(BudgetCommand::CommitUsage {
            reservation_id: rid(1),
            actual_tokens: 300,
            now: t0(),
        })
        .then_expect_events(vec![BudgetEvent::UsageCommitted {
            reservation_id: rid(1),
            allocated: 400,
            actual_tokens: 300,
            overage: 0,
            late: true,
            used: 300,
            reserved: 0,
            closed_at: Some(t0()),
        }]);
}

#[test]
fn releasing_an_expired_reservation_records_nothing() {
    BudgetTest::with(())
        .given(expired_history())
        .when(BudgetCommand::ReleaseReservation {
            reservation_id: rid(1),
            now: t0(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_expired_task_may_reserve_again() {
    BudgetTest::with(())
        .given(expired_history())
        .when(reserve(2, "t1", 100))
        .then_expect_events(vec![reserved(2, "t1", 100, 0, 100)]);
}

#[test]
fn bad_ids_and_amounts_are_refused_naming_the_field() {
    let cases: Vec<(BudgetCommand, &str)> = vec![
        (
            BudgetCommand::SetLimit {
                tenant_id: "org 1".into(),
                project_id: "p".into(),
                total_tokens: 1,
            },
            "tenant_id",
        ),
        (
            BudgetCommand::SetLimit {
                tenant_id: "org1".into(),
                project_id: "".into(),
                total_tokens: 1,
            },
            "project_id",
        ),
        (
            BudgetCommand::SetLimit {
                tenant_id: "org1".into(),
                project_id: "p".into(),
                total_tokens: MAX_TOKENS + 1,
            },
            "total_tokens",
        ),
        (reserve(1, "t/1", 10), "task_id"),
        (reserve(1, "t1", 0), "estimated_tokens"),
        (
            BudgetCommand::ReserveTokens {
                tenant_id: "org1".into(),
                project_id: "proj1".into(),
                reservation_id: rid(1),
                task_id: "t1".into(),
                model: "".into(),
                estimated_tokens: 1,
                ttl_seconds: 600,
                now: t0(),
            },
            "model",
        ),
        (
            BudgetCommand::ReserveTokens {
                tenant_id: "org1".into(),
                project_id: "proj1".into(),
                reservation_id: rid(1),
                task_id: "t1".into(),
                model: "m".into(),
                estimated_tokens: 1,
                ttl_seconds: MAX_TTL_SECONDS + 1,
                now: t0(),
            },
            "ttl_seconds",
        ),
    ];
    for (command, field) in cases {
        match decide(vec![limit_set(1000)], command) {
            Err(BudgetError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }
}

#[test]
fn events_serialise_flat_with_a_type_tag() {
    let json = serde_json::to_value(reserved(1, "t1", 400, 0, 400)).unwrap();
    assert_eq!(json["type"], "TokensReserved");
    assert_eq!(json["reservation_id"], rid(1).to_string());
    let back: BudgetEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, reserved(1, "t1", 400, 0, 400));
}

#[test]
fn folding_random_commands_never_approves_past_the_limit() {
    // A small deterministic pseudo-random walk over all commands.
    let mut budget = Budget::default();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (events, _) = budget
        .decide(BudgetCommand::SetLimit {
            tenant_id: "org1".into(),
            project_id: "proj1".into(),
            total_tokens: 10_000,
        })
        .unwrap();
    events.into_iter().for_each(|e| budget.apply(e));
    let mut ids = vec![];
    // What the walk did: a walk whose commands were all refused would check nothing.
    let mut outcomes: std::collections::BTreeMap<&str, u32> = std::collections::BTreeMap::new();
    for i in 0..5_000u128 {
        let command = match next() % 4 {
            0 | 1 => reserve(i + 1, &format!("t{}", next() % 50), 1 + next() % 900),
            2 if !ids.is_empty() => BudgetCommand::CommitUsage {
                reservation_id: ids[(next() as usize) % ids.len()],
                actual_tokens: next() % 500,
                now: t0(),
            },
            _ if !ids.is_empty() => BudgetCommand::ReleaseReservation {
                reservation_id: ids[(next() as usize) % ids.len()],
                now: t0(),
            },
            _ => continue,
        };
        let decided = match budget.decide(command) {
            Ok(decided) => decided,
            // Committing or releasing a reservation that was closed already: expected.
            Err(BudgetError::ReservationReleased(_) | BudgetError::AlreadyCommitted { .. }) => {
                *outcomes.entry("already closed").or_default() += 1;
                continue;
            }
            Err(error) => panic!("a well-formed command was refused: {error}"),
        };
        {
            let (events, reply) = decided;
            *outcomes.entry(kind_of(&reply)).or_default() += 1;
            let approved = matches!(
                reply,
                BudgetReply::Reserved {
                    existing: false,
                    ..
                }
            );
            let changed = !events.is_empty();
            let reply_totals = match &reply {
                BudgetReply::Reserved { totals, .. }
                | BudgetReply::Committed { totals, .. }
                | BudgetReply::Released { totals, .. }
                | BudgetReply::LimitSet { totals } => Some(*totals),
                _ => None,
            };
            if let BudgetReply::Reserved { reservation_id, .. } = reply {
                ids.push(reservation_id);
            }
            let used_before = budget.used;
            events.into_iter().for_each(|e| budget.apply(e));
            if let (true, Some(totals)) = (changed, reply_totals) {
                assert_eq!(
                    totals,
                    budget.totals(),
                    "a reply's totals are the state after its events"
                );
            }
            if approved {
                assert!(
                    used_before + budget.reserved <= 10_000,
                    "an approval never takes the budget past its limit"
                );
            }
        }
        let open: u64 = budget.open.values().map(|r| r.allocated).sum();
        assert_eq!(
            open, budget.reserved,
            "reserved equals the open allocations"
        );
    }
    // The seed is fixed: these are this walk's counts, rounded down (a change of `decide`
    // that refuses more than it should fails here).
    for (kind, at_least) in [
        ("reserved", 90),
        ("denied", 2000),
        ("committed", 40),
        ("released", 700),
        ("already closed", 1600),
    ] {
        assert!(
            outcomes.get(kind).copied().unwrap_or(0) >= at_least,
            "the walk made too few '{kind}': {outcomes:?}"
        );
    }
}

fn kind_of(reply: &BudgetReply) -> &'static str {
    match reply {
        BudgetReply::Reserved {
            existing: false, ..
        } => "reserved",
        BudgetReply::Reserved { existing: true, .. } => "existing",
        BudgetReply::Denied { .. } => "denied",
        BudgetReply::Committed { .. } => "committed",
        BudgetReply::Released { .. } => "released",
        _ => "other",
    }
}

#[test]
fn a_commit_that_would_overflow_the_used_total_is_refused_not_wrapped() {
    // Used can pass the limit (overage is real spend), but never what the read models hold.
    let mut budget = Budget::default();
    budget.apply(limit_set(1000));
    budget.apply(reserved(1, "t1", 10, 0, 10));
    budget.used = i64::MAX as u64 - 5;
    let error = budget
        .decide(BudgetCommand::CommitUsage {
            reservation_id: rid(1),
            actual_tokens: 6,
            now: t0(),
        })
        .unwrap_err();
    assert!(
        matches!(
            error,
            BudgetError::Invalid {
                field: "actual_tokens",
                ..
            }
        ),
        "{error}"
    );
    let ok = budget.decide(BudgetCommand::CommitUsage {
        reservation_id: rid(1),
        actual_tokens: 5,
        now: t0(),
    });
    assert!(ok.is_ok());
}

// The window of closed reservations (ADR 020): what a budget remembers, and what it answers
// once it has forgotten.

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// Reservation `n` reserved and released at `seconds` (recorded with its time).
fn released_at(n: u128, seconds: i64) -> Vec<BudgetEvent> {
    released_beside(n, seconds, 0, 0)
}

/// The same in a budget that has `used` and `reserved` tokens besides.
fn released_beside(n: u128, seconds: i64, used: u64, reserved_: u64) -> Vec<BudgetEvent> {
    vec![
        reserved(n, &format!("filler{n}"), 1, used, reserved_ + 1),
        BudgetEvent::ReservationReleased {
            reservation_id: rid(n),
            allocated: 1,
            used,
            reserved: reserved_,
            closed_at: Some(at(seconds)),
        },
    ]
}

fn commit(n: u128, actual_tokens: u64, seconds: i64) -> BudgetCommand {
    BudgetCommand::CommitUsage {
        reservation_id: rid(n),
        actual_tokens,
        now: at(seconds),
    }
}

fn committed_at(seconds: i64) -> Vec<BudgetEvent> {
    committed(Some(at(seconds)))
}

fn expired_at(seconds: i64) -> Vec<BudgetEvent> {
    expired(Some(at(seconds)))
}

fn then(mut given: Vec<BudgetEvent>, more: Vec<BudgetEvent>) -> Vec<BudgetEvent> {
    given.extend(more);
    given
}

fn fold(events: Vec<BudgetEvent>) -> Budget {
    let mut budget = Budget::default();
    events.into_iter().for_each(|e| budget.apply(e));
    budget
}

const WINDOW: i64 = CLOSED_RETENTION_SECONDS;

#[test]
fn closing_events_carry_the_time_of_the_command() {
    let (events, _) = fold(vec![limit_set(1000), reserved(1, "t1", 400, 0, 400)])
        .decide(commit(1, 350, 42))
        .unwrap();
    assert!(matches!(
        events[..],
        [BudgetEvent::UsageCommitted { closed_at: Some(when), .. }] if when == at(42)
    ));
}

#[test]
fn a_repeated_commit_within_the_window_gets_the_first_answer() {
    let given = then(committed_at(0), released_at(50, WINDOW));
    BudgetTest::with(())
        .given(given.clone())
        .when(commit(1, 350, WINDOW))
        .then_expect_events(vec![]);
    let reply = decide(given, commit(1, 350, WINDOW)).unwrap();
    assert!(matches!(
        reply,
        BudgetReply::Committed { actual_tokens: 350, totals, .. } if totals.used == 350
    ));
}

#[test]
fn a_repeated_commit_after_the_window_is_refused_as_unknown_and_records_nothing() {
    BudgetTest::with(())
        .given(then(committed_at(0), released_at(50, WINDOW + 1)))
        .when(commit(1, 350, WINDOW + 1))
        .then_expect_error(BudgetError::UnknownReservation(rid(1)));
}

#[test]
fn a_forgotten_reservation_is_named_as_possibly_closed_long_ago() {
    let message = BudgetError::UnknownReservation(rid(1)).to_string();
    assert!(
        message.contains("unknown") && message.contains("closed more than 2 minutes"),
        "{message}"
    );
}

#[test]
fn releasing_within_the_window_records_nothing_and_after_it_is_refused_as_unknown() {
    let released = then(
        vec![limit_set(1000)],
        released_at(1, 0), // reservation 1 released at 0
    );
    let release = |seconds| BudgetCommand::ReleaseReservation {
        reservation_id: rid(1),
        now: at(seconds),
    };
    BudgetTest::with(())
        .given(then(released.clone(), released_at(50, WINDOW)))
        .when(release(WINDOW))
        .then_expect_events(vec![]);
    BudgetTest::with(())
        .given(then(released, released_at(50, WINDOW + 1)))
        .when(release(WINDOW + 1))
        .then_expect_error(BudgetError::UnknownReservation(rid(1)));
}

#[test]
fn releasing_a_forgotten_committed_reservation_is_refused_as_unknown() {
    BudgetTest::with(())
        .given(then(committed_at(0), released_at(50, WINDOW + 1)))
        .when(BudgetCommand::ReleaseReservation {
            reservation_id: rid(1),
            now: at(WINDOW + 1),
        })
        .then_expect_error(BudgetError::UnknownReservation(rid(1)));
}

#[test]
fn expiring_a_forgotten_or_never_made_reservation_records_nothing() {
    // The expiry worker reads a read model that may lag: a reservation closed and forgotten
    // since is nothing to expire, not an error.
    for id in [1, 99] {
        let reply = decide(
            then(committed_at(0), released_at(50, WINDOW + 1)),
            BudgetCommand::ExpireReservation {
                reservation_id: rid(id),
                now: at(WINDOW + 1),
            },
        )
        .unwrap();
        assert_eq!(
            reply,
            BudgetReply::Expired {
                reservation_id: rid(id),
                expired: false
            }
        );
    }
}

#[test]
fn a_late_commit_within_the_window_is_recorded_once() {
    let given = then(expired_at(0), released_at(50, WINDOW - 10));
    BudgetTest::with(())
        .given(given.clone())
        .when(commit(1, 300, WINDOW))
        .then_expect_events(vec![BudgetEvent::UsageCommitted {
            reservation_id: rid(1),
            allocated: 400,
            actual_tokens: 300,
            overage: 0,
            late: true,
            used: 300,
            reserved: 0,
            closed_at: Some(at(WINDOW)),
        }]);
    // Its repeat, later still, gets the same answer and charges nothing more: the late
    // commit restarted the reservation's time in the window.
    let (events, _) = fold(given).decide(commit(1, 300, WINDOW)).unwrap();
    let mut after = events.clone();
    after.extend(released_beside(51, 2 * WINDOW - 1, 300, 0));
    let mut budget = fold(then(
        then(expired_at(0), released_at(50, WINDOW - 10)),
        after,
    ));
    let (events, reply) = budget.decide(commit(1, 300, 2 * WINDOW - 1)).unwrap();
    assert!(events.is_empty());
    assert!(matches!(
        reply,
        BudgetReply::Committed { late: true, totals, .. } if totals.used == 300
    ));
    // Once the window has passed its commit too, it is forgotten: refused, not charged.
    released_beside(52, 2 * WINDOW + 1, 300, 0)
        .into_iter()
        .for_each(|e| budget.apply(e));
    assert_eq!(
        budget.decide(commit(1, 300, 2 * WINDOW + 1)).unwrap_err(),
        BudgetError::UnknownReservation(rid(1))
    );
    assert_eq!(budget.used, 300);
}

#[test]
fn a_late_commit_after_the_window_is_refused_and_charges_nothing() {
    // The expiry gave the allocation back; a commit the budget no longer recognises must
    // neither charge nor make tokens appear: nothing is recorded.
    BudgetTest::with(())
        .given(then(expired_at(0), released_at(50, WINDOW + 1)))
        .when(commit(1, 300, WINDOW + 1))
        .then_expect_error(BudgetError::UnknownReservation(rid(1)));
}

#[test]
fn an_open_reservation_is_never_forgotten() {
    // Reserved at 0, still open a day of closings later: it commits as usual.
    let mut given = vec![limit_set(1000), reserved(1, "t1", 400, 0, 400)];
    for n in 0..10 {
        given.extend(released_beside(100 + n, n as i64 * 10_000, 0, 400));
    }
    let budget = fold(given);
    assert!(budget.open.contains_key(&rid(1)));
    assert!(matches!(
        budget.decide(commit(1, 10, 100_000)).unwrap().1,
        BudgetReply::Committed { late: false, .. }
    ));
}

#[test]
fn a_budget_remembers_at_most_the_retention_max_closings() {
    // All at the same moment: only the count bounds them.
    let mut budget = fold(vec![limit_set(1000)]);
    for n in 0..(CLOSED_RETENTION_MAX as u128 + 1) {
        released_at(n + 1, 0)
            .into_iter()
            .for_each(|e| budget.apply(e));
    }
    assert_eq!(budget.closed.len(), CLOSED_RETENTION_MAX);
    assert_eq!(budget.closing_order.len(), CLOSED_RETENTION_MAX);
    // The oldest went first.
    assert!(!budget.closed.contains_key(&rid(1)));
    assert!(budget.closed.contains_key(&rid(2)));
    let release = |n| BudgetCommand::ReleaseReservation {
        reservation_id: rid(n),
        now: at(0),
    };
    assert_eq!(
        budget.decide(release(1)).unwrap_err(),
        BudgetError::UnknownReservation(rid(1))
    );
    assert!(budget.decide(release(2)).unwrap().0.is_empty());
}

/// A version 1 closing (no `closed_at`), as logs written before ADR 020 hold.
fn released_untimed(n: u128) -> Vec<BudgetEvent> {
    vec![
        reserved(n, &format!("old{n}"), 1, 0, 1),
        BudgetEvent::ReservationReleased {
            reservation_id: rid(n),
            allocated: 1,
            used: 0,
            reserved: 0,
            closed_at: None,
        },
    ]
}

#[test]
fn old_closings_without_a_time_are_kept_until_the_window_after_the_first_timed_one() {
    let old = then(
        then(vec![limit_set(1000)], released_untimed(1)),
        released_untimed(2),
    );
    let budget = fold(old.clone());
    assert_eq!(budget.closed.len(), 2, "no time yet: nothing is forgotten");
    // The first closing with a time stamps them with it...
    let budget = fold(then(old.clone(), released_at(10, 0)));
    assert!(budget.closing_order.iter().all(|c| c.at == Some(at(0))));
    let budget = fold(then(
        then(old.clone(), released_at(10, 0)),
        released_at(11, WINDOW),
    ));
    assert!(budget.closed.contains_key(&rid(1)) && budget.closed.contains_key(&rid(2)));
    // ...and they go once the window has passed it.
    let budget = fold(then(
        then(old, released_at(10, 0)),
        released_at(11, WINDOW + 1),
    ));
    assert!(!budget.closed.contains_key(&rid(1)) && !budget.closed.contains_key(&rid(2)));
    assert!(!budget.closed.contains_key(&rid(10)) && budget.closed.contains_key(&rid(11)));
}

#[test]
fn an_old_closing_after_timed_ones_counts_as_closed_at_the_newest_time_seen() {
    // A process of the previous version wrote it during a rolling upgrade.
    let given = then(
        then(vec![limit_set(1000)], released_at(10, 100)),
        released_untimed(1),
    );
    let budget = fold(then(given.clone(), released_at(11, 100 + WINDOW)));
    assert!(budget.closed.contains_key(&rid(1)));
    let budget = fold(then(given, released_at(11, 101 + WINDOW)));
    assert!(!budget.closed.contains_key(&rid(1)));
}

#[test]
fn version_1_payloads_read_without_a_time_and_none_writes_no_field() {
    let v1 = r#"{"type":"UsageCommitted","reservation_id":"00000000-0000-0000-0000-000000000001","allocated":400,"actual_tokens":350,"overage":0,"late":false,"used":350,"reserved":0}"#;
    let event: BudgetEvent = serde_json::from_str(v1).unwrap();
    assert!(matches!(
        event,
        BudgetEvent::UsageCommitted {
            closed_at: None,
            ..
        }
    ));
    // Unchanged bytes: what the audit chain hashed stays what a re-serialisation gives.
    assert_eq!(serde_json::to_string(&event).unwrap(), v1);
    let v2 = serde_json::to_value(BudgetEvent::ReservationExpired {
        reservation_id: rid(1),
        allocated: 1,
        used: 0,
        reserved: 0,
        closed_at: Some(t0()),
    })
    .unwrap();
    assert_eq!(v2["closed_at"], "2026-11-27T12:00:00Z");
}

#[test]
fn a_replay_forgets_exactly_what_the_running_budget_forgot() {
    // Commands decided and applied one by one (as the executor does), then the log replayed:
    // the same state, window included. Mixed closings, a late commit, time moving on.
    let mut live = fold(vec![limit_set(1_000_000)]);
    let mut log = vec![limit_set(1_000_000)];
    let step = |budget: &mut Budget, log: &mut Vec<BudgetEvent>, command| {
        if let Ok((events, _)) = budget.decide(command) {
            for event in events {
                budget.apply(event.clone());
                log.push(event);
            }
        }
    };
    for i in 0..600u128 {
        let now = at(i as i64);
        step(
            &mut live,
            &mut log,
            BudgetCommand::ReserveTokens {
                tenant_id: "org1".into(),
                project_id: "proj1".into(),
                reservation_id: rid(i + 1),
                task_id: format!("t{i}"),
                model: "m".into(),
                estimated_tokens: 10,
                ttl_seconds: 1,
                now,
            },
        );
        let command = match i % 3 {
            0 => commit(i + 1, 7, i as i64),
            1 => BudgetCommand::ReleaseReservation {
                reservation_id: rid(i + 1),
                now,
            },
            _ => BudgetCommand::ExpireReservation {
                reservation_id: rid(i + 1),
                now: now + Duration::seconds(1),
            },
        };
        step(&mut live, &mut log, command);
        if i % 3 == 2 && i % 2 == 0 {
            step(&mut live, &mut log, commit(i + 1, 5, i as i64 + 1));
        }
    }
    assert!(
        live.closed.len() < 600,
        "time moved on: some were forgotten"
    );
    assert_eq!(live.closed.len(), live.closing_order.len());
    assert_eq!(fold(log), live);
}

// A budget that stops closing reservations (issue 16): its window no longer moves on the
// log's time, so a command's own time bounds what it recalls, and what no command recalls
// can be dropped from memory without changing any answer.

#[test]
fn a_repeated_commit_after_the_retention_is_unknown_even_when_the_budget_closed_nothing_since() {
    BudgetTest::with(())
        .given(committed_at(0))
        .when(commit(1, 350, WINDOW))
        .then_expect_events(vec![]);
    BudgetTest::with(())
        .given(committed_at(0))
        .when(commit(1, 350, WINDOW + 1))
        .then_expect_error(BudgetError::UnknownReservation(rid(1)));
}

#[test]
fn a_release_after_the_retention_is_unknown_even_when_the_budget_closed_nothing_since() {
    let release = |seconds| BudgetCommand::ReleaseReservation {
        reservation_id: rid(1),
        now: at(seconds),
    };
    BudgetTest::with(())
        .given(expired_at(0))
        .when(release(WINDOW))
        .then_expect_events(vec![]);
    BudgetTest::with(())
        .given(expired_at(0))
        .when(release(WINDOW + 1))
        .then_expect_error(BudgetError::UnknownReservation(rid(1)));
}

#[test]
fn a_late_commit_after_the_retention_of_the_expiry_is_unknown_and_records_nothing() {
    BudgetTest::with(())
        .given(expired_at(0))
        .when(commit(1, 350, WINDOW + 1))
        .then_expect_error(BudgetError::UnknownReservation(rid(1)));
}

#[test]
fn forgetting_before_a_cutoff_drops_only_older_closings() {
    // One closing every 10 s from 0 to 100 s.
    let mut budget = fold(
        (0..=10u128)
            .flat_map(|n| released_at(n + 1, n as i64 * 10))
            .collect(),
    );
    assert_eq!(budget.closings_held(), 11);
    assert_eq!(budget.forget_closed_before(at(50)), 5);
    assert_eq!(budget.closings_held(), 6);
    assert_eq!(budget.closing_order.len(), 6);
    assert!(!budget.closed.contains_key(&rid(5)));
    assert!(budget.closed.contains_key(&rid(6)));
    assert_eq!(budget.forget_closed_before(at(50)), 0, "idempotent");
    assert_eq!(budget.forget_closed_before(at(101)), 6);
    assert_eq!(budget.closings_held(), 0);
    assert_eq!(
        budget.closing_order.capacity(),
        0,
        "the deque gives back its room"
    );
}

#[test]
fn forgetting_what_no_command_recalls_changes_no_answer() {
    // Commits, releases and expiries every 3 s for 300 s, some open reservations left.
    let mut log = vec![limit_set(1_000_000)];
    let mut budget = fold(log.clone());
    for i in 0..100u128 {
        let now = at(i as i64 * 3);
        let mut step = |command| {
            let (events, _) = budget.decide(command).unwrap();
            for event in events {
                budget.apply(event.clone());
                log.push(event);
            }
        };
        step(BudgetCommand::ReserveTokens {
            tenant_id: "org1".into(),
            project_id: "proj1".into(),
            reservation_id: rid(i + 1),
            task_id: format!("t{i}"),
            model: "m".into(),
            estimated_tokens: 10,
            ttl_seconds: 1,
            now,
        });
        match i % 4 {
            0 => step(commit(i + 1, 7, i as i64 * 3)),
            1 => step(BudgetCommand::ReleaseReservation {
                reservation_id: rid(i + 1),
                now,
            }),
            2 => step(BudgetCommand::ExpireReservation {
                reservation_id: rid(i + 1),
                now: now + Duration::seconds(1),
            }),
            _ => {}
        }
    }
    let cutoff = at(200);
    let mut trimmed = budget.clone();
    assert!(trimmed.forget_closed_before(cutoff) > 0);
    // Every command at the cutoff plus the retention or later, about every reservation.
    for seconds in [WINDOW + 200, WINDOW + 250, WINDOW + 300, WINDOW + 400] {
        for n in 1..=101u128 {
            let commands = [
                commit(n, 7, seconds),
                commit(n, 8, seconds),
                BudgetCommand::ReleaseReservation {
                    reservation_id: rid(n),
                    now: at(seconds),
                },
                BudgetCommand::ExpireReservation {
                    reservation_id: rid(n),
                    now: at(seconds),
                },
            ];
            for command in commands {
                assert_eq!(
                    trimmed.decide(command.clone()),
                    budget.decide(command.clone()),
                    "{command:?}"
                );
            }
        }
    }
    // And a fresh load of the log is the untrimmed budget (the log is the truth).
    assert_eq!(fold(log), budget);
}
