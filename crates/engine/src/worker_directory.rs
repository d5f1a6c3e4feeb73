//! [`WorkerDirectory`]: what this node knows of registered workers (their
//! namespaces and handlers), so that a poll or a completion with `next`
//! does not read the workers table on every request. Filled when a worker
//! registers through this node and, on a miss, from the database (one read
//! that fills every live worker); entries older than the liveness window are
//! read again, so a worker that registered anew through another node is
//! seen within that window.

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

    /// Replaces what is known with `workers` (every live worker).
    pub fn refill(&self, workers: &[Worker]) {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("directory lock");
        entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
        for worker in workers {
            entries.insert(
                worker.worker_id.clone(),
                (
                    WorkerScope {
                        namespaces: worker.namespaces.clone(),
                        handlers: worker.handlers.clone(),
                    },
                    now,
                ),
            );
        }
    }
}
