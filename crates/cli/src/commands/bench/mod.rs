//! `tasker bench`: measures a Tasker server the way a user runs it — worker
//! processes over HTTP against a real store — and prints every figure. On
//! PostgreSQL each figure stands beside what PostgreSQL itself allows on the
//! same database (its durable-commit rate with one and with eight
//! connections, measured first) and its statistics; on SQLite (`--backend
//! sqlite`: a `tasker dev` node) those are reported as not measured.
//!
//! ```text
//!  tasker bench ──HTTP──► tasker server / tasker dev (started here, or --server) ──► PostgreSQL | SQLite
//!       │                        ▲                                       ▲
//!       │ spawns                 │ HTTP                                  │ statistics,
//!       └──► tasker bench-worker × M (no-op handler) ─┘                  │ commit floor
//!       └─────────────────────────────────────────── (PostgreSQL only) ──┘
//! ```
//!
//! Scenarios: `latency` (one task at a time per DAG shape), `create` (one by
//! one and concurrent), `throughput` (burn-down of pre-created tasks, and
//! one-step tasks created in batches while the workers run), `idle`
//! (what waiting workers cost), `soak` (steady load while another session
//! holds a transaction open, and after); the last two need PostgreSQL.
//! Nothing here asserts a timing: the command reports; docs/benchmarks.md
//! records what it reported.

mod bench_worker;
mod create;
mod database;
mod idle;
mod latency;
mod over_http;
mod processes;
mod progress;
mod report;
mod shapes;
mod soak;
mod summary;
mod throughput;

use std::time::Duration;

use sqlx::PgPool;

use crate::cli::{BenchArgs, BenchBackend, Output, Scenario};
use crate::output::emit_json;
use crate::status::{Failure, Status};

pub use bench_worker::run as run_worker;
use processes::{NodeStore, ServerProcess, WorkerProcesses};
use report::{Parameters, Postgres, Report};

/// The scenarios that read PostgreSQL itself, and why.
const POSTGRES_ONLY: [(Scenario, &str, &str); 2] = [
    (
        Scenario::Idle,
        "idle",
        "it counts the database's transactions in pg_stat_database",
    ),
    (
        Scenario::Soak,
        "soak",
        "it holds a transaction open in another PostgreSQL session and reads dead tuples",
    ),
];

pub async fn run(args: &BenchArgs) -> anyhow::Result<Status> {
    let parameters = Parameters::from_args(args);
    let scenarios = scenarios(args)?;
    let database_url = match (args.backend, &args.database_url) {
        (BenchBackend::Postgres, Some(url)) => Some(url.as_str()),
        (BenchBackend::Postgres, None) => {
            return Err(Failure::usage(
                "--backend postgres needs --database-url (or TASKER_DATABASE_URL): the benchmark \
                 measures PostgreSQL's commit rate and reads its statistics there; \
                 --backend sqlite measures a SQLite node instead",
            ));
        }
        (BenchBackend::Sqlite, Some(_)) => {
            return Err(Failure::usage(
                "--database-url (or TASKER_DATABASE_URL) names a PostgreSQL database, but \
                 --backend sqlite measures a SQLite node: leave it out (unset \
                 TASKER_DATABASE_URL) or use --backend postgres",
            ));
        }
        (BenchBackend::Sqlite, None) => None,
    };

    let mut pool: Option<PgPool> = None;
    let mut postgres = None;
    if let Some(database_url) = database_url {
        let connected = database::connect(database_url).await?;
        let settings = database::settings(&connected).await?;
        eprintln!(
            "==> PostgreSQL {}: measuring its durable-commit rate ({}s with 1 connection, {}s with 8)",
            settings.server_version, parameters.floor_seconds, parameters.floor_seconds
        );
        let commit_floor =
            database::commit_floor(&connected, Duration::from_secs(parameters.floor_seconds))
                .await?;
        postgres = Some(Postgres {
            settings,
            commit_floor,
        });
        pool = Some(connected);
    }

    let (url, server) = match &args.server {
        Some(url) => (url.clone(), None),
        None => {
            let store = match database_url {
                Some(database_url) => {
                    eprintln!("==> starting tasker server on the database");
                    NodeStore::Postgres { database_url }
                }
                None => {
                    eprintln!("==> starting tasker dev on a temporary SQLite directory");
                    NodeStore::Sqlite
                }
            };
            let server = ServerProcess::start(args.server_binary.as_deref(), store).await?;
            (server.url.clone(), Some(server))
        }
    };
    let server_pid = server.as_ref().and_then(ServerProcess::pid);
    let token = args.token.as_deref();
    let client = tasker_client::Client::new(&url, args.token.clone())?;
    client.namespace_create(shapes::NAMESPACE).await?;
    for shape in shapes::ALL {
        client.template_register_yaml(&shape.yaml()).await?;
    }

    let mut report = Report::new(parameters.clone(), args.backend, postgres, &url);
    let wanted = |scenario: Scenario| scenarios.contains(&scenario);

    if wanted(Scenario::Latency) {
        let worker = WorkerProcesses::start(&url, token, shapes::NAMESPACE, 1, (4, 4))?;
        for shape in [shapes::LINEAR, shapes::DIAMOND, shapes::MIXED, shapes::TREE] {
            report
                .latency
                .push(latency::run(&client, shape, parameters.runs).await?);
        }
        worker.stop().await;
    }
    if wanted(Scenario::Create) {
        report
            .create
            .push(create::run(&client, shapes::ONE, parameters.create_tasks).await?);
    }
    if wanted(Scenario::Throughput) {
        let workers = throughput::Workers {
            server: &url,
            token,
            count: parameters.workers,
            concurrency: parameters.concurrency,
            report_requests: parameters.report_requests,
        };
        for run in [
            (shapes::ONE, throughput::Created::Before),
            (shapes::LINEAR, throughput::Created::Before),
            (shapes::ONE, throughput::Created::WhileRunning),
        ] {
            report.throughput.push(
                throughput::run(
                    &client,
                    pool.as_ref(),
                    run,
                    parameters.tasks,
                    &workers,
                    server_pid,
                )
                .await?,
            );
        }
    }
    if let (true, Some(pool)) = (wanted(Scenario::Idle), &pool) {
        report.idle = Some(
            idle::run(
                &client,
                pool,
                &url,
                token,
                parameters.idle_workers,
                parameters.idle_seconds,
                server_pid,
            )
            .await?,
        );
    }
    if let (true, Some(pool), Some(database_url)) = (wanted(Scenario::Soak), &pool, database_url) {
        let workers = throughput::Workers {
            server: &url,
            token,
            count: parameters.workers,
            concurrency: parameters.concurrency,
            report_requests: parameters.report_requests,
        };
        report.soak = Some(
            soak::run(
                &client,
                pool,
                database_url,
                &workers,
                Duration::from_secs(parameters.soak_seconds),
            )
            .await?,
        );
    }
    if let Some(server) = server {
        server.stop().await;
    }

    match args.output {
        Output::Json => emit_json(&report)?,
        Output::Text => crate::output::emit(&report.to_string())?,
    }
    Ok(Status::Ok)
}

/// The scenarios to run: those asked for, or all the backend can run. A
/// scenario that needs PostgreSQL asked for on SQLite is a usage error
/// naming it.
fn scenarios(args: &BenchArgs) -> anyhow::Result<Vec<Scenario>> {
    let all = [
        Scenario::Latency,
        Scenario::Create,
        Scenario::Throughput,
        Scenario::Idle,
        Scenario::Soak,
    ];
    if args.backend == BenchBackend::Postgres {
        return Ok(match args.scenarios.is_empty() {
            true => all.to_vec(),
            false => args.scenarios.clone(),
        });
    }
    if args.scenarios.is_empty() {
        let skipped: Vec<&str> = POSTGRES_ONLY.iter().map(|(_, name, _)| *name).collect();
        eprintln!(
            "==> SQLite: scenarios {} not run (they need PostgreSQL)",
            skipped.join(" and ")
        );
        return Ok(all
            .into_iter()
            .filter(|s| !POSTGRES_ONLY.iter().any(|(only, _, _)| only == s))
            .collect());
    }
    for (scenario, name, why) in POSTGRES_ONLY {
        if args.scenarios.contains(&scenario) {
            return Err(Failure::usage(format!(
                "--scenario {name} needs PostgreSQL ({why}); it cannot run with --backend sqlite"
            )));
        }
    }
    Ok(args.scenarios.clone())
}
