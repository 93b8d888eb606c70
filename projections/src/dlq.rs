//! The dead-letter read model (`read_dlq`): one row per entry, copied from its events
//! (they carry `resolved` and `requeue_count` after them; history lines come from the
//! domain's own [`history_item`]), and the queries `GET /dlq` and redrive jobs run on it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::dlq::{history_item, DlqEvent};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use streams::EventEnvelope;

use crate::budgets::At;
use crate::ProjectionError;

/// A row of `read_dlq`.
#[derive(Debug, Clone, PartialEq)]
pub struct DlqRow {
    pub id: String,
    pub original_subject: String,
    pub payload: String,
    /// `json`, `text` or `base64`.
    pub encoding: String,
    pub headers: serde_json::Value,
    pub error: String,
    pub attempts: i64,
    pub stream: Option<String>,
    pub consumer: Option<String>,
    pub stream_seq: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub resolved: bool,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
    pub requeue_count: i32,
    pub history: serde_json::Value,
    pub last_position: i64,
    pub updated_at: DateTime<Utc>,
    /// The latest edit of the payload (what requeues send), if any.
    pub edited: Option<EditedRow>,
}

/// An edited payload as `read_dlq` keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct EditedRow {
    pub payload: String,
    /// `json`, `text` or `base64`.
    pub encoding: String,
    pub sha256: String,
    pub edited_by: String,
    pub edited_at: DateTime<Utc>,
}

/// The rows a batch touches, loaded before and written back after.
#[derive(Debug, Default)]
pub struct DlqRows {
    pub rows: HashMap<String, DlqRow>,
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl DlqRows {
    /// Applies one event of entry `id`.
    pub fn apply(&mut self, id: &str, event: &DlqEvent, at: At) {
        let line = serde_json::to_value(history_item(event)).unwrap_or_default();
        match event {
            DlqEvent::DlqEntryCaptured {
                original_subject,
                payload,
                encoding,
                headers,
                error,
                attempts,
                source,
                resolved,
                requeue_count,
                at: captured_at,
                ..
            } => {
                self.rows.insert(
                    id.to_string(),
                    DlqRow {
                        id: id.to_string(),
                        original_subject: original_subject.clone(),
                        payload: payload.clone(),
                        encoding: encoding.as_str().to_string(),
                        headers: serde_json::to_value(headers).unwrap_or_default(),
                        error: error.clone(),
                        attempts: int(*attempts),
                        stream: source.as_ref().map(|s| s.stream.clone()),
                        consumer: source.as_ref().and_then(|s| s.consumer.clone()),
                        stream_seq: source.as_ref().map(|s| int(s.stream_seq)),
                        created_at: *captured_at,
                        resolved: *resolved,
                        resolved_at: None,
                        resolved_by: None,
                        note: None,
                        requeue_count: i32::try_from(*requeue_count).unwrap_or(i32::MAX),
                        history: serde_json::Value::Array(vec![line]),
                        last_position: at.position,
                        updated_at: at.recorded_at,
                        edited: None,
                    },
                );
            }
            DlqEvent::DlqEntryPayloadEdited {
                payload,
                encoding,
                edited_sha256,
                actor,
                at: edited_at,
                ..
            } => {
                let Some(row) = self.row(id) else { return };
                row.edited = Some(EditedRow {
                    payload: payload.clone(),
                    encoding: encoding.as_str().to_string(),
                    sha256: edited_sha256.clone(),
                    edited_by: actor.clone(),
                    edited_at: *edited_at,
                });
                push(&mut row.history, line);
                row.last_position = at.position;
                row.updated_at = at.recorded_at;
            }
            DlqEvent::DlqEntryResolved {
                note,
                resolved,
                requeue_count,
                actor,
                at: resolved_at,
                ..
            } => {
                let Some(row) = self.row(id) else { return };
                row.resolved = *resolved;
                row.resolved_at = Some(*resolved_at);
                row.resolved_by = Some(actor.clone());
                row.note.clone_from(note);
                row.requeue_count = i32::try_from(*requeue_count).unwrap_or(i32::MAX);
                push(&mut row.history, line);
                row.last_position = at.position;
                row.updated_at = at.recorded_at;
            }
            DlqEvent::DlqEntryRecaptured {
                error,
                total_attempts,
                resolved,
                requeue_count,
                ..
            } => {
                let Some(row) = self.row(id) else { return };
                row.error.clone_from(error);
                row.attempts = int(*total_attempts);
                row.resolved = *resolved;
                row.resolved_at = None;
                row.resolved_by = None;
                row.note = None;
                row.requeue_count = i32::try_from(*requeue_count).unwrap_or(i32::MAX);
                push(&mut row.history, line);
                row.last_position = at.position;
                row.updated_at = at.recorded_at;
            }
        }
    }

    fn row(&mut self, id: &str) -> Option<&mut DlqRow> {
        let row = self.rows.get_mut(id);
        if row.is_none() {
            // The per-aggregate version check applies every entry's events in order from
            // its capture, so this means a damaged read model: say so, change nothing.
            tracing::warn!(%id, "a dead-letter event for an entry the read model never saw captured");
        }
        row
    }
}

fn push(history: &mut serde_json::Value, line: serde_json::Value) {
    match history {
        serde_json::Value::Array(lines) => lines.push(line),
        other => *other = serde_json::Value::Array(vec![line]),
    }
}

const COLUMNS: &str = "id, original_subject, payload, encoding, headers, error, attempts, stream, \
    consumer, stream_seq, created_at, resolved, resolved_at, resolved_by, note, requeue_count, \
    history, last_position, updated_at, edited_payload, edited_encoding, edited_sha256, edited_by, \
    edited_at";

fn from_row(row: &PgRow) -> Result<DlqRow, sqlx::Error> {
    Ok(DlqRow {
        id: row.try_get("id")?,
        original_subject: row.try_get("original_subject")?,
        payload: row.try_get("payload")?,
        encoding: row.try_get("encoding")?,
        headers: row.try_get("headers")?,
        error: row.try_get("error")?,
        attempts: row.try_get("attempts")?,
        stream: row.try_get("stream")?,
        consumer: row.try_get("consumer")?,
        stream_seq: row.try_get("stream_seq")?,
        created_at: row.try_get("created_at")?,
        resolved: row.try_get("resolved")?,
        resolved_at: row.try_get("resolved_at")?,
        resolved_by: row.try_get("resolved_by")?,
        note: row.try_get("note")?,
        requeue_count: row.try_get("requeue_count")?,
        history: row.try_get("history")?,
        last_position: row.try_get("last_position")?,
        updated_at: row.try_get("updated_at")?,
        edited: match row.try_get::<Option<String>, _>("edited_payload")? {
            Some(payload) => Some(EditedRow {
                payload,
                encoding: row.try_get("edited_encoding")?,
                sha256: row.try_get("edited_sha256")?,
                edited_by: row.try_get("edited_by")?,
                edited_at: row.try_get("edited_at")?,
            }),
            None => None,
        },
    })
}

/// Loads the rows of `ids` (inside the projector's transaction).
pub async fn load_rows(conn: &mut PgConnection, ids: &[String]) -> Result<DlqRows, sqlx::Error> {
    let mut rows = DlqRows::default();
    let sql = format!("SELECT {COLUMNS} FROM read_dlq WHERE id = ANY($1)");
    for row in sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await? {
        let row = from_row(&row)?;
        rows.rows.insert(row.id.clone(), row);
    }
    Ok(rows)
}

/// Inserts or replaces rows. Dead letters are few and large: one statement per row.
pub async fn write_rows(conn: &mut PgConnection, rows: &[&DlqRow]) -> Result<(), sqlx::Error> {
    for r in rows {
        sqlx::query(
            "INSERT INTO read_dlq (id, original_subject, payload, encoding, headers, error, attempts,
                    stream, consumer, stream_seq, created_at, resolved, resolved_at, resolved_by, note,
                    requeue_count, history, last_position, updated_at, edited_payload, edited_encoding,
                    edited_sha256, edited_by, edited_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                     $20, $21, $22, $23, $24)
             ON CONFLICT (id) DO UPDATE
                SET error = EXCLUDED.error, attempts = EXCLUDED.attempts,
                    resolved = EXCLUDED.resolved, resolved_at = EXCLUDED.resolved_at,
                    resolved_by = EXCLUDED.resolved_by, note = EXCLUDED.note,
                    requeue_count = EXCLUDED.requeue_count, history = EXCLUDED.history,
                    last_position = EXCLUDED.last_position, updated_at = EXCLUDED.updated_at,
                    edited_payload = EXCLUDED.edited_payload, edited_encoding = EXCLUDED.edited_encoding,
                    edited_sha256 = EXCLUDED.edited_sha256, edited_by = EXCLUDED.edited_by,
                    edited_at = EXCLUDED.edited_at",
        )
        .bind(&r.id)
        .bind(&r.original_subject)
        .bind(&r.payload)
        .bind(&r.encoding)
        .bind(&r.headers)
        .bind(&r.error)
        .bind(r.attempts)
        .bind(&r.stream)
        .bind(&r.consumer)
        .bind(r.stream_seq)
        .bind(r.created_at)
        .bind(r.resolved)
        .bind(r.resolved_at)
        .bind(&r.resolved_by)
        .bind(&r.note)
        .bind(r.requeue_count)
        .bind(&r.history)
        .bind(r.last_position)
        .bind(r.updated_at)
        .bind(r.edited.as_ref().map(|e| &e.payload))
        .bind(r.edited.as_ref().map(|e| &e.encoding))
        .bind(r.edited.as_ref().map(|e| &e.sha256))
        .bind(r.edited.as_ref().map(|e| &e.edited_by))
        .bind(r.edited.as_ref().map(|e| e.edited_at))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Which entries a list or a redrive job is about. Every condition is optional.
#[derive(Debug, Clone, Default)]
pub struct DlqFilter {
    pub resolved: Option<bool>,
    /// The exact original subject.
    pub subject: Option<String>,
    /// A case-insensitive substring of the error text.
    pub error_contains: Option<String>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created at or before.
    pub until: Option<DateTime<Utc>>,
}

/// `$1..$5` of every filtered query: resolved, subject, error_contains, since, until.
const WHERE: &str = "($1::boolean IS NULL OR resolved = $1)
    AND ($2::text IS NULL OR original_subject = $2)
    AND ($3::text IS NULL OR strpos(lower(error), lower($3)) > 0)
    AND ($4::timestamptz IS NULL OR created_at >= $4)
    AND ($5::timestamptz IS NULL OR created_at <= $5)";

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_filter<'q>(query: Query<'q>, filter: &'q DlqFilter) -> Query<'q> {
    query
        .bind(filter.resolved)
        .bind(filter.subject.as_deref())
        .bind(filter.error_contains.as_deref())
        .bind(filter.since)
        .bind(filter.until)
}

/// A page of entries, oldest first, and how many match in all.
pub async fn list(
    pool: &PgPool,
    filter: &DlqFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DlqRow>, i64), sqlx::Error> {
    // The page's rows first (by count), then their sizes in order, then the rows that fit
    // in MAX_PAGE_BYTES (at least one): the caller goes on from offset + the rows it got.
    let sql = format!(
        "WITH limited AS (
             SELECT id, created_at, pg_column_size(payload) + pg_column_size(headers)
                    + coalesce(pg_column_size(edited_payload), 0) AS size,
                    count(*) OVER () AS total
               FROM read_dlq WHERE {WHERE}
              ORDER BY created_at, id LIMIT $6 OFFSET $7),
         sized AS (
             SELECT id, total, sum(size) OVER (ORDER BY created_at, id) - size AS bytes_before
               FROM limited)
         SELECT {COLUMNS}, sized.total
           FROM read_dlq JOIN sized USING (id)
          WHERE sized.bytes_before < $8
          ORDER BY created_at, id"
    );
    let rows = bind_filter(sqlx::query(&sql), filter)
        .bind(limit)
        .bind(offset)
        .bind(MAX_PAGE_BYTES)
        .fetch_all(pool)
        .await?;
    let total = match rows.first() {
        Some(row) => row.try_get("total")?,
        // An offset past the end returns no rows: count separately.
        None => count(pool, filter).await?,
    };
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok((items, total))
}

/// Largest list page in stored bytes of payloads and headers (a page of 500 one-MiB dead
/// letters would otherwise be one 500 MiB answer).
pub const MAX_PAGE_BYTES: i64 = 8 * 1024 * 1024;

/// How many entries match.
pub async fn count(pool: &PgPool, filter: &DlqFilter) -> Result<i64, sqlx::Error> {
    count_after(pool, filter, None).await
}

/// One entry.
pub async fn get(pool: &PgPool, id: &str) -> Result<Option<DlqRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM read_dlq WHERE id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Matching entries after `after` in (created_at, id) order: what a redrive job moves next.
pub async fn next_after(
    pool: &PgPool,
    filter: &DlqFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
    let (created, id) = after.unzip();
    let sql = format!(
        "SELECT id, created_at FROM read_dlq WHERE {WHERE}
            AND ($6::timestamptz IS NULL OR (created_at, id) > ($6, $7))
          ORDER BY created_at, id LIMIT $8"
    );
    let rows = bind_filter(sqlx::query(&sql), filter)
        .bind(created)
        .bind(id)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Open entries that failed the same way: one original subject and one error text.
#[derive(Debug, Clone, PartialEq)]
pub struct DlqGroup {
    pub original_subject: String,
    pub error: String,
    pub count: i64,
    /// When the group's oldest entry was captured.
    pub first_seen: DateTime<Utc>,
    /// When the group's newest entry was captured (or last recaptured).
    pub last_seen: DateTime<Utc>,
}

/// The open entries matching `filter` (its `resolved` is ignored: groups are of open
/// entries) grouped by subject and error, largest group first, at most `limit` groups, and
/// how many groups there are in all.
pub async fn groups(
    pool: &PgPool,
    filter: &DlqFilter,
    limit: i64,
) -> Result<(Vec<DlqGroup>, i64), sqlx::Error> {
    let open = DlqFilter {
        resolved: Some(false),
        ..filter.clone()
    };
    let sql = format!(
        "SELECT original_subject, error, count(*) AS n, min(created_at) AS first_seen,
                max(updated_at) AS last_seen, count(*) OVER () AS groups
           FROM read_dlq WHERE {WHERE}
          GROUP BY original_subject, error
          ORDER BY n DESC, original_subject, error LIMIT $6"
    );
    let rows = bind_filter(sqlx::query(&sql), &open)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let total = match rows.first() {
        Some(row) => row.try_get("groups")?,
        None => 0,
    };
    let groups = rows
        .iter()
        .map(|r| {
            Ok(DlqGroup {
                original_subject: r.try_get("original_subject")?,
                error: r.try_get("error")?,
                count: r.try_get("n")?,
                first_seen: r.try_get("first_seen")?,
                last_seen: r.try_get("last_seen")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((groups, total))
}

/// How many matching entries come after `after`.
pub async fn count_after(
    pool: &PgPool,
    filter: &DlqFilter,
    after: Option<(DateTime<Utc>, String)>,
) -> Result<i64, sqlx::Error> {
    let (created, id) = after.unzip();
    let sql = format!(
        "SELECT count(*) FROM read_dlq WHERE {WHERE}
            AND ($6::timestamptz IS NULL OR (created_at, id) > ($6, $7))"
    );
    bind_filter(sqlx::query(&sql), filter)
        .bind(created)
        .bind(id)
        .fetch_one(pool)
        .await?
        .try_get(0)
}

/// The aggregate type of dead-letter entries in the event table.
pub const AGGREGATE_TYPE: &str = "DlqEntry";

/// Decodes a dead-letter event of the log.
pub fn decode(envelope: &EventEnvelope) -> Result<(DlqEvent, At), ProjectionError> {
    let event = serde_json::from_str(envelope.payload.get())
        .map_err(|e| ProjectionError::Payload(envelope.global_position, e))?;
    let at = At {
        position: envelope.global_position,
        recorded_at: envelope.recorded_at,
    };
    Ok((event, at))
}

/// Applies dead-letter events (each entry's in sequence order) inside the projector's
/// transaction: loads the rows they touch, applies, writes back.
pub async fn project<'a>(
    conn: &mut PgConnection,
    envelopes: impl Iterator<Item = &'a EventEnvelope>,
) -> Result<(), ProjectionError> {
    let mut decoded = Vec::new();
    for envelope in envelopes {
        let (event, at) = decode(envelope)?;
        decoded.push((envelope.aggregate_id.as_str(), event, at));
    }
    if decoded.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<String> = decoded.iter().map(|(id, _, _)| id.to_string()).collect();
    ids.sort();
    ids.dedup();
    let mut rows = load_rows(conn, &ids).await?;
    for (id, event, at) in &decoded {
        rows.apply(id, event, *at);
    }
    let rows: Vec<&DlqRow> = rows.rows.values().collect();
    write_rows(conn, &rows).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::dlq::{Encoding, Source};

    #[test]
    fn a_capture_then_a_requeue_is_one_resolved_row_with_two_history_lines() {
        let now = Utc::now();
        let mut rows = DlqRows::default();
        rows.apply(
            "js:W:1",
            &DlqEvent::DlqEntryCaptured {
                id: "js:W:1".into(),
                original_subject: "task.execute".into(),
                payload: "{}".into(),
                encoding: Encoding::Json,
                headers: Default::default(),
                error: "boom".into(),
                attempts: 3,
                source: Some(Source {
                    stream: "W".into(),
                    consumer: Some("c".into()),
                    stream_seq: 1,
                }),
                resolved: false,
                requeue_count: 0,
                actor: "worker:dlq-capture".into(),
                at: now,
            },
            At::now(1),
        );
        rows.apply(
            "js:W:1",
            &DlqEvent::DlqEntryResolved {
                id: "js:W:1".into(),
                note: Some("fixed".into()),
                requeued: true,
                message_id: Some("dlq/js:W:1/1".into()),
                requeued_to: None,
                resolved: true,
                requeue_count: 1,
                actor: "http:ops".into(),
                at: now,
            },
            At::now(2),
        );
        let row = &rows.rows["js:W:1"];
        assert!(row.resolved);
        assert_eq!(row.requeue_count, 1);
        assert_eq!(row.stream_seq, Some(1));
        assert_eq!(row.last_position, 2);
        assert_eq!(row.history.as_array().unwrap().len(), 2);
        assert_eq!(row.history[1]["action"], "requeued");
    }
}
