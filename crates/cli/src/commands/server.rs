//! `tasker server`: one node on PostgreSQL. Configuration first (a bad
//! value stops everything before any connection is made), then the
//! database, then the node's life as [`super::node`] runs it, with the
//! notifier hearing the other nodes' commits and resignations.
//!
//! Shutdown on SIGTERM or ctrl-c: stop accepting, end long-polls at once,
//! let requests in flight finish within `server.shutdown_grace`, leave the
//! cluster (resign the leadership so another node takes over at once,
//! delete the registry record), stop the notifier, close the pool.

use std::io::IsTerminal as _;
use std::sync::Arc;

use async_trait::async_trait;
use tasker_api::PoolStats;
use tasker_engine::Engine;
use tasker_postgres::{Notifier, PgStore};
use tasker_store::{Observer, Store};

use super::node::{Hearing, LocalWake, Node, NodeStore, PoolStatsFn};
use super::store_connection::connect_store;
use crate::cli::ServerArgs;
use crate::config::{Config, LogFormat};
use crate::output::emit;
use crate::shutdown_signal::shutdown_signal;
use crate::status::Status;

pub async fn run(args: &ServerArgs) -> anyhow::Result<Status> {
    let config = args.layers().load_valid()?;
    init_logging(&config);

    let store = connect_store(&config).await?;
    let node = Node::start(
        Box::new(Postgres {
            store,
            url: config.database.url.clone(),
        }),
        &config,
    )
    .await?;

    // On stdout, so that whoever started the node (a script, a test asking
    // for port 0) learns where it listens; by then the node is in the
    // node registry.
    emit(&format!(
        "listening on http://{} (node {})\n",
        node.address(),
        config.server.node_id
    ))?;
    node.serve_until(shutdown_signal(), &config).await
}

/// The PostgreSQL store and where its notifier listens.
struct Postgres {
    store: PgStore,
    url: String,
}

#[async_trait]
impl NodeStore for Postgres {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    fn set_local_wake(&self, wake: LocalWake) {
        self.store.set_local_wake(wake);
    }

    fn set_observer(&self, observer: Arc<dyn Observer>) {
        self.store.set_observer(observer);
    }

    fn pool_stats(&self) -> Option<PoolStatsFn> {
        let pool = self.store.pool().clone();
        Some(Box::new(move || {
            let idle = pool.num_idle() as u64;
            PoolStats {
                idle,
                used: u64::from(pool.size()).saturating_sub(idle),
            }
        }))
    }

    fn hear_other_nodes(&self, engine: &Engine) -> Option<Box<dyn Hearing>> {
        let waiters = engine.waiters().clone();
        let elections = engine.clone();
        Some(Box::new(Notifier::start_with_leadership(
            self.url.clone(),
            Arc::new(move |namespace| waiters.wake(namespace)),
            Arc::new(move || elections.leadership_wake()),
        )))
    }

    async fn close(&self) {
        self.store.pool().close().await;
    }
}

impl Hearing for Notifier {
    fn stop(&self) {
        Notifier::stop(self);
    }
}

/// Logs go to stderr, in the configured format and filter (already
/// validated, so the filter parses).
pub fn init_logging(config: &Config) {
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
