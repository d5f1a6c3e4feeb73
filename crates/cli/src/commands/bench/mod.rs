//! `tasker bench`: measures a Tasker server the way a user runs it — worker
//! processes over HTTP against a real PostgreSQL — and prints every figure
//! beside what PostgreSQL itself allows on the same database (its
//! durable-commit rate with one and with eight connections, measured first).
//!
//! ```text
//!  tasker bench ──HTTP──► tasker server (started here, or --server) ──► PostgreSQL
//!       │                        ▲                                       ▲
//!       │ spawns                 │ HTTP                                  │ statistics,
//!       └──► tasker bench-worker × M (no-op handler) ─┘                  │ commit floor
//!       └────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Scenarios: `latency` (one task at a time per DAG shape), `create` (one by
//! one and concurrent), `throughput` (burn-down of pre-created tasks), `idle`
//! (what waiting workers cost), `soak` (steady load while another session
//! holds a transaction open, and after). Nothing here asserts a timing: the command
//! reports; docs/benchmarks.md records what it reported.

mod bench_worker;
mod create;
mod database;
mod idle;
mod latency;
mod processes;
mod progress;
mod report;
mod shapes;
mod soak;
mod summary;
mod throughput;

use std::time::Duration;

use crate::cli::{BenchArgs, Output, Scenario};
use crate::output::emit_json;
use crate::status::Status;

pub use bench_worker::run as run_worker;
use processes::{ServerProcess, WorkerProcesses};
use report::{Parameters, Report};

pub async fn run(args: &BenchArgs) -> anyhow::Result<Status> {
    let parameters = Parameters::from_args(args);
    let pool = database::connect(&args.database_url).await?;
    let database_settings = database::settings(&pool).await?;

    eprintln!(
        "==> PostgreSQL {}: measuring its durable-commit rate ({}s with 1 connection, {}s with 8)",
        database_settings.server_version, parameters.floor_seconds, parameters.floor_seconds
    );
    let commit_floor =
        database::commit_floor(&pool, Duration::from_secs(parameters.floor_seconds)).await?;

    let (url, server) = match &args.server {
        Some(url) => (url.clone(), None),
        None => {
            eprintln!("==> starting tasker server on the database");
            let server =
                ServerProcess::start(args.server_binary.as_deref(), &args.database_url).await?;
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

    let mut report = Report::new(parameters.clone(), database_settings, commit_floor, &url);
    let wanted =
        |scenario: Scenario| args.scenarios.is_empty() || args.scenarios.contains(&scenario);

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
        for shape in [shapes::ONE, shapes::LINEAR] {
            report.throughput.push(
                throughput::run(
                    &client,
                    &pool,
                    shape,
                    parameters.tasks,
                    &workers,
                    server_pid,
                )
                .await?,
            );
        }
    }
    if wanted(Scenario::Idle) {
        report.idle = Some(
            idle::run(
                &client,
                &pool,
                &url,
                token,
                parameters.idle_workers,
                parameters.idle_seconds,
                server_pid,
            )
            .await?,
        );
    }
    if wanted(Scenario::Soak) {
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
                &pool,
                &args.database_url,
                &workers,
                Duration::from_secs(parameters.soak_seconds),
            )
            .await?,
        );
    }
    drop(server);

    match args.output {
        Output::Json => emit_json(&report)?,
        Output::Text => crate::output::emit(&report.to_string())?,
    }
    Ok(Status::Ok)
}
