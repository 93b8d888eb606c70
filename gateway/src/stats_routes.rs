//! `GET /stats` (permission `read:system`, declared in [`crate::routes::ROUTES`]): the
//! dashboard's headline figures and charts. Request figures are this process's (each
//! replica answers for itself; Prometheus sums replicas); events, breakers, dead letters
//! and budgets are the whole system's, from PostgreSQL.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::business_metrics::BREAKER_STATES;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::read_after_write::{read_position, ReadAt};
use crate::request_history::{Minute, HISTORY_MINUTES};
use crate::AppState;

/// Minutes the headline figures cover.
const HEADLINE_MINUTES: usize = 5;

pub fn router() -> Router<AppState> {
    Router::new().route("/stats", get(stats))
}

/// Latency percentiles in milliseconds (from buckets: an estimate within its bucket);
/// absent without requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct Latency {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
}

impl Latency {
    fn of(minute: &Minute) -> Self {
        let round = |v: Option<f64>| v.map(|v| (v * 100.0).round() / 100.0);
        Self {
            p50: round(minute.percentile_ms(0.50)),
            p95: round(minute.percentile_ms(0.95)),
            p99: round(minute.percentile_ms(0.99)),
        }
    }
}

/// This process's HTTP requests over the last few minutes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestStats {
    /// How many minutes (the current one included) the figures cover.
    pub window_minutes: u32,
    pub requests: u64,
    pub requests_per_second: f64,
    /// Share of answers with a 5xx status (0-1).
    pub error_rate: f64,
    /// Share of answers with a 4xx status (0-1).
    pub client_error_rate: f64,
    pub latency_ms: Latency,
}

/// Budgets with a limit, summed.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetTotalsBody {
    pub budgets: i64,
    pub total: i64,
    pub used: i64,
    pub reserved: i64,
    pub available: i64,
}

/// How many breakers are in each state.
#[derive(Debug, Default, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub struct BreakersByState {
    pub CLOSED: u32,
    pub OPEN: u32,
    pub HALF_OPEN: u32,
    pub FORCED_OPEN: u32,
    pub DISABLED: u32,
}

/// One minute of the chart series.
#[derive(Debug, Serialize, ToSchema)]
pub struct MinutePoint {
    /// The minute's start (RFC 3339).
    pub minute: String,
    pub requests: u64,
    pub server_errors: u64,
    pub client_errors: u64,
    pub latency_ms: Latency,
    /// Events appended to the log in this minute (the whole system).
    pub events: i64,
    /// Dead letters captured in this minute: new entries and requeued messages that died
    /// again (the whole system).
    pub dlq_captured: i64,
    /// Dead letters resolved in this minute, by a person or a redrive job.
    pub dlq_resolved: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsResponse {
    pub requests: RequestStats,
    /// Events appended per second over the last five minutes (the whole system).
    pub events_per_second: f64,
    pub breakers: BreakersByState,
    pub open_dlq_entries: i64,
    pub budgets: BudgetTotalsBody,
    /// The last 60 minutes, oldest first, the current (partial) minute last.
    pub series: Vec<MinutePoint>,
    /// The read models' contiguous watermark this answer stands at (also the
    /// `X-Read-Position` header): every event up to this position in commit order is
    /// applied to it; 0 before the first event, null while not known. Follow the WebSocket
    /// with `since` = this to receive every event the answer does not show yet.
    pub read_position: Option<i64>,
}

#[utoipa::path(get, path = "/stats", tag = "system",
    responses((status = 200, description = "Request rate, errors, latency, events, breakers, dead letters, budgets and per-minute series", body = StatsResponse)))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ReadAt<Json<StatsResponse>>, ApiError> {
    let now = chrono::Utc::now();
    let read_position = read_position(&state).await?;
    let history = &state.overview.history;
    let series = history.series(now);
    let (window, seconds) = history.window(&series, HEADLINE_MINUTES, now);
    let share = |n: u64| {
        if window.requests == 0 {
            0.0
        } else {
            n as f64 / window.requests as f64
        }
    };
    let events =
        projections::governance::events_per_minute(&state.pool, HISTORY_MINUTES as i32).await?;
    // The same five minutes for events, measured on the wall clock (not this process's age).
    let current_minute =
        chrono::DateTime::from_timestamp(now.timestamp().div_euclid(60) * 60, 0).unwrap_or(now);
    let first_minute = current_minute - chrono::Duration::minutes(HEADLINE_MINUTES as i64 - 1);
    let recent_events: i64 = events
        .iter()
        .filter(|m| m.minute >= first_minute)
        .map(|m| m.events)
        .sum();
    let event_seconds = (now - first_minute).num_milliseconds().max(1000) as f64 / 1000.0;
    let mut breakers = BreakersByState::default();
    for (_, breaker) in state.breakers.api_list().await?.breakers {
        match BREAKER_STATES.iter().position(|s| *s == breaker.state) {
            Some(0) => breakers.CLOSED += 1,
            Some(1) => breakers.OPEN += 1,
            Some(2) => breakers.HALF_OPEN += 1,
            Some(3) => breakers.FORCED_OPEN += 1,
            _ => breakers.DISABLED += 1,
        }
    }
    // Budgets of the caller's tenants only; the rest is about the system, not a tenant.
    let scope = caller.0.scope().to_list();
    let totals = projections::governance::budget_totals(&state.pool, scope.as_deref()).await?;
    let series = series
        .iter()
        .map(|m| {
            let start = chrono::DateTime::from_timestamp(m.minute * 60, 0).unwrap_or_default();
            let log = events.iter().find(|e| e.minute == start);
            MinutePoint {
                minute: start.to_rfc3339(),
                requests: m.requests,
                server_errors: m.server_errors,
                client_errors: m.client_errors,
                latency_ms: Latency::of(m),
                events: log.map_or(0, |e| e.events),
                dlq_captured: log.map_or(0, |e| e.dlq_captured),
                dlq_resolved: log.map_or(0, |e| e.dlq_resolved),
            }
        })
        .collect();
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    Ok(ReadAt(
        read_position,
        Json(StatsResponse {
            requests: RequestStats {
                window_minutes: HEADLINE_MINUTES as u32,
                requests: window.requests,
                requests_per_second: round(window.requests as f64 / seconds),
                error_rate: round(share(window.server_errors)),
                client_error_rate: round(share(window.client_errors)),
                latency_ms: Latency::of(&window),
            },
            events_per_second: round(recent_events as f64 / event_seconds),
            breakers,
            open_dlq_entries: projections::governance::open_dlq_entries(&state.pool).await?,
            budgets: BudgetTotalsBody {
                budgets: totals.budgets,
                total: totals.total,
                used: totals.used,
                reserved: totals.reserved,
                available: (totals.total - totals.used - totals.reserved).max(0),
            },
            series,
            read_position,
        }),
    ))
}
