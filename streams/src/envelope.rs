//! The published form of an event, and reading the log in commit order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};

/// One event as it travels on JetStream (and as auditors export it): every stored column.
/// `payload` and `metadata` are the JSON text exactly as stored, so an auditor can
/// recompute the hash chain from a stream copy alone.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventEnvelope {
    /// The event's place in insertion order; unique, used in `Nats-Msg-Id`.
    pub global_position: i64,
    /// The writing transaction (PostgreSQL xid8, as decimal text). With
    /// `global_position` it orders the log by commit.
    pub transaction_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The event's number within its aggregate, from 1.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    #[schema(value_type = Object)]
    pub metadata: Box<RawValue>,
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 chain hash (hex) over this event and the previous one of its aggregate;
    /// see docs/audit.md. Absent only on events read before the chain existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl EventEnvelope {
    /// The `Nats-Msg-Id` of this event: stable across re-publishes.
    pub fn message_id(&self) -> String {
        format!("events/{}", self.global_position)
    }

    pub fn position(&self) -> LogPosition {
        LogPosition {
            transaction_id: self.transaction_id.clone(),
            global_position: self.global_position,
        }
    }

    /// Builds an envelope from a row of [`SELECT_ENVELOPE`].
    pub fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let raw = |column: &str| -> Result<Box<RawValue>, sqlx::Error> {
            let text: String = row.try_get(column)?;
            RawValue::from_string(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        };
        let hash: Option<Vec<u8>> = row.try_get("hash")?;
        Ok(EventEnvelope {
            global_position: row.try_get("global_position")?,
            transaction_id: row.try_get("transaction_id")?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: raw("payload")?,
            metadata: raw("metadata")?,
            recorded_at: row.try_get("recorded_at")?,
            hash: hash.map(hex::encode),
        })
    }
}

/// The columns of an [`EventEnvelope`], for `SELECT {SELECT_ENVELOPE} FROM events ...`.
pub const SELECT_ENVELOPE: &str = "global_position, transaction_id::text AS transaction_id, \
    aggregate_type, aggregate_id, sequence, event_type, event_version, \
    payload::text AS payload, metadata::text AS metadata, recorded_at, hash";

/// A point in commit order: everything at or before it has been handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    pub transaction_id: String,
    pub global_position: i64,
}

impl LogPosition {
    /// Before the first event.
    pub fn start() -> Self {
        LogPosition {
            transaction_id: "0".into(),
            global_position: 0,
        }
    }
}

/// The condition that keeps a reader from running ahead of a transaction still in flight:
/// only events whose transaction is older than every transaction still running. A
/// transaction that started earlier but commits later would otherwise be skipped for good
/// once a reader's position moved past its `global_position`.
pub const COMMITTED: &str = "events.transaction_id < pg_snapshot_xmin(pg_current_snapshot())";

/// Commit order, as an `ORDER BY` list. The columns are qualified on purpose: a bare
/// `transaction_id` in `ORDER BY` names the output column of [`SELECT_ENVELOPE`]
/// (`transaction_id::text`), which sorted the log as text ("10" before "9") and could
/// not use `events_commit_order_idx` (every read sorted the whole rest of the log).
pub const COMMIT_ORDER: &str = "events.transaction_id, events.global_position";

/// [`COMMIT_ORDER`] backwards: the newest event first.
pub const COMMIT_ORDER_DESC: &str = "events.transaction_id DESC, events.global_position DESC";

/// Up to `limit` committed events after `after`, in commit order (see [`COMMITTED`]).
pub async fn read_committed_after<'e>(
    executor: impl PgExecutor<'e>,
    after: &LogPosition,
    limit: i64,
) -> Result<Vec<EventEnvelope>, sqlx::Error> {
    let sql = format!(
        "SELECT {SELECT_ENVELOPE} FROM events
          WHERE (events.transaction_id, events.global_position) > ($1::text::xid8, $2)
            AND {COMMITTED}
          ORDER BY {COMMIT_ORDER}
          LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(&after.transaction_id)
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter().map(EventEnvelope::from_row).collect()
}

/// How many events there are after `after` in commit order, counting at most `limit` (a
/// bounded index walk, not a scan of the rest of the log): enough to tell whether a replay
/// from `after` would be longer than `limit`.
pub async fn count_after<'e>(
    executor: impl PgExecutor<'e>,
    after: &LogPosition,
    limit: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM (
           SELECT 1 FROM events
            WHERE (events.transaction_id, events.global_position) > ($1::text::xid8, $2)
            LIMIT $3) AS behind",
    )
    .bind(&after.transaction_id)
    .bind(after.global_position)
    .bind(limit)
    .fetch_one(executor)
    .await
}

/// The subject an event is published on: `<prefix>.events.<aggregate_type>.<id tokens>`.
///
/// Aggregate ids may contain '/' (a budget is `tenant/project`): each '/' becomes a '.'
/// so the parts are separate subject tokens (`cp.events.Budget.org1.proj1`, filterable as
/// `cp.events.Budget.org1.>`). Any other character outside `[A-Za-z0-9_-]` becomes '_'
/// and an empty part becomes '_', so a subject is always valid; the exact id is in the
/// message body.
pub fn subject_for(prefix: &str, aggregate_type: &str, aggregate_id: &str) -> String {
    format!(
        "{prefix}.events.{}.{}",
        subject_token(aggregate_type),
        aggregate_id
            .split('/')
            .map(subject_token)
            .collect::<Vec<_>>()
            .join(".")
    )
}

fn subject_token(part: &str) -> String {
    if part.is_empty() {
        return "_".into();
    }
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_id_becomes_two_subject_tokens() {
        assert_eq!(
            subject_for("cp", "Budget", "org1/proj1"),
            "cp.events.Budget.org1.proj1"
        );
    }

    #[test]
    fn odd_characters_and_empty_parts_cannot_break_the_subject() {
        assert_eq!(
            subject_for("t1.x", "Budget", "a.b*/>/"),
            "t1.x.events.Budget.a_b_._._"
        );
        assert_eq!(subject_for("cp", "", "x y"), "cp.events._.x_y");
    }
}
