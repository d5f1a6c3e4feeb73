//! `tasker dev`: all of Tasker in one process, with nothing to set up. A
//! server node (the same one `tasker server` runs, dashboard included) on an
//! embedded SQLite database, the example templates registered, and the
//! example worker running in process, talking HTTP to the node's own
//! listener like any other worker.
//!
//! ```text
//!  tasker dev ─┬─ node: API, dashboard, metrics, leader duties ── SQLite (./.tasker/tasker.db)
//!              └─ example worker ──HTTP (loopback)──▶ node
//! ```
//!
//! Shutdown (SIGTERM or ctrl-c): the worker first, while the node can still
//! take its results and releases (its running steps get
//! `server.shutdown_grace` to finish, then are released, no attempt lost),
//! then the node. A second signal exits at once.
//!
//! Must never: listen on an address other machines reach with auth off
//! ([`listen_guard`]), or open a database another server holds (the store
//! refuses it: several nodes need PostgreSQL).

mod demo;
mod example_templates;
mod listen_guard;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use tasker_engine::Engine;
use tasker_sqlite::{SqliteLocation, SqliteStore};
use tasker_store::{Observer, Store};
use tasker_worker::{Worker, examples};

use super::node::{Hearing, LocalWake, Node, NodeStore, PoolStatsFn};
use super::server::init_logging;
use crate::cli::DevArgs;
use crate::config::Config;
use crate::output::emit;
use crate::shutdown_signal::shutdown_signal;
use crate::status::{Failure, Status};

/// Steps the in-process worker runs at once.
const WORKER_CONCURRENCY: usize = 8;

pub async fn run(args: &DevArgs) -> anyhow::Result<Status> {
    let config = load_config(args)?;
    init_logging(&config);
    let location = if args.memory {
        SqliteLocation::Memory
    } else {
        SqliteLocation::Directory(absolute(&args.dir)?)
    };
    let store = SqliteStore::open(location.clone(), &config.server.node_id)
        .await
        .map_err(open_error)?;
    let node = Node::start(Box::new(Sqlite(store)), &config).await?;
    let templates = example_templates::register(node.engine()).await?;
    let bound = node.address();
    let url = format!("http://{}", reachable_here(bound));

    let worker = example_worker(&url, &config)?;
    let worker_id = worker.worker_id().to_owned();
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut working = tokio::spawn(worker.run(async {
        let _ = worker_stopped.await;
    }));
    let (stop_node, node_stopped) = tokio::sync::oneshot::channel::<()>();
    let node_config = config.clone();
    let mut serving = tokio::spawn(async move {
        node.serve_until(
            async {
                let _ = node_stopped.await;
            },
            &node_config,
        )
        .await
    });

    emit(&format!(
        "listening on http://{bound} (node {})\n",
        config.server.node_id
    ))?;
    emit(&banner(&url, &config, &location, &templates, &worker_id))?;

    let main = async {
        if args.demo {
            let client = tasker_client::Client::new(&url, demo_token(&config)?)?;
            tokio::select! {
                outcome = demo::run(&client, args.demo_timeout.as_duration()) => outcome,
                () = shutdown_signal() => Ok(Status::Failed),
            }
        } else {
            shutdown_signal().await;
            Ok(Status::Ok)
        }
    };
    let outcome = tokio::select! {
        outcome = main => outcome,
        ended = &mut serving => {
            return match ended? {
                Ok(_) => Err(anyhow::anyhow!("the server stopped on its own")),
                Err(e) => Err(e),
            };
        }
        ended = &mut working => {
            let _ = stop_node.send(());
            let _ = serving.await;
            return Err(match ended? {
                Ok(()) => anyhow::anyhow!("the example worker stopped on its own"),
                Err(e) => anyhow::anyhow!("the example worker stopped: {e}"),
            });
        }
    };

    // A second signal while stopping: out at once.
    tokio::spawn(async {
        shutdown_signal().await;
        eprintln!("second signal: exiting without waiting");
        std::process::exit(Status::Failed.code().into());
    });
    tracing::info!("stopping the worker, then the server");
    let _ = stop_worker.send(());
    if let Err(e) = working.await? {
        tracing::warn!(error = %e, "the example worker stopped with an error");
    }
    let _ = stop_node.send(());
    let stopped = serving.await??;
    let status = outcome?;
    Ok(if stopped == Status::Ok {
        status
    } else {
        stopped
    })
}

/// The configuration as `tasker server` layers it, except for two defaults:
/// auth is off unless a layer turns it on, and the node is `dev` (one node
/// per database, so the name is unique, and a restart takes back its own
/// leadership lease at once instead of waiting for it to expire). Then the
/// guard rail on the listen address.
fn load_config(args: &DevArgs) -> anyhow::Result<Config> {
    let mut defaults = Config::default();
    defaults.auth.enabled = false;
    defaults.server.node_id = "dev".to_owned();
    let config = args.layers().load_valid_over(defaults)?;
    listen_guard::check(&config).map_err(Failure::usage)?;
    Ok(config)
}

/// A database another server holds is a conflict (exit status 5) whose
/// message says that several nodes need PostgreSQL; a directory that cannot
/// be created or locked is a usage error naming `--dir`.
fn open_error(error: tasker_store::Error) -> anyhow::Error {
    match error {
        tasker_store::Error::Conflict { message, .. } => Failure {
            status: Status::Conflict,
            message,
        }
        .into(),
        tasker_store::Error::Invalid { message, .. } => Failure::usage(format!("--dir: {message}")),
        other => anyhow::anyhow!("cannot open the SQLite database: {other}"),
    }
}

/// `dir` made absolute, so that the printed database path means the same
/// from any directory.
fn absolute(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::path::absolute(dir).map_err(|e| Failure::usage(format!("--dir {}: {e}", dir.display())))
}

/// Where this machine reaches a listener bound to `bound`: an unspecified
/// address (`0.0.0.0`, `::`) becomes the loopback address of its family.
fn reachable_here(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, bound.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, bound.port()).into(),
        _ => bound,
    }
}

/// The example worker, polling the node's own listener.
fn example_worker(url: &str, config: &Config) -> anyhow::Result<Worker> {
    let token = match config.auth.enabled {
        false => None,
        true => Some(
            config
                .auth
                .worker_tokens
                .first()
                .or(config.auth.admin_tokens.first())
                .cloned()
                .ok_or_else(|| {
                    Failure::usage(
                        "with auth on, the in-process example worker needs a token: add one to \
                         auth.worker_tokens (TASKER_AUTH_WORKER_TOKENS) or auth.admin_tokens",
                    )
                })?,
        ),
    };
    let builder =
        examples::register_examples(Worker::builder(tasker_client::Client::new(url, token)?));
    builder
        .namespaces(examples::NAMESPACES)
        .concurrency(WORKER_CONCURRENCY)
        .worker_id(format!("{}-worker", config.server.node_id))
        .shutdown_grace(config.server.shutdown_grace.as_duration())
        .build()
        .map_err(|e| Failure::usage(e.to_string()))
}

/// The token the demo creates and reads tasks with.
fn demo_token(config: &Config) -> anyhow::Result<Option<String>> {
    if !config.auth.enabled {
        return Ok(None);
    }
    let auth = &config.auth;
    auth.admin_tokens
        .first()
        .or(auth.operator_tokens.first())
        .cloned()
        .map(Some)
        .ok_or_else(|| {
            Failure::usage(
                "with auth on, --demo needs a token that may create tasks: add one to \
                 auth.admin_tokens or auth.operator_tokens",
            )
        })
}

/// What runs where and how to use it.
fn banner(
    url: &str,
    config: &Config,
    location: &SqliteLocation,
    templates: &[String],
    worker_id: &str,
) -> String {
    let tasker = std::env::args().next().unwrap_or_else(|| "tasker".into());
    let database = match location.database_file() {
        Some(file) => file.display().to_string(),
        None => "in memory (--memory): gone when this process exits".to_owned(),
    };
    let (auth, cli_token, curl_token) = if config.auth.enabled {
        (
            "on",
            " --token <token>",
            " -H 'authorization: Bearer <token>'",
        )
    } else {
        ("off", "", "")
    };
    format!(
        "Tasker dev is running (auth {auth}).
  API:        {url}
  API page:   {url}/docs
  Dashboard:  {url}/ui
  Metrics:    {url}/metrics
  Database:   {database}
  Worker:     {worker_id}, example handlers for {namespaces} (in this process)
  Templates:  {templates}
Create a task with the CLI:
  {tasker} task create examples/linear --context '{{\"even_number\": 2}}' --watch --server {url}{cli_token}
or with curl:
  curl -X POST {url}/v1/tasks -H 'content-type: application/json'{curl_token} \\
    -d '{{\"namespace\": \"examples\", \"template\": \"linear\", \"context\": {{\"even_number\": 2}}}}'
Ctrl-c stops the worker, then the server.
",
        namespaces = examples::NAMESPACES.join(", "),
        templates = templates.join(", "),
    )
}

/// The embedded SQLite store: one node, woken by its own commits only.
struct Sqlite(SqliteStore);

#[async_trait]
impl NodeStore for Sqlite {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.0.clone())
    }

    fn set_local_wake(&self, wake: LocalWake) {
        self.0.set_local_wake(wake);
    }

    fn set_observer(&self, observer: Arc<dyn Observer>) {
        self.0.set_observer(observer);
    }

    fn pool_stats(&self) -> Option<PoolStatsFn> {
        None
    }

    /// No other node can share the database: nothing to hear.
    fn hear_other_nodes(&self, _engine: &Engine) -> Option<Box<dyn Hearing>> {
        None
    }

    async fn close(&self) {
        self.0.close().await;
    }
}
