//! One server node's life, whatever store it runs on: the engine over the
//! store, the API state, the listener, the node's record in the registry
//! and its leader duties, then serving until told to stop. `tasker server`
//! runs it on PostgreSQL, `tasker dev` on SQLite; what differs between the
//! two is behind [`NodeStore`].
//!
//! ```text
//!  NodeStore ─▶ migrate ─▶ Engine ─▶ local wake, other nodes' wake-ups
//!            ─▶ AppState (+ observer, pool gauges) ─▶ bind ─▶ registry, leadership
//!            ─▶ serve until `shutdown` ─▶ leave the cluster ─▶ close the store
//! ```
//!
//! Start-up order matters: the listener is bound before the node records
//! itself (its address is what it advertises), so a node never accepts
//! requests it cannot serve. Must never: start serving before the
//! migrations are applied, or leave the cluster before requests in flight
//! are answered.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use tasker_api::{ApiConfig, AppState, PoolStats};
use tasker_engine::Engine;
use tasker_engine::retention::RetentionDuty;
use tasker_store::{NodeRegistration, Observer, Store};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::status::{Failure, Status};

/// Called after each of this node's own commits that made steps ready, with
/// their namespace (`None`: any).
pub type LocalWake = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// Reads the store's connection pool for `/metrics`.
pub type PoolStatsFn = Box<dyn Fn() -> PoolStats + Send + Sync>;

/// What a node needs of its store beyond [`Store`]: the hooks that only the
/// concrete backend offers.
#[async_trait]
pub trait NodeStore: Send + Sync {
    /// The store the engine runs on.
    fn store(&self) -> Arc<dyn Store>;
    /// Wakes this node's waiting polls after its own commits.
    fn set_local_wake(&self, wake: LocalWake);
    /// Facts only the committing transaction knows, for `/metrics`.
    fn set_observer(&self, observer: Arc<dyn Observer>);
    /// The connection pool's gauges, where the store has a pool worth showing.
    fn pool_stats(&self) -> Option<PoolStatsFn>;
    /// Starts hearing the commits and resignations of other nodes (on
    /// PostgreSQL, LISTEN); `None` where no other node can exist.
    fn hear_other_nodes(&self, engine: &Engine) -> Option<Box<dyn Hearing>>;
    /// Closes the store's connections once the node stopped.
    async fn close(&self);
}

/// A running listener for other nodes' notifications; stopped at shutdown.
pub trait Hearing: Send {
    fn stop(&self);
}

/// A node that is bound, migrated and registered, not yet serving.
pub struct Node {
    engine: Engine,
    state: AppState,
    listener: TcpListener,
    address: SocketAddr,
    store: Box<dyn NodeStore>,
    hearing: Option<Box<dyn Hearing>>,
}

impl Node {
    /// Migrates the store, builds the engine and API over it, binds
    /// `server.listen` and records the node in the registry.
    pub async fn start(store: Box<dyn NodeStore>, config: &Config) -> anyhow::Result<Node> {
        store
            .store()
            .migrate()
            .await
            .map_err(|e| anyhow::anyhow!("cannot apply the database migrations: {e}"))?;
        let engine_config = config.engine_config();
        let engine = Engine::new(store.store(), engine_config.clone());
        let local = engine.waiters().clone();
        store.set_local_wake(Arc::new(move |namespace| local.wake(namespace)));
        let hearing = store.hear_other_nodes(&engine);

        let api_config = api_config(config, &engine_config);
        api_config
            .validate(&engine_config)
            .map_err(|e| Failure::usage(e.to_string()))?;
        let registration = NodeRegistration {
            node_id: api_config.node_id.clone(),
            version: api_config.version.clone(),
            address: String::new(),
            pid: std::process::id(),
            started_at: api_config.started_at,
        };
        let mut state = AppState::new(engine.clone(), api_config);
        if let Some(read) = store.pool_stats() {
            state = state.with_pool_stats(read);
        }
        store.set_observer(Arc::new(state.metrics.clone()));

        let listener = TcpListener::bind(&config.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
        let address = listener.local_addr()?;
        let registration = NodeRegistration {
            address: config.advertise_address(address),
            ..registration
        };
        engine
            .cluster_start(
                registration,
                config.cluster_config(),
                config
                    .maintenance_config()
                    .duties()
                    .into_iter()
                    .chain([Arc::new(RetentionDuty::new(config.retention_config())) as _])
                    .collect(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot record this node in the node registry: {e}"))?;
        Ok(Node {
            engine,
            state,
            listener,
            address,
            store,
            hearing,
        })
    }

    /// The address the listener bound (the real port when asked for 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The engine, for work done in process (registering templates).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves until `shutdown` resolves, then waits at most
    /// `server.shutdown_grace` for requests in flight, leaves the cluster
    /// and closes the store. [`Status::Failed`] when the grace ran out.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        config: &Config,
    ) -> anyhow::Result<Status> {
        let Node {
            engine,
            state,
            listener,
            store,
            hearing,
            ..
        } = self;
        let status = serve(listener, state, shutdown, config).await;
        engine.cluster_stop().await;
        if let Some(hearing) = hearing {
            hearing.stop();
        }
        store.close().await;
        status
    }
}

/// Serves until `shutdown`, then waits at most `shutdown_grace` for
/// requests in flight.
async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    config: &Config,
) -> anyhow::Result<Status> {
    let (signalled, mut on_signal) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        shutdown.await;
        let _ = signalled.send(());
    };
    let mut server = tokio::spawn(tasker_api::serve(listener, state, shutdown));
    tokio::select! {
        ended = &mut server => {
            ended??;
            Ok(Status::Ok)
        }
        Ok(()) = &mut on_signal => {
            let grace = config.server.shutdown_grace.as_duration();
            match tokio::time::timeout(grace, &mut server).await {
                Ok(ended) => {
                    ended??;
                    tracing::info!("stopped");
                    Ok(Status::Ok)
                }
                Err(_) => {
                    server.abort();
                    tracing::warn!(
                        grace = %config.server.shutdown_grace,
                        "requests still in flight when server.shutdown_grace ran out; cut off"
                    );
                    Ok(Status::Failed)
                }
            }
        }
    }
}

/// The API's settings from the node's configuration.
fn api_config(config: &Config, engine: &tasker_engine::EngineConfig) -> ApiConfig {
    let auth = &config.auth;
    ApiConfig {
        node_id: config.server.node_id.clone(),
        max_body_bytes: config.server.max_body_bytes,
        metrics_refresh_interval: config.server.metrics_refresh_interval.as_duration(),
        auth: tasker_api::AuthConfig {
            enabled: auth.enabled,
            admin_tokens: auth.admin_tokens.clone(),
            operator_tokens: auth.operator_tokens.clone(),
            worker_tokens: auth.worker_tokens.clone(),
            viewer_tokens: auth.viewer_tokens.clone(),
        },
        ..ApiConfig::for_engine(engine)
    }
}
