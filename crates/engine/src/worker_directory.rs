//! [`WorkerDirectory`]: what this node knows of registered workers (their
//! namespaces and handlers), so that a poll or a completion with `next`
//! does not read the workers table on every request. Filled when a worker
//! registers through this node and, on a miss, from the database (one row);
//! entries older than the liveness window are read again, so a worker that
//! registered anew through another node is seen within that window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tasker_store::Worker;

/// The namespaces and handlers a worker registered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerScope {
    pub namespaces: Vec<String>,
    /// Empty: it runs any handler of its namespaces.
    pub handlers: Vec<String>,
}

#[derive(Debug)]
pub struct WorkerDirectory {
    entries: Mutex<HashMap<String, (WorkerScope, Instant)>>,
    ttl: Duration,
}

impl WorkerDirectory {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::default(),
            ttl,
        }
    }

    /// The scope of `worker_id` if known and fresh.
    pub fn get(&self, worker_id: &str) -> Option<WorkerScope> {
        let entries = self.entries.lock().expect("directory lock");
        let (scope, at) = entries.get(worker_id)?;
        (at.elapsed() < self.ttl).then(|| scope.clone())
    }

    pub fn remember(&self, worker: &Worker) {
        self.entries.lock().expect("directory lock").insert(
            worker.worker_id.clone(),
            (
                WorkerScope {
                    namespaces: worker.namespaces.clone(),
                    handlers: worker.handlers.clone(),
                },
                Instant::now(),
            ),
        );
    }
}
