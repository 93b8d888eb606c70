//! Given/when/then tests, one rule each. Time is a fixed instant plus offsets.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::dlq::{
    decode_payload, encode_payload, entry_id_for, DeadLetter, DlqCommand, DlqEvent, Encoding,
    Requeue, Source,
};

type DlqTest = TestFramework<DlqEntry>;

const STREAM: &str = "WORK";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn id() -> String {
    entry_id_for(STREAM, 7)
}

fn source(seq: u64) -> Source {
    Source {
        stream: STREAM.into(),
        consumer: Some("worker".into()),
        stream_seq: seq,
    }
}

fn headers() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([("Trace-Id".to_string(), vec!["abc".to_string()])])
}

fn letter(seq: u64) -> DeadLetter {
    DeadLetter {
        original_subject: "task.execute".into(),
        payload: r#"{"task":"t1"}"#.into(),
        encoding: Encoding::Json,
        headers: headers(),
        error: "max deliveries (5) reached".into(),
        attempts: 5,
        source: Some(source(seq)),
    }
}

fn capture(seq: u64, seconds: i64) -> DlqCommand {
    DlqCommand::Capture {
        id: id(),
        letter: letter(seq),
        actor: "worker:dlq-capture".into(),
        now: at(seconds),
    }
}

fn captured() -> DlqEvent {
    DlqEvent::DlqEntryCaptured {
        id: id(),
        original_subject: "task.execute".into(),
        payload: r#"{"task":"t1"}"#.into(),
        encoding: Encoding::Json,
        headers: headers(),
        error: "max deliveries (5) reached".into(),
        attempts: 5,
        source: Some(source(7)),
        resolved: false,
        requeue_count: 0,
        actor: "worker:dlq-capture".into(),
        at: t0(),
    }
}

fn resolve(note: &str, requeue: Option<Requeue>) -> DlqCommand {
    DlqCommand::Resolve {
        id: id(),
        note: Some(note.into()),
        requeue,
        actor: "http:ops1".into(),
        now: at(60),
    }
}

fn requeue(n: u32) -> Requeue {
    Requeue {
        message_id: format!("dlq/{}/{n}", id()),
        stored_in: Some(source(100 + n as u64)),
    }
}

fn requeued(n: u32) -> DlqEvent {
    DlqEvent::DlqEntryResolved {
        id: id(),
        note: Some("fixed".into()),
        requeued: true,
        message_id: Some(format!("dlq/{}/{n}", id())),
        requeued_to: Some(source(100 + n as u64)),
        resolved: true,
        requeue_count: n,
        actor: "http:ops1".into(),
        at: at(60),
    }
}

fn recaptured(seq: u64, requeue_count: u32, total_attempts: u64) -> DlqEvent {
    DlqEvent::DlqEntryRecaptured {
        id: id(),
        error: "max deliveries (5) reached".into(),
        attempts: 5,
        total_attempts,
        source: Some(source(seq)),
        resolved: false,
        requeue_count,
        actor: "worker:dlq-capture".into(),
        at: at(120),
    }
}

fn fold(given: &[DlqEvent]) -> DlqEntry {
    let mut entry = DlqEntry::default();
    for event in given {
        entry.apply(event.clone());
    }
    entry
}

fn error_of(given: Vec<DlqEvent>, command: DlqCommand) -> DlqError {
    fold(&given).decide(command).unwrap_err()
}

fn invalid_field(error: DlqError) -> &'static str {
    match error {
        DlqError::Invalid { field, .. } => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

// ---- capture -------------------------------------------------------------------------

#[test]
fn a_dead_message_is_captured_with_everything_it_carried() {
    DlqTest::with(())
        .given_no_previous_events()
        .when(capture(7, 0))
        .then_expect_events(vec![captured()]);
}

#[test]
fn capturing_the_same_stream_sequence_again_records_nothing() {
    DlqTest::with(())
        .given(vec![captured()])
        .when(capture(7, 30))
        .then_expect_events(vec![]);
}

#[test]
fn an_explicit_capture_repeated_with_the_same_id_records_nothing() {
    let explicit = |seconds| DlqCommand::Capture {
        id: id(),
        letter: DeadLetter {
            source: None,
            ..letter(7)
        },
        actor: "nats:svc".into(),
        now: at(seconds),
    };
    let (events, _) = DlqEntry::default().decide(explicit(0)).unwrap();
    assert_eq!(events.len(), 1);
    DlqTest::with(())
        .given(events)
        .when(explicit(10))
        .then_expect_events(vec![]);
}

#[test]
fn a_requeued_message_that_dies_again_reopens_its_entry() {
    DlqTest::with(())
        .given(vec![captured(), requeued(1)])
        .when(capture(101, 120))
        .then_expect_events(vec![recaptured(101, 1, 10)]);
}

#[test]
fn a_reopened_entry_is_open_with_the_latest_failure_and_all_attempts() {
    let entry = fold(&[captured(), requeued(1), recaptured(101, 1, 10)]);
    assert!(!entry.resolved);
    assert_eq!(entry.attempts, 10);
    assert_eq!(entry.requeue_count, 1);
    assert_eq!(entry.resolved_by, None);
    let actions: Vec<&str> = entry.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions, ["captured", "requeued", "recaptured"]);
}

#[test]
fn a_capture_names_a_bad_subject() {
    let mut command = capture(7, 0);
    if let DlqCommand::Capture { letter, .. } = &mut command {
        letter.original_subject = "task.*".into();
    }
    assert_eq!(invalid_field(error_of(vec![], command)), "original_subject");
}

#[test]
fn a_capture_needs_an_error_text() {
    let mut command = capture(7, 0);
    if let DlqCommand::Capture { letter, .. } = &mut command {
        letter.error = "  ".into();
    }
    assert_eq!(invalid_field(error_of(vec![], command)), "error");
}

#[test]
fn a_capture_refuses_payload_marked_json_that_is_not() {
    let mut command = capture(7, 0);
    if let DlqCommand::Capture { letter, .. } = &mut command {
        letter.payload = "{oops".into();
    }
    assert_eq!(invalid_field(error_of(vec![], command)), "payload");
}

#[test]
fn a_capture_refuses_bad_header_names() {
    let mut command = capture(7, 0);
    if let DlqCommand::Capture { letter, .. } = &mut command {
        letter.headers.insert("Bad Name".into(), vec!["x".into()]);
    }
    assert_eq!(invalid_field(error_of(vec![], command)), "headers");
}

#[test]
fn a_capture_refuses_a_bad_id() {
    let command = DlqCommand::Capture {
        id: "a/b".into(),
        letter: letter(7),
        actor: "nats:svc".into(),
        now: t0(),
    };
    assert_eq!(invalid_field(error_of(vec![], command)), "id");
}

#[test]
fn a_long_error_text_is_cut_not_refused() {
    let mut command = capture(7, 0);
    if let DlqCommand::Capture { letter, .. } = &mut command {
        letter.error = "x".repeat(MAX_ERROR_CHARS + 10);
    }
    let (events, reply) = DlqEntry::default().decide(command).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(reply.entry.error.chars().count(), MAX_ERROR_CHARS);
}

#[test]
fn a_binary_payload_is_captured_byte_exact() {
    let bytes = vec![0u8, 1, 2, 255, 254];
    let (encoding, payload) = encode_payload(&bytes);
    let mut command = capture(7, 0);
    if let DlqCommand::Capture { letter, .. } = &mut command {
        letter.encoding = encoding;
        letter.payload = payload;
    }
    let (_, reply) = DlqEntry::default().decide(command).unwrap();
    assert_eq!(reply.entry.encoding, Encoding::Base64);
    assert_eq!(
        decode_payload(reply.entry.encoding, &reply.entry.payload).unwrap(),
        bytes
    );
}

// ---- resolve -------------------------------------------------------------------------

#[test]
fn resolving_records_who_when_and_the_note() {
    DlqTest::with(())
        .given(vec![captured()])
        .when(resolve("fixed", None))
        .then_expect_events(vec![DlqEvent::DlqEntryResolved {
            id: id(),
            note: Some("fixed".into()),
            requeued: false,
            message_id: None,
            requeued_to: None,
            resolved: true,
            requeue_count: 0,
            actor: "http:ops1".into(),
            at: at(60),
        }]);
    let entry = fold(&[
        captured(),
        DlqEvent::DlqEntryResolved {
            id: id(),
            note: Some("fixed".into()),
            requeued: false,
            message_id: None,
            requeued_to: None,
            resolved: true,
            requeue_count: 0,
            actor: "http:ops1".into(),
            at: at(60),
        },
    ]);
    assert_eq!(
        (
            entry.resolved,
            entry.resolved_by.as_deref(),
            entry.resolved_at,
            entry.note.as_deref()
        ),
        (true, Some("http:ops1"), Some(at(60)), Some("fixed"))
    );
}

#[test]
fn resolving_with_a_requeue_counts_it() {
    DlqTest::with(())
        .given(vec![captured()])
        .when(resolve("fixed", Some(requeue(1))))
        .then_expect_events(vec![requeued(1)]);
}

#[test]
fn a_second_requeue_after_a_reopen_counts_two() {
    let given = vec![captured(), requeued(1), recaptured(101, 1, 10)];
    let entry = fold(&given);
    assert_eq!(entry.next_message_id(), format!("dlq/{}/2", id()));
    DlqTest::with(())
        .given(given)
        .when(resolve("fixed", Some(requeue(2))))
        .then_expect_events(vec![requeued(2)]);
}

#[test]
fn resolving_twice_is_refused() {
    DlqTest::with(())
        .given(vec![captured(), requeued(1)])
        .when(resolve("again", None))
        .then_expect_error(DlqError::AlreadyResolved {
            id: id(),
            by: "http:ops1".into(),
            at: at(60),
        });
}

#[test]
fn resolving_an_unknown_entry_is_not_found() {
    DlqTest::with(())
        .given_no_previous_events()
        .when(resolve("x", None))
        .then_expect_error(DlqError::NotFound(id()));
}

#[test]
fn a_note_that_is_too_long_is_named() {
    let command = resolve(&"n".repeat(MAX_NOTE_CHARS + 1), None);
    assert_eq!(invalid_field(error_of(vec![captured()], command)), "note");
}

#[test]
fn the_first_requeue_uses_message_id_one() {
    assert_eq!(
        fold(&[captured()]).next_message_id(),
        format!("dlq/{}/1", id())
    );
}

#[test]
fn events_are_flat_and_tagged() {
    let value = serde_json::to_value(captured()).unwrap();
    assert_eq!(value["type"], "DlqEntryCaptured");
    assert_eq!(value["original_subject"], "task.execute");
    assert_eq!(value["source"]["stream_seq"], 7);
    let back: DlqEvent = serde_json::from_value(value).unwrap();
    assert_eq!(back, captured());
}

/// The largest dead letters the rules let through, each with text that escapes badly.
fn maximal_letters() -> Vec<(&'static str, DeadLetter)> {
    let control = "\u{1}".repeat(MAX_HEADER_VALUE);
    let mut headers = BTreeMap::new();
    let mut header_bytes = 0;
    for i in 0..MAX_HEADERS {
        let name = format!("X-{i:0>250}");
        if header_bytes + name.len() + control.len() > MAX_HEADER_BYTES {
            break;
        }
        header_bytes += name.len() + control.len();
        headers.insert(name, vec![control.clone()]);
    }
    let letter = |payload: String, encoding: Encoding| DeadLetter {
        original_subject: format!("{}.x", "a".repeat(crate::dlq::MAX_SUBJECT - 2)),
        payload,
        encoding,
        headers: headers.clone(),
        error: "\u{1}".repeat(MAX_ERROR_CHARS),
        attempts: MAX_ATTEMPTS,
        source: Some(source(1)),
    };
    let binary: Vec<u8> = (0..MAX_PAYLOAD_BYTES).map(|i| (i % 251) as u8).collect();
    let quotes_json = format!("\"{}\"", "\\\"".repeat((MAX_PAYLOAD_BYTES - 2) / 2));
    vec![
        (
            "control characters as text",
            letter("\u{1}".repeat(MAX_PAYLOAD_BYTES), Encoding::Text),
        ),
        (
            "escaped quotes as JSON",
            letter(quotes_json, Encoding::Json),
        ),
        ("binary", {
            let (encoding, payload) = encode_payload(&binary);
            letter(payload, encoding)
        }),
    ]
}

#[test]
fn a_maximal_dead_letter_fits_in_an_event() {
    for (what, letter) in maximal_letters() {
        let bytes = decode_payload(letter.encoding, &letter.payload).unwrap();
        let (events, _) = DlqEntry::default()
            .decide(DlqCommand::Capture {
                id: id(),
                letter,
                actor: "worker:dlq-capture".into(),
                now: t0(),
            })
            .unwrap_or_else(|e| panic!("{what} is accepted: {e}"));
        let size = serde_json::to_vec(&events[0]).unwrap().len();
        assert!(
            size <= crate::MAX_EVENT_BYTES,
            "{what}: the event takes {size} bytes, more than {}",
            crate::MAX_EVENT_BYTES
        );
        let DlqEvent::DlqEntryCaptured {
            payload, encoding, ..
        } = &events[0]
        else {
            panic!("captured")
        };
        assert_eq!(
            decode_payload(*encoding, payload).unwrap(),
            bytes,
            "{what}: kept byte-exact"
        );
    }
}

#[test]
fn text_that_escapes_to_more_than_base64_is_kept_as_base64() {
    let (encoding, _) = encode_payload("\u{1}\u{2}\u{3}".as_bytes());
    assert_eq!(encoding, Encoding::Base64);
    let (encoding, payload) = encode_payload(br#"{"task":"t1"}"#);
    assert_eq!(
        (encoding, payload.as_str()),
        (Encoding::Json, r#"{"task":"t1"}"#)
    );
}

#[test]
fn headers_are_refused_past_their_total_size() {
    let mut letter = letter(1);
    letter.headers = (0..20)
        .map(|i| (format!("H{i}"), vec!["v".repeat(MAX_HEADER_VALUE)]))
        .collect();
    let refused = DlqEntry::default().decide(DlqCommand::Capture {
        id: id(),
        letter,
        actor: "svc".into(),
        now: t0(),
    });
    assert!(
        matches!(&refused, Err(DlqError::Invalid { field, .. }) if *field == "headers"),
        "{refused:?}"
    );
}

// ---- edit, then requeue ----------------------------------------------------------------

const FIXED: &str = r#"{"task":"t1","retries":0}"#;

fn sha(bytes: &[u8]) -> String {
    crate::dlq::sha256_hex(bytes)
}

fn requeue_edited(payload: &str, encoding: Encoding) -> DlqCommand {
    DlqCommand::RequeueEdited {
        id: id(),
        payload: payload.into(),
        encoding,
        note: Some("schema fixed by hand".into()),
        requeue: Requeue {
            message_id: format!("dlq/{}/1/{}", id(), &sha(payload.as_bytes())[..16]),
            stored_in: Some(source(101)),
        },
        actor: "http:ops1".into(),
        now: at(60),
    }
}

fn edited(payload: &str) -> DlqEvent {
    DlqEvent::DlqEntryPayloadEdited {
        id: id(),
        payload: payload.into(),
        encoding: Encoding::Json,
        original_sha256: sha(br#"{"task":"t1"}"#),
        edited_sha256: sha(payload.as_bytes()),
        actor: "http:ops1".into(),
        at: at(60),
    }
}

fn requeued_edited(payload: &str, n: u32) -> DlqEvent {
    DlqEvent::DlqEntryResolved {
        id: id(),
        note: Some("schema fixed by hand".into()),
        requeued: true,
        message_id: Some(format!(
            "dlq/{}/{n}/{}",
            id(),
            &sha(payload.as_bytes())[..16]
        )),
        requeued_to: Some(source(101)),
        resolved: true,
        requeue_count: n,
        actor: "http:ops1".into(),
        at: at(60),
    }
}

#[test]
fn an_edited_requeue_records_both_hashes_and_who_edited_then_the_requeue() {
    DlqTest::with(())
        .given(vec![captured()])
        .when(requeue_edited(FIXED, Encoding::Json))
        .then_expect_events(vec![edited(FIXED), requeued_edited(FIXED, 1)]);
}

#[test]
fn the_captured_payload_stays_readable_after_an_edit() {
    let entry = fold(&[captured(), edited(FIXED), requeued_edited(FIXED, 1)]);
    assert_eq!(entry.payload, r#"{"task":"t1"}"#);
    assert_eq!(entry.encoding, Encoding::Json);
    let edit = entry.edited.as_ref().expect("the edit is kept");
    assert_eq!(
        (edit.payload.as_str(), edit.actor.as_str(), edit.at),
        (FIXED, "http:ops1", at(60))
    );
    assert_eq!(edit.sha256, sha(FIXED.as_bytes()));
    let actions: Vec<&str> = entry.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions, ["captured", "edited", "requeued"]);
    assert_eq!(
        entry.history[1].original_sha256.as_deref(),
        Some(sha(br#"{"task":"t1"}"#).as_str())
    );
    assert_eq!(
        entry.history[1].edited_sha256.as_deref(),
        Some(sha(FIXED.as_bytes()).as_str())
    );
}

#[test]
fn a_later_requeue_sends_the_edited_bytes() {
    let entry = fold(&[
        captured(),
        edited(FIXED),
        requeued_edited(FIXED, 1),
        recaptured(101, 1, 10),
    ]);
    assert_eq!(entry.requeue_payload(), (Encoding::Json, FIXED));
    assert_eq!(fold(&[captured()]).requeue_payload().1, r#"{"task":"t1"}"#);
}

#[test]
fn an_edit_that_changes_no_byte_is_refused() {
    let command = requeue_edited(r#"{"task":"t1"}"#, Encoding::Json);
    assert_eq!(
        invalid_field(error_of(vec![captured()], command)),
        "payload"
    );
    // After an edit, the edit is what would be sent: the same edit again is no edit.
    let given = vec![
        captured(),
        edited(FIXED),
        requeued_edited(FIXED, 1),
        recaptured(101, 1, 10),
    ];
    let command = requeue_edited(FIXED, Encoding::Json);
    assert_eq!(invalid_field(error_of(given.clone(), command)), "payload");
    // Going back to the captured bytes is an edit.
    assert!(fold(&given)
        .decide(requeue_edited(r#"{"task":"t1"}"#, Encoding::Json))
        .is_ok());
}

#[test]
fn an_edit_of_a_resolved_entry_is_refused() {
    DlqTest::with(())
        .given(vec![captured(), requeued(1)])
        .when(requeue_edited(FIXED, Encoding::Json))
        .then_expect_error(DlqError::AlreadyResolved {
            id: id(),
            by: "http:ops1".into(),
            at: at(60),
        });
}

#[test]
fn an_edit_of_an_unknown_entry_is_not_found() {
    DlqTest::with(())
        .given_no_previous_events()
        .when(requeue_edited(FIXED, Encoding::Json))
        .then_expect_error(DlqError::NotFound(id()));
}

#[test]
fn an_edited_payload_is_checked_like_a_captured_one() {
    for (payload, encoding) in [
        ("{not json", Encoding::Json),
        ("a\0b", Encoding::Text),
        ("@@", Encoding::Base64),
    ] {
        let command = requeue_edited(payload, encoding);
        assert_eq!(
            invalid_field(error_of(vec![captured()], command)),
            "payload",
            "{payload:?}"
        );
    }
    let too_big = "x".repeat(MAX_PAYLOAD_BYTES + 1);
    let command = requeue_edited(&too_big, Encoding::Text);
    assert_eq!(
        invalid_field(error_of(vec![captured()], command)),
        "payload"
    );
}

#[test]
fn an_edited_requeue_checks_its_note() {
    let mut command = requeue_edited(FIXED, Encoding::Json);
    if let DlqCommand::RequeueEdited { note, .. } = &mut command {
        *note = Some("n".repeat(MAX_NOTE_CHARS + 1));
    }
    assert_eq!(invalid_field(error_of(vec![captured()], command)), "note");
}

#[test]
fn the_edited_message_id_carries_the_start_of_the_edits_hash() {
    let entry = fold(&[captured()]);
    let hash = sha(FIXED.as_bytes());
    assert_eq!(
        entry.next_edited_message_id(&hash),
        format!("dlq/{}/1/{}", id(), &hash[..16])
    );
}

#[test]
fn a_maximal_edited_payload_fits_in_an_event() {
    for (what, letter) in maximal_letters() {
        let (events, _) = fold(&[captured()])
            .decide(DlqCommand::RequeueEdited {
                id: id(),
                payload: letter.payload,
                encoding: letter.encoding,
                note: Some("\u{1}".repeat(MAX_NOTE_CHARS)),
                requeue: requeue(1),
                actor: "http:ops1".into(),
                now: t0(),
            })
            .unwrap_or_else(|e| panic!("{what} is accepted: {e}"));
        for event in &events {
            let size = serde_json::to_vec(event).unwrap().len();
            assert!(size <= crate::MAX_EVENT_BYTES, "{what}: {size} bytes");
        }
    }
}
