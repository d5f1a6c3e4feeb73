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
use tasker_store::orchestration::{claims, reports, sweeps, task_creation, task_operations};
use tasker_store::{
    ClaimBatch, ClaimedBatch, DeadLetterFilter, DeadLetterPage, FireRequest, FireResult,
    LeaderElect, Leadership, NextClaim, Node, NodeRegistration, QueueDepth, Readiness,
    ReportOutcome, Result, RetentionDeleted, RetentionTasksDelete, ScheduleWrite, StepClaim,
    StepCompletion, StepFailure, StepReport, Store, StuckKind, SweepCounts, SweepRecord,
    TaskActivity, TaskCreate, TaskFilter, TaskPage, Worker, WorkerRegistration,
};
use uuid::Uuid;

use crate::{
    SqliteStore, catalog, dead_letters, leadership, maintenance, nodes, queue_depths, retention,
    schedule_fire, schedules, task_activity, task_explain, tasks_read, workers,
};

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
        tasker_store::catalog::template_register(self, template).await
    }

    async fn template_get(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<TemplateRecord> {
        tasker_store::catalog::template_get(self, namespace, name, version).await
    }

    async fn template_list(&self, namespace: Option<&str>) -> Result<Vec<TemplateRecord>> {
        catalog::template_list(self, namespace).await
    }

    async fn task_create(&self, params: TaskCreate) -> Result<(Task, bool)> {
        task_creation::create(self, &params).await
    }

    async fn task_create_many(&self, items: Vec<TaskCreate>) -> Result<Vec<Result<(Task, bool)>>> {
        task_creation::create_many(self, &items).await
    }

    async fn task_get(&self, id: Uuid) -> Result<Task> {
        tasks_read::task_get(self, id).await
    }

    async fn task_list(&self, filter: &TaskFilter) -> Result<TaskPage> {
        tasks_read::task_list(self, filter).await
    }

    async fn task_steps(&self, id: Uuid) -> Result<Vec<Step>> {
        tasks_read::task_steps(self, id).await
    }

    async fn task_history(&self, id: Uuid, after: i64, limit: u32) -> Result<Vec<Transition>> {
        tasks_read::task_history(self, id, after, limit).await
    }

    async fn task_cancel(&self, id: Uuid, reason: &str) -> Result<Task> {
        task_operations::cancel(self, id, reason).await?;
        self.task_get(id).await
    }

    async fn task_explain_facts(&self, id: Uuid, worker_within: Duration) -> Result<ExplainFacts> {
        task_explain::task_explain_facts(self, id, worker_within).await
    }

    async fn step_get(&self, id: Uuid) -> Result<Step> {
        tasks_read::step_get(self, id).await
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

    async fn worker_register(&self, registration: &WorkerRegistration) -> Result<Worker> {
        workers::worker_register(self, registration).await
    }

    async fn workers_seen(&self, worker_ids: &[String]) -> Result<()> {
        workers::workers_seen(self, worker_ids).await
    }

    async fn worker_get(&self, worker_id: &str, within: Duration) -> Result<Option<Worker>> {
        workers::worker_get(self, worker_id, within).await
    }

    async fn worker_list(&self, within: Duration) -> Result<Vec<Worker>> {
        workers::worker_list(self, within).await
    }

    async fn worker_in_flight(&self) -> Result<HashMap<String, u64>> {
        workers::worker_in_flight(self).await
    }

    async fn node_heartbeat(&self, node: &NodeRegistration) -> Result<Node> {
        nodes::node_heartbeat(self, node).await
    }

    async fn node_list(&self, within: Duration) -> Result<Vec<Node>> {
        nodes::node_list(self, within).await
    }

    async fn node_delete(&self, node_id: &str) -> Result<()> {
        nodes::node_delete(self, node_id).await
    }

    async fn node_delete_stale(&self, older_than: Duration) -> Result<u64> {
        nodes::node_delete_stale(self, older_than).await
    }

    async fn leader_attempt_elect(&self, elect: &LeaderElect) -> Result<Option<Leadership>> {
        leadership::leader_attempt_elect(self, elect).await
    }

    async fn leader_resign(&self, name: &str, node_id: &str) -> Result<bool> {
        leadership::leader_resign(self, name, node_id).await
    }

    async fn leader_get(&self, name: &str) -> Result<Option<Leadership>> {
        leadership::leader_get(self, name).await
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        queue_depths::queue_depths(self).await
    }

    async fn task_activity(&self, since: Timestamp) -> Result<Vec<TaskActivity>> {
        task_activity::task_activity(self, since).await
    }

    async fn schedule_create(&self, id: Uuid, write: &ScheduleWrite) -> Result<Schedule> {
        schedules::schedule_create(self, id, write).await
    }

    async fn schedule_get(&self, id: Uuid) -> Result<Schedule> {
        schedules::schedule_get(self, id).await
    }

    async fn schedule_list(&self) -> Result<Vec<Schedule>> {
        schedules::schedule_list(self).await
    }

    async fn schedule_update(&self, id: Uuid, write: &ScheduleWrite) -> Result<Schedule> {
        schedules::schedule_update(self, id, write).await
    }

    async fn schedule_delete(&self, id: Uuid) -> Result<()> {
        schedules::schedule_delete(self, id).await
    }

    async fn schedule_due(&self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>> {
        schedules::schedule_due(self, now, limit).await
    }

    async fn schedule_next_run(&self) -> Result<Option<Timestamp>> {
        schedules::schedule_next_run(self).await
    }

    async fn schedule_fire(&self, request: &FireRequest) -> Result<FireResult> {
        schedule_fire::fire_once(self, request).await
    }

    async fn schedule_fires(&self, id: Uuid, limit: u32) -> Result<Vec<ScheduleFire>> {
        schedules::schedule_fires(self, id, limit).await
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
        name: &str,
        node_id: &str,
        counts: &SweepCounts,
    ) -> Result<()> {
        maintenance::maintenance_sweep_record(self, name, node_id, counts).await
    }

    async fn maintenance_sweep_list(&self) -> Result<Vec<SweepRecord>> {
        maintenance::maintenance_sweep_list(self).await
    }

    async fn maintenance_queues_vacuum(&self, min_dead: u64) -> Result<Vec<(String, u64)>> {
        maintenance::maintenance_queues_vacuum(self, min_dead).await
    }

    async fn dead_letter_list(
        &self,
        filter: &DeadLetterFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<DeadLetterPage> {
        dead_letters::dead_letter_list(self, filter, cursor, limit).await
    }

    async fn retention_tasks_delete(
        &self,
        batch: &RetentionTasksDelete,
    ) -> Result<RetentionDeleted> {
        retention::retention_tasks_delete(self, batch).await
    }

    async fn retention_idempotency_keys_release(
        &self,
        older_than: Duration,
        limit: u32,
    ) -> Result<u64> {
        retention::retention_idempotency_keys_release(self, older_than, limit).await
    }

    async fn retention_workers_delete(&self, older_than: Duration, limit: u32) -> Result<u64> {
        retention::retention_workers_delete(self, older_than, limit).await
    }
}
