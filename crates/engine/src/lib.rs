//! The engine: everything a server node does with tasks and steps, over any
//! [`Store`]. It checks input (template validity, context against the
//! template's JSON Schema, payload sizes, text the database cannot store)
//! before anything is written, so bad input never leaves partial state
//! behind and never fails in the database; the store then performs each
//! operation in one transaction.
//!
//! The engine holds no state needed for correctness: two engines on two
//! nodes over one database are interchangeable.

mod activity;
mod clock;
mod cluster;
mod config;
mod dispatcher;
mod error;
pub mod maintenance;
mod near_names;
pub mod nul_check;
mod parent_results;
mod ready_waiters;
mod report_batcher;
pub mod retention;
mod schedules;
mod schema_cache;
mod seen_workers;
mod step_reports;
mod task_create;
mod task_explain;
mod task_history;
mod worker_directory;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tasker_model::{
    ClaimedStep, HeartbeatOutcome, Lease, Namespace, Recorded, Step, StepError, Task, Template,
    TemplateRecord,
};
use tasker_store::{
    Readiness, ReportOutcome, StepClaim, StepCompletion, StepReport, Store, TaskFilter, TaskPage,
    Worker, WorkerRegistration,
};
use uuid::Uuid;

pub use clock::{Clock, ManualClock, SystemClock};
pub use cluster::{
    ClusterConfig, ClusterView, DutyContext, LeaderDuty, LeaderStatus, MAINTENANCE, NodeReaper,
    STALE_AFTER_TIMEOUTS, version_skew,
};
pub use config::EngineConfig;
pub use error::Error;
pub use ready_waiters::ReadyWaiters;
pub use schedules::{Backfill, RECHECK as SCHEDULE_RECHECK, Scheduler, UPCOMING};
use schema_cache::SchemaCache;
use seen_workers::SeenWorkers;
pub use step_reports::{NextScope, Report};
pub use task_create::MAX_BATCH_TASKS;
/// Re-exported: the input of [`Engine::task_create`] and
/// [`Engine::task_create_many`].
pub use tasker_store::NewTask;
use worker_directory::WorkerDirectory;
pub use worker_directory::WorkerScope;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How often polls' and reports' "seen" marks reach the database: a sixth
/// of the liveness window (at least a second), so that a worker that keeps
/// polling never looks gone.
fn seen_interval(liveness: Duration) -> Duration {
    (liveness / 6).max(Duration::from_secs(1))
}

/// Parses a YAML template and runs every check registration runs (its
/// context schema must compile too), without a server or a database.
pub fn template_from_yaml(yaml: &str) -> Result<Template, tasker_model::template::Error> {
    check_template(Template::from_yaml(yaml)?)
}

/// Every issue with a template, its context schema included.
pub fn check_template(template: Template) -> Result<Template, tasker_model::template::Error> {
    let mut issues = template.validate();
    // A schema of the wrong shape already has its issue from `validate`.
    if let Some(schema) = &template.context_schema
        && (schema.is_object() || schema.is_boolean())
    {
        issues.extend(schema_cache::schema_issues("context_schema", schema));
    }
    if issues.is_empty() {
        Ok(template)
    } else {
        Err(tasker_model::template::Error::Invalid {
            reference: template.reference(),
            issues,
        })
    }
}

#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    config: Arc<EngineConfig>,
    schemas: Arc<SchemaCache>,
    dispatchers: Arc<dispatcher::Dispatchers>,
    reports: Arc<report_batcher::ReportBatcher>,
    waiters: Arc<ReadyWaiters>,
    seen: Arc<SeenWorkers>,
    directory: Arc<WorkerDirectory>,
    /// Namespaces known to exist (they are never deleted).
    namespaces: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    shutting_down: Arc<AtomicBool>,
    cluster: Arc<cluster::ClusterState>,
    clock: Arc<dyn Clock>,
    schedules: Arc<schedules::ScheduleState>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish()
    }
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, config: EngineConfig) -> Self {
        store.fan_out_cap_set(config.max_fan_out_instances);
        let config = Arc::new(config);
        let dispatchers = Arc::new(dispatcher::Dispatchers::new(store.clone(), config.clone()));
        Self {
            waiters: Arc::new(ReadyWaiters::new(dispatchers.clone())),
            reports: Arc::new(report_batcher::ReportBatcher::new(
                store.clone(),
                config.report_writers,
            )),
            dispatchers,
            seen: Arc::new(SeenWorkers::new(seen_interval(config.worker_liveness))),
            directory: Arc::new(WorkerDirectory::new(config.worker_liveness)),
            namespaces: Arc::default(),
            schemas: Arc::default(),
            shutting_down: Arc::default(),
            cluster: Arc::default(),
            clock: Arc::new(SystemClock),
            schedules: Arc::default(),
            config,
            store,
        }
    }

    /// The engine reading the time from `clock` (a test's
    /// [`ManualClock`]); set it before cloning the engine.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Transactions this node has written for worker reports so far; each
    /// holds every report that was waiting (see [`report_batcher`]).
    pub fn report_batches(&self) -> u64 {
        self.reports.batches()
    }

    /// Worker reports this node has written so far (in
    /// [`Engine::report_batches`] transactions).
    pub fn reports_written(&self) -> u64 {
        self.reports.reports()
    }

    /// Where ready-step notifications are delivered (see `tasker_postgres::Notifier`).
    pub fn waiters(&self) -> &Arc<ReadyWaiters> {
        &self.waiters
    }

    /// Stops long-polls: waiting polls return empty at once, new ones too.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.dispatchers.end_all();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub async fn migrate(&self) -> Result<()> {
        Ok(self.store.migrate().await?)
    }

    pub async fn readiness(&self) -> Result<Readiness> {
        Ok(self.store.readiness().await?)
    }

    pub async fn namespace_create(&self, name: &str) -> Result<(Namespace, bool)> {
        nul_check::check_text("name", name)?;
        Ok(self.store.namespace_create(name).await?)
    }

    pub async fn namespace_list(&self) -> Result<Vec<Namespace>> {
        Ok(self.store.namespace_list().await?)
    }

    /// Registers a template from YAML text.
    pub async fn template_register_yaml(&self, yaml: &str) -> Result<(TemplateRecord, bool)> {
        self.template_register(Template::from_yaml(yaml)?).await
    }

    /// Registers a template from its JSON form.
    pub async fn template_register_json(
        &self,
        json: serde_json::Value,
    ) -> Result<(TemplateRecord, bool)> {
        self.template_register(Template::from_json(json)?).await
    }

    /// Registers a parsed template after checking it, its context schema
    /// included.
    pub async fn template_register(&self, template: Template) -> Result<(TemplateRecord, bool)> {
        let template = check_template(template)?;
        // Every string of a template is stored; the JSON form names where a
        // NUL is with the paths the template format uses.
        if let Ok(form) = serde_json::to_value(&template) {
            nul_check::check_json(&form, "")?;
        }
        Ok(self.store.template_register(&template).await?)
    }

    /// Parses and checks a template without registering it.
    pub fn template_validate_yaml(&self, yaml: &str) -> Result<Template> {
        Ok(template_from_yaml(yaml)?)
    }

    /// One version of a template, or without `version` the newest (see
    /// [`tasker_model::template::VersionRank`]). Not found says what does
    /// exist: near names, or the registered versions.
    pub async fn template_get(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<TemplateRecord> {
        match self.store.template_get(namespace, name, version).await {
            Err(tasker_store::Error::NotFound { what, .. }) => {
                Err(self.template_not_found(what, namespace, name).await?.into())
            }
            other => Ok(other?),
        }
    }

    /// The not-found error for `namespace/name`, with what the catalog has
    /// near it. Only on the error path: it reads every template.
    async fn template_not_found(
        &self,
        what: String,
        namespace: &str,
        name: &str,
    ) -> Result<tasker_store::Error> {
        let templates = self.store.template_list(None).await?;
        let versions: Vec<&str> = templates
            .iter()
            .filter(|t| t.namespace == namespace && t.name == name)
            .map(|t| t.version.as_str())
            .collect();
        let hint = (!versions.is_empty()).then(|| {
            format!(
                "registered versions: {} (leave the version out for the newest)",
                versions.join(", ")
            )
        });
        Ok(tasker_store::Error::NotFound {
            what,
            hint,
            did_you_mean: near_names::near_templates(&templates, namespace, name),
        })
    }

    pub async fn template_list(&self, namespace: Option<&str>) -> Result<Vec<TemplateRecord>> {
        Ok(self.store.template_list(namespace).await?)
    }

    pub async fn task_get(&self, id: Uuid) -> Result<Task> {
        Ok(self.store.task_get(id).await?)
    }

    pub async fn task_list(&self, filter: &TaskFilter) -> Result<TaskPage> {
        Ok(self.store.task_list(filter).await?)
    }

    pub async fn task_steps(&self, id: Uuid) -> Result<Vec<Step>> {
        Ok(self.store.task_steps(id).await?)
    }

    pub async fn task_cancel(&self, id: Uuid, reason: Option<&str>) -> Result<Task> {
        if let Some(reason) = reason {
            use tasker_model::limits::MAX_CANCEL_REASON_LEN;
            if reason.len() > MAX_CANCEL_REASON_LEN {
                // It is copied into the transition of every step cancelled.
                return Err(Error::Invalid {
                    field: "reason".into(),
                    message: format!(
                        "is {} bytes, longer than the limit of {MAX_CANCEL_REASON_LEN}",
                        reason.len()
                    ),
                });
            }
            nul_check::check_text("reason", reason)?;
        }
        Ok(self
            .store
            .task_cancel(id, reason.unwrap_or("cancelled by request"))
            .await?)
    }

    /// Leases up to `max` ready steps of `namespace` for the configured
    /// lease, whatever their handler.
    pub async fn step_claim(
        &self,
        namespace: &str,
        worker_id: &str,
        max: u32,
    ) -> Result<Vec<ClaimedStep>> {
        check_worker_id(worker_id)?;
        let claimed = self
            .store
            .step_claim(StepClaim {
                namespace: namespace.to_owned(),
                worker_id: worker_id.to_owned(),
                max: max.clamp(1, self.config.max_claim_batch),
                lease_for: self.config.lease_duration,
                handlers: Vec::new(),
            })
            .await?;
        Ok(self.cap_parent_results(claimed).await)
    }

    /// Long-poll: claims up to `max` steps from `namespaces` whose handler is
    /// one of `handlers` (any when empty), waiting up to `wait` (capped by the
    /// configuration) for work to arrive. Returns as soon as something is
    /// claimed; returns empty at the deadline. The poll waits with the
    /// node's claim loop of each namespace, which claims for every waiting
    /// poll at once (see the `dispatcher` module); a poll of several
    /// namespaces takes its steps from whichever has work first.
    pub async fn step_poll(
        &self,
        worker_id: &str,
        namespaces: &[String],
        handlers: &[String],
        max: u32,
        wait: Duration,
    ) -> Result<Vec<ClaimedStep>> {
        if namespaces.is_empty() {
            return Err(Error::Invalid {
                field: "namespaces".into(),
                message: "name at least one namespace to poll".into(),
            });
        }
        check_worker_id(worker_id)?;
        for (i, namespace) in namespaces.iter().enumerate() {
            nul_check::check_text(&format!("namespaces[{i}]"), namespace)?;
        }
        if self.is_shutting_down() {
            return Ok(Vec::new());
        }
        let mut namespaces = namespaces.to_vec();
        namespaces.dedup();
        for namespace in &namespaces {
            self.check_namespace_exists(namespace).await?;
        }
        let deadline = tokio::time::Instant::now() + wait.min(self.config.max_poll_wait);
        let max = max.clamp(1, self.config.max_claim_batch);
        self.worker_seen(worker_id);
        let claimed = self
            .dispatchers
            .poll(worker_id, &namespaces, handlers, max, deadline)
            .await?;
        Ok(self.cap_parent_results(claimed).await)
    }

    /// 404 `namespace_not_found` for a namespace that does not exist, before
    /// a poll waits on it. Namespaces are never deleted, so one that was
    /// found is remembered and never asked for again.
    async fn check_namespace_exists(&self, namespace: &str) -> Result<()> {
        if self
            .namespaces
            .lock()
            .expect("namespaces lock")
            .contains(namespace)
        {
            return Ok(());
        }
        let all = self.store.namespace_list().await?;
        let mut known = self.namespaces.lock().expect("namespaces lock");
        known.extend(all.into_iter().map(|n| n.name));
        if known.contains(namespace) {
            Ok(())
        } else {
            Err(Error::NamespaceNotFound {
                namespace: namespace.to_owned(),
            })
        }
    }

    /// Notes that a worker was heard from; written to the database in one
    /// statement per interval for all workers, never per request.
    pub fn worker_seen(&self, worker_id: &str) {
        self.seen.note(&self.store, worker_id);
    }

    /// The namespaces and handlers `worker_id` registered with, or `None`
    /// when it is not (or no longer) registered. Served from this node's
    /// memory; read from the database only when the worker is unknown here.
    pub async fn worker_scope(&self, worker_id: &str) -> Result<Option<WorkerScope>> {
        if let Some(scope) = self.directory.get(worker_id) {
            return Ok(Some(scope));
        }
        let Some(worker) = self.worker_get(worker_id).await? else {
            return Ok(None);
        };
        self.directory.remember(&worker);
        Ok(self.directory.get(worker_id))
    }

    pub async fn worker_register(&self, registration: WorkerRegistration) -> Result<Worker> {
        check_worker_id(&registration.worker_id)?;
        for (i, handler) in registration.handlers.iter().enumerate() {
            nul_check::check_text(&format!("handlers[{i}]"), handler)?;
        }
        if let Some(version) = &registration.version {
            nul_check::check_text("version", version)?;
        }
        if registration.concurrency == 0 {
            return Err(Error::Invalid {
                field: "concurrency".into(),
                message: "must be at least 1".into(),
            });
        }
        if registration.namespaces.is_empty() {
            return Err(Error::Invalid {
                field: "namespaces".into(),
                message: "name at least one namespace".into(),
            });
        }
        for namespace in &registration.namespaces {
            tasker_model::template::validate_namespace(namespace).map_err(|message| {
                Error::Invalid {
                    field: "namespaces".into(),
                    message,
                }
            })?;
        }
        let worker = self.store.worker_register(&registration).await?;
        self.directory.remember(&worker);
        Ok(worker)
    }

    /// A worker heard from within the configured liveness window.
    pub async fn worker_get(&self, worker_id: &str) -> Result<Option<Worker>> {
        Ok(self
            .store
            .worker_get(worker_id, self.config.worker_liveness)
            .await?)
    }

    /// Workers heard from within the configured liveness window.
    pub async fn worker_list(&self) -> Result<Vec<Worker>> {
        Ok(self.store.worker_list(self.config.worker_liveness).await?)
    }

    /// Extends a lease. Written with the other reports waiting at this node
    /// (see [`report_batcher`]).
    pub async fn step_heartbeat(&self, lease: &Lease) -> Result<HeartbeatOutcome> {
        let report = StepReport::Heartbeat {
            lease: *lease,
            lease_for: self.config.lease_duration,
        };
        match self.reports.write_one(report).await? {
            ReportOutcome::Heartbeat(outcome) => Ok(outcome),
            other => unreachable!("a heartbeat answered {other:?}"),
        }
    }

    pub async fn step_complete(&self, lease: Lease, result: serde_json::Value) -> Result<Recorded> {
        let mut outcomes = self
            .step_complete_many(vec![StepCompletion { lease, result }])
            .await?;
        Ok(outcomes.pop().expect("one outcome per item")?)
    }

    /// Records several results, with the other reports waiting at this node,
    /// in one transaction; each is accepted or refused on its own.
    pub async fn step_complete_many(
        &self,
        items: Vec<StepCompletion>,
    ) -> Result<Vec<Result<Recorded, tasker_store::Error>>> {
        for item in &items {
            self.check_result(&item.result)?;
        }
        let reports = items
            .into_iter()
            .map(|item| StepReport::Complete {
                lease: item.lease,
                result: item.result,
                next: None,
            })
            .collect();
        Ok(self
            .reports
            .write(reports)
            .await
            .into_iter()
            .map(|outcome| match outcome? {
                ReportOutcome::Completed { recorded, .. } => Ok(recorded),
                other => unreachable!("a completion answered {other:?}"),
            })
            .collect())
    }

    /// Records a result and leases up to `max` more steps from `namespaces`
    /// whose handler is one of `handlers` (any when empty) for the same
    /// worker in the same transaction (none when `max` is 0).
    pub async fn step_complete_and_claim(
        &self,
        lease: Lease,
        result: serde_json::Value,
        worker_id: &str,
        namespaces: &[String],
        handlers: &[String],
        max: u32,
    ) -> Result<(Recorded, Vec<ClaimedStep>)> {
        self.check_result(&result)?;
        let next = NextScope {
            worker_id: worker_id.to_owned(),
            namespaces: namespaces.to_vec(),
            handlers: handlers.to_vec(),
            max,
        };
        let Some(next) = self.next_claim(next)? else {
            return Ok((self.step_complete(lease, result).await?, Vec::new()));
        };
        let report = StepReport::Complete {
            lease,
            result,
            next: Some(next),
        };
        match self.reports.write_one(report).await {
            Ok(ReportOutcome::Completed { recorded, next }) => {
                Ok((recorded, self.cap_parent_results(next).await))
            }
            Ok(other) => unreachable!("a completion answered {other:?}"),
            Err(error) => Err(step_reports::next_refusal(error, namespaces)),
        }
    }

    pub async fn step_fail(&self, lease: Lease, error: StepError) -> Result<Recorded> {
        self.check_failure(&error)?;
        match self
            .reports
            .write_one(StepReport::Fail { lease, error })
            .await?
        {
            ReportOutcome::Failed(recorded) => Ok(recorded),
            other => unreachable!("a failure answered {other:?}"),
        }
    }

    /// Gives a leased step back unfinished (a worker shutting down): it is
    /// delivered again at once without counting the attempt.
    pub async fn step_release(&self, lease: &Lease) -> Result<()> {
        match self
            .reports
            .write_one(StepReport::Release { lease: *lease })
            .await?
        {
            ReportOutcome::Released => Ok(()),
            other => unreachable!("a release answered {other:?}"),
        }
    }

    pub async fn step_retry(&self, step_id: Uuid) -> Result<Step> {
        Ok(self.store.step_retry(step_id).await?)
    }

    pub async fn step_resolve(
        &self,
        step_id: Uuid,
        result: Option<serde_json::Value>,
    ) -> Result<Step> {
        if let Some(result) = &result {
            nul_check::check_json(result, "result")?;
            self.check_size("result", result)?;
        }
        Ok(self.store.step_resolve(step_id, result).await?)
    }

    pub async fn step_get(&self, step_id: Uuid) -> Result<Step> {
        Ok(self.store.step_get(step_id).await?)
    }

    fn check_size(&self, what: &'static str, value: &serde_json::Value) -> Result<()> {
        let limit = self.config.max_payload_bytes;
        let size = serde_json::to_vec(value)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > limit {
            return Err(Error::PayloadTooLarge { what, size, limit });
        }
        Ok(())
    }
}

/// A worker id: 1 to [`MAX_WORKER_ID_LEN`] bytes, no NUL.
fn check_worker_id(worker_id: &str) -> Result<()> {
    use tasker_model::limits::MAX_WORKER_ID_LEN;
    if worker_id.is_empty() || worker_id.len() > MAX_WORKER_ID_LEN {
        return Err(Error::Invalid {
            field: "worker_id".into(),
            message: format!("must be 1-{MAX_WORKER_ID_LEN} characters"),
        });
    }
    nul_check::check_text("worker_id", worker_id)
}
