//! The services that may send commands over NATS and the tenants each may act on (the
//! `services` table). NATS vouches for who sent a command (only service `S` may publish on
//! `<prefix>.cmd.S.>`); this says what `S` may do. Lookups are cached for a few seconds, so
//! a changed scope or a removed service takes effect within [`SCOPE_CACHE_TTL`] without a
//! database round trip per command.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auth::TenantScope;
use sqlx::PgPool;

use crate::store::Actor;
use crate::CommandError;

/// How long a looked-up scope is used before it is read again.
pub const SCOPE_CACHE_TTL: Duration = Duration::from_secs(2);

/// A registered service's scope, or `None` when the service is not registered.
type Entry = (Instant, Option<TenantScope>);

/// The registry of services, with its cache.
pub struct ServiceDirectory {
    pool: PgPool,
    ttl: Duration,
    cache: Mutex<HashMap<String, Entry>>,
}

impl ServiceDirectory {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            ttl: SCOPE_CACHE_TTL,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The actor of a command `service` sent over NATS, from the cache when it is fresh;
    /// `None` when the cache cannot say (the caller then takes [`Self::actor`]).
    pub fn cached_actor(&self, service: &str) -> Option<Result<Actor, CommandError>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (at, scope) = cache.get(service)?;
        (at.elapsed() < self.ttl).then(|| actor(service, scope.clone()))
    }

    /// The actor of a command `service` sent over NATS: its name (recorded in the events'
    /// metadata, `via: nats`) and its tenants. An unregistered service may do nothing.
    pub async fn actor(&self, service: &str) -> Result<Actor, CommandError> {
        if let Some(answer) = self.cached_actor(service) {
            return answer;
        }
        let row: Option<(Option<Vec<String>>,)> =
            sqlx::query_as("SELECT tenants FROM services WHERE name = $1")
                .bind(service)
                .fetch_optional(&self.pool)
                .await?;
        let scope = row.map(|(tenants,)| match tenants {
            None => TenantScope::all(),
            Some(tenants) => TenantScope::only(tenants),
        });
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded by the services NATS let in (their names come from their credentials).
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(service.to_string(), (Instant::now(), scope.clone()));
        drop(cache);
        actor(service, scope)
    }
}

fn actor(service: &str, scope: Option<TenantScope>) -> Result<Actor, CommandError> {
    match scope {
        Some(scope) => Ok(Actor::new(service, "nats").scoped(scope)),
        None => Err(CommandError::OutOfScope {
            field: "service".into(),
            message: format!(
                "service '{service}' is not registered (controlplane service add {service})"
            ),
        }),
    }
}

/// Registers a service with its tenants (`None`: every tenant), or changes the tenants of
/// one already registered. The name must be a valid service name (one subject token).
pub async fn register(
    pool: &PgPool,
    name: &str,
    tenants: Option<&[String]>,
) -> Result<(), CommandError> {
    natsauth::validate_service_name(name)
        .map_err(|error| CommandError::invalid("name", error.to_string()))?;
    if let Some(bad) = tenants
        .unwrap_or_default()
        .iter()
        .find(|t| t.is_empty() || t.len() > 128)
    {
        return Err(CommandError::invalid(
            "tenants",
            format!("tenant '{bad}' must be 1-128 characters"),
        ));
    }
    sqlx::query(
        "INSERT INTO services (name, tenants) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET tenants = EXCLUDED.tenants, updated_at = now()",
    )
    .bind(name)
    .bind(tenants)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes a service: its commands are refused from the next cache refresh on. `false`
/// when there was no such service.
pub async fn remove(pool: &PgPool, name: &str) -> Result<bool, CommandError> {
    let done = sqlx::query("DELETE FROM services WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
