//! The business gauges exported at `/metrics` for the Grafana dashboard (budget use per
//! tenant, breaker state per name, open dead letters), read again from the read models and
//! the breakers in the background.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

/// Gauges for the Grafana dashboard, set by [`refresh_gauges`].
#[derive(Clone)]
pub struct BusinessGauges {
    pub budget_used: IntGaugeVec,
    pub budget_reserved: IntGaugeVec,
    pub budget_limit: IntGaugeVec,
    pub breaker_state: IntGaugeVec,
    pub dlq_open: IntGauge,
}

/// Breaker states in gauge order: `breaker_state{name}` is the index.
pub const BREAKER_STATES: [&str; 5] = ["CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED"];

impl BusinessGauges {
    pub fn register(registry: &Registry) -> Self {
        let vec = |name: &str, help: &str, label: &str| {
            let gauge = IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("registered once per registry");
            gauge
        };
        let dlq_open = IntGauge::new("dlq_open_entries", "Dead letters not resolved yet")
            .expect("valid metric");
        registry
            .register(Box::new(dlq_open.clone()))
            .expect("registered once per registry");
        Self {
            budget_used: vec(
                "budget_used_tokens",
                "Tokens used, per tenant (sum over its projects)",
                "tenant",
            ),
            budget_reserved: vec(
                "budget_reserved_tokens",
                "Tokens reserved and not yet committed or released, per tenant",
                "tenant",
            ),
            budget_limit: vec(
                "budget_limit_tokens",
                "Token limit per tenant (sum over its projects with a limit)",
                "tenant",
            ),
            breaker_state: vec(
                "breaker_state",
                "Circuit breaker state per name: 0 CLOSED, 1 OPEN, 2 HALF_OPEN, 3 FORCED_OPEN, 4 DISABLED",
                "name",
            ),
            dlq_open,
        }
    }
}

/// Keeps the business gauges current: reads the read models and the breakers every
/// `every` (errors are logged and retried on the next round).
pub async fn refresh_gauges(
    pool: sqlx::PgPool,
    breakers: Arc<commands::breaker::BreakerService>,
    gauges: BusinessGauges,
    every: Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match projections::governance::tenant_use(&pool).await {
            Ok(rows) => {
                gauges.budget_used.reset();
                gauges.budget_reserved.reset();
                gauges.budget_limit.reset();
                for (tenant, used, reserved, limit) in rows {
                    gauges.budget_used.with_label_values(&[&tenant]).set(used);
                    gauges
                        .budget_reserved
                        .with_label_values(&[&tenant])
                        .set(reserved);
                    gauges.budget_limit.with_label_values(&[&tenant]).set(limit);
                }
            }
            Err(error) => tracing::warn!(%error, "budget gauges not refreshed"),
        }
        match projections::governance::open_dlq_entries(&pool).await {
            Ok(n) => gauges.dlq_open.set(n),
            Err(error) => tracing::warn!(%error, "DLQ gauge not refreshed"),
        }
        match breakers.api_list().await {
            Ok(list) => {
                gauges.breaker_state.reset();
                for (name, breaker) in list.breakers {
                    let state = BREAKER_STATES
                        .iter()
                        .position(|s| *s == breaker.state)
                        .unwrap_or(0) as i64;
                    gauges.breaker_state.with_label_values(&[&name]).set(state);
                }
            }
            Err(error) => tracing::warn!(%error, "breaker gauges not refreshed"),
        }
    }
}
