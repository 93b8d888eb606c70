use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    BudgetCommand, BudgetEvent, DenialReason, CLOSED_RETENTION_MAX, CLOSED_RETENTION_SECONDS,
    MAX_TOKENS, MAX_TTL_SECONDS,
};
use crate::validate_id;

/// A reservation that still holds tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenReservation {
    pub task_id: String,
    pub model: String,
    pub allocated: u64,
    pub expires_at: DateTime<Utc>,
}

/// How a reservation ended; kept for a while (`CLOSED_RETENTION_SECONDS`,
/// `CLOSED_RETENTION_MAX`) so repeated commands get the same answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Closed {
    Committed {
        allocated: u64,
        actual_tokens: u64,
        overage: u64,
        late: bool,
        /// The budget's totals right after the commit: a repeated commit answers with these.
        totals: Totals,
    },
    Released {
        allocated: u64,
    },
    Expired {
        allocated: u64,
    },
}

/// The numbers a budget answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub total: u64,
    pub used: u64,
    pub reserved: u64,
    pub available: u64,
    pub open_reservations: u64,
}

/// One remembered closing, in closing order (the order `Budget::closing_order` forgets in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    pub reservation_id: Uuid,
    /// When it closed: the event's `closed_at`, or for a version 1 event (none recorded) the
    /// newest time the budget had seen then. `None` only before any closing of this budget
    /// carried a time; the first one that does stamps these with its own.
    pub at: Option<DateTime<Utc>>,
}

/// The token budget of one tenant/project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub tenant_id: String,
    pub project_id: String,
    /// `None` until a limit is set: reservations are then denied with `no_budget`.
    pub total: Option<u64>,
    pub used: u64,
    pub reserved: u64,
    pub open: BTreeMap<Uuid, OpenReservation>,
    pub open_by_task: BTreeMap<String, Uuid>,
    /// Recently closed reservations: those closed within `CLOSED_RETENTION_SECONDS` of the
    /// newest closing, at most `CLOSED_RETENTION_MAX`. Older ones are forgotten (ADR 020);
    /// a command naming one is refused as unknown, never answered as if it were open.
    pub closed: BTreeMap<Uuid, Closed>,
    /// The keys of `closed` in closing order, oldest first (one entry per key).
    pub closing_order: VecDeque<Closing>,
    /// The newest `closed_at` applied: the clock the window is measured on (the log's, so a
    /// replay forgets exactly what the first run forgot).
    pub latest_closed_at: Option<DateTime<Utc>>,
}

/// A rule the command broke. Each maps to one HTTP status in the gateway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Never made, or closed so long ago that the budget forgot it (ADR 020).
    #[error(
        "reservation {0} is unknown: it does not exist, or it was closed more than {minutes} \
         minutes (or {CLOSED_RETENTION_MAX} closings of its budget) ago",
        minutes = CLOSED_RETENTION_SECONDS / 60
    )]
    UnknownReservation(Uuid),
    #[error("reservation {0} was released and can no longer be committed")]
    ReservationReleased(Uuid),
    #[error(
        "reservation {reservation_id} was already committed with actual_tokens={actual_tokens}"
    )]
    AlreadyCommitted {
        reservation_id: Uuid,
        actual_tokens: u64,
    },
}

/// The answer to a budget command, computed together with its events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum BudgetReply {
    LimitSet {
        totals: Totals,
    },
    Reserved {
        reservation_id: Uuid,
        allocated: u64,
        expires_at: DateTime<Utc>,
        /// True when an open reservation of the same task was returned.
        existing: bool,
        totals: Totals,
    },
    Denied {
        reason: DenialReason,
        requested: u64,
        available: u64,
        totals: Totals,
    },
    Committed {
        reservation_id: Uuid,
        allocated: u64,
        actual_tokens: u64,
        overage: u64,
        late: bool,
        totals: Totals,
    },
    Released {
        reservation_id: Uuid,
        allocated: u64,
        totals: Totals,
    },
    Expired {
        reservation_id: Uuid,
        /// False when there was nothing to expire (already closed, or not yet due).
        expired: bool,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> BudgetError {
    BudgetError::Invalid {
        field,
        message: message.into(),
    }
}

fn check_id(field: &'static str, value: &str) -> Result<(), BudgetError> {
    validate_id(value).map_err(|e| invalid(field, e.to_string()))
}

fn check_tokens(field: &'static str, value: u64) -> Result<(), BudgetError> {
    if value > MAX_TOKENS {
        return Err(invalid(field, format!("must be at most {MAX_TOKENS}")));
    }
    Ok(())
}

impl Budget {
    pub fn totals(&self) -> Totals {
        self.totals_with(self.total, self.used, self.reserved, 0)
    }

    /// The totals a change would leave, computed without copying the aggregate (which
    /// holds every reservation: cloning it per command would cost O(reservations)).
    fn totals_with(&self, total: Option<u64>, used: u64, reserved: u64, open_delta: i64) -> Totals {
        let total = total.unwrap_or(0);
        Totals {
            total,
            used,
            reserved,
            available: total.saturating_sub(used.saturating_add(reserved)),
            open_reservations: (self.open.len() as i64 + open_delta) as u64,
        }
    }

    /// Decides what a command means for this budget: the events to record and the
    /// answer to give. Pure: the same state and command always give the same result.
    pub fn decide(
        &self,
        command: BudgetCommand,
    ) -> Result<(Vec<BudgetEvent>, BudgetReply), BudgetError> {
        match command {
            BudgetCommand::SetLimit {
                tenant_id,
                project_id,
                total_tokens,
            } => {
                check_id("tenant_id", &tenant_id)?;
                check_id("project_id", &project_id)?;
                check_tokens("total_tokens", total_tokens)?;
                let event = BudgetEvent::BudgetLimitSet {
                    tenant_id,
                    project_id,
                    total: total_tokens,
                    previous_total: self.total,
                };
                let totals = self.totals_with(Some(total_tokens), self.used, self.reserved, 0);
                Ok((vec![event], BudgetReply::LimitSet { totals }))
            }
            BudgetCommand::ReserveTokens {
                tenant_id,
                project_id,
                reservation_id,
                task_id,
                model,
                estimated_tokens,
                ttl_seconds,
                now,
            } => {
                check_id("tenant_id", &tenant_id)?;
                check_id("project_id", &project_id)?;
                check_id("task_id", &task_id)?;
                if model.is_empty() || model.len() > 128 || model.chars().any(char::is_control) {
                    return Err(invalid(
                        "model",
                        "must be 1-128 characters without control characters",
                    ));
                }
                if estimated_tokens == 0 {
                    return Err(invalid("estimated_tokens", "must be greater than 0"));
                }
                check_tokens("estimated_tokens", estimated_tokens)?;
                if ttl_seconds == 0 || ttl_seconds > MAX_TTL_SECONDS {
                    return Err(invalid(
                        "ttl_seconds",
                        format!("must be between 1 and {MAX_TTL_SECONDS}"),
                    ));
                }
                // Idempotency: a task with an open reservation gets that same reservation.
                if let Some(existing) = self.open_by_task.get(&task_id) {
                    let open = &self.open[existing];
                    return Ok((
                        vec![],
                        BudgetReply::Reserved {
                            reservation_id: *existing,
                            allocated: open.allocated,
                            expires_at: open.expires_at,
                            existing: true,
                            totals: self.totals(),
                        },
                    ));
                }
                let totals = self.totals();
                let denial = match self.total {
                    None => Some(DenialReason::NoBudget),
                    Some(_) if estimated_tokens > totals.available => {
                        Some(DenialReason::InsufficientBudget)
                    }
                    Some(_) => None,
                };
                if let Some(reason) = denial {
                    let event = BudgetEvent::ReservationDenied {
                        tenant_id,
                        project_id,
                        task_id,
                        model,
                        requested: estimated_tokens,
                        reason,
                        available: totals.available,
                    };
                    return Ok((
                        vec![event],
                        BudgetReply::Denied {
                            reason,
                            requested: estimated_tokens,
                            available: totals.available,
                            totals,
                        },
                    ));
                }
                let expires_at = now + Duration::seconds(ttl_seconds as i64);
                let event = BudgetEvent::TokensReserved {
                    tenant_id,
                    project_id,
                    reservation_id,
                    task_id,
                    model,
                    allocated: estimated_tokens,
                    expires_at,
                    used: self.used,
                    reserved: self.reserved + estimated_tokens,
                };
                let totals =
                    self.totals_with(self.total, self.used, self.reserved + estimated_tokens, 1);
                Ok((
                    vec![event],
                    BudgetReply::Reserved {
                        reservation_id,
                        allocated: estimated_tokens,
                        expires_at,
                        existing: false,
                        totals,
                    },
                ))
            }
            BudgetCommand::CommitUsage {
                reservation_id,
                actual_tokens,
                now,
            } => {
                check_tokens("actual_tokens", actual_tokens)?;
                let (allocated, late) = match (
                    self.open.get(&reservation_id),
                    self.recall(&reservation_id, now),
                ) {
                    (Some(open), _) => (open.allocated, false),
                    (None, Some(Closed::Expired { allocated })) => (*allocated, true),
                    (None, Some(Closed::Released { .. })) => {
                        return Err(BudgetError::ReservationReleased(reservation_id))
                    }
                    (None, Some(committed @ Closed::Committed { .. })) => {
                        return repeat_commit(reservation_id, committed, actual_tokens)
                    }
                    (None, None) => return Err(BudgetError::UnknownReservation(reservation_id)),
                };
                // An open reservation past its TTL is committed as usual: the expiry
                // worker has not released it yet, so its allocation is still held.
                let reserved = if late {
                    self.reserved
                } else {
                    self.reserved - allocated
                };
                // Overage is allowed (the tokens were spent), but the sum stays what the
                // read models' bigint columns can hold: checked, never wrapped.
                let used = self
                    .used
                    .checked_add(actual_tokens)
                    .filter(|used| i64::try_from(*used).is_ok())
                    .ok_or_else(|| {
                        invalid(
                            "actual_tokens",
                            format!("would take this budget's used tokens past {}", i64::MAX),
                        )
                    })?;
                let event = BudgetEvent::UsageCommitted {
                    reservation_id,
                    allocated,
                    actual_tokens,
                    overage: actual_tokens.saturating_sub(allocated),
                    late,
                    used,
                    reserved,
                    closed_at: Some(now),
                };
                let open_delta = if late { 0 } else { -1 };
                let reply = BudgetReply::Committed {
                    reservation_id,
                    allocated,
                    actual_tokens,
                    overage: actual_tokens.saturating_sub(allocated),
                    late,
                    totals: self.totals_with(self.total, used, reserved, open_delta),
                };
                Ok((vec![event], reply))
            }
            BudgetCommand::ReleaseReservation {
                reservation_id,
                now,
            } => {
                match (
                    self.open.get(&reservation_id),
                    self.recall(&reservation_id, now),
                ) {
                    (Some(open), _) => {
                        let event = BudgetEvent::ReservationReleased {
                            reservation_id,
                            allocated: open.allocated,
                            used: self.used,
                            reserved: self.reserved - open.allocated,
                            closed_at: Some(now),
                        };
                        let totals = self.totals_with(
                            self.total,
                            self.used,
                            self.reserved - open.allocated,
                            -1,
                        );
                        Ok((
                            vec![event],
                            BudgetReply::Released {
                                reservation_id,
                                allocated: open.allocated,
                                totals,
                            },
                        ))
                    }
                    // Releasing twice, or after expiry, changes nothing.
                    (
                        None,
                        Some(Closed::Released { allocated } | Closed::Expired { allocated }),
                    ) => Ok((
                        vec![],
                        BudgetReply::Released {
                            reservation_id,
                            allocated: *allocated,
                            totals: self.totals(),
                        },
                    )),
                    (None, Some(Closed::Committed { actual_tokens, .. })) => {
                        Err(BudgetError::AlreadyCommitted {
                            reservation_id,
                            actual_tokens: *actual_tokens,
                        })
                    }
                    (None, None) => Err(BudgetError::UnknownReservation(reservation_id)),
                }
            }
            BudgetCommand::ExpireReservation {
                reservation_id,
                now,
            } => match self.open.get(&reservation_id) {
                Some(open) if open.expires_at <= now => {
                    let event = BudgetEvent::ReservationExpired {
                        reservation_id,
                        allocated: open.allocated,
                        used: self.used,
                        reserved: self.reserved - open.allocated,
                        closed_at: Some(now),
                    };
                    Ok((
                        vec![event],
                        BudgetReply::Expired {
                            reservation_id,
                            expired: true,
                        },
                    ))
                }
                Some(_) => Ok((
                    vec![],
                    BudgetReply::Expired {
                        reservation_id,
                        expired: false,
                    },
                )),
                // Closed, or forgotten (only closed reservations are): nothing to expire. The
                // expiry worker reads a read model that may lag; it must not fail on these.
                None => Ok((
                    vec![],
                    BudgetReply::Expired {
                        reservation_id,
                        expired: false,
                    },
                )),
            },
        }
    }
}

/// The answer to a commit of an already committed reservation: the same answer when
/// the amount is the same, a conflict when it differs (it would count twice).
fn repeat_commit(
    reservation_id: Uuid,
    committed: &Closed,
    actual_tokens: u64,
) -> Result<(Vec<BudgetEvent>, BudgetReply), BudgetError> {
    let Closed::Committed {
        allocated,
        actual_tokens: recorded,
        overage,
        late,
        totals,
    } = committed
    else {
        unreachable!("called with a committed reservation")
    };
    if *recorded != actual_tokens {
        return Err(BudgetError::AlreadyCommitted {
            reservation_id,
            actual_tokens: *recorded,
        });
    }
    Ok((
        vec![],
        BudgetReply::Committed {
            reservation_id,
            allocated: *allocated,
            actual_tokens: *recorded,
            overage: *overage,
            late: *late,
            totals: *totals,
        },
    ))
}

impl Aggregate for Budget {
    const TYPE: &'static str = "Budget";
    type Command = BudgetCommand;
    type Event = BudgetEvent;
    type Error = BudgetError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let (events, _reply) = self.decide(command)?;
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            BudgetEvent::BudgetLimitSet {
                tenant_id,
                project_id,
                total,
                ..
            } => {
                self.tenant_id = tenant_id;
                self.project_id = project_id;
                self.total = Some(total);
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
                self.tenant_id = tenant_id;
                self.project_id = project_id;
                self.used = used;
                self.reserved = reserved;
                self.open_by_task.insert(task_id.clone(), reservation_id);
                self.open.insert(
                    reservation_id,
                    OpenReservation {
                        task_id,
                        model,
                        allocated,
                        expires_at,
                    },
                );
            }
            BudgetEvent::ReservationDenied {
                tenant_id,
                project_id,
                ..
            } => {
                self.tenant_id = tenant_id;
                self.project_id = project_id;
            }
            BudgetEvent::UsageCommitted {
                reservation_id,
                allocated,
                actual_tokens,
                overage,
                late,
                used,
                reserved,
                closed_at,
            } => {
                self.used = used;
                self.reserved = reserved;
                self.close_open(reservation_id);
                let totals = self.totals();
                self.remember_closed(
                    reservation_id,
                    Closed::Committed {
                        allocated,
                        actual_tokens,
                        overage,
                        late,
                        totals,
                    },
                    closed_at,
                );
            }
            BudgetEvent::ReservationReleased {
                reservation_id,
                allocated,
                used,
                reserved,
                closed_at,
            } => {
                self.used = used;
                self.reserved = reserved;
                self.close_open(reservation_id);
                self.remember_closed(reservation_id, Closed::Released { allocated }, closed_at);
            }
            BudgetEvent::ReservationExpired {
                reservation_id,
                allocated,
                used,
                reserved,
                closed_at,
            } => {
                self.used = used;
                self.reserved = reserved;
                self.close_open(reservation_id);
                self.remember_closed(reservation_id, Closed::Expired { allocated }, closed_at);
            }
        }
    }
}

impl Budget {
    fn close_open(&mut self, reservation_id: Uuid) {
        if let Some(open) = self.open.remove(&reservation_id) {
            self.open_by_task.remove(&open.task_id);
        }
    }

    /// Remembers how a reservation closed, then forgets the closings that fell out of the
    /// window: older than `CLOSED_RETENTION_SECONDS` before the newest closing, or past
    /// `CLOSED_RETENTION_MAX`. Only closed reservations are ever forgotten; an open one stays
    /// until it closes.
    ///
    /// Deterministic: the time is the events' own (`closed_at`), never the wall clock. A
    /// version 1 event carries none and counts as closed at the newest time seen so far (at
    /// most a little early: closings are applied in log order); before any event with a time,
    /// such closings wait unstamped, and the first time that arrives stamps them.
    fn remember_closed(
        &mut self,
        reservation_id: Uuid,
        how: Closed,
        closed_at: Option<DateTime<Utc>>,
    ) {
        if let Some(at) = closed_at {
            if self.latest_closed_at.is_none() {
                for closing in self.closing_order.iter_mut() {
                    closing.at = Some(at);
                }
            }
            self.latest_closed_at = self.latest_closed_at.max(Some(at));
        }
        // A reservation closes twice only when an expired one is committed late: it moves to
        // the back, with the time of its commit (a linear scan, rare).
        if self.closed.insert(reservation_id, how).is_some() {
            self.closing_order
                .retain(|closing| closing.reservation_id != reservation_id);
        }
        self.closing_order.push_back(Closing {
            reservation_id,
            at: closed_at.or(self.latest_closed_at),
        });
        let horizon = self
            .latest_closed_at
            .map(|latest| latest - Duration::seconds(CLOSED_RETENTION_SECONDS));
        while let Some(oldest) = self.closing_order.front() {
            let too_old = matches!((oldest.at, horizon), (Some(at), Some(horizon)) if at < horizon);
            if !too_old && self.closing_order.len() <= CLOSED_RETENTION_MAX {
                break;
            }
            let forgotten = oldest.reservation_id;
            self.closing_order.pop_front();
            self.closed.remove(&forgotten);
        }
    }

    /// How a reservation closed, if a command at `now` still recalls it: it is in the
    /// window, and it closed at most `CLOSED_RETENTION_SECONDS` before `now`. A closing
    /// older than that is unknown whether or not it is still in memory, so the answer is
    /// the same in a process that dropped it ([`Budget::forget_closed_before`]) and in one
    /// that just loaded the budget from the log. A closing without a time (version 1, none
    /// timed after it) is recalled while it is in the window.
    fn recall(&self, reservation_id: &Uuid, now: DateTime<Utc>) -> Option<&Closed> {
        let closed = self.closed.get(reservation_id)?;
        // Only for a repeat, which is rare: a scan from the newest closing, where repeats
        // are.
        let at = self
            .closing_order
            .iter()
            .rev()
            .find(|closing| closing.reservation_id == *reservation_id)
            .and_then(|closing| closing.at);
        match at {
            Some(at) if at < now - Duration::seconds(CLOSED_RETENTION_SECONDS) => None,
            _ => Some(closed),
        }
    }

    /// Drops the closings made before `cutoff`, oldest first; returns how many. Not an
    /// event: no command at `cutoff + CLOSED_RETENTION_SECONDS` or later recalls them
    /// ([`Budget::recall`]), so what such a command decides is the same with or without
    /// them. A budget forgets old closings by itself when it closes another (on the log's
    /// time, [`Budget::remember_closed`]); this is for one that stopped closing, which
    /// would otherwise hold its last two minutes of closings for as long as it stays
    /// loaded (the soak's growing memory, issue 16). Closings without a time stay.
    pub fn forget_closed_before(&mut self, cutoff: DateTime<Utc>) -> usize {
        let mut forgotten = 0;
        while let Some(oldest) = self.closing_order.front() {
            if oldest.at.is_none_or(|at| at >= cutoff) {
                break;
            }
            let id = oldest.reservation_id;
            self.closing_order.pop_front();
            self.closed.remove(&id);
            forgotten += 1;
        }
        // The deque keeps its capacity (32 bytes a slot): an idle budget would still hold
        // the size of its busiest two minutes.
        if forgotten > 0 && self.closing_order.capacity() > 4 * self.closing_order.len() {
            self.closing_order.shrink_to(2 * self.closing_order.len());
        }
        forgotten
    }

    /// Closed reservations this budget holds in memory (for tests and measurements).
    pub fn closings_held(&self) -> usize {
        self.closed.len()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
