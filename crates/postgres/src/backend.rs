//! [`PgStore`] as a [`Backend`] of the store crate's orchestration: each
//! primitive is the statement of its module (`load`, `queue`, `payloads`,
//! `plan_writer`, `maintenance`) on one `sqlx` transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tasker_model::{TemplateRecord, Timestamp};
use tasker_store::backend::{
    Attempt, Backend, Durability, Load, LoadedTask, Lock, PayloadRequest, Payloads, Pending,
    ReadMessage, Repeat, Transaction, Written,
};
use tasker_store::orchestration::task_creation::{Inserted, Prepared};
use tasker_store::{Result, TaskCreate};
use uuid::Uuid;

use crate::error::{commit_error, db, retrying};
use crate::{PgStore, catalog, load, maintenance, payloads, plan_writer, queue, tasks};

/// One open PostgreSQL transaction of a [`PgStore`]; rolled back when
/// dropped uncommitted.
pub struct PgTransaction<'a> {
    store: &'a PgStore,
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

/// `hot_path_plans!()`: how the statements of the backend's transactions
/// are planned. Each is prepared once per pooled connection, and every one
/// of them finds its rows
/// by key: a batch of ids (or one task's steps) looked up through an
/// index, a few rows at a time, never a whole table. So the plan is fixed
/// as exactly that: index scans (no sequential scan), joins by probing an
/// index for each row (no hash or merge join, which would read a whole
/// table or index to match a batch of a few rows), and one generic plan per
/// statement and connection, made on the first execution and reused, so
/// that no execution pays for planning again. Costed plans go wrong here:
/// a plan made while a table is small (an empty queue, a new deployment)
/// reads the whole table, and PostgreSQL keeps it once the table has grown.
/// JIT compilation never pays for statements this short.
macro_rules! hot_path_plans {
    () => {
        "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
         SET LOCAL enable_mergejoin = off; SET LOCAL plan_cache_mode = force_generic_plan; \
         SET LOCAL jit = off"
    };
}

const BEGIN_FLUSHED: &str = concat!("BEGIN; ", hot_path_plans!());
const BEGIN_RELAXED: &str = concat!(
    "BEGIN; ",
    hot_path_plans!(),
    "; SET LOCAL synchronous_commit = off"
);

/// PGMQ visibility is in whole seconds; a lease is never shorter than asked.
fn lease_seconds(lease_for: Duration) -> i32 {
    (lease_for.as_millis().div_ceil(1000)).clamp(1, i32::MAX as u128) as i32
}

impl Transaction for PgTransaction<'_> {
    async fn tasks_lock(
        &mut self,
        lock: Lock<'_>,
        load: Load,
    ) -> Result<(HashMap<Uuid, LoadedTask>, Timestamp)> {
        load::lock_tasks(self.store, &mut self.tx, lock, load).await
    }

    async fn tasks_existing(&mut self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        sqlx::query_scalar("SELECT id FROM tasker.tasks WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db)
    }

    async fn messages_read(
        &mut self,
        queue: &str,
        lease_for: Duration,
        max: u32,
        handlers: &[String],
    ) -> Result<Vec<ReadMessage>> {
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        queue::read(&mut self.tx, queue, lease_seconds(lease_for), max, handlers).await
    }

    async fn messages_delete(&mut self, queue: &str, msg_ids: &[i64]) -> Result<()> {
        queue::delete(&mut self.tx, queue, msg_ids).await
    }

    async fn messages_show(&mut self, queue: &str, msg_ids: &[i64]) -> Result<()> {
        queue::make_visible(&mut self.tx, queue, msg_ids).await
    }

    async fn messages_visible_at(
        &mut self,
        queue: &str,
        msg_ids: &[i64],
    ) -> Result<HashMap<i64, Timestamp>> {
        queue::visible_at(&mut self.tx, queue, msg_ids).await
    }

    async fn messages_next_visible_in(&mut self, queue: &str) -> Result<Option<Duration>> {
        queue::next_visible_in(&mut self.tx, queue).await
    }

    async fn payloads_load(&mut self, request: &PayloadRequest) -> Result<Payloads> {
        payloads::load(&mut self.tx, request).await
    }

    async fn plan_write(&mut self, runs: &mut [Pending<'_, '_>]) -> Result<()> {
        plan_writer::write(&mut self.tx, self.store.node_id(), runs).await
    }

    async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(commit_error)
    }
}

impl Backend for PgStore {
    type Tx<'a> = PgTransaction<'a>;

    async fn begin(&self, durability: Durability) -> Result<PgTransaction<'_>> {
        // One round trip for `BEGIN` and the settings, which last until the
        // transaction ends; see `hot_path_plans`. Relaxed commits also skip
        // the flush wait.
        let tx = match durability {
            Durability::Flushed => self.pool.begin_with(BEGIN_FLUSHED).await,
            Durability::Relaxed => self.pool.begin_with(BEGIN_RELAXED).await,
        }
        .map_err(db)?;
        Ok(PgTransaction { store: self, tx })
    }

    async fn tasks_create(&self, items: &[TaskCreate], prepared: Prepared) -> Result<Inserted> {
        tasks::create(self, items, prepared).await
    }

    async fn queue_of(&self, namespace: &str) -> Result<String> {
        catalog::queue_of(self, namespace).await
    }

    async fn template_by_id(&self, id: Uuid) -> Result<Arc<TemplateRecord>> {
        catalog::template_by_id(self, id).await
    }

    fn retrying<'op, T, F>(&'op self, repeat: Repeat, op: F) -> Attempt<'op, T>
    where
        T: Send + 'op,
        F: FnMut() -> Attempt<'op, T> + Send + 'op,
    {
        Box::pin(retrying(self, repeat, op))
    }

    fn after_commit(&self, written: &Written) {
        self.announce(&written.ready);
        self.observe(&written.events);
    }

    fn max_fan_out(&self) -> u32 {
        self.max_fan_out.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn tasks_with_lapsed_leases(&self, batch: u32) -> Result<Vec<Uuid>> {
        maintenance::lapsed_lease_tasks(self, batch).await
    }

    async fn tasks_past_deadline(&self, batch: u32) -> Result<Vec<Uuid>> {
        maintenance::past_deadline_tasks(self, batch).await
    }

    async fn tasks_maybe_stuck(&self, batch: u32) -> Result<Vec<Uuid>> {
        maintenance::maybe_stuck_tasks(self, batch).await
    }
}
