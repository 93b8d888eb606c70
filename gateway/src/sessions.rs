//! Tokens that can be taken back. A token is signed and carries an expiry, so on its own it
//! stays good until then; this module keeps, in memory, what ends one sooner:
//! - the account's standing: its token version (raised by a password, role, scope or status
//!   change, which ends every session issued before) and whether it is disabled;
//! - the sessions ended by logout.
//!
//! Every request checks a token against this memory, never against the database (no round
//! trip on the hot path). A refresher reloads both from PostgreSQL every
//! [`REFRESH_EVERY`], so a change made through another replica takes effect here within
//! about a second; a change made through this one takes effect at once. Open WebSockets
//! watch [`Authenticator::changes`] and re-check their token when it moves.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use auth::{Claims, TokenKeys};
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// How often the standings and revoked sessions are reloaded from PostgreSQL.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// What decides whether an account's tokens still stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub token_version: i64,
    pub disabled: bool,
}

#[derive(Default)]
struct Memory {
    accounts: HashMap<String, Standing>,
    /// Session id → its token's expiry (unix seconds), for sessions ended by logout.
    revoked: HashMap<String, i64>,
}

/// Verifies tokens (signature, expiry, issuer, audience) and checks that they still stand.
pub struct Authenticator {
    keys: Arc<TokenKeys>,
    memory: RwLock<Memory>,
    changed: watch::Sender<u64>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator that knows no account yet: every token is refused until
    /// [`Authenticator::reload`] ran (serve does that before it listens).
    pub fn new(keys: Arc<TokenKeys>) -> Self {
        Self {
            keys,
            memory: RwLock::default(),
            changed: watch::Sender::new(0),
        }
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The token's claims when it is valid and its session still stands.
    pub fn authenticate(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = self
            .keys
            .verify(token)
            .map_err(|_| ApiError::BadCredentials("invalid or expired token".into()))?;
        if self.stands(&claims) {
            Ok(claims)
        } else {
            Err(ApiError::BadCredentials(
                "this session has ended; log in again".into(),
            ))
        }
    }

    /// Whether verified claims still stand: the account exists, is enabled and has not
    /// changed since the token was issued, and the session was not logged out.
    pub fn stands(&self, claims: &Claims) -> bool {
        let memory = self.memory.read().expect("sessions lock poisoned");
        let account_ok = memory
            .accounts
            .get(&claims.sub)
            .is_some_and(|s| !s.disabled && s.token_version == claims.ver);
        account_ok && (claims.sid.is_empty() || !memory.revoked.contains_key(&claims.sid))
    }

    /// Records an account's standing as just read or written by this process.
    pub fn note(&self, username: &str, standing: Standing) {
        let mut memory = self.memory.write().expect("sessions lock poisoned");
        if memory.accounts.insert(username.to_string(), standing) != Some(standing) {
            drop(memory);
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Ends one session (logout): here at once, on other replicas at their next reload.
    pub async fn revoke(&self, pool: &PgPool, claims: &Claims) -> Result<(), sqlx::Error> {
        if claims.sid.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO revoked_sessions (session_id, username, expires_at)
             VALUES ($1, $2, to_timestamp($3)) ON CONFLICT DO NOTHING",
        )
        .bind(&claims.sid)
        .bind(&claims.sub)
        .bind(claims.exp as f64)
        .execute(pool)
        .await?;
        self.memory
            .write()
            .expect("sessions lock poisoned")
            .revoked
            .insert(claims.sid.clone(), claims.exp);
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Moves whenever a standing or a revocation changes (WebSockets re-check then).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Reloads every account's standing and the sessions still to refuse. Accounts are
    /// few (people and services, not end users), so a whole reload is simpler and safer than
    /// following `updated_at` across transactions that commit out of order.
    pub async fn reload(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let accounts = sqlx::query("SELECT username, token_version, disabled FROM users")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>("username")?,
                    Standing {
                        token_version: row.try_get("token_version")?,
                        disabled: row.try_get("disabled")?,
                    },
                ))
            })
            .collect::<Result<HashMap<_, _>, sqlx::Error>>()?;
        let revoked = sqlx::query(
            "SELECT session_id, extract(epoch FROM expires_at)::bigint AS exp
               FROM revoked_sessions WHERE expires_at > now() - interval '1 minute'",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get("session_id")?, row.try_get("exp")?)))
        .collect::<Result<HashMap<String, i64>, sqlx::Error>>()?;
        let mut memory = self.memory.write().expect("sessions lock poisoned");
        let moved = memory.accounts != accounts || memory.revoked != revoked;
        *memory = Memory { accounts, revoked };
        drop(memory);
        if moved {
            self.changed.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Reloads every [`REFRESH_EVERY`] until `stop`; forgets sessions that expired a while
    /// ago (they are refused by their expiry anyway).
    pub fn spawn_refresher(
        self: Arc<Self>,
        pool: PgPool,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut passes: u64 = 0;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(error) = self.reload(&pool).await {
                    tracing::warn!(%error, "could not reload sessions; keeping the last ones");
                }
                passes += 1;
                if passes.is_multiple_of(3600) {
                    let _ = sqlx::query(
                        "DELETE FROM revoked_sessions WHERE expires_at < now() - interval '1 hour'",
                    )
                    .execute(&pool)
                    .await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::{Grant, Role};

    fn authenticator() -> Authenticator {
        Authenticator::new(Arc::new(TokenKeys::new(
            b"0123456789abcdef0123456789abcdef",
            3600,
        )))
    }

    fn token(a: &Authenticator, version: i64, session: &str) -> String {
        let grant = Grant {
            username: "bob",
            role: Role::Viewer,
            tenants: None,
            session_id: session,
            version,
        };
        a.keys()
            .issue(&grant, chrono::Utc::now().timestamp())
            .unwrap()
    }

    #[test]
    fn an_unknown_account_is_refused() {
        let a = authenticator();
        assert!(a.authenticate(&token(&a, 0, "s1")).is_err());
    }

    #[test]
    fn a_raised_version_or_a_disabled_account_ends_older_tokens() {
        let a = authenticator();
        let standing = |token_version, disabled| Standing {
            token_version,
            disabled,
        };
        a.note("bob", standing(3, false));
        let old = token(&a, 3, "s1");
        assert!(a.authenticate(&old).is_ok());
        let changes = a.changes();
        a.note("bob", standing(4, false));
        assert!(changes.has_changed().unwrap());
        assert!(a.authenticate(&old).is_err());
        assert!(a.authenticate(&token(&a, 4, "s2")).is_ok());
        a.note("bob", standing(4, true));
        assert!(a.authenticate(&token(&a, 4, "s3")).is_err());
    }
}
