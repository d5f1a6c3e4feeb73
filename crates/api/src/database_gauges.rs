//! [`DatabaseGauges`]: the gauges `/metrics` reads from the database (queue
//! depths, live leases, delayed retries), kept in memory and refreshed in
//! the background every `metrics_refresh_interval`, so that a scrape, or
//! many scrapers at once, never costs the database a query. It must never
//! make a scrape wait on the database, except for the very first scrape of
//! a node, which waits for the first reading.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tasker_engine::Engine;
use tasker_store::QueueDepth;
use tokio::sync::OnceCell;

/// The last reading, shared by every clone of an app.
#[derive(Default)]
pub struct DatabaseGauges {
    depths: Mutex<Option<Vec<QueueDepth>>>,
    /// Set once the refresher runs; started by the first scrape.
    started: OnceCell<()>,
}

impl std::fmt::Debug for DatabaseGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseGauges").finish_non_exhaustive()
    }
}

impl DatabaseGauges {
    /// The last reading, starting the refresher (and waiting for its first
    /// reading) on the first call. `None` while the database was never read.
    pub async fn queue_depths(
        self: &Arc<Self>,
        engine: &Engine,
        every: Duration,
    ) -> Option<Vec<QueueDepth>> {
        self.started
            .get_or_init(|| async {
                self.refresh(engine).await;
                tokio::spawn(refresher(Arc::downgrade(self), engine.clone(), every));
            })
            .await;
        self.depths.lock().expect("gauges lock").clone()
    }

    async fn refresh(&self, engine: &Engine) {
        match engine.store().queue_depths().await {
            Ok(depths) => {
                *self.depths.lock().expect("gauges lock") = Some(depths);
            }
            // The gauges keep their last values.
            Err(error) => tracing::warn!(%error, "metrics: could not read queue depths"),
        }
    }
}

/// Reads the database every `every` while the app lives.
async fn refresher(gauges: Weak<DatabaseGauges>, engine: Engine, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(gauges) = gauges.upgrade() else {
            return;
        };
        gauges.refresh(&engine).await;
    }
}
