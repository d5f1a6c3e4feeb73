//! The store crate's [`Backend`] and [`Transaction`] primitives on SQLite,
//! so that the one orchestration (claims, reports, operations on a task,
//! sweeps) runs here as on PostgreSQL.
//!
//! ```text
//!  begin(_)           BEGIN IMMEDIATE on the one writer connection: the
//!                     database's write lock for the whole transaction
//!  tasks_lock(lock, _) = load: nothing else writes until the commit, so no
//!                     task is ever busy (FreeTasks skips none); contexts
//!                     are left to payloads_load
//!  messages_*         queue_messages rows of one queue (see `queue`)
//!  plan_write         per-row statements (see `plan_writer`)
//!  commit()           COMMIT, synced (both durabilities, see below)
//! ```
//!
//! Decisions:
//! - Durability: [`Durability::Relaxed`] commits like `Flushed` (synced
//!   with `synchronous = FULL`). SQLite refuses to change `synchronous`
//!   inside a transaction, so relaxing one would cost a statement before
//!   and after it; one local fsync per claim is cheap next to a network
//!   round trip, and no accepted work is ever lost.
//! - Busy database: the retry runner runs an operation once. One process
//!   owns the file (the lock file) and its writes queue on the one writer
//!   connection, so `SQLITE_BUSY` only comes from an outside writer holding
//!   the file past the busy timeout (10 s); it is answered
//!   [`tasker_store::Error::Unavailable`] (`acquire_timeout`, 503, retry
//!   later), as is a writer connection not free within the pool's timeout.
//!   A transaction that fails is rolled back whole; nothing runs twice.
//!
//! Must never: read through the reader pool inside a writing transaction
//! (in memory mode a reader waits for the writer's commit, which would wait
//! for the reader).

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

use crate::load::{self, Which};
use crate::{SqliteStore, catalog, db, plan_writer, queue, sweep_candidates, task_create};

/// One open writing transaction of a [`SqliteStore`].
pub struct SqliteTx<'a> {
    store: &'a SqliteStore,
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
}

impl Transaction for SqliteTx<'_> {
    /// Contexts are left to the payloads (`load` is ignored): in process,
    /// a second read costs no round trip.
    async fn tasks_lock(
        &mut self,
        lock: Lock<'_>,
        _load: Load,
    ) -> Result<(HashMap<Uuid, LoadedTask>, Timestamp)> {
        let which = match lock {
            Lock::Tasks(ids) | Lock::FreeTasks(ids) => Which::Tasks(ids),
            Lock::TasksOfSteps(ids) => Which::TasksOfSteps(ids),
        };
        let (rows, now) = load::tasks(&mut self.tx, which).await?;
        let mut loaded = HashMap::with_capacity(rows.len());
        for (id, row) in rows {
            let template =
                catalog::template_by_id_on(self.store, &mut self.tx, row.template_id).await?;
            let defined = template.definition.steps.len();
            let steps = row.steps;
            if steps.len() < defined
                || steps[..defined].iter().any(|s| s.instance.is_some())
                || steps[defined..]
                    .iter()
                    .any(|s| s.instance.is_none_or(|i| i.of >= defined))
            {
                return Err(load::corrupt(&format!(
                    "task {id} has {} step rows",
                    steps.len()
                )));
            }
            loaded.insert(
                id,
                LoadedTask {
                    queue: catalog::queue_name(&row.namespace),
                    namespace: row.namespace,
                    template,
                    task: row.task,
                    steps,
                    max_fan_out: self.store.max_fan_out(),
                    context: None,
                },
            );
        }
        Ok((loaded, now))
    }

    async fn tasks_existing(&mut self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        load::existing(&mut self.tx, ids).await
    }

    async fn messages_read(
        &mut self,
        queue: &str,
        lease_for: Duration,
        max: u32,
        handlers: &[String],
    ) -> Result<Vec<ReadMessage>> {
        queue::read(&mut self.tx, queue, lease_for, max, handlers).await
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
        let mut contexts = request.contexts.clone();
        contexts.sort_unstable();
        contexts.dedup();
        load::payloads(&mut self.tx, &contexts, &request.results, &request.items).await
    }

    async fn plan_write(&mut self, runs: &mut [Pending<'_, '_>]) -> Result<()> {
        plan_writer::write(&mut self.tx, self.store.node_id(), runs).await
    }

    async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(db)
    }
}

impl Backend for SqliteStore {
    type Tx<'a> = SqliteTx<'a>;

    /// Every commit is synced (`synchronous = FULL`): `durability` is
    /// ignored.
    async fn begin(&self, _durability: Durability) -> Result<SqliteTx<'_>> {
        Ok(SqliteTx {
            store: self,
            tx: self.begin_write().await?,
        })
    }

    async fn tasks_create(&self, items: &[TaskCreate], prepared: Prepared) -> Result<Inserted> {
        let mut tx = self.begin_write().await?;
        let inserted = task_create::write(self, &mut tx, items, prepared).await?;
        tx.commit().await.map_err(db)?;
        Ok(inserted)
    }

    async fn queue_of(&self, namespace: &str) -> Result<String> {
        catalog::queue_of(self, namespace).await
    }

    async fn template_by_id(&self, id: Uuid) -> Result<Arc<TemplateRecord>> {
        catalog::template_by_id(self, id).await
    }

    fn retrying<'op, T, F>(&'op self, _repeat: Repeat, op: F) -> Attempt<'op, T>
    where
        T: Send + 'op,
        F: FnMut() -> Attempt<'op, T> + Send + 'op,
    {
        // Once: see the module doc.
        Box::pin(async move {
            let mut op = op;
            op().await
        })
    }

    fn after_commit(&self, written: &Written) {
        SqliteStore::after_commit(self, &written.ready, &written.events);
    }

    fn max_fan_out(&self) -> u32 {
        SqliteStore::max_fan_out(self)
    }

    async fn tasks_with_lapsed_leases(&self, batch: u32) -> Result<Vec<Uuid>> {
        sweep_candidates::lapsed_lease_tasks(self, batch).await
    }

    async fn tasks_past_deadline(&self, batch: u32) -> Result<Vec<Uuid>> {
        sweep_candidates::deadline_tasks(self, batch).await
    }

    async fn tasks_maybe_stuck(&self, batch: u32) -> Result<Vec<Uuid>> {
        sweep_candidates::stuck_tasks(self, batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{created_task, test_store};

    /// A store with one task of a two-step chain whose first step has a
    /// result; returns the task id.
    async fn store_with_task() -> (SqliteStore, Uuid) {
        let store = test_store().await;
        let chain = serde_json::json!({
            "namespace": "default", "name": "chain", "version": "1",
            "steps": [
                {"name": "a", "handler": "h.a"},
                {"name": "b", "handler": "h.b", "depends_on": ["a"]},
            ],
        });
        let (_, task_id) =
            created_task(&store, chain, serde_json::json!({"customer": 7}), None).await;
        sqlx::query("UPDATE steps SET result = '\"done\"' WHERE position = 0")
            .execute(&store.writer)
            .await
            .unwrap();
        (store, task_id)
    }

    #[tokio::test]
    async fn locking_loads_every_task_named_and_skips_none() {
        let (store, task_id) = store_with_task().await;
        let gone = Uuid::now_v7();
        let mut tx = store.begin(Durability::Flushed).await.unwrap();
        let (loaded, now) = tx
            .tasks_lock(Lock::FreeTasks(&[task_id, gone]), Load::Rows)
            .await
            .unwrap();
        assert_eq!(loaded.len(), 1);
        let task = &loaded[&task_id];
        assert_eq!(task.queue, "default");
        assert_eq!(task.steps.len(), 2);
        assert_eq!(task.max_fan_out, store.max_fan_out());
        assert!(now <= crate::clock::now());
        let step_id = task.steps[1].id;
        let (by_step, _) = tx
            .tasks_lock(Lock::TasksOfSteps(&[step_id]), Load::Rows)
            .await
            .unwrap();
        assert!(by_step.contains_key(&task_id));
        assert_eq!(
            tx.tasks_existing(&[task_id, gone]).await.unwrap(),
            [task_id]
        );
    }

    #[tokio::test]
    async fn a_task_with_missing_step_rows_is_a_database_error() {
        let (store, task_id) = store_with_task().await;
        sqlx::query("DELETE FROM steps WHERE position = 1")
            .execute(&store.writer)
            .await
            .unwrap();
        let mut tx = store.begin(Durability::Flushed).await.unwrap();
        let error = tx
            .tasks_lock(Lock::Tasks(&[task_id]), Load::Rows)
            .await
            .unwrap_err();
        assert!(
            matches!(error, tasker_store::Error::Database(_)),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn payloads_hold_contexts_parent_results_and_items() {
        let (store, task_id) = store_with_task().await;
        let mut tx = store.begin(Durability::Flushed).await.unwrap();
        let payloads = tx
            .payloads_load(&PayloadRequest {
                contexts: vec![task_id, task_id],
                results: vec![(task_id, 0), (task_id, 1)],
                items: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!(
            payloads.contexts[&task_id],
            serde_json::json!({"customer": 7})
        );
        assert_eq!(payloads.results[&(task_id, 0)], serde_json::json!("done"));
        assert_eq!(payloads.results[&(task_id, 1)], serde_json::Value::Null);
        assert!(payloads.items.is_empty());
    }
}
