//! [`AppState`]: what every handler gets. Cheap to clone (all shared).

use std::sync::Arc;

use tasker_engine::Engine;

use crate::auth::Authenticator;
use crate::config::ApiConfig;
use crate::database_gauges::DatabaseGauges;
use crate::metrics::Metrics;

/// Connection counts of the database pool, for `tasker_db_pool_connections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub idle: u64,
    pub used: u64,
}

/// Reads the pool's counts at scrape time. A callback keeps this crate free
/// of any one storage backend.
pub type PoolStatsFn = Arc<dyn Fn() -> PoolStats + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub config: Arc<ApiConfig>,
    /// This app's own metrics registry (never a process-global one, so that
    /// several apps in one process, as in tests, keep separate counts).
    pub metrics: Metrics,
    authenticator: Arc<Authenticator>,
    pool_stats: Option<PoolStatsFn>,
    pub(crate) database_gauges: Arc<DatabaseGauges>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("engine", &self.engine)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Call [`ApiConfig::validate`] first: this takes the config as it is.
    pub fn new(engine: Engine, config: ApiConfig) -> Self {
        Self {
            engine,
            authenticator: Arc::new(Authenticator::new(&config.auth)),
            config: Arc::new(config),
            metrics: Metrics::new(),
            pool_stats: None,
            database_gauges: Arc::default(),
        }
    }

    /// Reports the database pool's idle and used connections on `/metrics`,
    /// e.g. `move || PoolStats { idle: pool.num_idle() as u64, used: .. }`.
    pub fn with_pool_stats(mut self, read: impl Fn() -> PoolStats + Send + Sync + 'static) -> Self {
        self.pool_stats = Some(Arc::new(read));
        self
    }

    pub(crate) fn authenticator(&self) -> Arc<Authenticator> {
        self.authenticator.clone()
    }

    pub(crate) fn pool_stats(&self) -> Option<PoolStats> {
        self.pool_stats.as_ref().map(|read| read())
    }
}
