//! The budget read models as plain rows, and how each budget event changes them.
//! Pure: no I/O. Events carry the totals after them, so this copies, never computes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::budget::BudgetEvent;
use uuid::Uuid;

/// A row of `read_budgets`.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRow {
    pub aggregate_id: String,
    pub tenant_id: String,
    pub project_id: String,
    /// `None` until a limit is set.
    pub total: Option<i64>,
    pub used: i64,
    pub reserved: i64,
    pub last_position: i64,
    pub updated_at: DateTime<Utc>,
    /// Whether an event of this fold set `used` and `reserved`. The live projector folds a
    /// batch without loading the stored rows: where this is false, the stored values stand.
    pub totals_known: bool,
}

/// A row of `read_reservations`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationRow {
    pub reservation_id: Uuid,
    pub aggregate_id: String,
    pub tenant_id: String,
    pub project_id: String,
    pub task_id: String,
    pub model: String,
    pub allocated: i64,
    pub expires_at: DateTime<Utc>,
    /// `open`, `committed`, `released` or `expired`.
    pub status: &'static str,
    pub actual_tokens: Option<i64>,
    pub overage: Option<i64>,
    pub late: bool,
    pub reserved_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_position: i64,
}

/// Where an event sits in the log, copied onto the rows it touches.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
}

#[cfg(test)]
impl At {
    /// `position`, recorded now (for the fold tests).
    pub(crate) fn now(position: i64) -> At {
        At {
            position,
            recorded_at: Utc::now(),
        }
    }
}

/// How a reservation opened before this fold was closed by it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationClose {
    /// `committed`, `released` or `expired`.
    pub status: &'static str,
    /// `(actual_tokens, overage, late)` of a commit.
    pub committed: Option<(i64, i64, bool)>,
    pub updated_at: DateTime<Utc>,
    pub last_position: i64,
}

/// The rows a fold of events produces: whole rows for what it created, and the closes of
/// reservations it did not see open (opened by events folded earlier, already stored).
#[derive(Debug, Default)]
pub struct BudgetRows {
    pub budgets: HashMap<String, BudgetRow>,
    pub reservations: HashMap<Uuid, ReservationRow>,
    pub closed_elsewhere: HashMap<Uuid, ReservationClose>,
}

/// Tokens are at most 10^12 (domain::budget::MAX_TOKENS): they always fit.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl BudgetRows {
    fn budget(&mut self, aggregate_id: &str, at: At) -> &mut BudgetRow {
        // Looked up by `&str` first: replay calls this once per event, and an owned key
        // per call (`entry`) was an allocation per event.
        if !self.budgets.contains_key(aggregate_id) {
            // A budget id is `tenant/project` (domain::budget::budget_aggregate_id).
            let (tenant, project) = aggregate_id.split_once('/').unwrap_or((aggregate_id, ""));
            let row = BudgetRow {
                aggregate_id: aggregate_id.to_string(),
                tenant_id: tenant.to_string(),
                project_id: project.to_string(),
                total: None,
                used: 0,
                reserved: 0,
                last_position: at.position,
                updated_at: at.recorded_at,
                totals_known: false,
            };
            self.budgets.insert(aggregate_id.to_string(), row);
        }
        self.budgets
            .get_mut(aggregate_id)
            .expect("inserted above when missing")
    }

    fn set_totals(&mut self, aggregate_id: &str, at: At, used: u64, reserved: u64) {
        let budget = self.budget(aggregate_id, at);
        budget.used = int(used);
        budget.reserved = int(reserved);
        budget.totals_known = true;
        budget.last_position = at.position;
        budget.updated_at = at.recorded_at;
    }

    fn close(
        &mut self,
        reservation_id: Uuid,
        at: At,
        status: &'static str,
        committed: Option<(u64, u64, bool)>,
    ) {
        if let Some(row) = self.reservations.get_mut(&reservation_id) {
            row.status = status;
            if let Some((actual, overage, late)) = committed {
                row.actual_tokens = Some(int(actual));
                row.overage = Some(int(overage));
                row.late = late;
            }
            row.updated_at = at.recorded_at;
            row.last_position = at.position;
        } else {
            // Opened by an event folded before this fold (the live projector's earlier
            // batch): the stored row is updated. Replay folds the whole log, so there this
            // means a close without an open.
            self.closed_elsewhere.insert(
                reservation_id,
                ReservationClose {
                    status,
                    committed: committed.map(|(a, o, l)| (int(a), int(o), l)),
                    updated_at: at.recorded_at,
                    last_position: at.position,
                },
            );
        }
    }

    /// Applies one event of budget `aggregate_id`.
    pub fn apply(&mut self, aggregate_id: &str, event: &BudgetEvent, at: At) {
        match event {
            BudgetEvent::BudgetLimitSet {
                tenant_id,
                project_id,
                total,
                ..
            } => {
                let budget = self.budget(aggregate_id, at);
                budget.tenant_id.clone_from(tenant_id);
                budget.project_id.clone_from(project_id);
                budget.total = Some(int(*total));
                budget.last_position = at.position;
                budget.updated_at = at.recorded_at;
            }
            BudgetEvent::TokensReserved {
                tenant_id,
                project_id,
                reservation_id,
                task_id,
                model,
                allocated,
                expires_at,
                used,
                reserved,
            } => {
                self.set_totals(aggregate_id, at, *used, *reserved);
                self.reservations.insert(
                    *reservation_id,
                    ReservationRow {
                        reservation_id: *reservation_id,
                        aggregate_id: aggregate_id.to_string(),
                        tenant_id: tenant_id.clone(),
                        project_id: project_id.clone(),
                        task_id: task_id.clone(),
                        model: model.clone(),
                        allocated: int(*allocated),
                        expires_at: *expires_at,
                        status: "open",
                        actual_tokens: None,
                        overage: None,
                        late: false,
                        reserved_at: at.recorded_at,
                        updated_at: at.recorded_at,
                        last_position: at.position,
                    },
                );
            }
            BudgetEvent::ReservationDenied { .. } => {
                // Denials change no total; the row exists so the budget is listed.
                let budget = self.budget(aggregate_id, at);
                budget.last_position = at.position;
                budget.updated_at = at.recorded_at;
            }
            BudgetEvent::UsageCommitted {
                reservation_id,
                actual_tokens,
                overage,
                late,
                used,
                reserved,
                ..
            } => {
                self.set_totals(aggregate_id, at, *used, *reserved);
                self.close(
                    *reservation_id,
                    at,
                    "committed",
                    Some((*actual_tokens, *overage, *late)),
                );
            }
            BudgetEvent::ReservationReleased {
                reservation_id,
                used,
                reserved,
                ..
            } => {
                self.set_totals(aggregate_id, at, *used, *reserved);
                self.close(*reservation_id, at, "released", None);
            }
            BudgetEvent::ReservationExpired {
                reservation_id,
                used,
                reserved,
                ..
            } => {
                self.set_totals(aggregate_id, at, *used, *reserved);
                self.close(*reservation_id, at, "expired", None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_copied_from_the_latest_event() {
        let mut rows = BudgetRows::default();
        let id = Uuid::new_v4();
        rows.apply(
            "org1/p1",
            &BudgetEvent::BudgetLimitSet {
                tenant_id: "org1".into(),
                project_id: "p1".into(),
                total: 100,
                previous_total: None,
            },
            At::now(1),
        );
        rows.apply(
            "org1/p1",
            &BudgetEvent::TokensReserved {
                tenant_id: "org1".into(),
                project_id: "p1".into(),
                reservation_id: id,
                task_id: "t".into(),
                model: "m".into(),
                allocated: 40,
                expires_at: Utc::now(),
                used: 0,
                reserved: 40,
            },
            At::now(2),
        );
        rows.apply(
            "org1/p1",
            &BudgetEvent::UsageCommitted {
                reservation_id: id,
                allocated: 40,
                actual_tokens: 50,
                overage: 10,
                late: false,
                used: 50,
                reserved: 0,
                closed_at: None,
            },
            At::now(3),
        );
        let budget = &rows.budgets["org1/p1"];
        assert_eq!(
            (budget.total, budget.used, budget.reserved),
            (Some(100), 50, 0)
        );
        assert_eq!(budget.last_position, 3);
        let reservation = &rows.reservations[&id];
        assert_eq!(reservation.status, "committed");
        assert_eq!(reservation.overage, Some(10));
    }

    #[test]
    fn a_denial_lists_the_budget_without_a_limit() {
        let mut rows = BudgetRows::default();
        rows.apply(
            "org2/p",
            &BudgetEvent::ReservationDenied {
                tenant_id: "org2".into(),
                project_id: "p".into(),
                task_id: "t".into(),
                model: "m".into(),
                requested: 5,
                reason: domain::budget::DenialReason::NoBudget,
                available: 0,
            },
            At::now(7),
        );
        let budget = &rows.budgets["org2/p"];
        assert_eq!(
            (budget.tenant_id.as_str(), budget.project_id.as_str()),
            ("org2", "p")
        );
        assert_eq!(budget.total, None);
    }
}
