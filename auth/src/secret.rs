//! The rule a JWT secret must pass outside development. The control plane signs tokens
//! with it and the sandbox verifies them with the same secret, so both refuse the same
//! weak ones: one rule, here, where both depend.

/// HS256 keys shorter than this are brute-forceable.
pub const MIN_SECRET_BYTES: usize = 32;

/// Values that must never reach production (they are in `.env.example` and the docs);
/// matched case-insensitively anywhere in the secret.
const PLACEHOLDER_SECRETS: [&str; 4] =
    ["change-me", "changeme", "secret", "CHANGE_ME_IN_PRODUCTION"];

/// A secret too weak to sign or verify tokens with outside development.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is a placeholder or shorter than {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

/// Refuses a secret shorter than [`MIN_SECRET_BYTES`] or containing a placeholder.
pub fn check_secret(secret: &str) -> Result<(), WeakSecret> {
    let lower = secret.to_ascii_lowercase();
    let placeholder = PLACEHOLDER_SECRETS
        .iter()
        .any(|p| lower.contains(&p.to_ascii_lowercase()));
    if secret.len() < MIN_SECRET_BYTES || placeholder {
        return Err(WeakSecret);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_of_32_random_bytes_passes() {
        assert_eq!(check_secret(&"a1".repeat(16)), Ok(()));
    }

    #[test]
    fn a_secret_shorter_than_32_bytes_is_weak() {
        assert_eq!(check_secret(&"a1".repeat(15)), Err(WeakSecret));
    }

    #[test]
    fn a_placeholder_is_weak_in_any_case_and_at_any_length() {
        for secret in [
            "change-me-change-me-change-me-change-me",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-ChangeMe",
            "CHANGE_ME_IN_PRODUCTION_please_do_it_today",
            "my-Secret-key-for-the-control-plane-1234",
        ] {
            assert_eq!(check_secret(secret), Err(WeakSecret), "{secret}");
        }
    }

    #[test]
    fn the_problem_names_the_minimum_length() {
        assert_eq!(
            WeakSecret.to_string(),
            "is a placeholder or shorter than 32 bytes"
        );
    }
}
