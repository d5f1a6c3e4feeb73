//! The `tasker` binary: a server node (`tasker server`, `tasker migrate`),
//! the operator's command line over the HTTP API (namespaces, templates,
//! tasks, steps) and an example worker.
//!
//! Data goes to stdout (tables, or JSON with `--output json`), diagnostics
//! and logs to stderr, and the exit status says what happened (see
//! [`status::Status`]). The binary never talks to the database except as a
//! server node or to migrate it: every other command goes through the API.

mod cli;
mod commands;
mod config;
mod output;
#[cfg(test)]
mod sample_records;
mod shutdown_signal;
mod status;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(status::Status::Failed.code());
        }
    };
    let outcome = runtime.block_on(commands::run(cli.command));
    // Background tasks (a worker's heartbeats, the notifier) must not hold
    // the process open once the command is done.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(status) => ExitCode::from(status.code()),
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", status::describe(&error));
            ExitCode::from(status::status_of(&error).code())
        }
    }
}

/// Output piped into a reader that stopped early (`| head`): not an error.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
