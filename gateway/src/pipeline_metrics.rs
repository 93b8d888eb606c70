//! The event pipeline's gauges at `/metrics`: events appended, published and projected,
//! and the publisher's and the projection's lag (events and seconds). They come from the
//! checkpoints in PostgreSQL (so every process reports the same figures, whichever one runs
//! the singletons), read in one statement every `METRICS_REFRESH_MS`, never per scrape.

use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus::{Gauge, IntGauge, Opts, Registry};

use crate::pipeline_routes::PipelineInfo;

/// Gauges set by [`refresh_pipeline_gauges`].
#[derive(Clone)]
pub struct PipelineGauges {
    pub appended: IntGauge,
    pub published: IntGauge,
    pub projected: IntGauge,
    pub publisher_lag_events: IntGauge,
    pub publisher_lag_seconds: Gauge,
    pub projection_lag_events: IntGauge,
    pub projection_lag_seconds: Gauge,
    pub publisher_active: IntGauge,
    pub publisher_stuck_position: IntGauge,
    pub projector_active: IntGauge,
}

impl PipelineGauges {
    pub fn register(registry: &Registry) -> Self {
        let int = |name: &str, help: &str| {
            let gauge = IntGauge::with_opts(Opts::new(name, help)).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("registered once per registry");
            gauge
        };
        let float = |name: &str, help: &str| {
            let gauge = Gauge::with_opts(Opts::new(name, help)).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("registered once per registry");
            gauge
        };
        Self {
            appended: int(
                "pipeline_events_appended",
                "Committed events in the log (published + waiting for the publisher)",
            ),
            published: int(
                "pipeline_events_published",
                "Events the publisher's checkpoint covers (on JetStream)",
            ),
            projected: int(
                "pipeline_events_projected",
                "Events applied to the read models",
            ),
            publisher_lag_events: int(
                "pipeline_publisher_lag_events",
                "Committed events not yet published",
            ),
            publisher_lag_seconds: float(
                "pipeline_publisher_lag_seconds",
                "Age of the oldest committed event not yet published (0 when none)",
            ),
            projection_lag_events: int(
                "pipeline_projection_lag_events",
                "Committed events not yet applied to the read models",
            ),
            projection_lag_seconds: float(
                "pipeline_projection_lag_seconds",
                "Age of the oldest committed event not yet applied to the read models (0 when none)",
            ),
            publisher_active: int(
                "pipeline_publisher_active",
                "1 when this process holds the publisher lock",
            ),
            publisher_stuck_position: int(
                "pipeline_publisher_stuck_position",
                "The position of an event this process's publisher cannot publish (0 when none)",
            ),
            projector_active: int(
                "pipeline_projector_active",
                "1 when this process holds the projector lock",
            ),
        }
    }
}

/// Keeps the pipeline gauges current: one query every `every` (errors are logged and
/// retried on the next round; the gauges keep their last values meanwhile).
pub async fn refresh_pipeline_gauges(
    pool: sqlx::PgPool,
    info: PipelineInfo,
    gauges: PipelineGauges,
    every: Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        gauges
            .publisher_active
            .set(info.publisher.active.load(Ordering::Relaxed) as i64);
        gauges
            .projector_active
            .set(info.projector.active.load(Ordering::Relaxed) as i64);
        gauges
            .publisher_stuck_position
            .set(info.publisher.stuck().map_or(0, |s| s.position));
        match streams::status::pipeline_counts(
            &pool,
            &info.events.name,
            projections::apply::PROJECTION,
        )
        .await
        {
            Ok(counts) => {
                gauges.appended.set(counts.appended);
                gauges.published.set(counts.published);
                gauges.projected.set(counts.projected);
                gauges.publisher_lag_events.set(counts.publisher_lag_events);
                gauges
                    .publisher_lag_seconds
                    .set(counts.publisher_lag_seconds);
                gauges
                    .projection_lag_events
                    .set(counts.projection_lag_events);
                gauges
                    .projection_lag_seconds
                    .set(counts.projection_lag_seconds);
            }
            Err(error) => tracing::warn!(%error, "pipeline gauges not refreshed"),
        }
    }
}
