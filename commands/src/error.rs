use domain::budget::BudgetError;

/// Why a command was not carried out. Transport layers map each variant to one status.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The input broke a rule: which field, and what is wrong with it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    /// The caller may not act on the tenant the field names.
    #[error("{field}: {message}")]
    OutOfScope { field: String, message: String },
    /// The command contradicts what already happened (e.g. committing a released reservation).
    #[error("{0}")]
    Conflict(String),
    /// The event the command would append is larger than any event may be; nothing was
    /// applied.
    #[error(
        "the event this command makes would take {bytes} bytes; events are at most {limit} bytes"
    )]
    TooLarge { bytes: usize, limit: usize },
    /// Too many concurrent writers kept winning; try again.
    #[error("the aggregate is busy, try again")]
    Busy,
    /// A read asked for `min_position` and the read model had not applied that event
    /// within the wait bound: try again shortly.
    #[error("the read model has not yet applied position {0}; try again shortly")]
    NotYetApplied(i64),
    /// The event store could not be reached; nothing was applied.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CommandError {
    /// A stable, machine-readable code for error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::Invalid { .. } => "invalid_request",
            CommandError::NotFound(_) => "not_found",
            CommandError::OutOfScope { .. } => "forbidden",
            CommandError::Conflict(_) => "conflict",
            CommandError::TooLarge { .. } => "payload_too_large",
            CommandError::Busy => "busy",
            CommandError::NotYetApplied(_) => "not_yet_applied",
            CommandError::Unavailable(_) => "unavailable",
            CommandError::Internal(_) => "internal",
        }
    }

    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            CommandError::Invalid { field, .. } | CommandError::OutOfScope { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The text a client may see: internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self {
            CommandError::Unavailable(_) => "storage unavailable, try again".into(),
            CommandError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl From<BudgetError> for CommandError {
    fn from(error: BudgetError) -> Self {
        match error {
            BudgetError::Invalid { field, message } => CommandError::invalid(field, message),
            BudgetError::UnknownReservation(_) => CommandError::NotFound(error.to_string()),
            BudgetError::ReservationReleased(_) | BudgetError::AlreadyCommitted { .. } => {
                CommandError::Conflict(error.to_string())
            }
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(error: sqlx::Error) -> Self {
        if storage_unavailable(&error) {
            CommandError::Unavailable(Box::new(error))
        } else {
            CommandError::Internal(Box::new(error))
        }
    }
}

/// Whether PostgreSQL could not be reached or is going away, rather than refusing what was
/// asked: a 503 "try again", not a 500. Seen while it restarts: the connection cut
/// (`57P01` terminating connection due to administrator command), `57P03` the database
/// system is starting up or shutting down, `08xxx` connection failures, `53xxx` too many
/// connections or out of resources.
pub fn storage_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
        }),
        _ => false,
    }
}
