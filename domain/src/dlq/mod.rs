//! Dead letters: messages a consumer gave up on, kept so an operator can look at them,
//! fix the cause and send them again.
//!
//! A [`DlqEntry`] is captured once per dead message: automatically from a JetStream
//! max-deliveries advisory (its id is then `js:<stream>:<stream_seq>`, so a second
//! advisory for the same message changes nothing), or explicitly by a service or an
//! operator (an id of their choosing, or a fresh one). It is resolved once, by someone,
//! with a note, and possibly requeued: the original payload and headers are published again
//! on the original subject, and the entry counts how often that happened. A requeued
//! message that dies again names its entry in a header, and reopens that entry instead of
//! making a new one (`DlqEntryRecaptured`), so the count says how often a message came back.
//!
//! An operator may correct the payload before a requeue ([`DlqCommand::RequeueEdited`]): the
//! entry keeps the captured payload, records the edited one with both SHA-256 hashes and who
//! edited (`DlqEntryPayloadEdited`), and every later requeue sends the edited bytes.
//!
//! Payloads are kept byte-exact: JSON as its exact text, other UTF-8 as text, anything else
//! as base64 ([`Encoding`]).

mod aggregate;
mod commands;
mod events;

pub use aggregate::{history_item, DlqEntry, DlqError, DlqReply, EditedPayload, HistoryItem};
pub use commands::{DeadLetter, DlqCommand, Requeue};
pub use events::{DlqEvent, Encoding, Source};

use base64::Engine;

/// Longest error text kept; longer texts are cut (a failing service should not also fail
/// to report).
pub const MAX_ERROR_CHARS: usize = 4096;
/// Longest resolution note.
pub const MAX_NOTE_CHARS: usize = 2048;
/// Largest payload kept: the NATS server's default maximum message size. Kept in its most
/// compact exact form ([`compact_payload`]), it takes at most 4/3 of this in an event.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Most header names per entry, longest name and value, and most bytes of names and
/// values together: with the payload, a dead letter's event stays below
/// [`crate::MAX_EVENT_BYTES`] however its text escapes.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_NAME: usize = 256;
pub const MAX_HEADER_VALUE: usize = 4096;
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest subject accepted.
pub const MAX_SUBJECT: usize = 512;
/// Largest attempt count accepted.
pub const MAX_ATTEMPTS: u64 = 1_000_000_000;
/// The header a requeued message carries: the id of the entry it came from.
pub const ENTRY_HEADER: &str = "Cp-Dlq-Entry";

/// Why an entry id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryIdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 160 characters")]
    TooLong,
    #[error("may contain only letters, digits, '_', '-', '.' and ':'")]
    BadCharacter,
}

/// Entry ids: 1–160 characters of `[A-Za-z0-9_.:-]`: safe in URLs, NATS headers and
/// aggregate keys, and wide enough for `js:<stream>:<sequence>` and UUIDs.
pub fn validate_entry_id(id: &str) -> Result<(), EntryIdError> {
    if id.is_empty() {
        return Err(EntryIdError::Empty);
    }
    if id.len() > 160 {
        return Err(EntryIdError::TooLong);
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err(EntryIdError::BadCharacter);
    }
    Ok(())
}

/// The id of the entry of a JetStream message: one entry per (stream, sequence).
pub fn entry_id_for(stream: &str, stream_seq: u64) -> String {
    format!("js:{stream}:{stream_seq}")
}

/// A subject a message can be published on: dot-separated non-empty tokens, no
/// whitespace or control characters, no wildcards.
pub fn validate_subject(subject: &str) -> Result<(), String> {
    if subject.is_empty() {
        return Err("must not be empty".into());
    }
    if subject.len() > MAX_SUBJECT {
        return Err(format!("must be at most {MAX_SUBJECT} bytes"));
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    for token in subject.split('.') {
        if token.is_empty() {
            return Err("must be dot-separated non-empty tokens".into());
        }
        if token == "*" || token == ">" {
            return Err("must not contain wildcards".into());
        }
    }
    Ok(())
}

/// How payload bytes are kept: exactly, in the most readable form that is exact.
pub fn encode_payload(bytes: &[u8]) -> (Encoding, String) {
    let (encoding, payload) = match std::str::from_utf8(bytes) {
        Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
            (Encoding::Json, text.to_string())
        }
        // PostgreSQL text cannot hold NUL: such text is kept as base64, exact all the same.
        Ok(text) if !text.contains('\0') => (Encoding::Text, text.to_string()),
        _ => (
            Encoding::Base64,
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ),
    };
    compact_payload(encoding, payload)
}

/// The length of `text` as a JSON string's contents (what it takes inside an event).
fn json_escaped_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// The payload in the form that takes the least room in an event, exactly: text whose
/// escapes (quotes, backslashes, control characters: up to six bytes each) would make it
/// longer than base64 is kept as base64. The bytes are the same either way, so a requeue
/// sends exactly what was captured.
pub fn compact_payload(encoding: Encoding, payload: String) -> (Encoding, String) {
    if encoding == Encoding::Base64 {
        return (encoding, payload);
    }
    let base64_len = payload.len().div_ceil(3) * 4;
    if json_escaped_len(&payload) > base64_len {
        (
            Encoding::Base64,
            base64::engine::general_purpose::STANDARD.encode(payload.as_bytes()),
        )
    } else {
        (encoding, payload)
    }
}

/// The original bytes of a kept payload, base64-encoded (JSON and text payloads are kept
/// as their exact text, binary ones as base64 already).
pub fn payload_base64(encoding: Encoding, payload: &str) -> String {
    match encoding {
        Encoding::Base64 => payload.to_string(),
        Encoding::Json | Encoding::Text => {
            base64::engine::general_purpose::STANDARD.encode(payload.as_bytes())
        }
    }
}

/// SHA-256 of bytes, lowercase hex: how edit events name the payloads they replace.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The original bytes of a kept payload.
pub fn decode_payload(encoding: Encoding, payload: &str) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Json | Encoding::Text => Ok(payload.as_bytes().to_vec()),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map_err(|e| format!("is not valid base64: {e}")),
    }
}

#[cfg(test)]
mod support_tests {
    use super::*;

    #[test]
    fn entry_ids_allow_uuids_and_jetstream_ids() {
        assert_eq!(validate_entry_id("js:WORK:42"), Ok(()));
        assert_eq!(
            validate_entry_id("0190a3c4-7d1e-7000-8000-000000000000"),
            Ok(())
        );
        assert_eq!(validate_entry_id(""), Err(EntryIdError::Empty));
        assert_eq!(
            validate_entry_id(&"a".repeat(161)),
            Err(EntryIdError::TooLong)
        );
        for bad in ["a b", "a/b", "é", "a*", "a?b"] {
            assert_eq!(
                validate_entry_id(bad),
                Err(EntryIdError::BadCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn subjects_are_literal_dot_separated_tokens() {
        assert!(validate_subject("task.execute").is_ok());
        for bad in ["", "a..b", ".a", "a.", "a.*", "a.>", "a b", "a\nb"] {
            assert!(validate_subject(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_is_kept_as_its_exact_text() {
        let bytes = br#"{ "b":1,  "a" : [2] }"#;
        let (encoding, kept) = encode_payload(bytes);
        assert_eq!(encoding, Encoding::Json);
        assert_eq!(kept.as_bytes(), bytes);
        assert_eq!(decode_payload(encoding, &kept).unwrap(), bytes);
    }

    #[test]
    fn text_that_is_not_json_is_kept_as_text() {
        let (encoding, kept) = encode_payload(b"hello world");
        assert_eq!((encoding, kept.as_str()), (Encoding::Text, "hello world"));
    }

    #[test]
    fn binary_payloads_round_trip_through_base64() {
        let bytes = [0u8, 159, 146, 150, 255, b'{'];
        let (encoding, kept) = encode_payload(&bytes);
        assert_eq!(encoding, Encoding::Base64);
        assert_eq!(decode_payload(encoding, &kept).unwrap(), bytes);
        assert!(decode_payload(Encoding::Base64, "not base64!").is_err());
    }

    #[test]
    fn text_with_nul_is_kept_as_base64() {
        let (encoding, kept) = encode_payload(b"a\0b");
        assert_eq!(encoding, Encoding::Base64);
        assert_eq!(decode_payload(encoding, &kept).unwrap(), b"a\0b");
    }

    #[test]
    fn an_empty_payload_is_empty_text() {
        assert_eq!(encode_payload(b""), (Encoding::Text, String::new()));
    }
}
