//! What the overview routes (`/governance/*`, `/stats`) read besides the read models: the
//! governance settings in force and this process's request history.

use std::collections::HashMap;
use std::sync::Arc;

use auth::Role;

use crate::request_history::RequestHistory;

/// Governance settings and this process's request history; one per process.
#[derive(Clone)]
pub struct Overview {
    /// A budget is `warning` from this share of its limit used or reserved (0.8 = 80 %).
    pub warning_ratio: f64,
    /// Requests per minute per user, by role (the limits in force).
    pub role_limits: HashMap<Role, u32>,
    pub history: Arc<RequestHistory>,
}

impl Overview {
    /// `history` is the one the metrics layer records into ([`crate::hardening::HttpMetrics`]).
    pub fn new(
        warning_percent: u8,
        role_limits: HashMap<Role, u32>,
        history: Arc<RequestHistory>,
    ) -> Self {
        Self {
            warning_ratio: f64::from(warning_percent) / 100.0,
            role_limits,
            history,
        }
    }
}
