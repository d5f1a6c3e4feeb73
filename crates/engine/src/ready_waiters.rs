//! [`ReadyWaiters`]: where "steps of this namespace may be ready" arrives —
//! from this node's own commits (the store's local wake) and from other
//! nodes through the database's `LISTEN` — and is passed to the
//! namespace's claim loop (see [`crate::dispatcher`]).

use std::sync::Arc;

use crate::dispatcher::Dispatchers;

#[derive(Debug)]
pub struct ReadyWaiters {
    dispatchers: Arc<Dispatchers>,
}

impl ReadyWaiters {
    pub(crate) fn new(dispatchers: Arc<Dispatchers>) -> Self {
        Self { dispatchers }
    }

    /// Wakes the claim loop of `namespace`, or every loop for `None`.
    pub fn wake(&self, namespace: Option<&str>) {
        self.dispatchers.wake(namespace);
    }

    /// Long-polls waiting on `namespace` right now: a test that must know a
    /// poll is parked waits for this, not for a fixed time.
    pub fn waiting(&self, namespace: &str) -> usize {
        self.dispatchers.waiting(namespace)
    }

    /// Per namespace with a claim loop: `(namespace, claims made, polls
    /// waiting now)`, for metrics.
    pub fn stats(&self) -> Vec<(String, u64, usize)> {
        self.dispatchers.stats()
    }

    /// Claim transactions the claim loop of `namespace` has made on behalf
    /// of waiting polls.
    pub fn claims(&self, namespace: &str) -> u64 {
        self.dispatchers.claims(namespace)
    }
}
