//! The chain hash of one event after its predecessor (the formula: the module's docs).

use sha2::{Digest, Sha256};

use crate::envelope::EventEnvelope;

/// The `prev` of an aggregate's first event.
pub const GENESIS: [u8; 32] = [0; 32];

fn field(hasher: &mut Sha256, value: &str) {
    hasher.update((value.len() as u32).to_be_bytes());
    hasher.update(value.as_bytes());
}

/// The chain hash of `event` after `prev`.
pub fn chain_hash(prev: &[u8], event: &EventEnvelope) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    field(&mut hasher, &event.global_position.to_string());
    field(&mut hasher, &event.aggregate_type);
    field(&mut hasher, &event.aggregate_id);
    field(&mut hasher, &event.sequence.to_string());
    field(&mut hasher, &event.event_type);
    field(&mut hasher, &event.event_version);
    field(
        &mut hasher,
        &event.recorded_at.timestamp_micros().to_string(),
    );
    field(&mut hasher, event.payload.get());
    field(&mut hasher, event.metadata.get());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use serde_json::value::RawValue;

    #[test]
    fn the_hash_covers_every_field_with_length_prefixes() {
        let event = |payload: &str, metadata: &str| EventEnvelope {
            global_position: 7,
            transaction_id: "1".into(),
            aggregate_type: "Budget".into(),
            aggregate_id: "a/b".into(),
            sequence: 1,
            event_type: "E".into(),
            event_version: "1".into(),
            payload: RawValue::from_string(payload.into()).unwrap(),
            metadata: RawValue::from_string(metadata.into()).unwrap(),
            recorded_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            hash: None,
        };
        let a = chain_hash(&GENESIS, &event("{\"x\":1}", "{}"));
        assert_ne!(a, chain_hash(&GENESIS, &event("{\"x\":2}", "{}")));
        // Moving bytes from one field to the next changes the hash (length prefixes).
        assert_ne!(
            chain_hash(&GENESIS, &event("[1 ]", "{}")),
            chain_hash(&GENESIS, &event("[1]", " {}"))
        );
        assert_ne!(a, chain_hash(&[1; 32], &event("{\"x\":1}", "{}")));
    }
}
