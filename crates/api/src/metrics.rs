//! Prometheus metrics of a node: `GET /metrics`.
//!
//! Each [`Metrics`] is its own registry (a `PrometheusRecorder` used
//! directly, not installed as the process-global recorder), so several apps
//! in one process keep separate counts and nothing has to be installed once.
//!
//! Request-level series (durations by route template, tasks created, steps
//! claimed, results, failures and releases reported, refused leases) are
//! counted by the handlers. What only the database transaction knows (which
//! completion finished its task, how long a step waited in its queue and ran,
//! retries, expired leases) arrives through the store's observer
//! ([`tasker_store::Observer`], implemented here) after each commit. Pool
//! usage is read at scrape time; queue depths and live leases come from
//! the last background reading of the database ([`DatabaseGauges`]), so a
//! scrape never queries the database.
//!
//! [`DatabaseGauges`]: crate::database_gauges::DatabaseGauges

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use ::metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tasker_model::{ClaimedStep, Recorded};

use crate::state::AppState;

const HTTP_DURATION: &str = "tasker_http_request_duration_seconds";
const TASKS_CREATED: &str = "tasker_tasks_created_total";
const STEPS_CLAIMED: &str = "tasker_steps_claimed_total";
const STEPS_COMPLETED: &str = "tasker_steps_completed_total";
const STEPS_FAILED: &str = "tasker_steps_failed_total";
const STEPS_RELEASED: &str = "tasker_steps_released_total";
const LEASE_REFUSALS: &str = "tasker_lease_refusals_total";
const QUEUE_DEPTH: &str = "tasker_queue_depth";
const LEASES_IN_FLIGHT: &str = "tasker_leases_in_flight";
const QUEUE_DELAYED: &str = "tasker_queue_delayed";
const POOL_CONNECTIONS: &str = "tasker_db_pool_connections";
const DATABASE_REACHABLE: &str = "tasker_database_reachable";
const TASKS_FINISHED: &str = "tasker_tasks_finished_total";
const QUEUE_WAIT: &str = "tasker_step_queue_wait_seconds";
const RUN_TIME: &str = "tasker_step_run_seconds";
const RETRIES: &str = "tasker_step_retries_total";
const LEASE_EXPIRIES: &str = "tasker_lease_expiries_total";
const STEP_TIMEOUTS: &str = "tasker_step_timeouts_total";
const DEADLINES_EXCEEDED: &str = "tasker_deadlines_exceeded_total";
const STUCK_REPAIRED: &str = "tasker_stuck_repaired_total";
const TRANSACTION_RETRIES: &str = "tasker_db_transaction_retries_total";
const REPORT_TRANSACTIONS: &str = "tasker_report_transactions_total";
const REPORTS_WRITTEN: &str = "tasker_reports_written_total";
const LOOP_CLAIMS: &str = "tasker_claim_loop_claims_total";
const POLLS_WAITING: &str = "tasker_polls_waiting";
const BUILD_INFO: &str = "tasker_build_info";
const LEADER: &str = "tasker_leader";
const LEADERSHIP_CHANGES: &str = "tasker_leadership_changes_total";
const CLUSTER_NODES: &str = "tasker_cluster_nodes";
const RETENTION_DELETED: &str = "tasker_retention_deleted_total";

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Queue waits and run times, from 1 ms to 1 h.
const STEP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Request durations from 1 ms to 30 s (long-polls land in the top buckets).
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn key(name: &'static str, labels: Vec<Label>) -> Key {
    Key::from_parts(name, labels)
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
            .expect("bucket list is not empty")
            .set_buckets_for_metric(Matcher::Full(QUEUE_WAIT.into()), STEP_BUCKETS)
            .expect("bucket list is not empty")
            .set_buckets_for_metric(Matcher::Full(RUN_TIME.into()), STEP_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Self {
            recorder: Arc::new(recorder),
            handle,
        };
        metrics.describe();
        metrics
    }

    fn describe(&self) {
        let r = &self.recorder;
        let text = |s: &'static str| SharedString::const_str(s);
        r.describe_histogram(
            KeyName::from_const_str(HTTP_DURATION),
            Some(Unit::Seconds),
            text("HTTP requests by method, route template and status."),
        );
        r.describe_histogram(
            KeyName::from_const_str(QUEUE_WAIT),
            Some(Unit::Seconds),
            text("How long a step was ready before this node leased it, per namespace."),
        );
        r.describe_histogram(
            KeyName::from_const_str(RUN_TIME),
            Some(Unit::Seconds),
            text("How long an attempt ran under its lease, per namespace and outcome."),
        );
        for (name, help) in [
            (
                TASKS_CREATED,
                "Tasks created through this node (idempotent repeats excluded).",
            ),
            (
                STEPS_CLAIMED,
                "Steps leased to workers through this node, by polls and completes with next.",
            ),
            (
                STEPS_COMPLETED,
                "Step results reported through this node, by outcome.",
            ),
            (
                STEPS_FAILED,
                "Step failures reported through this node, by retryable and outcome.",
            ),
            (
                STEPS_RELEASED,
                "Steps handed back unfinished by their workers through this node.",
            ),
            (
                LEASE_REFUSALS,
                "Heartbeats and results refused because the lease was stale.",
            ),
            (
                TASKS_FINISHED,
                "Tasks finalized through this node, by namespace, template and final state.",
            ),
            (
                RETRIES,
                "Attempts that failed and will be retried after their backoff, per namespace.",
            ),
            (
                LEASE_EXPIRIES,
                "Leases that ran out without a result or heartbeat, per namespace.",
            ),
            (
                STEP_TIMEOUTS,
                "Attempts failed as `timeout` by this node (heartbeat, claim or the leader's timeout sweep), per namespace.",
            ),
            (
                DEADLINES_EXCEEDED,
                "Tasks failed with `deadline_exceeded` by this node, per namespace.",
            ),
            (
                STUCK_REPAIRED,
                "Stuck work the leader's sweep found and repaired, by kind.",
            ),
            (
                REPORT_TRANSACTIONS,
                "Transactions this node wrote for worker reports (each holds every report that was waiting).",
            ),
            (
                REPORTS_WRITTEN,
                "Worker reports (results, failures, releases, heartbeats) this node wrote.",
            ),
            (
                LOOP_CLAIMS,
                "Claim transactions the namespace's claim loop made for waiting polls, per namespace.",
            ),
            (
                LEADERSHIP_CHANGES,
                "Changes of leader (new tenures of the leadership lease) this node has seen.",
            ),
            (
                RETENTION_DELETED,
                "Rows retention deleted on this node while it led, by table (idempotency_keys: keys released).",
            ),
            (
                TRANSACTION_RETRIES,
                "Transactions the database aborted (deadlock, serialization failure) and this node ran again.",
            ),
        ] {
            r.describe_counter(KeyName::from_const_str(name), None, text(help));
        }
        for (name, help) in [
            (
                QUEUE_DEPTH,
                "Ready steps waiting for a worker, per namespace.",
            ),
            (
                LEASES_IN_FLIGHT,
                "Steps running under a live lease, per namespace.",
            ),
            (
                QUEUE_DELAYED,
                "Retries waiting out their backoff, per namespace.",
            ),
            (
                POOL_CONNECTIONS,
                "Database pool connections of this node, by state.",
            ),
            (
                DATABASE_REACHABLE,
                "1 when this node's last database check reached the database, else 0.",
            ),
            (
                POLLS_WAITING,
                "Long-polls waiting at this node, per namespace.",
            ),
            (
                BUILD_INFO,
                "Always 1; labels carry the version and node id.",
            ),
            (
                LEADER,
                "1 while this node holds the leadership lease and runs the leader-only duties, else 0.",
            ),
            (
                CLUSTER_NODES,
                "Live nodes (heartbeat within cluster.node_timeout) as of this node's last heartbeat.",
            ),
        ] {
            r.describe_gauge(KeyName::from_const_str(name), None, text(help));
        }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> ::metrics::Counter {
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> ::metrics::Gauge {
        self.recorder.register_gauge(&key(name, labels), &METADATA)
    }

    /// The registry, for callers that record metrics of their own into it.
    pub fn recorder(&self) -> &PrometheusRecorder {
        &self.recorder
    }

    /// The Prometheus text of everything recorded so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    pub(crate) fn task_created(&self, namespace: &str, template: &str) {
        self.counter(
            TASKS_CREATED,
            vec![
                Label::new("namespace", namespace.to_owned()),
                Label::new("template", template.to_owned()),
            ],
        )
        .increment(1);
    }

    /// Counts steps leased to a worker, by a poll or with a completion.
    pub(crate) fn claims(&self, claimed: &[ClaimedStep]) {
        let mut per_namespace: BTreeMap<&str, u64> = BTreeMap::new();
        for step in claimed {
            *per_namespace.entry(&step.namespace).or_default() += 1;
        }
        for (namespace, count) in per_namespace {
            self.counter(
                STEPS_CLAIMED,
                vec![Label::new("namespace", namespace.to_owned())],
            )
            .increment(count);
        }
    }

    pub(crate) fn step_completed(&self, recorded: Recorded) {
        self.counter(
            STEPS_COMPLETED,
            vec![Label::new("recorded", recorded_label(recorded))],
        )
        .increment(1);
    }

    pub(crate) fn step_failed(&self, retryable: bool, recorded: Recorded) {
        self.counter(
            STEPS_FAILED,
            vec![
                Label::new("retryable", if retryable { "true" } else { "false" }),
                Label::new("recorded", recorded_label(recorded)),
            ],
        )
        .increment(1);
    }

    pub(crate) fn step_released(&self) {
        self.counter(STEPS_RELEASED, Vec::new()).increment(1);
    }

    pub(crate) fn lease_refused(&self, code: &'static str) {
        self.counter(LEASE_REFUSALS, vec![Label::new("code", code)])
            .increment(1);
    }

    fn http_request(&self, method: String, route: String, status: u16, seconds: f64) {
        let labels = vec![
            Label::new("method", method),
            Label::new("route", route),
            Label::new("status", status.to_string()),
        ];
        self.recorder
            .register_histogram(&key(HTTP_DURATION, labels), &METADATA)
            .record(seconds);
    }
}

impl tasker_store::Observer for Metrics {
    fn observe(&self, events: &[tasker_store::Event]) {
        use tasker_store::{AttemptOutcome, Event};
        for event in events {
            match event {
                Event::TaskFinished {
                    namespace,
                    template,
                    state,
                } => self
                    .counter(
                        TASKS_FINISHED,
                        vec![
                            Label::new("namespace", namespace.clone()),
                            Label::new("template", template.clone()),
                            Label::new("state", state.as_str()),
                        ],
                    )
                    .increment(1),
                Event::StepClaimed {
                    namespace,
                    queue_wait,
                } => self
                    .recorder
                    .register_histogram(
                        &key(QUEUE_WAIT, vec![Label::new("namespace", namespace.clone())]),
                        &METADATA,
                    )
                    .record(queue_wait.as_secs_f64()),
                Event::AttemptEnded {
                    namespace,
                    outcome,
                    run_time,
                } => {
                    self.recorder
                        .register_histogram(
                            &key(
                                RUN_TIME,
                                vec![
                                    Label::new("namespace", namespace.clone()),
                                    Label::new("outcome", outcome.as_str()),
                                ],
                            ),
                            &METADATA,
                        )
                        .record(run_time.as_secs_f64());
                    if *outcome == AttemptOutcome::Retrying {
                        self.counter(RETRIES, vec![Label::new("namespace", namespace.clone())])
                            .increment(1);
                    }
                }
                Event::LeaseExpired { namespace } => self
                    .counter(
                        LEASE_EXPIRIES,
                        vec![Label::new("namespace", namespace.clone())],
                    )
                    .increment(1),
                Event::StepTimedOut { namespace } => self
                    .counter(
                        STEP_TIMEOUTS,
                        vec![Label::new("namespace", namespace.clone())],
                    )
                    .increment(1),
                Event::DeadlineExceeded { namespace } => self
                    .counter(
                        DEADLINES_EXCEEDED,
                        vec![Label::new("namespace", namespace.clone())],
                    )
                    .increment(1),
                Event::StuckRepaired { kind } => self
                    .counter(STUCK_REPAIRED, vec![Label::new("kind", *kind)])
                    .increment(1),
                Event::RetentionDeleted { table, rows } => self
                    .counter(RETENTION_DELETED, vec![Label::new("table", *table)])
                    .increment(*rows),
                Event::TransactionRetried { reason } => self
                    .counter(
                        TRANSACTION_RETRIES,
                        vec![Label::new("reason", reason.as_str())],
                    )
                    .increment(1),
            }
        }
    }
}

fn recorded_label(recorded: Recorded) -> &'static str {
    match recorded {
        Recorded::Applied => "applied",
        Recorded::Duplicate => "duplicate",
    }
}

/// Times every routed request under its route template (`/v1/tasks/{id}`,
/// never the raw path, which would make a series per task).
pub async fn track_http(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.http_request(
        method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// Prometheus metrics of this node.
///
/// Text exposition format; see the metrics list in the API reference.
#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "probes",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn scrape(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    metrics
        .gauge(
            BUILD_INFO,
            vec![
                Label::new("version", state.config.version.clone()),
                Label::new("node_id", state.config.node_id.clone()),
            ],
        )
        .set(1.0);
    let leadership = state.engine.leadership().borrow().clone();
    metrics
        .gauge(
            LEADER,
            vec![Label::new("node_id", state.config.node_id.clone())],
        )
        .set(if leadership.leading { 1.0 } else { 0.0 });
    metrics
        .counter(LEADERSHIP_CHANGES, Vec::new())
        .absolute(leadership.changes);
    metrics
        .gauge(CLUSTER_NODES, Vec::new())
        .set(state.engine.cluster_nodes_live() as f64);
    // The cached check: a scrape never waits on the database for it.
    let reachable = state
        .engine
        .readiness()
        .await
        .is_ok_and(|readiness| readiness.database);
    metrics
        .gauge(DATABASE_REACHABLE, Vec::new())
        .set(if reachable { 1.0 } else { 0.0 });
    // From the background reading, never a query per scrape; none while
    // the database was never read (the rest of the scrape is still worth
    // having).
    let every = state.config.metrics_refresh_interval;
    if let Some(depths) = state
        .database_gauges
        .queue_depths(&state.engine, every)
        .await
    {
        for depth in depths {
            let ns = || vec![Label::new("namespace", depth.namespace.clone())];
            metrics.gauge(QUEUE_DEPTH, ns()).set(depth.ready as f64);
            metrics
                .gauge(LEASES_IN_FLIGHT, ns())
                .set(depth.leased as f64);
            metrics.gauge(QUEUE_DELAYED, ns()).set(depth.delayed as f64);
        }
    }
    metrics
        .counter(REPORT_TRANSACTIONS, Vec::new())
        .absolute(state.engine.report_batches());
    metrics
        .counter(REPORTS_WRITTEN, Vec::new())
        .absolute(state.engine.reports_written());
    for (namespace, claims, waiting) in state.engine.waiters().stats() {
        let ns = || vec![Label::new("namespace", namespace.clone())];
        metrics.counter(LOOP_CLAIMS, ns()).absolute(claims);
        metrics.gauge(POLLS_WAITING, ns()).set(waiting as f64);
    }
    if let Some(pool) = state.pool_stats() {
        metrics
            .gauge(POOL_CONNECTIONS, vec![Label::new("state", "idle")])
            .set(pool.idle as f64);
        metrics
            .gauge(POOL_CONNECTIONS, vec![Label::new("state", "used")])
            .set(pool.used as f64);
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.render(),
    )
        .into_response()
}
