//! Long-polls waiting for ready steps, per namespace. A notifier (the
//! database's `LISTEN`) calls [`ReadyWaiters::wake`]; pollers call
//! [`ReadyWaiters::subscribe`] *before* they look for work so that a wake-up
//! between the look and the wait is not lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct ReadyWaiters {
    namespaces: Mutex<HashMap<String, Arc<Notify>>>,
    /// Woken on "anything may be ready" and on shutdown.
    everyone: Arc<Notify>,
}

impl ReadyWaiters {
    /// Wakes the pollers of `namespace`, or all pollers for `None`.
    pub fn wake(&self, namespace: Option<&str>) {
        match namespace {
            Some(ns) => {
                let notify = self
                    .namespaces
                    .lock()
                    .expect("waiters lock")
                    .get(ns)
                    .cloned();
                if let Some(notify) = notify {
                    notify.notify_waiters();
                }
            }
            None => self.everyone.notify_waiters(),
        }
    }

    /// The signals a poller of `namespaces` waits on.
    pub fn subscribe(&self, namespaces: &[String]) -> Vec<Arc<Notify>> {
        let mut map = self.namespaces.lock().expect("waiters lock");
        let mut out: Vec<Arc<Notify>> = namespaces
            .iter()
            .map(|ns| map.entry(ns.clone()).or_default().clone())
            .collect();
        out.push(self.everyone.clone());
        out
    }
}
