//! Given/when/then tests, one rule each. Time is a fixed instant plus offsets.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::breaker::{BreakerCommand, BreakerConfig, BreakerEvent, BreakerState, Outcome};

type BreakerTest = TestFramework<CircuitBreaker>;

const NAME: &str = "openai_api";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// failure_threshold 3, open_seconds 60, half_open_max_calls 2.
fn config() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 3,
        open_seconds: 60,
        half_open_max_calls: 2,
    }
}

fn configured() -> BreakerEvent {
    BreakerEvent::BreakerConfigured {
        name: NAME.into(),
        config: config(),
        previous: None,
        state: BreakerState::Closed,
        failures: 0,
        next_retry: None,
        actor: "http:admin".into(),
        at: t0(),
    }
}

fn failure_recorded(failures: u32) -> BreakerEvent {
    BreakerEvent::FailureRecorded {
        name: NAME.into(),
        error: Some("timeout".into()),
        state: BreakerState::Closed,
        failures,
        actor: "nats:worker".into(),
        at: t0(),
    }
}

/// Opened at t0 with 3 failures: next_retry at t0 + 60 s.
fn opened() -> BreakerEvent {
    BreakerEvent::BreakerOpened {
        name: NAME.into(),
        from: BreakerState::Closed,
        error: Some("timeout".into()),
        state: BreakerState::Open,
        failures: 3,
        next_retry: at(60),
        actor: "nats:worker".into(),
        at: t0(),
    }
}

fn half_opened(seconds: i64) -> BreakerEvent {
    BreakerEvent::BreakerHalfOpened {
        name: NAME.into(),
        from: BreakerState::Open,
        state: BreakerState::HalfOpen,
        failures: 3,
        actor: "worker:breaker-retry".into(),
        at: at(seconds),
    }
}

fn trial_granted(trials_granted: u32, renewed: bool, seconds: i64) -> BreakerEvent {
    BreakerEvent::TrialCallGranted {
        name: NAME.into(),
        trials_granted,
        renewed,
        state: BreakerState::HalfOpen,
        failures: 3,
        actor: "nats:worker".into(),
        at: at(seconds),
    }
}

fn open_history() -> Vec<BreakerEvent> {
    vec![
        configured(),
        failure_recorded(1),
        failure_recorded(2),
        opened(),
    ]
}

fn half_open_history() -> Vec<BreakerEvent> {
    let mut events = open_history();
    events.push(half_opened(60));
    events
}

fn failure(seconds: i64) -> BreakerCommand {
    BreakerCommand::RecordOutcome {
        name: NAME.into(),
        outcome: Outcome::Failure {
            error: Some("timeout".into()),
        },
        actor: "nats:worker".into(),
        now: at(seconds),
    }
}

fn success(seconds: i64) -> BreakerCommand {
    BreakerCommand::RecordOutcome {
        name: NAME.into(),
        outcome: Outcome::Success,
        actor: "nats:worker".into(),
        now: at(seconds),
    }
}

fn check(seconds: i64) -> BreakerCommand {
    BreakerCommand::Check {
        name: NAME.into(),
        actor: "nats:worker".into(),
        now: at(seconds),
    }
}

fn retry(seconds: i64) -> BreakerCommand {
    BreakerCommand::RetryIfDue {
        name: NAME.into(),
        actor: "worker:breaker-retry".into(),
        now: at(seconds),
    }
}

fn admin(make: fn(String, String, DateTime<Utc>) -> BreakerCommand) -> BreakerCommand {
    make(NAME.into(), "http:admin".into(), at(5))
}

fn reset(name: String, actor: String, now: DateTime<Utc>) -> BreakerCommand {
    BreakerCommand::Reset { name, actor, now }
}

fn force_open(name: String, actor: String, now: DateTime<Utc>) -> BreakerCommand {
    BreakerCommand::ForceOpen {
        name,
        actor,
        now,
        reason: Some("maintenance".into()),
    }
}

fn disable(name: String, actor: String, now: DateTime<Utc>) -> BreakerCommand {
    BreakerCommand::Disable {
        name,
        actor,
        now,
        reason: None,
    }
}

fn fold(given: &[BreakerEvent]) -> CircuitBreaker {
    let mut breaker = CircuitBreaker::default();
    for event in given {
        breaker.apply(event.clone());
    }
    breaker
}

fn reply(given: Vec<BreakerEvent>, command: BreakerCommand) -> BreakerReply {
    fold(&given).decide(command).unwrap().1
}

fn checked(allowed: bool, state: BreakerState, trial: bool) -> BreakerReply {
    BreakerReply::Checked {
        allowed,
        state,
        trial,
    }
}

// ---- CLOSED: counting failures ------------------------------------------------------

#[test]
fn the_first_failure_of_a_new_name_registers_the_defaults_and_counts() {
    BreakerTest::with(())
        .given_no_previous_events()
        .when(failure(0))
        .then_expect_events(vec![
            BreakerEvent::BreakerRegistered {
                name: NAME.into(),
                config: BreakerConfig::default(),
                state: BreakerState::Closed,
                failures: 0,
                actor: "nats:worker".into(),
                at: t0(),
            },
            failure_recorded(1),
        ]);
}

#[test]
fn a_failure_below_the_threshold_is_counted() {
    BreakerTest::with(())
        .given(vec![configured(), failure_recorded(1)])
        .when(failure(0))
        .then_expect_events(vec![failure_recorded(2)]);
}

#[test]
fn the_failure_that_reaches_the_threshold_opens_the_breaker_until_open_seconds_pass() {
    BreakerTest::with(())
        .given(vec![configured(), failure_recorded(1), failure_recorded(2)])
        .when(failure(0))
        .then_expect_events(vec![opened()]);
}

#[test]
fn a_success_after_failures_clears_the_count() {
    BreakerTest::with(())
        .given(vec![configured(), failure_recorded(1), failure_recorded(2)])
        .when(success(1))
        .then_expect_events(vec![BreakerEvent::FailuresCleared {
            name: NAME.into(),
            previous_failures: 2,
            state: BreakerState::Closed,
            failures: 0,
            actor: "nats:worker".into(),
            at: at(1),
        }]);
}

#[test]
fn a_success_that_changes_nothing_records_nothing() {
    BreakerTest::with(())
        .given(vec![configured()])
        .when(success(1))
        .then_expect_events(vec![]);
    BreakerTest::with(())
        .given_no_previous_events()
        .when(success(1))
        .then_expect_events(vec![]);
}

#[test]
fn only_consecutive_failures_open_the_breaker() {
    let given = vec![
        configured(),
        failure_recorded(1),
        failure_recorded(2),
        BreakerEvent::FailuresCleared {
            name: NAME.into(),
            previous_failures: 2,
            state: BreakerState::Closed,
            failures: 0,
            actor: "nats:worker".into(),
            at: at(1),
        },
    ];
    BreakerTest::with(())
        .given(given)
        .when(failure(0))
        .then_expect_events(vec![failure_recorded(1)]);
}

#[test]
fn a_closed_breaker_allows_calls_and_a_check_records_nothing() {
    BreakerTest::with(())
        .given(vec![configured(), failure_recorded(1)])
        .when(check(1))
        .then_expect_events(vec![]);
    assert_eq!(
        reply(vec![configured()], check(1)),
        checked(true, BreakerState::Closed, false)
    );
    // A name never seen is closed with the defaults.
    assert_eq!(
        reply(vec![], check(1)),
        checked(true, BreakerState::Closed, false)
    );
}

#[test]
fn a_long_error_text_is_cut_not_refused() {
    let mut breaker = fold(&[configured()]);
    let (events, _) = breaker
        .decide(BreakerCommand::RecordOutcome {
            name: NAME.into(),
            outcome: Outcome::Failure {
                error: Some("é".repeat(MAX_ERROR_CHARS + 10)),
            },
            actor: "nats:worker".into(),
            now: t0(),
        })
        .unwrap();
    let BreakerEvent::FailureRecorded { error, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(error.as_ref().unwrap().chars().count(), MAX_ERROR_CHARS);
    breaker.apply(events[0].clone());
    assert_eq!(breaker.failures, 1);
}

// ---- OPEN ---------------------------------------------------------------------------

#[test]
fn an_open_breaker_refuses_calls_before_next_retry_and_records_nothing() {
    BreakerTest::with(())
        .given(open_history())
        .when(check(59))
        .then_expect_events(vec![]);
    assert_eq!(
        reply(open_history(), check(59)),
        checked(false, BreakerState::Open, false)
    );
}

#[test]
fn outcomes_reported_while_open_change_nothing() {
    BreakerTest::with(())
        .given(open_history())
        .when(failure(10))
        .then_expect_events(vec![]);
    BreakerTest::with(())
        .given(open_history())
        .when(success(10))
        .then_expect_events(vec![]);
}

#[test]
fn the_retry_worker_leaves_an_open_breaker_alone_before_next_retry() {
    BreakerTest::with(())
        .given(open_history())
        .when(retry(59))
        .then_expect_events(vec![]);
}

#[test]
fn the_retry_worker_turns_an_open_breaker_half_open_at_next_retry() {
    BreakerTest::with(())
        .given(open_history())
        .when(retry(60))
        .then_expect_events(vec![half_opened(60)]);
}

#[test]
fn a_check_after_next_retry_turns_the_breaker_half_open_and_takes_a_trial_permit() {
    BreakerTest::with(())
        .given(open_history())
        .when(check(61))
        .then_expect_events(vec![
            BreakerEvent::BreakerHalfOpened {
                name: NAME.into(),
                from: BreakerState::Open,
                state: BreakerState::HalfOpen,
                failures: 3,
                actor: "nats:worker".into(),
                at: at(61),
            },
            trial_granted(1, false, 61),
        ]);
    assert_eq!(
        reply(open_history(), check(61)),
        checked(true, BreakerState::HalfOpen, true)
    );
}

#[test]
fn the_retry_worker_ignores_breakers_that_are_not_open() {
    for given in [
        vec![configured()],
        half_open_history(),
        vec![configured(), forced_open()],
    ] {
        BreakerTest::with(())
            .given(given)
            .when(retry(1000))
            .then_expect_events(vec![]);
    }
}

// ---- HALF_OPEN ----------------------------------------------------------------------

#[test]
fn a_check_in_half_open_takes_one_of_the_trial_permits() {
    BreakerTest::with(())
        .given(half_open_history())
        .when(check(61))
        .then_expect_events(vec![trial_granted(1, false, 61)]);
    let mut given = half_open_history();
    given.push(trial_granted(1, false, 61));
    BreakerTest::with(())
        .given(given)
        .when(check(62))
        .then_expect_events(vec![trial_granted(2, false, 62)]);
}

#[test]
fn a_check_in_half_open_is_refused_without_a_record_once_the_permits_are_taken() {
    let mut given = half_open_history();
    given.push(trial_granted(1, false, 61));
    given.push(trial_granted(2, false, 62));
    BreakerTest::with(())
        .given(given.clone())
        .when(check(63))
        .then_expect_events(vec![]);
    assert_eq!(
        reply(given, check(63)),
        checked(false, BreakerState::HalfOpen, false)
    );
}

#[test]
fn trial_permits_without_an_outcome_for_open_seconds_are_handed_out_again() {
    let mut given = half_open_history();
    given.push(trial_granted(1, false, 61));
    given.push(trial_granted(2, false, 62));
    BreakerTest::with(())
        .given(given.clone())
        .when(check(121))
        .then_expect_events(vec![]);
    BreakerTest::with(())
        .given(given)
        .when(check(122))
        .then_expect_events(vec![trial_granted(1, true, 122)]);
}

#[test]
fn a_success_in_half_open_short_of_the_needed_successes_is_counted() {
    BreakerTest::with(())
        .given(half_open_history())
        .when(success(70))
        .then_expect_events(vec![BreakerEvent::TrialCallSucceeded {
            name: NAME.into(),
            successes: 1,
            state: BreakerState::HalfOpen,
            failures: 3,
            actor: "nats:worker".into(),
            at: at(70),
        }]);
}

#[test]
fn half_open_max_calls_successes_close_the_breaker() {
    let mut given = half_open_history();
    given.push(BreakerEvent::TrialCallSucceeded {
        name: NAME.into(),
        successes: 1,
        state: BreakerState::HalfOpen,
        failures: 3,
        actor: "nats:worker".into(),
        at: at(70),
    });
    BreakerTest::with(())
        .given(given.clone())
        .when(success(71))
        .then_expect_events(vec![BreakerEvent::BreakerClosed {
            name: NAME.into(),
            from: BreakerState::HalfOpen,
            successes: 2,
            state: BreakerState::Closed,
            failures: 0,
            actor: "nats:worker".into(),
            at: at(71),
        }]);
    let mut closed = fold(&given);
    closed.apply(closed.decide(success(71)).unwrap().0[0].clone());
    assert_eq!((closed.state, closed.failures), (BreakerState::Closed, 0));
}

#[test]
fn a_failure_in_half_open_opens_the_breaker_again() {
    BreakerTest::with(())
        .given(half_open_history())
        .when(failure(70))
        .then_expect_events(vec![BreakerEvent::BreakerOpened {
            name: NAME.into(),
            from: BreakerState::HalfOpen,
            error: Some("timeout".into()),
            state: BreakerState::Open,
            failures: 4,
            next_retry: at(130),
            actor: "nats:worker".into(),
            at: at(70),
        }]);
}

// ---- Operator overrides -------------------------------------------------------------

fn forced_open() -> BreakerEvent {
    BreakerEvent::BreakerForcedOpen {
        name: NAME.into(),
        from: BreakerState::Closed,
        state: BreakerState::ForcedOpen,
        failures: 0,
        actor: "http:admin".into(),
        at: at(5),
        reason: Some("maintenance".into()),
    }
}

fn disabled() -> BreakerEvent {
    BreakerEvent::BreakerDisabled {
        name: NAME.into(),
        from: BreakerState::Closed,
        state: BreakerState::Disabled,
        failures: 0,
        actor: "http:admin".into(),
        at: at(5),
        reason: None,
    }
}

#[test]
fn a_reset_closes_an_open_breaker_and_clears_its_failures() {
    BreakerTest::with(())
        .given(open_history())
        .when(admin(reset))
        .then_expect_events(vec![BreakerEvent::BreakerReset {
            name: NAME.into(),
            from: BreakerState::Open,
            previous_failures: 3,
            state: BreakerState::Closed,
            failures: 0,
            actor: "http:admin".into(),
            at: at(5),
        }]);
}

#[test]
fn a_reset_of_a_closed_breaker_without_failures_records_nothing() {
    BreakerTest::with(())
        .given(vec![configured()])
        .when(admin(reset))
        .then_expect_events(vec![]);
    BreakerTest::with(())
        .given_no_previous_events()
        .when(admin(reset))
        .then_expect_events(vec![]);
}

#[test]
fn forcing_open_refuses_every_call_until_reset() {
    BreakerTest::with(())
        .given(vec![configured()])
        .when(admin(force_open))
        .then_expect_events(vec![forced_open()]);
    let given = vec![configured(), forced_open()];
    assert_eq!(
        reply(given.clone(), check(1000)),
        checked(false, BreakerState::ForcedOpen, false)
    );
    BreakerTest::with(())
        .given(given.clone())
        .when(success(10))
        .then_expect_events(vec![]);
    BreakerTest::with(())
        .given(given)
        .when(admin(force_open))
        .then_expect_events(vec![]);
}

#[test]
fn forcing_open_a_name_never_seen_registers_it_first() {
    BreakerTest::with(())
        .given_no_previous_events()
        .when(admin(force_open))
        .then_expect_events(vec![
            BreakerEvent::BreakerRegistered {
                name: NAME.into(),
                config: BreakerConfig::default(),
                state: BreakerState::Closed,
                failures: 0,
                actor: "http:admin".into(),
                at: at(5),
            },
            forced_open(),
        ]);
}

#[test]
fn disabling_allows_every_call_and_counts_nothing() {
    BreakerTest::with(())
        .given(vec![configured()])
        .when(admin(disable))
        .then_expect_events(vec![disabled()]);
    let given = vec![configured(), disabled()];
    assert_eq!(
        reply(given.clone(), check(1)),
        checked(true, BreakerState::Disabled, false)
    );
    BreakerTest::with(())
        .given(given)
        .when(failure(10))
        .then_expect_events(vec![]);
}

#[test]
fn disabling_an_open_breaker_records_where_it_came_from() {
    BreakerTest::with(())
        .given(open_history())
        .when(admin(disable))
        .then_expect_events(vec![BreakerEvent::BreakerDisabled {
            name: NAME.into(),
            from: BreakerState::Open,
            state: BreakerState::Disabled,
            failures: 3,
            actor: "http:admin".into(),
            at: at(5),
            reason: None,
        }]);
}

#[test]
fn a_reset_ends_an_override() {
    for (given, from) in [
        (vec![configured(), forced_open()], BreakerState::ForcedOpen),
        (vec![configured(), disabled()], BreakerState::Disabled),
    ] {
        BreakerTest::with(())
            .given(given)
            .when(admin(reset))
            .then_expect_events(vec![BreakerEvent::BreakerReset {
                name: NAME.into(),
                from,
                previous_failures: 0,
                state: BreakerState::Closed,
                failures: 0,
                actor: "http:admin".into(),
                at: at(5),
            }]);
    }
}

// ---- Configuration ------------------------------------------------------------------

fn configure(config: BreakerConfig) -> BreakerCommand {
    BreakerCommand::Configure {
        name: NAME.into(),
        config,
        actor: "http:admin".into(),
        now: t0(),
    }
}

#[test]
fn configuring_a_new_name_records_the_configuration() {
    BreakerTest::with(())
        .given_no_previous_events()
        .when(configure(config()))
        .then_expect_events(vec![configured()]);
}

#[test]
fn changing_the_configuration_records_the_previous_one() {
    let new = BreakerConfig {
        failure_threshold: 10,
        ..config()
    };
    BreakerTest::with(())
        .given(vec![configured()])
        .when(configure(new))
        .then_expect_events(vec![BreakerEvent::BreakerConfigured {
            name: NAME.into(),
            config: new,
            previous: Some(config()),
            state: BreakerState::Closed,
            failures: 0,
            next_retry: None,
            actor: "http:admin".into(),
            at: t0(),
        }]);
}

#[test]
fn the_same_configuration_again_records_nothing() {
    BreakerTest::with(())
        .given(vec![configured()])
        .when(configure(config()))
        .then_expect_events(vec![]);
}

#[test]
fn the_configured_threshold_decides_when_the_breaker_opens() {
    let one = BreakerConfig {
        failure_threshold: 1,
        ..config()
    };
    let breaker = fold(&[BreakerEvent::BreakerConfigured {
        name: NAME.into(),
        config: one,
        previous: None,
        state: BreakerState::Closed,
        failures: 0,
        next_retry: None,
        actor: "http:admin".into(),
        at: t0(),
    }]);
    let (events, _) = breaker.decide(failure(0)).unwrap();
    assert!(matches!(
        events.as_slice(),
        [BreakerEvent::BreakerOpened { failures: 1, .. }]
    ));
}

#[test]
fn configuration_values_out_of_range_are_refused_naming_the_field() {
    let cases = [
        (
            BreakerConfig {
                failure_threshold: 0,
                ..config()
            },
            "failure_threshold",
        ),
        (
            BreakerConfig {
                open_seconds: 0,
                ..config()
            },
            "open_seconds",
        ),
        (
            BreakerConfig {
                open_seconds: MAX_OPEN_SECONDS + 1,
                ..config()
            },
            "open_seconds",
        ),
        (
            BreakerConfig {
                half_open_max_calls: 0,
                ..config()
            },
            "half_open_max_calls",
        ),
    ];
    for (bad, field) in cases {
        BreakerTest::with(())
            .given_no_previous_events()
            .when(configure(bad))
            .then_expect_error_message(&format!(
                "{field}: {}",
                match field {
                    "failure_threshold" => format!("must be between 1 and {MAX_FAILURE_THRESHOLD}"),
                    "open_seconds" => format!("must be between 1 and {MAX_OPEN_SECONDS}"),
                    _ => format!("must be between 1 and {MAX_HALF_OPEN_CALLS}"),
                }
            ));
    }
}

#[test]
fn a_bad_name_is_refused() {
    let error = CircuitBreaker::default()
        .decide(BreakerCommand::Check {
            name: "no spaces".into(),
            actor: "nats:worker".into(),
            now: t0(),
        })
        .unwrap_err();
    assert!(matches!(error, BreakerError::Invalid { field: "name", .. }));
}

// ---- Serialisation ------------------------------------------------------------------

#[test]
fn events_are_stored_flat_with_their_type_state_and_actor() {
    let json = serde_json::to_value(opened()).unwrap();
    assert_eq!(json["type"], "BreakerOpened");
    assert_eq!(json["state"], "OPEN");
    assert_eq!(json["from"], "CLOSED");
    assert_eq!(json["failures"], 3);
    assert_eq!(json["actor"], "nats:worker");
    assert_eq!(json["next_retry"], "2026-11-27T12:01:00Z");
    let back: BreakerEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, opened());
}

#[test]
fn every_transition_records_who_caused_it_in_the_folded_state() {
    let mut events = half_open_history();
    let breaker = fold(&events);
    assert_eq!(breaker.state, BreakerState::HalfOpen);
    assert_eq!(breaker.changed_by.as_deref(), Some("worker:breaker-retry"));
    events.push(forced_open());
    let breaker = fold(&events);
    assert_eq!(breaker.changed_by.as_deref(), Some("http:admin"));
    assert_eq!(breaker.changed_at, Some(at(5)));
}
