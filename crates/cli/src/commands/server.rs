//! `tasker server`: one node. Start-up order matters: configuration first
//! (a bad value stops everything before any connection is made), then the
//! database and its migrations, then the notifier, then the listener, and
//! only once it is bound (its address is what the node advertises) the
//! node's registry record and its bid for leadership, so that a node never
//! accepts requests it cannot serve.
//!
//! Shutdown on SIGTERM or ctrl-c: stop accepting, end long-polls at once,
//! let requests in flight finish within `server.shutdown_grace`, leave the
//! cluster (resign the leadership so another node takes over at once,
//! delete the registry record), stop the notifier, close the pool.

use std::io::IsTerminal as _;
use std::sync::Arc;

use tasker_api::{ApiConfig, AppState, PoolStats};
use tasker_engine::Engine;
use tasker_engine::retention::RetentionDuty;
use tasker_postgres::Notifier;
use tasker_store::{NodeRegistration, Store};
use tokio::net::TcpListener;

use super::store_connection::connect_store;
use crate::cli::ServerArgs;
use crate::config::{Config, LogFormat};
use crate::output::emit;
use crate::shutdown_signal::shutdown_signal;
use crate::status::{Failure, Status};

pub async fn run(args: &ServerArgs) -> anyhow::Result<Status> {
    let config = args.layers().load_valid()?;
    init_logging(&config);

    let store = connect_store(&config).await?;
    store
        .migrate()
        .await
        .map_err(|e| anyhow::anyhow!("cannot apply the database migrations: {e}"))?;
    let engine_config = config.engine_config();
    let engine = Engine::new(Arc::new(store.clone()), engine_config.clone());
    let local = engine.waiters().clone();
    store.set_local_wake(Arc::new(move |namespace| local.wake(namespace)));
    let waiters = engine.waiters().clone();
    let elections = engine.clone();
    let notifier = Notifier::start_with_leadership(
        config.database.url.clone(),
        Arc::new(move |namespace| waiters.wake(namespace)),
        Arc::new(move || elections.leadership_wake()),
    );

    let api_config = api_config(&config, &engine_config);
    api_config
        .validate(&engine_config)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let pool = store.pool().clone();
    let node = NodeRegistration {
        node_id: api_config.node_id.clone(),
        version: api_config.version.clone(),
        address: String::new(),
        pid: std::process::id(),
        started_at: api_config.started_at,
    };
    let cluster = engine.clone();
    let state = AppState::new(engine, api_config).with_pool_stats(move || {
        let idle = pool.num_idle() as u64;
        PoolStats {
            idle,
            used: u64::from(pool.size()).saturating_sub(idle),
        }
    });
    // Facts only the committing transaction knows reach /metrics this way.
    store.set_observer(std::sync::Arc::new(state.metrics.clone()));

    let listener = TcpListener::bind(&config.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
    let address = listener.local_addr()?;
    let node = NodeRegistration {
        address: config.advertise_address(address),
        ..node
    };
    cluster
        .cluster_start(
            node,
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

    // On stdout, so that whoever started the node (a script, a test asking
    // for port 0) learns where it listens; by then the node is in the
    // node registry.
    emit(&format!(
        "listening on http://{address} (node {})\n",
        config.server.node_id
    ))?;

    let status = serve(listener, state, &config).await;
    cluster.cluster_stop().await;
    notifier.stop();
    store.pool().close().await;
    status
}

/// Serves until a shutdown signal, then waits at most `shutdown_grace` for
/// requests in flight.
async fn serve(listener: TcpListener, state: AppState, config: &Config) -> anyhow::Result<Status> {
    let (signalled, mut on_signal) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        shutdown_signal().await;
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

/// Logs go to stderr, in the configured format and filter (already
/// validated, so the filter parses).
fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log.level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
