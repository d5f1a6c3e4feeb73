//! `tasker bench-worker`: a worker process whose one handler does nothing,
//! started by `tasker bench` (hidden from help: it is part of the benchmark,
//! not a tool of its own).

use tasker_worker::{Worker, handler_fn};

use super::shapes::HANDLER;
use crate::cli::BenchWorkerArgs;
use crate::commands::client;
use crate::shutdown_signal::shutdown_signal;
use crate::status::{Failure, Status};

pub async fn run(args: &BenchWorkerArgs) -> anyhow::Result<Status> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let worker = Worker::builder(client(&args.client)?)
        .worker_id(format!("bench-{}", std::process::id()))
        .namespaces(args.namespaces.clone())
        .concurrency(args.concurrency)
        .report_requests_in_flight(args.report_requests)
        .handler(
            HANDLER,
            handler_fn(|_ctx| async { Ok(serde_json::Value::Null) }),
        )
        .build()
        .map_err(|e| Failure::usage(e.to_string()))?;
    worker.run(shutdown_signal()).await?;
    Ok(Status::Ok)
}
