//! Circuit breakers, one per dependency name (`openai_api`, `database`, …).
//!
//! Services report the outcome of their calls to a dependency and ask before calling it.
//! After `failure_threshold` consecutive failures the breaker opens: calls are refused
//! until `next_retry`, when it turns half-open and lets `half_open_max_calls` trial calls
//! through. That many successes close it again; one failure opens it again. Operators
//! can reset it, hold it open (`FORCED_OPEN`) or switch it off (`DISABLED`, always allow).
//!
//! Every transition is an event naming who or what caused it (`actor`). Failures that
//! count are events too, so the count survives restarts and is shared by every process;
//! a success that changes nothing records nothing, and a check records nothing except
//! when it hands out a half-open trial permit (see [`BreakerCommand::Check`]).

mod aggregate;
mod commands;
mod events;

pub use aggregate::{BreakerError, BreakerReply, BreakerStatus, CircuitBreaker};
pub use commands::{BreakerCommand, Outcome};
pub use events::{BreakerConfig, BreakerEvent, BreakerState};

/// Longest error text kept with a failure; longer texts are cut (never refused: a failing
/// service should not also fail to report).
pub const MAX_ERROR_CHARS: usize = 512;
/// Bounds of the configuration values.
pub const MAX_FAILURE_THRESHOLD: u32 = 10_000;
pub const MAX_OPEN_SECONDS: u64 = 86_400;
pub const MAX_HALF_OPEN_CALLS: u32 = 1_000;

/// Why a breaker name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 64 characters")]
    TooLong,
    #[error("may contain only letters, digits, '_', '.' and '-'")]
    BadCharacter,
}

/// Breaker names: 1–64 characters of `[A-Za-z0-9_.-]` (ids plus '.', for names such as
/// `api.openai.com`). Safe in URLs, JSON and aggregate keys.
pub fn validate_breaker_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 64 {
        return Err(NameError::TooLong);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(NameError::BadCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_allow_letters_digits_dash_underscore_and_dot() {
        assert_eq!(validate_breaker_name("openai_api"), Ok(()));
        assert_eq!(validate_breaker_name("api.openai.com-v1"), Ok(()));
        assert_eq!(validate_breaker_name(&"a".repeat(64)), Ok(()));
    }

    #[test]
    fn names_refuse_empty_long_and_odd_characters() {
        assert_eq!(validate_breaker_name(""), Err(NameError::Empty));
        assert_eq!(
            validate_breaker_name(&"a".repeat(65)),
            Err(NameError::TooLong)
        );
        for bad in ["a b", "a/b", "é", "a*", "a>", "a\n"] {
            assert_eq!(
                validate_breaker_name(bad),
                Err(NameError::BadCharacter),
                "{bad}"
            );
        }
    }
}
