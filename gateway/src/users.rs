//! Dashboard and service accounts: argon2id password hashes, a role, an optional tenant
//! scope, a disabled flag and a token version (gateway/src/sessions.rs). Every change is
//! made under the account's lock in one transaction with its audit event
//! (domain/src/user_account.rs), and raises the token version when it changes what the
//! account's tokens say (role, scope), whether they may be used (disabled), or the
//! password: the account's open sessions end.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use auth::Role;
use chrono::{DateTime, Utc};
use commands::store::{Actor, AppendError, EventStore, LockedAggregate};
use commands::CommandError;
use domain::user_account::{UserAccount, UserAccountEvent};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use utoipa::ToSchema;

use crate::sessions::Standing;

/// Most tenants one account may be limited to.
pub const MAX_TENANTS: usize = 256;
/// Longest password accepted (argon2 hashes whatever it gets; keep the work bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// An account as the API shows it (never its hash).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub role: String,
    /// The tenants the account may see and act on; `null` for every tenant.
    pub tenants: Option<Vec<String>>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(pattern = r"^[A-Za-z0-9_.@-]{1,64}$")]
    pub username: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// admin, operator, developer, auditor, viewer or service.
    pub role: String,
    /// Absent or `null`: every tenant.
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
}

/// `PATCH /users/{username}`: only the fields present change. `tenants: null` lifts the
/// scope (every tenant).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tenants: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// `POST /users/{username}/password`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// A field that is present, even as `null` (absent stays `None` through `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'))
}

fn check_username(name: &str) -> Result<(), CommandError> {
    if valid_username(name) {
        Ok(())
    } else {
        Err(CommandError::invalid(
            "username",
            "must be 1-64 characters of letters, digits, '_', '.', '@' or '-'",
        ))
    }
}

fn check_password(password: &str) -> Result<(), CommandError> {
    if password.chars().count() < 8 || password.len() > MAX_PASSWORD_BYTES {
        return Err(CommandError::invalid(
            "password",
            format!("must be 8 to {MAX_PASSWORD_BYTES} bytes long"),
        ));
    }
    Ok(())
}

fn parse_role(role: &str) -> Result<Role, CommandError> {
    Role::parse(role).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        CommandError::invalid("role", format!("must be one of {}", names.join(", ")))
    })
}

/// A scope's tenants, sorted and without repeats; each a valid tenant id.
fn normalise_tenants(tenants: Option<Vec<String>>) -> Result<Option<Vec<String>>, CommandError> {
    let Some(mut tenants) = tenants else {
        return Ok(None);
    };
    if tenants.len() > MAX_TENANTS {
        return Err(CommandError::invalid(
            "tenants",
            format!("at most {MAX_TENANTS} tenants"),
        ));
    }
    for (i, tenant) in tenants.iter().enumerate() {
        domain::validate_id(tenant)
            .map_err(|e| CommandError::invalid(format!("tenants[{i}]"), e.to_string()))?;
    }
    tenants.sort();
    tenants.dedup();
    Ok(Some(tenants))
}

async fn hash(password: &str) -> Result<String, CommandError> {
    let password = password.to_string();
    // argon2 is deliberately slow: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CommandError::Internal(e.to_string().into()))
    })
    .await
    .map_err(|e| CommandError::Internal(Box::new(e)))?
}

async fn verifies(password: &str, stored: String) -> bool {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

const COLUMNS: &str = "username, role, tenants, disabled, token_version, created_at, updated_at";

fn view(row: &PgRow) -> Result<UserView, sqlx::Error> {
    Ok(UserView {
        username: row.try_get("username")?,
        role: row.try_get("role")?,
        tenants: row.try_get("tenants")?,
        disabled: row.try_get("disabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn standing(row: &PgRow) -> Result<Standing, sqlx::Error> {
    Ok(Standing {
        token_version: row.try_get("token_version")?,
        disabled: row.try_get("disabled")?,
    })
}

/// An account as just written, and what its tokens must now carry (for
/// [`crate::sessions::Authenticator::note`]).
#[derive(Debug, Clone)]
pub struct Saved {
    pub user: UserView,
    pub standing: Standing,
}

/// Every account, by name.
pub async fn list(pool: &PgPool) -> Result<Vec<UserView>, CommandError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY username"))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(view).collect::<Result<_, _>>()?)
}

/// Writes the events under the account's lock and commits the row change with them.
async fn commit(
    mut locked: LockedAggregate,
    events: &[UserAccountEvent],
    actor: &Actor,
) -> Result<(), CommandError> {
    let version = locked.version::<UserAccount>().await?;
    locked
        .append_and_commit::<UserAccount>(version, events, actor)
        .await
        .map(|_| ())
        .map_err(|error| match error {
            // The lock makes a concurrent append impossible; if one slips in, retrying is right.
            AppendError::Conflict => CommandError::Busy,
            AppendError::Other(error) => error,
        })
}

/// Adds an account; 409 when the name is taken.
pub async fn add(store: &EventStore, new: NewUser, actor: &Actor) -> Result<Saved, CommandError> {
    check_username(&new.username)?;
    check_password(&new.password)?;
    let role = parse_role(&new.role)?;
    let tenants = normalise_tenants(new.tenants)?;
    let password_hash = hash(&new.password).await?;
    let mut locked = store.lock::<UserAccount>(&new.username).await?;
    let row = sqlx::query(&format!(
        "INSERT INTO users (username, password_hash, role, tenants) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(&new.username)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(&tenants)
    .fetch_optional(locked.connection())
    .await?
    .ok_or_else(|| CommandError::Conflict(format!("user {} exists already", new.username)))?;
    let (user, standing) = (view(&row)?, standing(&row)?);
    let event = UserAccountEvent::UserAdded {
        role: role.as_str().to_string(),
        tenants,
    };
    commit(locked, &[event], actor).await?;
    Ok(Saved { user, standing })
}

/// Changes role, scope or status. An admin may not change their own role or disable
/// themselves (the last admin could lock everyone out).
pub async fn change(
    store: &EventStore,
    username: &str,
    patch: UserPatch,
    actor: &Actor,
) -> Result<Saved, CommandError> {
    check_username(username)?;
    let role = patch.role.as_deref().map(parse_role).transpose()?;
    let tenants = patch.tenants.map(normalise_tenants).transpose()?;
    let mut locked = store.lock::<UserAccount>(username).await?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM users WHERE username = $1 FOR UPDATE"
    ))
    .bind(username)
    .fetch_optional(locked.connection())
    .await?
    .ok_or_else(|| CommandError::NotFound(format!("user {username} does not exist")))?;
    let before = view(&row)?;
    let mut events = Vec::new();
    if let Some(role) = role.filter(|r| r.as_str() != before.role) {
        if username == actor.user {
            return Err(CommandError::invalid(
                "role",
                "you cannot change your own role",
            ));
        }
        events.push(UserAccountEvent::UserRoleChanged {
            from: before.role.clone(),
            to: role.as_str().to_string(),
        });
    }
    if let Some(tenants) = tenants.filter(|t| *t != before.tenants) {
        events.push(UserAccountEvent::UserTenantsChanged {
            from: before.tenants.clone(),
            to: tenants,
        });
    }
    match patch.disabled {
        Some(true) if !before.disabled => {
            if username == actor.user {
                return Err(CommandError::invalid(
                    "disabled",
                    "you cannot disable yourself",
                ));
            }
            events.push(UserAccountEvent::UserDisabled);
        }
        Some(false) if before.disabled => events.push(UserAccountEvent::UserEnabled),
        _ => {}
    }
    if events.is_empty() {
        return Ok(Saved {
            standing: standing(&row)?,
            user: before,
        });
    }
    let (mut role, mut tenants, mut disabled) = (before.role, before.tenants, before.disabled);
    for event in &events {
        match event {
            UserAccountEvent::UserRoleChanged { to, .. } => role = to.clone(),
            UserAccountEvent::UserTenantsChanged { to, .. } => tenants = to.clone(),
            UserAccountEvent::UserDisabled => disabled = true,
            UserAccountEvent::UserEnabled => disabled = false,
            _ => {}
        }
    }
    let row = sqlx::query(&format!(
        "UPDATE users SET role = $2, tenants = $3, disabled = $4,
                token_version = token_version + 1, updated_at = now()
          WHERE username = $1 RETURNING {COLUMNS}"
    ))
    .bind(username)
    .bind(role)
    .bind(tenants)
    .bind(disabled)
    .fetch_one(locked.connection())
    .await?;
    let (user, standing) = (view(&row)?, standing(&row)?);
    commit(locked, &events, actor).await?;
    Ok(Saved { user, standing })
}

/// Sets a new password; the account's sessions end.
pub async fn reset_password(
    store: &EventStore,
    username: &str,
    password: &str,
    actor: &Actor,
) -> Result<Saved, CommandError> {
    check_username(username)?;
    check_password(password)?;
    let password_hash = hash(password).await?;
    let mut locked = store.lock::<UserAccount>(username).await?;
    let row = sqlx::query(&format!(
        "UPDATE users SET password_hash = $2, token_version = token_version + 1, updated_at = now()
          WHERE username = $1 RETURNING {COLUMNS}"
    ))
    .bind(username)
    .bind(password_hash)
    .fetch_optional(locked.connection())
    .await?
    .ok_or_else(|| CommandError::NotFound(format!("user {username} does not exist")))?;
    let (user, standing) = (view(&row)?, standing(&row)?);
    commit(locked, &[UserAccountEvent::UserPasswordReset], actor).await?;
    Ok(Saved { user, standing })
}

/// Makes sure `username` exists with this password and role (the first admin at start,
/// `controlplane user add`): creates it, or changes what differs (ending its sessions).
/// Nothing changes when both already match. These accounts come from the operator's own
/// configuration, not from a caller of the API, and write no audit event: every start would
/// otherwise add one to the log.
pub async fn upsert_user(
    pool: &PgPool,
    username: &str,
    password: &str,
    role: Role,
) -> Result<(), CommandError> {
    check_username(username)?;
    check_password(password)?;
    let stored: Option<(String, String)> =
        sqlx::query_as("SELECT password_hash, role FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    if let Some((stored_hash, stored_role)) = stored {
        if stored_role == role.as_str() && verifies(password, stored_hash).await {
            return Ok(());
        }
    }
    sqlx::query(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO UPDATE
           SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role,
               token_version = users.token_version + 1, updated_at = now()",
    )
    .bind(username)
    .bind(hash(password).await?)
    .bind(role.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// What a right password logs into.
#[derive(Debug, Clone)]
pub struct Account {
    pub role: Role,
    pub tenants: Option<Vec<String>>,
    pub standing: Standing,
}

/// The account when `password` is right and the account is enabled; `None` otherwise.
/// Takes about as long for an unknown user as for a wrong password, so timing does not
/// reveal names.
pub async fn check_login(
    pool: &PgPool,
    username: &str,
    password: &str,
) -> Result<Option<Account>, sqlx::Error> {
    let row = if valid_username(username) && password.len() <= MAX_PASSWORD_BYTES {
        sqlx::query(
            "SELECT password_hash, role, tenants, token_version, disabled
               FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?
    } else {
        None
    };
    let stored = match &row {
        Some(row) => row.try_get::<String, _>("password_hash")?,
        None => DUMMY_HASH.to_string(),
    };
    let ok = verifies(password, stored).await;
    let Some(row) = row.filter(|_| ok) else {
        return Ok(None);
    };
    let standing = standing(&row)?;
    let role = Role::parse(&row.try_get::<String, _>("role")?);
    Ok(role.filter(|_| !standing.disabled).map(|role| Account {
        role,
        tenants: row.try_get("tenants").unwrap_or(None),
        standing,
    }))
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

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let a = hash("correct horse").await.unwrap();
        let b = hash("correct horse").await.unwrap();
        assert_ne!(a, b);
        assert!(verifies("correct horse", a.clone()).await);
        assert!(!verifies("wrong", a).await);
    }

    #[test]
    fn tenant_scopes_are_sorted_deduplicated_and_checked() {
        let scope = normalise_tenants(Some(vec!["b".into(), "a".into(), "b".into()])).unwrap();
        assert_eq!(scope, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(normalise_tenants(None).unwrap(), None);
        let error = normalise_tenants(Some(vec!["ok".into(), "not ok".into()])).unwrap_err();
        assert_eq!(error.field(), Some("tenants[1]"));
        let many = (0..=MAX_TENANTS).map(|i| format!("t{i}")).collect();
        assert_eq!(
            normalise_tenants(Some(many)).unwrap_err().field(),
            Some("tenants")
        );
    }

    #[test]
    fn a_patch_tells_null_from_absent() {
        let absent: UserPatch = serde_json::from_str(r#"{"role":"viewer"}"#).unwrap();
        assert_eq!(absent.tenants, None);
        let null: UserPatch = serde_json::from_str(r#"{"tenants":null}"#).unwrap();
        assert_eq!(null.tenants, Some(None));
        let some: UserPatch = serde_json::from_str(r#"{"tenants":["a"]}"#).unwrap();
        assert_eq!(some.tenants, Some(Some(vec!["a".to_string()])));
    }
}
