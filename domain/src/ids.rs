//! Identifier rules shared by every aggregate.

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 64 characters")]
    TooLong,
    #[error("may contain only letters, digits, '_' and '-'")]
    BadCharacter,
}

/// Tenant, project and task ids: 1–64 characters of `[A-Za-z0-9_-]`.
/// The narrow alphabet keeps ids safe in NATS subjects, URLs and aggregate keys.
pub fn validate_id(value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty);
    }
    if value.len() > 64 {
        return Err(IdError::TooLong);
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_dash_underscore() {
        assert_eq!(validate_id("org_1-A"), Ok(()));
        assert_eq!(validate_id(&"a".repeat(64)), Ok(()));
    }

    #[test]
    fn refuses_empty_long_and_odd_characters() {
        assert_eq!(validate_id(""), Err(IdError::Empty));
        assert_eq!(validate_id(&"a".repeat(65)), Err(IdError::TooLong));
        for bad in ["a b", "a/b", "a.b", "é", "a*", "a>"] {
            assert_eq!(validate_id(bad), Err(IdError::BadCharacter), "{bad}");
        }
    }
}
