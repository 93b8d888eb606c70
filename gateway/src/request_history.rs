//! This process's requests per minute for `GET /stats`: counts, client and server errors,
//! and latency buckets from which percentiles are read, for the last hour. The metrics
//! layer records every answer ([`crate::hardening::HttpMetrics`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds of the latency buckets kept per minute, in milliseconds (the last one
/// catches everything slower).
pub const LATENCY_BOUNDS_MS: [f64; 18] = [
    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 200.0, 500.0, 1000.0,
    2500.0, 5000.0,
];
/// Minutes of history kept.
pub const HISTORY_MINUTES: usize = 60;

/// One minute of requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Minute {
    /// Minutes since the Unix epoch.
    pub minute: i64,
    pub requests: u64,
    /// Answers with status 400-499.
    pub client_errors: u64,
    /// Answers with status 500-599.
    pub server_errors: u64,
    /// Counts per [`LATENCY_BOUNDS_MS`] bucket, plus one for slower.
    pub latency: Vec<u64>,
}

impl Minute {
    fn new(minute: i64) -> Self {
        Self {
            minute,
            latency: vec![0; LATENCY_BOUNDS_MS.len() + 1],
            ..Self::default()
        }
    }

    fn add(&mut self, other: &Minute) {
        self.requests += other.requests;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
    }

    /// The latency below which `q` (0..1) of the requests finished, in milliseconds,
    /// interpolated within its bucket; `None` without requests.
    pub fn percentile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut seen = 0u64;
        for (i, count) in self.latency.iter().enumerate() {
            if *count > 0 && (seen + count) as f64 >= rank {
                let low = if i == 0 {
                    0.0
                } else {
                    LATENCY_BOUNDS_MS[i - 1]
                };
                let high = LATENCY_BOUNDS_MS
                    .get(i)
                    .copied()
                    .unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1] * 2.0);
                let within = ((rank - seen as f64) / *count as f64).clamp(0.0, 1.0);
                return Some(low + (high - low) * within);
            }
            seen += count;
        }
        LATENCY_BOUNDS_MS.last().copied()
    }
}

/// The last [`HISTORY_MINUTES`] minutes of this process's requests.
#[derive(Debug)]
pub struct RequestHistory {
    started: Instant,
    minutes: Mutex<VecDeque<Minute>>,
}

impl Default for RequestHistory {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            minutes: Mutex::new(VecDeque::with_capacity(HISTORY_MINUTES + 1)),
        }
    }
}

fn unix_minute(now: chrono::DateTime<chrono::Utc>) -> i64 {
    now.timestamp().div_euclid(60)
}

impl RequestHistory {
    /// Counts one answer.
    pub fn record(&self, status: u16, elapsed: Duration) {
        self.record_at(chrono::Utc::now(), status, elapsed);
    }

    pub fn record_at(&self, now: chrono::DateTime<chrono::Utc>, status: u16, elapsed: Duration) {
        let minute = unix_minute(now);
        let ms = elapsed.as_secs_f64() * 1000.0;
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        if minutes.back().is_none_or(|m| m.minute < minute) {
            minutes.push_back(Minute::new(minute));
            while minutes.len() > HISTORY_MINUTES {
                minutes.pop_front();
            }
        }
        // A clock step backwards lands in the newest minute.
        let slot = minutes.back_mut().expect("pushed above");
        slot.requests += 1;
        match status {
            400..=499 => slot.client_errors += 1,
            500..=599 => slot.server_errors += 1,
            _ => {}
        }
        slot.latency[bucket] += 1;
    }

    /// The last `HISTORY_MINUTES` minutes up to `now`, oldest first, empty minutes filled in.
    pub fn series(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<Minute> {
        let current = unix_minute(now);
        let minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        (0..HISTORY_MINUTES as i64)
            .rev()
            .map(|back| {
                let minute = current - back;
                minutes
                    .iter()
                    .find(|m| m.minute == minute)
                    .cloned()
                    .unwrap_or_else(|| Minute::new(minute))
            })
            .collect()
    }

    /// The sum of the last `n` minutes of `series`, and the seconds they span (fewer
    /// when the process is younger, or the current minute has just begun).
    pub fn window(
        &self,
        series: &[Minute],
        n: usize,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (Minute, f64) {
        let mut sum = Minute::new(unix_minute(now));
        for minute in series.iter().rev().take(n) {
            sum.add(minute);
        }
        let into_current = (now.timestamp().rem_euclid(60)) as f64 + 1.0;
        let span = (n.saturating_sub(1) as f64) * 60.0 + into_current;
        (sum, span.min(self.started.elapsed().as_secs_f64().max(1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: i64, second: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc
            .timestamp_opt(1_800_000_000 / 60 * 60 + minute * 60 + second, 0)
            .unwrap()
    }

    #[test]
    fn requests_land_in_their_minute_and_old_minutes_fall_off() {
        let history = RequestHistory::default();
        history.record_at(at(0, 5), 200, Duration::from_millis(2));
        history.record_at(at(0, 50), 503, Duration::from_millis(2));
        history.record_at(at(1, 1), 404, Duration::from_millis(2));
        let series = history.series(at(1, 30));
        assert_eq!(series.len(), HISTORY_MINUTES);
        let (last, before) = (&series[HISTORY_MINUTES - 1], &series[HISTORY_MINUTES - 2]);
        assert_eq!((before.requests, before.server_errors), (2, 1));
        assert_eq!((last.requests, last.client_errors), (1, 1));
        history.record_at(at(70, 0), 200, Duration::from_millis(2));
        let series = history.series(at(70, 0));
        assert_eq!(series.iter().map(|m| m.requests).sum::<u64>(), 1);
    }

    #[test]
    fn percentiles_come_from_the_buckets() {
        let history = RequestHistory::default();
        for _ in 0..90 {
            history.record_at(at(0, 0), 200, Duration::from_micros(800));
        }
        for _ in 0..10 {
            history.record_at(at(0, 0), 200, Duration::from_millis(40));
        }
        let minute = &history.series(at(0, 10))[HISTORY_MINUTES - 1];
        let p50 = minute.percentile_ms(0.5).unwrap();
        let p99 = minute.percentile_ms(0.99).unwrap();
        assert!((0.5..=1.0).contains(&p50), "{p50}");
        assert!((30.0..=50.0).contains(&p99), "{p99}");
        assert_eq!(Minute::new(0).percentile_ms(0.5), None);
    }
}
