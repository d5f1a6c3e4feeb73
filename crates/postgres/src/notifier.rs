//! One `LISTEN` connection per node: turns `NOTIFY tasker_ready, '<namespace>'`
//! into wake-ups of the long-polls waiting on that namespace.
//!
//! Notifications are a latency optimization, never a correctness
//! requirement: pollers also re-check on an interval. When the listening
//! connection drops, notifications sent meanwhile are lost, so after every
//! reconnect the notifier wakes every waiter to look again.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;

use crate::READY_CHANNEL;

/// Called with a namespace name, or `None` for "anything may be ready".
pub type OnReady = Arc<dyn Fn(Option<&str>) + Send + Sync>;

#[derive(Debug)]
pub struct Notifier {
    task: JoinHandle<()>,
}

impl Notifier {
    /// Starts listening in the background; retries the connection forever
    /// with a capped backoff.
    pub fn start(url: String, on_ready: OnReady) -> Self {
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match listen(&url, &on_ready).await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %e, "ready-notification listener lost its connection; reconnecting");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                on_ready(None);
            }
        });
        Self { task }
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(url: &str, on_ready: &OnReady) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(READY_CHANNEL).await?;
    // Anything sent before LISTEN took effect was missed.
    on_ready(None);
    loop {
        match listener.try_recv().await? {
            Some(notification) => on_ready(Some(notification.payload())),
            // The connection was lost and re-established: wake everyone.
            None => on_ready(None),
        }
    }
}
