//! The PostgreSQL event store: the pool, the migrations, and typed access to postgres-es.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use auth::TenantScope;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError};
use cqrs_es::{Aggregate, DomainEvent};
use postgres_es::PostgresEventRepository;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use tokio::sync::{mpsc, oneshot, Mutex as AsyncMutex};

use crate::CommandError;

/// Every SQL migration of `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens the shared connection pool (never a connection per request).
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = database_url.parse()?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.application_name("controlplane"))
        .await
}

/// Applies pending migrations. Safe to run from several processes at once (sqlx takes an
/// advisory lock).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Who asked for a change, stored as event metadata for auditors.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The username, or the NATS service identity.
    pub user: String,
    /// `http` or `nats`.
    pub via: &'static str,
    /// The tenants the caller may act on (not recorded: the user's grant says it).
    pub scope: TenantScope,
}

impl Actor {
    /// How events name who acted: `<via>:<user>` (`http:alice`, `nats:billing`).
    pub fn label(&self) -> String {
        format!("{}:{}", self.via, self.user)
    }

    /// An actor allowed every tenant.
    pub fn new(user: impl Into<String>, via: &'static str) -> Self {
        Self {
            user: user.into(),
            via,
            scope: TenantScope::all(),
        }
    }

    /// The same actor, limited to `scope`.
    pub fn scoped(mut self, scope: TenantScope) -> Self {
        self.scope = scope;
        self
    }

    /// Refuses a tenant outside the actor's scope, naming the field that carried it.
    pub fn may_act_on(&self, field: &str, tenant: &str) -> Result<(), CommandError> {
        if self.scope.allows(tenant) {
            Ok(())
        } else {
            Err(CommandError::OutOfScope {
                field: field.to_string(),
                message: format!("tenant '{tenant}' is outside this caller's tenants"),
            })
        }
    }

    fn metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            ("user".to_string(), self.user.clone()),
            ("via".to_string(), self.via.to_string()),
        ])
    }
}

/// Why an append did not happen.
pub enum AppendError {
    /// Another writer appended first: catch up and decide again.
    Conflict,
    Other(CommandError),
}

/// Typed reads and appends over postgres-es's repository. A process makes one and clones
/// it into every aggregate's executor (the clones share the writer tasks), so appends of
/// budgets, breakers and dead letters waiting at one moment share one statement.
#[derive(Clone)]
pub struct EventStore {
    repo: Arc<PostgresEventRepository>,
    pool: PgPool,
    appended: Option<mpsc::Sender<()>>,
    /// The shared writers that append the events of many aggregates together.
    writers: Option<mpsc::Sender<AppendRequest>>,
}

/// The channel tailers (the publisher) LISTEN on.
pub use domain::EVENTS_CHANNEL;

/// Writer tasks per event store: while some wait on PostgreSQL, appends queue up for the
/// next free one, which writes them all in one statement (docs/adr/007).
const WRITERS: usize = 4;
/// Most events written in one statement.
const MAX_ROWS_PER_STATEMENT: usize = 512;

impl EventStore {
    pub fn new(pool: PgPool) -> Self {
        // Wake-ups for tailers go out after the commit, from a task of their own: a
        // NOTIFY inside the writing transaction would serialise every commit (ADR 002).
        let tasks = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (appended, receiver) = mpsc::channel(1);
            runtime.spawn(notify_appends(pool.clone(), receiver));
            let (writers, requests) = mpsc::channel(4 * MAX_ROWS_PER_STATEMENT);
            let requests = Arc::new(AsyncMutex::new(requests));
            for _ in 0..WRITERS {
                runtime.spawn(write_appends(
                    pool.clone(),
                    requests.clone(),
                    appended.clone(),
                ));
            }
            (appended, writers)
        });
        let (appended, writers) = tasks.unzip();
        Self {
            repo: Arc::new(PostgresEventRepository::new(pool.clone())),
            pool,
            appended,
            writers,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Events of one aggregate after `after_sequence` (0 = all), in order.
    pub async fn load<A: Aggregate>(
        &self,
        aggregate_id: &str,
        after_sequence: usize,
    ) -> Result<Vec<(usize, A::Event)>, CommandError> {
        let rows = if after_sequence == 0 {
            self.repo.get_events::<A>(aggregate_id).await
        } else {
            self.repo
                .get_last_events::<A>(aggregate_id, after_sequence)
                .await
        }
        .map_err(persistence_error)?;
        rows.into_iter()
            .map(|row| {
                let event: A::Event = serde_json::from_value(row.payload)
                    .map_err(|e| CommandError::Internal(Box::new(e)))?;
                Ok((row.sequence, event))
            })
            .collect()
    }

    /// Appends `events` after `version` and returns the global position of the last one
    /// (clients pass it back as `min_position` to read their writes). The primary key on
    /// (type, id, sequence) turns a concurrent append into [`AppendError::Conflict`]. The
    /// columns are postgres-es's own, plus `RETURNING` (docs/adr/004-append-returns-position.md).
    pub async fn append<A: Aggregate>(
        &self,
        aggregate_id: &str,
        version: usize,
        events: &[A::Event],
        actor: &Actor,
    ) -> Result<i64, AppendError> {
        let positions = self
            .append_batch::<A>(aggregate_id, version, events, &[actor])
            .await?;
        Ok(positions.into_iter().max().unwrap_or(0))
    }

    /// Appends the events of several commands of one aggregate atomically; `actors[i]` is
    /// the actor of `events[i]`. Returns every event's global position, in order.
    ///
    /// Group commit across aggregates: the append joins whatever other aggregates' appends
    /// are waiting for a writer, and they are inserted in one statement — one transaction
    /// and one WAL flush for all of them. When that statement fails, each append is tried
    /// again alone, so a conflict or bad row of one aggregate never fails another's.
    pub async fn append_batch<A: Aggregate>(
        &self,
        aggregate_id: &str,
        version: usize,
        events: &[A::Event],
        actors: &[&Actor],
    ) -> Result<Vec<i64>, AppendError> {
        let rows = EventRows::of::<A>(aggregate_id, version, events, actors)?;
        let Some(writers) = &self.writers else {
            // No runtime when the store was made: write directly.
            return insert_with(&self.pool, &rows).await;
        };
        let (reply, answer) = oneshot::channel();
        writers
            .send(AppendRequest { rows, reply })
            .await
            .map_err(|_| {
                AppendError::Other(CommandError::Unavailable(
                    "the event writers stopped".into(),
                ))
            })?;
        answer.await.unwrap_or_else(|_| {
            Err(AppendError::Other(CommandError::Unavailable(
                "the event writer stopped before confirming the append; retry".into(),
            )))
        })
    }
}

/// One aggregate's append waiting for a writer, and where its positions go.
struct AppendRequest {
    rows: EventRows,
    reply: oneshot::Sender<Result<Vec<i64>, AppendError>>,
}

/// A writer: takes the first waiting append and every other one already queued behind
/// it (up to [`MAX_ROWS_PER_STATEMENT`]), writes them in one statement, answers each.
/// Under light load an append is written at once, alone; under heavy load the batches
/// grow by themselves while the other writers wait on PostgreSQL.
async fn write_appends(
    pool: PgPool,
    requests: Arc<AsyncMutex<mpsc::Receiver<AppendRequest>>>,
    appended: mpsc::Sender<()>,
) {
    loop {
        let batch = {
            let mut requests = requests.lock().await;
            let Some(first) = requests.recv().await else {
                return;
            };
            let mut rows = first.rows.len();
            let mut batch = vec![first];
            while rows < MAX_ROWS_PER_STATEMENT {
                match requests.try_recv() {
                    Ok(next) => {
                        rows += next.rows.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        write_together(&pool, batch).await;
        let _ = appended.try_send(());
    }
}

/// Writes the batch in one statement; if that fails and there were several appends, each
/// is written alone so that only the one at fault sees the error.
async fn write_together(pool: &PgPool, batch: Vec<AppendRequest>) {
    // The rows move into one set (no copies); on failure they are taken back apart.
    let mut rows = EventRows::default();
    let mut owners = Vec::with_capacity(batch.len());
    for mut request in batch {
        owners.push((request.rows.len(), request.reply));
        rows.append(&mut request.rows);
    }
    if owners.len() > 1 {
        if let Ok(positions) = insert_with(pool, &rows).await {
            let mut positions = positions.into_iter();
            for (len, reply) in owners {
                let _ = reply.send(Ok(positions.by_ref().take(len).collect()));
            }
            return;
        }
    }
    for (len, reply) in owners {
        let own = rows.take_front(len);
        let _ = reply.send(insert_with(pool, &own).await);
    }
}

async fn insert_with(pool: &PgPool, rows: &EventRows) -> Result<Vec<i64>, AppendError> {
    let mut connection = pool.acquire().await.map_err(append_error)?;
    insert_rows(&mut connection, rows).await
}

/// Sends `NOTIFY events_appended` in its own short transaction, at most one at a time;
/// ends when the event store (every clone) is dropped. A lost notification only costs a
/// tailer its poll interval.
async fn notify_appends(pool: PgPool, mut requests: mpsc::Receiver<()>) {
    while requests.recv().await.is_some() {
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(EVENTS_CHANNEL)
            .execute(&pool)
            .await
        {
            tracing::debug!(%error, "could not notify tailers; they poll");
        }
    }
}

/// Events ready for the `events` table, column by column (the columns postgres-es writes).
/// Payloads are kept as text so the stored JSON is exactly what serde wrote.
#[derive(Default)]
struct EventRows {
    aggregate_types: Vec<&'static str>,
    aggregate_ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<String>,
    metadata: Vec<String>,
}

impl EventRows {
    fn of<A: Aggregate>(
        aggregate_id: &str,
        version: usize,
        events: &[A::Event],
        actors: &[&Actor],
    ) -> Result<Self, AppendError> {
        let internal =
            |e: serde_json::Error| AppendError::Other(CommandError::Internal(Box::new(e)));
        let mut rows = EventRows::default();
        for (i, event) in events.iter().enumerate() {
            let actor = actors
                .get(i)
                .or(actors.last())
                .copied()
                .unwrap_or(&UNKNOWN_ACTOR);
            rows.aggregate_types.push(A::TYPE);
            rows.aggregate_ids.push(aggregate_id.to_string());
            rows.sequences.push((version + i + 1) as i64);
            rows.event_types.push(event.event_type());
            rows.event_versions.push(event.event_version());
            let payload = serde_json::to_string(event).map_err(internal)?;
            let metadata = serde_json::to_string(&actor.metadata()).map_err(internal)?;
            // Every event in the log must be publishable (docs/adr/013-bounded-events.md):
            // the aggregates' bounds keep events below this; this is the last guard.
            let bytes = payload.len() + metadata.len();
            if bytes > domain::MAX_EVENT_BYTES {
                return Err(AppendError::Other(CommandError::TooLarge {
                    bytes,
                    limit: domain::MAX_EVENT_BYTES,
                }));
            }
            rows.payloads.push(payload);
            rows.metadata.push(metadata);
        }
        Ok(rows)
    }

    fn len(&self) -> usize {
        self.sequences.len()
    }

    /// Moves `other`'s rows after these.
    fn append(&mut self, other: &mut EventRows) {
        self.aggregate_types.append(&mut other.aggregate_types);
        self.aggregate_ids.append(&mut other.aggregate_ids);
        self.sequences.append(&mut other.sequences);
        self.event_types.append(&mut other.event_types);
        self.event_versions.append(&mut other.event_versions);
        self.payloads.append(&mut other.payloads);
        self.metadata.append(&mut other.metadata);
    }

    /// Moves the first `n` rows out.
    fn take_front(&mut self, n: usize) -> EventRows {
        EventRows {
            aggregate_types: self.aggregate_types.drain(..n).collect(),
            aggregate_ids: self.aggregate_ids.drain(..n).collect(),
            sequences: self.sequences.drain(..n).collect(),
            event_types: self.event_types.drain(..n).collect(),
            event_versions: self.event_versions.drain(..n).collect(),
            payloads: self.payloads.drain(..n).collect(),
            metadata: self.metadata.drain(..n).collect(),
        }
    }
}

/// Inserts the rows in ONE statement and returns each one's global position, in order
/// (rows are inserted, and returned, in the order UNNEST yields them). One statement is
/// atomic by itself, so the plain append needs no BEGIN/COMMIT round trips: a reservation
/// costs one round trip to PostgreSQL.
async fn insert_rows(
    connection: &mut PgConnection,
    rows: &EventRows,
) -> Result<Vec<i64>, AppendError> {
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version,
                e.payload::json, e.metadata::json
           FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                AS e(aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         RETURNING global_position",
    )
    .bind(&rows.aggregate_types)
    .bind(&rows.aggregate_ids)
    .bind(&rows.sequences)
    .bind(&rows.event_types)
    .bind(&rows.event_versions)
    .bind(&rows.payloads)
    .bind(&rows.metadata)
    .fetch_all(&mut *connection)
    .await
    .map_err(append_error)
}

/// Metadata for events written without a named actor (never expected; keeps the row valid).
static UNKNOWN_ACTOR: Actor = Actor {
    user: String::new(),
    via: "unknown",
    scope: TenantScope::all(),
};

/// An open transaction holding the cross-process write lock of one aggregate.
pub struct LockedAggregate {
    tx: Transaction<'static, Postgres>,
    aggregate_id: String,
    appended: Option<mpsc::Sender<()>>,
}

impl EventStore {
    /// Starts a transaction that holds a transaction-scoped advisory lock on the aggregate,
    /// so writers in every process take turns instead of racing (used once an aggregate
    /// has seen a conflict: racing writers would otherwise starve the slower process).
    pub async fn lock<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<LockedAggregate, CommandError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("{}/{}", A::TYPE, aggregate_id))
            .execute(&mut *tx)
            .await?;
        Ok(LockedAggregate {
            tx,
            aggregate_id: aggregate_id.to_string(),
            appended: self.appended.clone(),
        })
    }
}

impl LockedAggregate {
    /// The transaction itself, for state kept beside the events (e.g. the `users` row an
    /// account event records a change of), so both commit or neither does.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// How many events the aggregate has (its version), read under the lock.
    pub async fn version<A: Aggregate>(&mut self) -> Result<usize, CommandError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COALESCE(max(sequence), 0) FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(&self.aggregate_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(count as usize)
    }

    /// Events after `after_sequence`, read under the lock (so nothing can follow them
    /// until this transaction ends, except a writer that does not take the lock).
    pub async fn load<A: Aggregate>(
        &mut self,
        after_sequence: usize,
    ) -> Result<Vec<(usize, A::Event)>, CommandError> {
        let rows = sqlx::query(
            "SELECT sequence, payload FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3
              ORDER BY sequence",
        )
        .bind(A::TYPE)
        .bind(&self.aggregate_id)
        .bind(after_sequence as i64)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                let sequence: i64 = row.try_get("sequence")?;
                let payload: serde_json::Value = row.try_get("payload")?;
                let event = serde_json::from_value(payload)
                    .map_err(|e| CommandError::Internal(Box::new(e)))?;
                Ok((sequence as usize, event))
            })
            .collect()
    }

    /// Inserts the events (the same columns postgres-es writes) and commits; returns the
    /// last event's global position.
    pub async fn append_and_commit<A: Aggregate>(
        mut self,
        version: usize,
        events: &[A::Event],
        actor: &Actor,
    ) -> Result<i64, AppendError> {
        let rows = EventRows::of::<A>(&self.aggregate_id, version, events, &[actor])?;
        let positions = insert_rows(&mut self.tx, &rows).await?;
        let position = positions.into_iter().max().unwrap_or(0);
        self.tx.commit().await.map_err(append_error)?;
        if let Some(sender) = &self.appended {
            let _ = sender.try_send(());
        }
        Ok(position)
    }
}

fn append_error(error: sqlx::Error) -> AppendError {
    if let sqlx::Error::Database(db) = &error {
        if db.code().as_deref() == Some("23505") {
            return AppendError::Conflict;
        }
    }
    AppendError::Other(CommandError::from(error))
}

fn persistence_error(error: PersistenceError) -> CommandError {
    match error {
        PersistenceError::ConnectionError(e) => CommandError::Unavailable(e),
        PersistenceError::OptimisticLockError => CommandError::Busy,
        PersistenceError::DeserializationError(e) | PersistenceError::UnknownError(e) => {
            // PostgreSQL going away (a pool time-out, a cut connection) surfaces here too;
            // it is an availability problem.
            let unavailable = e
                .downcast_ref::<sqlx::Error>()
                .is_some_and(crate::error::storage_unavailable)
                || e.to_string().contains("pool timed out");
            if unavailable {
                CommandError::Unavailable(e)
            } else {
                CommandError::Internal(e)
            }
        }
    }
}
