//! [`SeenWorkers`]: which workers this node heard from, written to the
//! database in one statement per interval instead of one write per poll or
//! report, so that waiting workers cost the database nothing per request.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tasker_store::Store;

pub struct SeenWorkers {
    pending: Mutex<HashSet<String>>,
    flushing: Mutex<bool>,
    interval: Duration,
}

impl std::fmt::Debug for SeenWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenWorkers")
            .field("interval", &self.interval)
            .finish()
    }
}

impl SeenWorkers {
    /// Flushes every `interval`: a listed worker's `last_seen_at` is at most
    /// that old (plus one flush) while it polls or reports.
    pub fn new(interval: Duration) -> Self {
        Self {
            pending: Mutex::default(),
            flushing: Mutex::new(false),
            interval,
        }
    }

    /// Records that `worker_id` was heard from; starts the flush loop on
    /// first use.
    pub fn note(self: &Arc<Self>, store: &Arc<dyn Store>, worker_id: &str) {
        {
            let mut pending = self.pending.lock().expect("seen lock");
            if !pending.contains(worker_id) {
                pending.insert(worker_id.to_owned());
            }
        }
        let mut flushing = self.flushing.lock().expect("seen lock");
        if !*flushing {
            *flushing = true;
            tokio::spawn(flush_loop(Arc::downgrade(self), store.clone()));
        }
    }

    fn take(&self) -> Vec<String> {
        self.pending.lock().expect("seen lock").drain().collect()
    }
}

async fn flush_loop(seen: Weak<SeenWorkers>, store: Arc<dyn Store>) {
    loop {
        let Some(interval) = seen.upgrade().map(|s| s.interval) else {
            return;
        };
        tokio::time::sleep(interval).await;
        let Some(ids) = seen.upgrade().map(|s| s.take()) else {
            return;
        };
        if ids.is_empty() {
            continue;
        }
        if let Err(error) = store.workers_seen(&ids).await {
            tracing::warn!(%error, workers = ids.len(), "cannot record workers as seen");
        }
    }
}
