use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a reservation was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialReason {
    /// No limit was ever set for this tenant/project.
    NoBudget,
    /// The limit leaves less than the estimate.
    InsufficientBudget,
}

impl DenialReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenialReason::NoBudget => "no_budget",
            DenialReason::InsufficientBudget => "insufficient_budget",
        }
    }
}

/// What happened to a budget. Every event carries the totals after it, so read models
/// copy them instead of recomputing. The payload is internally tagged (`"type"`) so
/// every event's fields sit at the top level of the stored JSON (SQL can index
/// `payload->>'reservation_id'` across event types).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum BudgetEvent {
    BudgetLimitSet {
        tenant_id: String,
        project_id: String,
        total: u64,
        previous_total: Option<u64>,
    },
    TokensReserved {
        tenant_id: String,
        project_id: String,
        reservation_id: Uuid,
        task_id: String,
        model: String,
        allocated: u64,
        expires_at: DateTime<Utc>,
        used: u64,
        reserved: u64,
    },
    ReservationDenied {
        tenant_id: String,
        project_id: String,
        task_id: String,
        model: String,
        requested: u64,
        reason: DenialReason,
        available: u64,
    },
    UsageCommitted {
        reservation_id: Uuid,
        allocated: u64,
        actual_tokens: u64,
        overage: u64,
        /// The reservation had already expired: its allocation was released before.
        late: bool,
        used: u64,
        reserved: u64,
        /// When it was closed (the command's clock); absent from version 1 events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closed_at: Option<DateTime<Utc>>,
    },
    ReservationReleased {
        reservation_id: Uuid,
        allocated: u64,
        used: u64,
        reserved: u64,
        /// When it was closed (the command's clock); absent from version 1 events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closed_at: Option<DateTime<Utc>>,
    },
    ReservationExpired {
        reservation_id: Uuid,
        allocated: u64,
        used: u64,
        reserved: u64,
        /// When it was closed (the command's clock); absent from version 1 events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closed_at: Option<DateTime<Utc>>,
    },
}

impl DomainEvent for BudgetEvent {
    fn event_type(&self) -> String {
        match self {
            BudgetEvent::BudgetLimitSet { .. } => "BudgetLimitSet",
            BudgetEvent::TokensReserved { .. } => "TokensReserved",
            BudgetEvent::ReservationDenied { .. } => "ReservationDenied",
            BudgetEvent::UsageCommitted { .. } => "UsageCommitted",
            BudgetEvent::ReservationReleased { .. } => "ReservationReleased",
            BudgetEvent::ReservationExpired { .. } => "ReservationExpired",
        }
        .to_string()
    }

    /// Version 2 of the closing events adds `closed_at`; version 1 payloads lack it and read
    /// as `None` (no upcaster: the field is optional).
    fn event_version(&self) -> String {
        match self {
            BudgetEvent::UsageCommitted { .. }
            | BudgetEvent::ReservationReleased { .. }
            | BudgetEvent::ReservationExpired { .. } => "2",
            _ => "1",
        }
        .to_string()
    }
}
