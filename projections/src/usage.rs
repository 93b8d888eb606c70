//! A budget's usage over time, for the dashboard's chart: the stored per-minute rows
//! (`read_budget_usage`) made into one point per minute, with the burn rate over the
//! window and when the budget runs out at that rate. Pure: the rows are read by
//! [`crate::query::budget_usage`].

use chrono::{DateTime, TimeDelta, Utc};

use crate::query::UsageRow;

/// The budget's totals at the end of one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsagePoint {
    pub at: DateTime<Utc>,
    /// `None` while no limit is set.
    pub total: Option<i64>,
    pub used: i64,
    pub reserved: i64,
}

/// One point per minute of the window, the rate at which `used` grew over it, and the
/// moment the budget runs out at that rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub points: Vec<UsagePoint>,
    /// Tokens used per hour over the window (0 without growth).
    pub burn_rate_per_hour: f64,
    /// When used + reserved reaches the limit at the burn rate: `now` when it already
    /// has; `None` without a limit, without burn, or further than ten years away.
    pub projected_exhaustion_at: Option<DateTime<Utc>>,
}

/// Builds the series of the minutes `from ..= now` (both truncated to the minute) from
/// `rows`, oldest first, where a row before `from` is the state the window starts in.
/// Minutes before the budget's first row have no point.
pub fn series(rows: &[UsageRow], from: DateTime<Utc>, now: DateTime<Utc>) -> Usage {
    let minute = TimeDelta::minutes(1);
    let mut points = Vec::new();
    let mut next = rows.iter().peekable();
    let mut current: Option<&UsageRow> = None;
    let mut at = from;
    while at <= now {
        while let Some(row) = next.next_if(|r| r.minute <= at) {
            current = Some(row);
        }
        if let Some(row) = current {
            points.push(UsagePoint {
                at,
                total: row.total,
                used: row.used,
                reserved: row.reserved,
            });
        }
        at += minute;
    }
    let (burn_rate_per_hour, projected_exhaustion_at) = match (points.first(), points.last()) {
        (Some(first), Some(last)) => {
            // Over the whole window (or the budget's life, if shorter), up to now.
            let hours = ((now - first.at).num_seconds().max(60)) as f64 / 3600.0;
            let burn = (last.used - first.used).max(0) as f64 / hours;
            (burn, exhaustion(last, burn, now))
        }
        _ => (0.0, None),
    };
    Usage {
        points,
        burn_rate_per_hour,
        projected_exhaustion_at,
    }
}

fn exhaustion(last: &UsagePoint, burn_per_hour: f64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let total = last.total?;
    let left = total - last.used - last.reserved;
    if left <= 0 {
        return Some(now);
    }
    if burn_per_hour <= 0.0 {
        return None;
    }
    let seconds = left as f64 / burn_per_hour * 3600.0;
    const TEN_YEARS: f64 = 10.0 * 365.0 * 86_400.0;
    if seconds > TEN_YEARS {
        return None;
    }
    Some(now + TimeDelta::seconds(seconds.ceil() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 10, minute, 0).unwrap()
    }

    fn row(minute: u32, total: Option<i64>, used: i64, reserved: i64) -> UsageRow {
        UsageRow {
            minute: at(minute),
            total,
            used,
            reserved,
        }
    }

    #[test]
    fn minutes_without_a_row_carry_the_row_before_forward() {
        let rows = [row(0, Some(1000), 10, 0), row(3, Some(1000), 40, 5)];
        let usage = series(&rows, at(1), at(4));
        let used: Vec<i64> = usage.points.iter().map(|p| p.used).collect();
        assert_eq!(used, [10, 10, 40, 40], "minutes 1, 2, 3, 4");
        assert_eq!(usage.points[0].at, at(1));
        assert_eq!(usage.points[3].reserved, 5);
    }

    #[test]
    fn the_series_starts_at_the_budgets_first_row() {
        let rows = [row(5, Some(1000), 0, 0)];
        let usage = series(&rows, at(0), at(6));
        assert_eq!(usage.points.len(), 2, "minutes 5 and 6 only");
        assert_eq!(usage.points[0].at, at(5));
    }

    #[test]
    fn burn_rate_is_the_growth_of_used_per_hour_and_projects_exhaustion() {
        // 600 tokens in 10 minutes: 3,600 per hour; 1,200 left → 20 minutes from now.
        let rows = [row(0, Some(2000), 0, 0), row(10, Some(2000), 600, 200)];
        let usage = series(&rows, at(0), at(10));
        assert!((usage.burn_rate_per_hour - 3600.0).abs() < 1e-6);
        assert_eq!(usage.projected_exhaustion_at, Some(at(30)));
    }

    #[test]
    fn no_burn_or_no_limit_projects_nothing_and_an_exhausted_budget_runs_out_now() {
        let flat = [row(0, Some(1000), 100, 0), row(5, Some(1000), 100, 0)];
        assert_eq!(series(&flat, at(0), at(5)).projected_exhaustion_at, None);
        let unlimited = [row(0, None, 0, 0), row(5, None, 50, 0)];
        assert_eq!(
            series(&unlimited, at(0), at(5)).projected_exhaustion_at,
            None
        );
        let spent = [row(0, Some(100), 60, 40)];
        assert_eq!(
            series(&spent, at(0), at(5)).projected_exhaustion_at,
            Some(at(5))
        );
    }

    #[test]
    fn an_empty_budget_has_no_points() {
        let usage = series(&[], at(0), at(5));
        assert!(usage.points.is_empty());
        assert_eq!(usage.burn_rate_per_hour, 0.0);
    }
}
