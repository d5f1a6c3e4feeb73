//! [`Store`] for [`SqliteStore`]: each method calls the module that holds
//! it. The operations that load tasks, run them and write plans are the
//! store crate's one orchestration, run on this crate's primitives.
//!
//! Must never: hold logic of its own (this file only dispatches).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use tasker_model::explanation::ExplainFacts;
use tasker_model::{
    ClaimedStep, HeartbeatOutcome, Lease, Namespace, Recorded, Schedule, ScheduleFire, Step, Task,
    Template, TemplateRecord, Timestamp, Transition,
};
use tasker_store::{
    ClaimBatch, ClaimedBatch, DeadLetterFilter, DeadLetterPage, FireRequest, FireResult,
    LeaderElect, Leadership, NextClaim, Node, NodeRegistration, QueueDepth, Readiness,
    ReportOutcome, Result, RetentionDeleted, RetentionTasksDelete, ScheduleWrite, StepClaim,
    StepCompletion, StepFailure, StepReport, Store, StuckKind, SweepCounts, SweepRecord,
    TaskActivity, TaskCreate, TaskFilter, TaskPage, Worker, WorkerRegistration,
};
use tasker_store::orchestration::{claims, reports, sweeps, task_operations};
use uuid::Uuid;

use crate::{SqliteStore, catalog, schedule_fire, task_create};

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        catalog::migrate(self).await
    }

    async fn readiness(&self) -> Result<Readiness> {
        catalog::readiness(self).await
    }

    fn fan_out_cap_set(&self, cap: u32) {
        self.fan_out_cap_store(cap);
    }

    async fn namespace_create(&self, name: &str) -> Result<(Namespace, bool)> {
        catalog::namespace_create(self, name).await
    }

    async fn namespace_list(&self) -> Result<Vec<Namespace>> {
        catalog::namespace_list(self).await
    }

    async fn template_register(&self, template: &Template) -> Result<(TemplateRecord, bool)> {
        catalog::template_register(self, template).await
    }

    async fn template_get(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<TemplateRecord> {
        catalog::template_get(self, namespace, name, version).await
    }

    async fn template_list(&self, namespace: Option<&str>) -> Result<Vec<TemplateRecord>> {
        catalog::template_list(self, namespace).await
    }

    async fn task_create(&self, params: TaskCreate) -> Result<(Task, bool)> {
        task_create::create(self, &params).await
    }

    async fn task_create_many(&self, items: Vec<TaskCreate>) -> Result<Vec<Result<(Task, bool)>>> {
        task_create::create_many(self, &items).await
    }

    async fn task_get(&self, _id: Uuid) -> Result<Task> {
        todo!("sqlite-ops: task_get")
    }

    async fn task_list(&self, _filter: &TaskFilter) -> Result<TaskPage> {
        todo!("sqlite-ops: task_list")
    }

    async fn task_steps(&self, _id: Uuid) -> Result<Vec<Step>> {
        todo!("sqlite-ops: task_steps")
    }

    async fn task_history(&self, _id: Uuid, _after: i64, _limit: u32) -> Result<Vec<Transition>> {
        todo!("sqlite-ops: task_history")
    }

    async fn task_cancel(&self, id: Uuid, reason: &str) -> Result<Task> {
        task_operations::cancel(self, id, reason).await?;
        self.task_get(id).await
    }

    async fn task_explain_facts(
        &self,
        _id: Uuid,
        _worker_within: Duration,
    ) -> Result<ExplainFacts> {
        todo!("sqlite-ops: task_explain_facts")
    }

    async fn step_get(&self, _id: Uuid) -> Result<Step> {
        todo!("sqlite-ops: step_get")
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
        task_operations::retry(self, step_id).await?;
        self.step_get(step_id).await
    }

    async fn step_resolve(&self, step_id: Uuid, result: Option<serde_json::Value>) -> Result<Step> {
        task_operations::resolve(self, step_id, result).await?;
        self.step_get(step_id).await
    }

    async fn worker_register(&self, _registration: &WorkerRegistration) -> Result<Worker> {
        todo!("sqlite-ops: worker_register")
    }

    async fn workers_seen(&self, _worker_ids: &[String]) -> Result<()> {
        todo!("sqlite-ops: workers_seen")
    }

    async fn worker_get(&self, _worker_id: &str, _within: Duration) -> Result<Option<Worker>> {
        todo!("sqlite-ops: worker_get")
    }

    async fn worker_list(&self, _within: Duration) -> Result<Vec<Worker>> {
        todo!("sqlite-ops: worker_list")
    }

    async fn worker_in_flight(&self) -> Result<HashMap<String, u64>> {
        todo!("sqlite-ops: worker_in_flight")
    }

    async fn node_heartbeat(&self, _node: &NodeRegistration) -> Result<Node> {
        todo!("sqlite-ops: node_heartbeat")
    }

    async fn node_list(&self, _within: Duration) -> Result<Vec<Node>> {
        todo!("sqlite-ops: node_list")
    }

    async fn node_delete(&self, _node_id: &str) -> Result<()> {
        todo!("sqlite-ops: node_delete")
    }

    async fn node_delete_stale(&self, _older_than: Duration) -> Result<u64> {
        todo!("sqlite-ops: node_delete_stale")
    }

    async fn leader_attempt_elect(&self, _elect: &LeaderElect) -> Result<Option<Leadership>> {
        todo!("sqlite-ops: leader_attempt_elect")
    }

    async fn leader_resign(&self, _name: &str, _node_id: &str) -> Result<bool> {
        todo!("sqlite-ops: leader_resign")
    }

    async fn leader_get(&self, _name: &str) -> Result<Option<Leadership>> {
        todo!("sqlite-ops: leader_get")
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        todo!("sqlite-ops: queue_depths")
    }

    async fn task_activity(&self, _since: Timestamp) -> Result<Vec<TaskActivity>> {
        todo!("sqlite-ops: task_activity")
    }

    async fn schedule_create(&self, _id: Uuid, _write: &ScheduleWrite) -> Result<Schedule> {
        todo!("sqlite-ops: schedule_create")
    }

    async fn schedule_get(&self, _id: Uuid) -> Result<Schedule> {
        todo!("sqlite-ops: schedule_get")
    }

    async fn schedule_list(&self) -> Result<Vec<Schedule>> {
        todo!("sqlite-ops: schedule_list")
    }

    async fn schedule_update(&self, _id: Uuid, _write: &ScheduleWrite) -> Result<Schedule> {
        todo!("sqlite-ops: schedule_update")
    }

    async fn schedule_delete(&self, _id: Uuid) -> Result<()> {
        todo!("sqlite-ops: schedule_delete")
    }

    async fn schedule_due(&self, _now: Timestamp, _limit: u32) -> Result<Vec<Schedule>> {
        todo!("sqlite-ops: schedule_due")
    }

    async fn schedule_next_run(&self) -> Result<Option<Timestamp>> {
        todo!("sqlite-ops: schedule_next_run")
    }

    async fn schedule_fire(&self, request: &FireRequest) -> Result<FireResult> {
        schedule_fire::fire_once(self, request).await
    }

    async fn schedule_fires(&self, _id: Uuid, _limit: u32) -> Result<Vec<ScheduleFire>> {
        todo!("sqlite-ops: schedule_fires")
    }

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
        _name: &str,
        _node_id: &str,
        _counts: &SweepCounts,
    ) -> Result<()> {
        todo!("sqlite-ops: maintenance_sweep_record")
    }

    async fn maintenance_sweep_list(&self) -> Result<Vec<SweepRecord>> {
        todo!("sqlite-ops: maintenance_sweep_list")
    }

    async fn maintenance_queues_vacuum(&self, _min_dead: u64) -> Result<Vec<(String, u64)>> {
        todo!("sqlite-ops: maintenance_queues_vacuum")
    }

    async fn dead_letter_list(
        &self,
        _filter: &DeadLetterFilter,
        _cursor: Option<&str>,
        _limit: u32,
    ) -> Result<DeadLetterPage> {
        todo!("sqlite-ops: dead_letter_list")
    }

    async fn retention_tasks_delete(
        &self,
        _batch: &RetentionTasksDelete,
    ) -> Result<RetentionDeleted> {
        todo!("sqlite-ops: retention_tasks_delete")
    }

    async fn retention_idempotency_keys_release(
        &self,
        _older_than: Duration,
        _limit: u32,
    ) -> Result<u64> {
        todo!("sqlite-ops: retention_idempotency_keys_release")
    }

    async fn retention_workers_delete(&self, _older_than: Duration, _limit: u32) -> Result<u64> {
        todo!("sqlite-ops: retention_workers_delete")
    }
}
