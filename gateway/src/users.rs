//! Dashboard and service accounts, with argon2id password hashes.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use auth::Role;
use sqlx::{PgPool, Row};

/// Why a user could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("username: must be 1-64 characters of letters, digits, '_', '.', '@' or '-'")]
    BadUsername,
    #[error("password: must be at least 8 characters")]
    WeakPassword,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("could not hash the password: {0}")]
    Hash(String),
}

fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'))
}

fn hash(password: &str) -> Result<String, UserError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Creates the user, or replaces the password and role of an existing one.
pub async fn upsert_user(
    pool: &PgPool,
    username: &str,
    password: &str,
    role: Role,
) -> Result<(), UserError> {
    if !valid_username(username) {
        return Err(UserError::BadUsername);
    }
    if password.chars().count() < 8 {
        return Err(UserError::WeakPassword);
    }
    let password_hash = hash(password)?;
    sqlx::query(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO UPDATE
           SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, updated_at = now()",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// The role of `username` when `password` is right; `None` otherwise. Takes about as
/// long for an unknown user as for a wrong password, so timing does not reveal names.
pub async fn check_password(
    pool: &PgPool,
    username: &str,
    password: &str,
) -> Result<Option<Role>, sqlx::Error> {
    let row = if valid_username(username) {
        sqlx::query("SELECT password_hash, role FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?
    } else {
        None
    };
    let (stored, role) = match &row {
        Some(row) => (
            row.try_get::<String, _>("password_hash")?,
            Role::parse(&row.try_get::<String, _>("role")?),
        ),
        None => (DUMMY_HASH.to_string(), None),
    };
    let password = password.to_string();
    // argon2 is deliberately slow: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    Ok(if ok && row.is_some() { role } else { None })
}

/// A valid argon2id hash of a random string, verified against when the user is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3dKbc2yZ5b0D2cJcQm9WcU2yHn2+KjHSd3Uu2bC3xWQ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_table_rule() {
        assert!(valid_username("alice.smith@example"));
        assert!(!valid_username(""));
        assert!(!valid_username("a b"));
        assert!(!valid_username(&"a".repeat(65)));
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert_ne!(a, b);
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
    }
}
