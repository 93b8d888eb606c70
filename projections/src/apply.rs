//! Applies a batch of events to the read models in one transaction, together with the
//! per-aggregate versions and the checkpoint. Used by the live projector (batches from
//! JetStream) and by replay (batches from the event table), so both build the same rows.

use std::collections::{BTreeMap, HashSet};

use domain::budget::BudgetEvent;
use sqlx::{PgConnection, Row};
use streams::envelope::SELECT_ENVELOPE;
use streams::EventEnvelope;
use uuid::Uuid;

use crate::budgets::{reservation_of, At, BudgetRow, BudgetRows, ReservationRow};
use crate::ProjectionError;

/// The name of this projection's checkpoint row.
pub const PROJECTION: &str = "read_models";

type Key = (String, String);

/// Applies `events` (in any order; per aggregate they are put in sequence order, repeats
/// are skipped and missing ones are read from the event table). Returns how many events
/// changed the read models. The caller commits.
pub async fn apply_batch(
    conn: &mut PgConnection,
    events: &[EventEnvelope],
    stream_seq: Option<u64>,
) -> Result<usize, ProjectionError> {
    if events.is_empty() {
        return Ok(0);
    }
    // Sorted keys: every projector locks version rows in the same order (no deadlocks).
    let mut groups: BTreeMap<Key, Vec<&EventEnvelope>> = BTreeMap::new();
    for event in events {
        groups
            .entry((event.aggregate_type.clone(), event.aggregate_id.clone()))
            .or_default()
            .push(event);
    }
    let (types, ids): (Vec<String>, Vec<String>) = groups.keys().cloned().unzip();
    sqlx::query(
        "INSERT INTO projection_versions (aggregate_type, aggregate_id, version, last_position)
         SELECT t, i, 0, 0 FROM UNNEST($1::text[], $2::text[]) AS u(t, i)
         ORDER BY t, i
         ON CONFLICT DO NOTHING",
    )
    .bind(&types)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    let rows = sqlx::query(
        "SELECT v.aggregate_type, v.aggregate_id, v.version
           FROM projection_versions v
           JOIN UNNEST($1::text[], $2::text[]) AS u(t, i)
             ON v.aggregate_type = u.t AND v.aggregate_id = u.i
          ORDER BY v.aggregate_type, v.aggregate_id
            FOR UPDATE OF v",
    )
    .bind(&types)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut versions: BTreeMap<Key, i64> = BTreeMap::new();
    for row in rows {
        versions.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
    }

    // Per aggregate: the events after its version, contiguous.
    let mut todo: BTreeMap<Key, Vec<EventEnvelope>> = BTreeMap::new();
    for (key, mut group) in groups {
        let version = versions.get(&key).copied().unwrap_or(0);
        group.sort_by_key(|e| e.sequence);
        group.dedup_by_key(|e| e.sequence);
        group.retain(|e| e.sequence > version);
        let Some(last) = group.last().map(|e| e.sequence) else {
            continue;
        };
        let contiguous = group
            .iter()
            .enumerate()
            .all(|(i, e)| e.sequence == version + 1 + i as i64);
        let list = if contiguous {
            group.into_iter().cloned().collect()
        } else {
            // Something before these was never delivered (or arrives later): the event
            // table has it. Reading it here keeps each aggregate strictly in order.
            tracing::info!(aggregate_type = %key.0, aggregate_id = %key.1, version, "filling a gap from the event table");
            let sql = format!(
                "SELECT {SELECT_ENVELOPE} FROM events
                  WHERE aggregate_type = $1 AND aggregate_id = $2
                    AND sequence > $3 AND sequence <= $4
                  ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(&key.0)
                .bind(&key.1)
                .bind(version)
                .bind(last)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map(EventEnvelope::from_row)
                .collect::<Result<Vec<_>, _>>()?
        };
        if list.is_empty() {
            // The stream carries events the table does not have (a stream shared with
            // another database, or a restored backup): the table is the truth, skip them.
            tracing::warn!(aggregate_type = %key.0, aggregate_id = %key.1, version, "events on the stream are not in the event table; skipped");
            continue;
        }
        todo.insert(key, list);
    }
    if todo.is_empty() {
        return Ok(0);
    }

    // Budget events: decode, load the rows they touch, apply, write back.
    let mut decoded: Vec<(&str, BudgetEvent, At)> = Vec::new();
    for ((aggregate_type, aggregate_id), list) in &todo {
        if aggregate_type != "Budget" {
            continue; // no read model for it yet; its version still advances
        }
        for envelope in list {
            let event: BudgetEvent = serde_json::from_str(envelope.payload.get())
                .map_err(|e| ProjectionError::Payload(envelope.global_position, e))?;
            let at = At {
                position: envelope.global_position,
                recorded_at: envelope.recorded_at,
            };
            decoded.push((aggregate_id.as_str(), event, at));
        }
    }
    if !decoded.is_empty() {
        let budget_ids: Vec<String> = decoded
            .iter()
            .map(|(id, _, _)| id.to_string())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let reservation_ids: Vec<Uuid> = decoded
            .iter()
            .filter_map(|(_, e, _)| reservation_of(e))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut rows = load_rows(conn, &budget_ids, &reservation_ids).await?;
        for (aggregate_id, event, at) in &decoded {
            rows.apply(aggregate_id, event, *at);
        }
        let budgets: Vec<&BudgetRow> = rows.budgets.values().collect();
        let reservations: Vec<&ReservationRow> = rows.reservations.values().collect();
        write_rows(conn, &budgets, &reservations).await?;
    }

    crate::dlq::project(
        conn,
        todo.iter()
            .filter(|((aggregate_type, _), _)| aggregate_type == crate::dlq::AGGREGATE_TYPE)
            .flat_map(|(_, list)| list.iter()),
    )
    .await?;

    // Versions and checkpoint, in the same transaction as the rows.
    let mut types = Vec::new();
    let mut ids = Vec::new();
    let mut new_versions = Vec::new();
    let mut positions = Vec::new();
    let mut applied = 0;
    for ((aggregate_type, aggregate_id), list) in &todo {
        let last = list.last().expect("non-empty");
        types.push(aggregate_type.clone());
        ids.push(aggregate_id.clone());
        new_versions.push(last.sequence);
        positions.push(last.global_position);
        applied += list.len();
    }
    // Versions and checkpoint in one statement: one round trip less inside the transaction,
    // which also holds back the publisher's commit-order horizon while it runs.
    let last = events.last().expect("non-empty").position();
    sqlx::query(
        "WITH versions AS (
             UPDATE projection_versions v
                SET version = u.version, last_position = u.position
               FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[]) AS u(t, i, version, position)
              WHERE v.aggregate_type = u.t AND v.aggregate_id = u.i)
         INSERT INTO projection_checkpoints (name, stream_seq, last_tx, last_position, applied, updated_at)
         VALUES ($5, COALESCE($6, 0), $7::text::xid8, $8, $9, now())
         ON CONFLICT (name) DO UPDATE
            SET stream_seq = GREATEST(projection_checkpoints.stream_seq, EXCLUDED.stream_seq),
                last_tx = CASE WHEN (projection_checkpoints.last_tx, projection_checkpoints.last_position)
                                    < (EXCLUDED.last_tx, EXCLUDED.last_position)
                               THEN EXCLUDED.last_tx ELSE projection_checkpoints.last_tx END,
                last_position = CASE WHEN (projection_checkpoints.last_tx, projection_checkpoints.last_position)
                                          < (EXCLUDED.last_tx, EXCLUDED.last_position)
                                     THEN EXCLUDED.last_position ELSE projection_checkpoints.last_position END,
                applied = projection_checkpoints.applied + EXCLUDED.applied,
                updated_at = now()",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&new_versions)
    .bind(&positions)
    .bind(PROJECTION)
    .bind(stream_seq.map(|s| s as i64))
    .bind(&last.transaction_id)
    .bind(last.global_position)
    .bind(applied as i64)
    .execute(&mut *conn)
    .await?;
    Ok(applied)
}

fn status(text: &str) -> &'static str {
    match text {
        "open" => "open",
        "committed" => "committed",
        "released" => "released",
        _ => "expired",
    }
}

async fn load_rows(
    conn: &mut PgConnection,
    budget_ids: &[String],
    reservation_ids: &[Uuid],
) -> Result<BudgetRows, sqlx::Error> {
    let mut rows = BudgetRows::default();
    for row in sqlx::query(
        "SELECT aggregate_id, tenant_id, project_id, total, used, reserved, last_position, updated_at
           FROM read_budgets WHERE aggregate_id = ANY($1)",
    )
    .bind(budget_ids)
    .fetch_all(&mut *conn)
    .await?
    {
        let budget = BudgetRow {
            aggregate_id: row.try_get(0)?,
            tenant_id: row.try_get(1)?,
            project_id: row.try_get(2)?,
            total: row.try_get(3)?,
            used: row.try_get(4)?,
            reserved: row.try_get(5)?,
            last_position: row.try_get(6)?,
            updated_at: row.try_get(7)?,
        };
        rows.budgets.insert(budget.aggregate_id.clone(), budget);
    }
    if reservation_ids.is_empty() {
        return Ok(rows);
    }
    for row in sqlx::query(
        "SELECT reservation_id, aggregate_id, tenant_id, project_id, task_id, model, allocated,
                expires_at, status, actual_tokens, overage, late, reserved_at, updated_at, last_position
           FROM read_reservations WHERE reservation_id = ANY($1)",
    )
    .bind(reservation_ids)
    .fetch_all(&mut *conn)
    .await?
    {
        let text: String = row.try_get(8)?;
        let reservation = ReservationRow {
            reservation_id: row.try_get(0)?,
            aggregate_id: row.try_get(1)?,
            tenant_id: row.try_get(2)?,
            project_id: row.try_get(3)?,
            task_id: row.try_get(4)?,
            model: row.try_get(5)?,
            allocated: row.try_get(6)?,
            expires_at: row.try_get(7)?,
            status: status(&text),
            actual_tokens: row.try_get(9)?,
            overage: row.try_get(10)?,
            late: row.try_get(11)?,
            reserved_at: row.try_get(12)?,
            updated_at: row.try_get(13)?,
            last_position: row.try_get(14)?,
        };
        rows.reservations
            .insert(reservation.reservation_id, reservation);
    }
    Ok(rows)
}

/// Inserts or updates read-model rows with one statement per table.
pub(crate) async fn write_rows(
    conn: &mut PgConnection,
    budgets: &[&BudgetRow],
    reservations: &[&ReservationRow],
) -> Result<(), sqlx::Error> {
    if !budgets.is_empty() {
        let b = budgets;
        sqlx::query(
            "INSERT INTO read_budgets (aggregate_id, tenant_id, project_id, total, used, reserved, last_position, updated_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::timestamptz[])
             ON CONFLICT (aggregate_id) DO UPDATE
                SET tenant_id = EXCLUDED.tenant_id, project_id = EXCLUDED.project_id,
                    total = EXCLUDED.total, used = EXCLUDED.used, reserved = EXCLUDED.reserved,
                    last_position = EXCLUDED.last_position, updated_at = EXCLUDED.updated_at",
        )
        .bind(b.iter().map(|r| r.aggregate_id.clone()).collect::<Vec<_>>())
        .bind(b.iter().map(|r| r.tenant_id.clone()).collect::<Vec<_>>())
        .bind(b.iter().map(|r| r.project_id.clone()).collect::<Vec<_>>())
        .bind(b.iter().map(|r| r.total).collect::<Vec<_>>())
        .bind(b.iter().map(|r| r.used).collect::<Vec<_>>())
        .bind(b.iter().map(|r| r.reserved).collect::<Vec<_>>())
        .bind(b.iter().map(|r| r.last_position).collect::<Vec<_>>())
        .bind(b.iter().map(|r| r.updated_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !reservations.is_empty() {
        let r = reservations;
        sqlx::query(
            "INSERT INTO read_reservations (reservation_id, aggregate_id, tenant_id, project_id, task_id, model,
                    allocated, expires_at, status, actual_tokens, overage, late, reserved_at, updated_at, last_position)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                    $7::int8[], $8::timestamptz[], $9::text[], $10::int8[], $11::int8[], $12::bool[],
                    $13::timestamptz[], $14::timestamptz[], $15::int8[])
             ON CONFLICT (reservation_id) DO UPDATE
                SET status = EXCLUDED.status, actual_tokens = EXCLUDED.actual_tokens,
                    overage = EXCLUDED.overage, late = EXCLUDED.late,
                    updated_at = EXCLUDED.updated_at, last_position = EXCLUDED.last_position",
        )
        .bind(r.iter().map(|x| x.reservation_id).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.aggregate_id.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.tenant_id.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.project_id.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.task_id.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.model.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.allocated).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.expires_at).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.status.to_string()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.actual_tokens).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.overage).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.late).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.reserved_at).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.last_position).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
