//! `tasker worker example`: the SDK worker with the example handlers, for
//! demos and for trying the templates shipped in `templates/`.

use std::io::IsTerminal as _;

use tasker_worker::Worker;
use tasker_worker::examples;

use super::client;
use crate::cli::WorkerAction;
use crate::shutdown_signal::shutdown_signal;
use crate::status::{Failure, Status};

pub async fn run(action: WorkerAction) -> anyhow::Result<Status> {
    let WorkerAction::Example {
        namespaces,
        concurrency,
        worker_id,
        shutdown_grace,
        record_executions,
        client: args,
    } = action;
    init_logging();
    let namespaces = if namespaces.is_empty() {
        examples::NAMESPACES.iter().map(|n| n.to_string()).collect()
    } else {
        namespaces
    };
    let builder = Worker::builder(client(&args)?);
    let builder = match &record_executions {
        None => examples::register_examples(builder),
        Some(path) => {
            let log = examples::ExecutionLog::open(path).map_err(|e| {
                Failure::usage(format!("--record-executions {}: {e}", path.display()))
            })?;
            examples::register_examples_recording(builder, log)
        }
    };
    let mut builder = builder
        .namespaces(namespaces)
        .concurrency(concurrency)
        .shutdown_grace(shutdown_grace.as_duration());
    if let Some(id) = worker_id {
        builder = builder.worker_id(id);
    }
    let worker = builder.build().map_err(|e| Failure::usage(e.to_string()))?;
    eprintln!(
        "worker {} taking steps of {} from {} ({} handlers, concurrency {concurrency}); ctrl-c to stop",
        worker.worker_id(),
        worker.namespaces().join(", "),
        args.server,
        worker.handler_names().len(),
    );
    worker.run(shutdown_signal()).await?;
    Ok(Status::Ok)
}

/// Worker logs (registration, failures, shutdown) to stderr; `RUST_LOG`
/// adjusts the filter.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
