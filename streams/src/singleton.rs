//! One active worker across all processes: a PostgreSQL session advisory lock on a
//! dedicated connection. When the holder dies its connection closes, PostgreSQL releases
//! the lock, and a standby (which tries once a second) takes over.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};

/// How often a standby tries to take the lock, and the holder checks it still has it.
const LOCK_INTERVAL: Duration = Duration::from_secs(1);

/// The advisory-lock key of a singleton: the same name in every process.
fn lock_name(name: &str) -> String {
    format!("golden-arch/singleton/{name}")
}

/// Runs `work` while this process holds the singleton `name`, forever. `work` is
/// cancelled when the lock's connection fails (another process may hold it by then),
/// and started again once the lock is back. `active` tells whether this process holds it.
pub async fn run_singleton<F, Fut>(pool: PgPool, name: String, active: Arc<AtomicBool>, work: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let mut connection = acquire(&pool, &name).await;
        active.store(true, Ordering::SeqCst);
        tracing::info!(singleton = %name, "this process is now the active {name}");
        tokio::select! {
            _ = work() => tracing::warn!(singleton = %name, "singleton work ended; releasing"),
            error = watch(&mut connection) => {
                tracing::warn!(singleton = %name, %error, "lost the singleton lock's connection; standing by")
            }
        }
        active.store(false, Ordering::SeqCst);
        let _ = connection.close().await;
    }
}

/// Waits until this process holds the lock; returns the connection that holds it.
async fn acquire(pool: &PgPool, name: &str) -> PgConnection {
    let options = pool
        .connect_options()
        .as_ref()
        .clone()
        // Shows up in pg_stat_activity: which process is the active one.
        .application_name(&format!("cp-{name}-{}", std::process::id()));
    let mut logged = false;
    loop {
        match PgConnection::connect_with(&options).await {
            Ok(mut connection) => loop {
                let taken: Result<bool, _> =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                        .bind(lock_name(name))
                        .fetch_one(&mut connection)
                        .await;
                match taken {
                    Ok(true) => return connection,
                    Ok(false) => {
                        if !logged {
                            tracing::info!(singleton = %name, "another process is the active {name}; standing by");
                            logged = true;
                        }
                        tokio::time::sleep(LOCK_INTERVAL).await;
                    }
                    Err(error) => {
                        tracing::warn!(singleton = %name, %error, "advisory lock query failed");
                        break;
                    }
                }
            },
            Err(error) => {
                tracing::warn!(singleton = %name, %error, "cannot connect for the singleton lock")
            }
        }
        tokio::time::sleep(LOCK_INTERVAL).await;
    }
}

/// Returns when the lock's connection stops answering.
async fn watch(connection: &mut PgConnection) -> sqlx::Error {
    loop {
        tokio::time::sleep(LOCK_INTERVAL).await;
        match tokio::time::timeout(Duration::from_secs(5), connection.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return error,
            Err(_) => return sqlx::Error::PoolTimedOut,
        }
    }
}
