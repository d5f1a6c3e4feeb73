//! Announces "steps of namespace N are ready" with `NOTIFY tasker_ready`,
//! after the transaction that made them ready has committed.
//!
//! Why not `NOTIFY` inside that transaction: PostgreSQL serializes the
//! commits of all notifying transactions on one global lock, which defeats
//! group commit; with eight clients completing steps it cut throughput by
//! more than half. A notification is only a wake-up hint (pollers re-check
//! on an interval and the queue message is what carries the work), so it is
//! sent afterwards, from a background task that coalesces the namespaces
//! announced meanwhile into one statement.
//!
//! Failure: if the process dies between commit and announcement, or the
//! statement fails, pollers find the work at their next re-check.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use tokio::sync::Notify;

use crate::READY_CHANNEL;

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<BTreeSet<String>>,
    wake: Notify,
}

#[derive(Debug, Clone)]
pub struct Announcer {
    shared: Arc<Shared>,
}

impl Announcer {
    /// Starts the background sender on the current tokio runtime; it ends
    /// when the pool is closed.
    pub fn start(pool: PgPool) -> Self {
        let shared = Arc::new(Shared::default());
        let background = shared.clone();
        tokio::spawn(async move {
            loop {
                background.wake.notified().await;
                let namespaces: Vec<String> =
                    std::mem::take(&mut *background.pending.lock().expect("announcer lock"))
                        .into_iter()
                        .collect();
                if namespaces.is_empty() {
                    continue;
                }
                if pool.is_closed() {
                    return;
                }
                let sent = sqlx::query("SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n")
                    .bind(READY_CHANNEL)
                    .bind(&namespaces)
                    .execute(&pool)
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "could not announce ready steps; pollers will re-check");
                }
            }
        });
        Self { shared }
    }

    /// Queues an announcement for each namespace; call after commit.
    pub fn announce<'a>(&self, namespaces: impl IntoIterator<Item = &'a str>) {
        let mut pending = self.shared.pending.lock().expect("announcer lock");
        let before = pending.len();
        pending.extend(namespaces.into_iter().map(str::to_owned));
        if pending.len() > before {
            self.shared.wake.notify_one();
        }
    }
}
