//! PostgreSQL + PGMQ backend of [`tasker_store::Store`]: SQL and connection
//! handling only. Operations that load tasks into a `TaskRun` (claims,
//! reports, cancel, retry, resolve, the sweeps) are the store crate's
//! orchestration, run on this crate's primitives (`backend`); the rest
//! (creation's rows, reads, catalog, schedules, cluster records) are
//! statements here, around the policy the store crate holds for every
//! backend (`orchestration::task_creation`, `catalog`, `schedules`,
//! `paging`).
//!
//! ```text
//!  tasker_store::orchestration ──▶ Backend::retrying(op)           ◀─ error: deadlock, lost connection
//!   op: begin(durability) ─────▶ BEGIN [; SET LOCAL synchronous_commit = off] (one round trip)
//!       tasks_lock ────────────▶   task rows [and contexts] ORDER BY id FOR UPDATE
//!                                  [SKIP LOCKED], then their steps                  ◀─ load
//!       messages_* ────────────▶   PGMQ tables, plain prepared statements           ◀─ queue
//!       TaskRun::<op>(..)             (pure logic, tasker-model)
//!       plan_write ────────────▶   one statement: sends, steps, tasks, history,
//!                                  deletes and hides, with per-queue CTEs          ◀─ plan_writer
//!       payloads_load ─────────▶   what the lock did not load, in one query         ◀─ payloads
//!       commit() ──────────────▶ COMMIT
//!   after_commit ──────────────▶ wake local polls, NOTIFY (announcer), observer
//! ```
//!
//! The database clock is the only clock: PGMQ computes visibility with
//! `clock_timestamp()`, so leases are judged against the same clock.
//!
//! Failure: a deadlock or serialization failure (possible when a lease
//! expires while its holder reports) rolls the transaction back and the
//! operation is retried a few times; a connection lost before COMMIT (a
//! killed backend, a restart) runs it once more on a fresh connection; any
//! other database error is returned and nothing of the operation remains.
//! While the [`DatabaseMonitor`] finds the database unreachable, operations
//! are refused at once ([`tasker_store::Error::Unavailable`]) instead of
//! waiting for a connection (see the `error` module).

mod acquire_check;
mod announcer;
mod backend;
mod catalog;
mod database_monitor;
mod dead_letters;
mod error;
mod leadership;
mod load;
mod maintenance;
mod nodes;
mod notifier;
mod payloads;
mod plan_writer;
mod queue;
mod queue_depths;
mod retention;
mod rows;
mod schedules;
mod steps;
mod task_activity;
mod task_explain;
mod tasks;
mod workers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use tasker_model::explanation::ExplainFacts;
use tasker_model::{
    ClaimedStep, HeartbeatOutcome, Lease, Namespace, Recorded, Schedule, ScheduleFire, Step, Task,
    Template, TemplateRecord, Timestamp, Transition,
};
use tasker_store::orchestration::{claims, reports, sweeps, task_creation, task_operations};
use tasker_store::{
    ClaimBatch, ClaimedBatch, FireRequest, FireResult, LeaderElect, Leadership, NextClaim, Node,
    NodeRegistration, QueueDepth, Readiness, ReportOutcome, Result, RetentionDeleted,
    RetentionTasksDelete, ScheduleWrite, StepClaim, StepCompletion, StepFailure, StepReport, Store,
    TaskActivity, TaskCreate, TaskFilter, TaskPage, Worker, WorkerRegistration,
};
use tasker_store::{DeadLetterFilter, DeadLetterPage, StuckKind, SweepCounts, SweepRecord};
use uuid::Uuid;

pub use backend::PgTransaction;
pub use database_monitor::{DatabaseMonitor, MonitorConfig};
pub use error::db;
use error::{db_verbatim, with_retry};
pub use notifier::{Notifier, OnLeadership};

/// Channel that carries `NOTIFY`s when steps of a namespace become ready;
/// the payload is the namespace name.
pub const READY_CHANNEL: &str = "tasker_ready";

/// Channel that carries a `NOTIFY` when a leader resigns; the payload is the
/// duty set's name. Other nodes try to take the lease at once.
pub const LEADERSHIP_CHANNEL: &str = "tasker_leadership";

/// Migrations embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Changes whenever the schema does; keys cached test databases.
pub fn schema_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for migration in MIGRATOR.iter() {
        hasher.update(migration.version.to_le_bytes());
        hasher.update(&*migration.checksum);
    }
    hasher.update(env!("CARGO_PKG_VERSION"));
    let digest = hasher.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Settings of the connection pool and of the database check.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
    /// How often, and how patiently, the [`DatabaseMonitor`] checks the
    /// database.
    pub monitor: MonitorConfig,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(10),
            monitor: MonitorConfig::default(),
        }
    }
}

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    node_id: Arc<str>,
    /// Namespaces' queues and templates: immutable once written.
    catalog: Arc<tasker_store::catalog::CatalogCache>,
    announcer: announcer::Announcer,
    local_wake: Arc<std::sync::OnceLock<notifier::OnReady>>,
    observer: Arc<std::sync::OnceLock<Arc<dyn tasker_store::Observer>>>,
    monitor: DatabaseMonitor,
    /// `engine.max_fan_out_instances`, handed to every [`TaskRun`].
    max_fan_out: Arc<std::sync::atomic::AtomicU32>,
    /// Which connections the pool pings before use (a pool made by
    /// [`PgStore::connect`]; others test as they were built to).
    acquire_check: Arc<acquire_check::AcquireCheck>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl PgStore {
    /// Connects a pool. The pool reconnects by itself after a database
    /// restart: connections that may have died unseen are tested before use
    /// (see `acquire_check`).
    pub async fn connect(url: &str, config: &PoolConfig, node_id: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(db_verbatim)?;
        // One plain connection first: when the database cannot be reached,
        // its error (refused, unknown database, bad password) is the one to
        // report, not the pool's timeout.
        let first = options.clone().connect().await.map_err(db_verbatim)?;
        first.close().await.map_err(db_verbatim)?;
        let check = Arc::new(acquire_check::AcquireCheck::default());
        let checks = check.clone();
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let ping = checks.should_ping(meta.idle_for);
                Box::pin(async move { Ok(!ping || conn.ping().await.is_ok()) })
            })
            .connect_with(options.application_name("tasker"))
            .await
            .map_err(db_verbatim)?;
        let mut store = Self::from_pool_with(pool, node_id, config.monitor);
        store.acquire_check = check;
        Ok(store)
    }

    /// Must be called inside a tokio runtime (it starts the announcer).
    /// Creates the database named in `url` when it does not exist, connecting
    /// to the server's `postgres` database to do so. Returns whether it
    /// created it.
    pub async fn create_database_if_missing(url: &str) -> Result<bool> {
        let options: PgConnectOptions = url.parse().map_err(db_verbatim)?;
        let name = options.get_database().map(str::to_owned).ok_or_else(|| {
            tasker_store::Error::Invalid {
                field: "database.url".into(),
                message: "names no database".into(),
            }
        })?;
        let mut admin = options
            .database("postgres")
            .connect()
            .await
            .map_err(db_verbatim)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .map_err(db_verbatim)?;
        if !exists {
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            sqlx::query(&format!("CREATE DATABASE {quoted}"))
                .execute(&mut admin)
                .await
                .map_err(db_verbatim)?;
        }
        admin.close().await.map_err(db_verbatim)?;
        Ok(!exists)
    }

    /// Must be called inside a tokio runtime (it starts the announcer and
    /// the database monitor, checking at the default interval).
    pub fn from_pool(pool: PgPool, node_id: &str) -> Self {
        Self::from_pool_with(pool, node_id, MonitorConfig::default())
    }

    /// [`PgStore::from_pool`] with the database monitor's settings. The
    /// monitor checks on a connection of its own, made with the pool's
    /// connect options.
    pub fn from_pool_with(pool: PgPool, node_id: &str, monitor: MonitorConfig) -> Self {
        let options = (*pool.connect_options()).clone();
        Self {
            monitor: DatabaseMonitor::start(options, monitor),
            announcer: announcer::Announcer::start(pool.clone()),
            pool,
            node_id: node_id.into(),
            catalog: Arc::default(),
            local_wake: Arc::default(),
            observer: Arc::default(),
            max_fan_out: Arc::new(std::sync::atomic::AtomicU32::new(
                tasker_model::task_run::DEFAULT_MAX_FAN_OUT,
            )),
            acquire_check: Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// This store's view of whether the database is reachable.
    pub fn monitor(&self) -> &DatabaseMonitor {
        &self.monitor
    }

    /// Reports facts of a committed transaction (for metrics). Shared by every
    /// clone of this store; the first call wins.
    pub fn set_observer(&self, observer: Arc<dyn tasker_store::Observer>) {
        let _ = self.observer.set(observer);
    }

    /// Tells the observer (if any) facts it cannot learn from requests.
    fn observe(&self, events: &[tasker_store::Event]) {
        if !events.is_empty()
            && let Some(observer) = self.observer.get()
        {
            observer.observe(events);
        }
    }

    /// Wakes pollers of namespaces that got ready steps; call after the
    /// commit. Local pollers are woken at once, other nodes' through NOTIFY.
    fn announce(&self, ready: &[(String, usize)]) {
        if ready.is_empty() {
            return;
        }
        if let Some(wake) = self.local_wake.get() {
            for (namespace, _) in ready {
                wake(Some(namespace));
            }
        }
        self.announcer
            .announce(ready.iter().map(|(n, _)| n.as_str()));
    }

    /// Also wake this process's long-polls directly when steps become ready,
    /// without waiting for the NOTIFY to come back. Shared by every clone of
    /// this store; the first call wins.
    pub fn set_local_wake(&self, wake: notifier::OnReady) {
        let _ = self.local_wake.set(wake);
    }
}

/// Every operation runs inside [`with_retry`] exactly once: the ones that
/// load tasks into a `TaskRun` through the store crate's orchestration
/// (which runs them in [`Backend::retrying`](tasker_store::backend::Backend::retrying)),
/// the rest here. The single statements run here outside a
/// transaction (reads, `ON CONFLICT DO NOTHING` inserts, upserts of worker
/// records) are idempotent, so running one again after its connection was
/// lost is safe even if it took effect.
#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<()> {
        catalog::migrate(self).await
    }

    async fn readiness(&self) -> Result<Readiness> {
        Ok(self.monitor.readiness().await)
    }

    fn fan_out_cap_set(&self, cap: u32) {
        self.max_fan_out
            .store(cap, std::sync::atomic::Ordering::Relaxed);
    }

    async fn namespace_create(&self, name: &str) -> Result<(Namespace, bool)> {
        with_retry(self, || catalog::namespace_create(self, name)).await
    }

    async fn namespace_list(&self) -> Result<Vec<Namespace>> {
        with_retry(self, || catalog::namespace_list(self)).await
    }

    async fn template_register(&self, template: &Template) -> Result<(TemplateRecord, bool)> {
        with_retry(self, || {
            tasker_store::catalog::template_register(self, template)
        })
        .await
    }

    async fn template_get(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<TemplateRecord> {
        with_retry(self, || {
            tasker_store::catalog::template_get(self, namespace, name, version)
        })
        .await
    }

    async fn template_list(&self, namespace: Option<&str>) -> Result<Vec<TemplateRecord>> {
        with_retry(self, || catalog::template_list(self, namespace)).await
    }

    async fn task_create(&self, params: TaskCreate) -> Result<(Task, bool)> {
        with_retry(self, || task_creation::create(self, &params)).await
    }

    async fn task_create_many(&self, items: Vec<TaskCreate>) -> Result<Vec<Result<(Task, bool)>>> {
        with_retry(self, || task_creation::create_many(self, &items)).await
    }

    async fn task_get(&self, id: Uuid) -> Result<Task> {
        with_retry(self, || tasks::get(self, id)).await
    }

    async fn task_list(&self, filter: &TaskFilter) -> Result<TaskPage> {
        with_retry(self, || tasks::list(self, filter)).await
    }

    async fn task_steps(&self, id: Uuid) -> Result<Vec<Step>> {
        with_retry(self, || tasks::steps(self, id)).await
    }

    async fn task_history(&self, id: Uuid, after: i64, limit: u32) -> Result<Vec<Transition>> {
        with_retry(self, || tasks::history(self, id, after, limit)).await
    }

    async fn task_explain_facts(&self, id: Uuid, worker_within: Duration) -> Result<ExplainFacts> {
        with_retry(self, || task_explain::facts(self, id, worker_within)).await
    }

    async fn task_cancel(&self, id: Uuid, reason: &str) -> Result<Task> {
        task_operations::cancel(self, id, reason).await?;
        tasks::get(self, id).await
    }

    async fn step_get(&self, id: Uuid) -> Result<Step> {
        with_retry(self, || steps::get(self, id)).await
    }

    async fn step_claim(&self, params: StepClaim) -> Result<Vec<ClaimedStep>> {
        claims::claim(self, params).await
    }

    async fn step_claim_batch(&self, batch: ClaimBatch) -> Result<ClaimedBatch> {
        claims::claim_batch(self, batch).await
    }

    async fn step_heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<HeartbeatOutcome> {
        task_operations::heartbeat(self, lease, lease_for).await
    }

    async fn step_complete(&self, items: Vec<StepCompletion>) -> Result<Vec<Result<Recorded>>> {
        task_operations::complete(self, items).await
    }

    async fn step_complete_and_claim(
        &self,
        item: StepCompletion,
        next: &NextClaim,
    ) -> Result<(Recorded, Vec<ClaimedStep>)> {
        task_operations::complete_and_claim(self, item, next).await
    }

    async fn step_fail(&self, params: StepFailure) -> Result<Recorded> {
        task_operations::fail(self, params).await
    }

    async fn step_report(&self, reports: Vec<StepReport>) -> Result<Vec<Result<ReportOutcome>>> {
        reports::write(self, reports).await
    }

    async fn step_release(&self, lease: &Lease) -> Result<()> {
        task_operations::release(self, lease).await
    }

    async fn step_retry(&self, step_id: Uuid) -> Result<Step> {
        let task_id = task_operations::retry(self, step_id).await?;
        steps::step_of(self, task_id, step_id).await
    }

    async fn step_resolve(&self, step_id: Uuid, result: Option<serde_json::Value>) -> Result<Step> {
        let task_id = task_operations::resolve(self, step_id, result).await?;
        steps::step_of(self, task_id, step_id).await
    }

    async fn worker_register(&self, registration: &WorkerRegistration) -> Result<Worker> {
        with_retry(self, || workers::register(self, registration)).await
    }

    async fn workers_seen(&self, worker_ids: &[String]) -> Result<()> {
        with_retry(self, || workers::seen(self, worker_ids)).await
    }

    async fn worker_get(&self, worker_id: &str, within: Duration) -> Result<Option<Worker>> {
        with_retry(self, || workers::get(self, worker_id, within)).await
    }

    async fn worker_list(&self, within: Duration) -> Result<Vec<Worker>> {
        with_retry(self, || workers::list(self, within)).await
    }

    async fn worker_in_flight(&self) -> Result<HashMap<String, u64>> {
        workers::in_flight(self).await
    }

    async fn node_heartbeat(&self, node: &NodeRegistration) -> Result<Node> {
        with_retry(self, || nodes::heartbeat(self, node)).await
    }

    async fn node_list(&self, within: Duration) -> Result<Vec<Node>> {
        with_retry(self, || nodes::list(self, within)).await
    }

    async fn node_delete(&self, node_id: &str) -> Result<()> {
        with_retry(self, || nodes::delete(self, node_id)).await
    }

    async fn node_delete_stale(&self, older_than: Duration) -> Result<u64> {
        with_retry(self, || nodes::delete_stale(self, older_than)).await
    }

    // Retention

    async fn retention_tasks_delete(
        &self,
        batch: &RetentionTasksDelete,
    ) -> Result<RetentionDeleted> {
        with_retry(self, || retention::tasks_delete(self, batch)).await
    }

    async fn retention_idempotency_keys_release(
        &self,
        older_than: Duration,
        limit: u32,
    ) -> Result<u64> {
        with_retry(self, || {
            retention::idempotency_keys_release(self, older_than, limit)
        })
        .await
    }

    async fn retention_workers_delete(&self, older_than: Duration, limit: u32) -> Result<u64> {
        with_retry(self, || retention::workers_delete(self, older_than, limit)).await
    }

    async fn leader_attempt_elect(&self, elect: &LeaderElect) -> Result<Option<Leadership>> {
        with_retry(self, || leadership::attempt_elect(self, elect)).await
    }

    async fn leader_resign(&self, name: &str, node_id: &str) -> Result<bool> {
        with_retry(self, || leadership::resign(self, name, node_id)).await
    }

    async fn leader_get(&self, name: &str) -> Result<Option<Leadership>> {
        with_retry(self, || leadership::get(self, name)).await
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        with_retry(self, || queue_depths::read(self)).await
    }

    async fn task_activity(&self, since: Timestamp) -> Result<Vec<TaskActivity>> {
        with_retry(self, || task_activity::read(self, since)).await
    }

    // Schedules

    async fn schedule_create(&self, id: Uuid, write: &ScheduleWrite) -> Result<Schedule> {
        with_retry(self, || schedules::create(self, id, write)).await
    }

    async fn schedule_get(&self, id: Uuid) -> Result<Schedule> {
        with_retry(self, || schedules::get(self, id)).await
    }

    async fn schedule_list(&self) -> Result<Vec<Schedule>> {
        with_retry(self, || schedules::list(self)).await
    }

    async fn schedule_update(&self, id: Uuid, write: &ScheduleWrite) -> Result<Schedule> {
        with_retry(self, || schedules::update(self, id, write)).await
    }

    async fn schedule_delete(&self, id: Uuid) -> Result<()> {
        with_retry(self, || schedules::delete(self, id)).await
    }

    async fn schedule_due(&self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>> {
        with_retry(self, || schedules::due(self, now, limit)).await
    }

    async fn schedule_next_run(&self) -> Result<Option<Timestamp>> {
        with_retry(self, || schedules::next_run(self)).await
    }

    async fn schedule_fire(&self, request: &FireRequest) -> Result<FireResult> {
        // Safe to run again: the fire's key makes a second run a no-op.
        with_retry(self, || schedules::fire_once(self, request)).await
    }

    async fn schedule_fires(&self, id: Uuid, limit: u32) -> Result<Vec<ScheduleFire>> {
        with_retry(self, || schedules::fires(self, id, limit)).await
    }

    // Maintenance

    async fn maintenance_steps_time_out(&self, batch: u32) -> Result<(u64, u64)> {
        sweeps::steps_time_out(self, batch).await
    }

    async fn maintenance_tasks_exceed_deadline(&self, batch: u32) -> Result<u64> {
        sweeps::tasks_exceed_deadline(self, batch).await
    }

    async fn maintenance_stuck_repair(&self, batch: u32) -> Result<Vec<(StuckKind, u64)>> {
        sweeps::stuck_repair(self, batch).await
    }

    async fn maintenance_sweep_record(
        &self,
        name: &str,
        node_id: &str,
        counts: &SweepCounts,
    ) -> Result<()> {
        with_retry(self, || {
            maintenance::sweep_record(self, name, node_id, counts)
        })
        .await
    }

    async fn maintenance_sweep_list(&self) -> Result<Vec<SweepRecord>> {
        with_retry(self, || maintenance::sweep_list(self)).await
    }

    async fn maintenance_queues_vacuum(&self, min_dead: u64) -> Result<Vec<(String, u64)>> {
        // Safe to run again: a second VACUUM finds less to do.
        with_retry(self, || maintenance::queues_vacuum(self, min_dead)).await
    }

    async fn dead_letter_list(
        &self,
        filter: &DeadLetterFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<DeadLetterPage> {
        with_retry(self, || dead_letters::list(self, filter, cursor, limit)).await
    }
}
