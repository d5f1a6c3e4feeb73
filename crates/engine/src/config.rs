//! Engine settings. Every field has an effect and a documented default.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a claimed step stays leased without a heartbeat (whole
    /// seconds; PGMQ visibility granularity). Default 30 s.
    pub lease_duration: Duration,
    /// Largest context, result or error details accepted, in bytes of JSON.
    /// Default 1 MiB.
    pub max_payload_bytes: usize,
    /// Most steps one claim may lease at once. Default 100.
    pub max_claim_batch: u32,
    /// Most bytes of parent results (JSON) shipped with one claimed step;
    /// the largest results over it are sent as references the worker
    /// fetches. Default 1 MiB.
    pub max_parent_results_bytes: usize,
    /// Most instances one fan-out step may get in one task; a source whose
    /// items need more fails with `fan_out_limit_exceeded`. A template's
    /// `fan_out.max_instances` may only lower it. Default 10,000.
    pub max_fan_out_instances: u32,
    /// The safety net of a namespace's claim loop: how long it sleeps at
    /// most while polls wait and nothing woke it. It is woken by commits on
    /// this node, by other nodes' notifications and when the queue's next
    /// hidden message (a retry's backoff, an expired lease) becomes visible;
    /// the re-check only covers notifications lost with a connection.
    /// Default 5 s.
    pub poll_recheck_interval: Duration,
    /// Longest a long-poll may wait. Default 30 s.
    pub max_poll_wait: Duration,
    /// Group-commit transactions of worker reports a node may have in
    /// flight at once (each writes whatever reports are waiting). Default 2.
    pub report_writers: usize,
    /// A worker not heard from for this long is no longer listed (polls and
    /// reports mark it seen; the marks are written every sixth of this,
    /// at least every second). Default 60 s.
    pub worker_liveness: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(30),
            max_payload_bytes: 1024 * 1024,
            max_claim_batch: 100,
            max_parent_results_bytes: 1024 * 1024,
            max_fan_out_instances: tasker_model::task_run::DEFAULT_MAX_FAN_OUT,
            poll_recheck_interval: Duration::from_secs(5),
            max_poll_wait: Duration::from_secs(30),
            report_writers: 2,
            worker_liveness: Duration::from_secs(60),
        }
    }
}
