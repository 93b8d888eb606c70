//! The circuit breakers' read model (`read_breakers`): one row per breaker, copied from its
//! latest event (every breaker event carries the state and failure count after it), so a
//! batch is written without reading the stored rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::breaker::{BreakerEvent, BreakerState};
use sqlx::{PgConnection, PgPool, Row};

use crate::budgets::At;

/// The aggregate type of breaker events.
pub const AGGREGATE_TYPE: &str = "CircuitBreaker";

/// A row of `read_breakers`.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerRow {
    pub name: String,
    /// `CLOSED`, `OPEN`, `HALF_OPEN`, `FORCED_OPEN` or `DISABLED`.
    pub state: String,
    pub failures: i64,
    /// Only while OPEN.
    pub next_retry: Option<DateTime<Utc>>,
    pub last_position: i64,
    pub updated_at: DateTime<Utc>,
}

/// The rows a fold of breaker events produces.
#[derive(Debug, Default)]
pub struct BreakerRows {
    pub rows: HashMap<String, BreakerRow>,
}

impl BreakerRows {
    /// Applies one event of breaker `name` (events of a breaker in sequence order).
    pub fn apply(&mut self, name: &str, event: &BreakerEvent, at: At) {
        let state = event.state();
        let row = BreakerRow {
            name: name.to_string(),
            state: state.as_str().to_string(),
            failures: i64::from(event.failures()),
            next_retry: event.next_retry().filter(|_| state == BreakerState::Open),
            last_position: at.position,
            updated_at: at.recorded_at,
        };
        self.rows.insert(name.to_string(), row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Inserts or replaces the rows, in one statement.
pub async fn write_rows(conn: &mut PgConnection, rows: &BreakerRows) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let r: Vec<&BreakerRow> = rows.rows.values().collect();
    sqlx::query(
        "INSERT INTO read_breakers (name, state, failures, next_retry, last_position, updated_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::timestamptz[], $5::int8[], $6::timestamptz[])
         ON CONFLICT (name) DO UPDATE
            SET state = EXCLUDED.state, failures = EXCLUDED.failures,
                next_retry = EXCLUDED.next_retry, last_position = EXCLUDED.last_position,
                updated_at = EXCLUDED.updated_at",
    )
    .bind(r.iter().map(|x| x.name.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.state.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.failures).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.next_retry).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.last_position).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.updated_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Breakers that are not letting every call through (OPEN, HALF_OPEN, FORCED_OPEN), by name:
/// `(name, state, failures)`.
pub async fn open_breakers(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT name, state, failures FROM read_breakers
          WHERE state IN ('OPEN', 'HALF_OPEN', 'FORCED_OPEN')
          ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::breaker::BreakerConfig;

    #[test]
    fn the_latest_event_tells_the_row_and_next_retry_only_while_open() {
        let mut rows = BreakerRows::default();
        let retry = Utc::now();
        rows.apply(
            "llm",
            &BreakerEvent::BreakerOpened {
                name: "llm".into(),
                from: BreakerState::Closed,
                error: None,
                state: BreakerState::Open,
                failures: 5,
                next_retry: retry,
                actor: "svc".into(),
                at: Utc::now(),
            },
            At::now(7),
        );
        assert_eq!(rows.rows["llm"].state, "OPEN");
        assert_eq!(rows.rows["llm"].failures, 5);
        assert_eq!(rows.rows["llm"].next_retry, Some(retry));
        rows.apply(
            "llm",
            &BreakerEvent::BreakerConfigured {
                name: "llm".into(),
                config: BreakerConfig::default(),
                previous: None,
                state: BreakerState::ForcedOpen,
                failures: 5,
                next_retry: Some(retry),
                actor: "admin".into(),
                at: Utc::now(),
            },
            At::now(9),
        );
        let row = &rows.rows["llm"];
        assert_eq!(
            (row.state.as_str(), row.next_retry, row.last_position),
            ("FORCED_OPEN", None, 9)
        );
    }
}
