//! One module per command group; each turns parsed arguments into calls on
//! the engine (server, dev, migrate) or the HTTP client (everything else) and
//! prints the outcome.

mod bench;
mod cluster;
mod config_show;
mod dead_letter;
mod dev;
mod migrate;
mod namespace;
mod node;
pub mod schedule;
mod server;
mod step;
mod store_connection;
mod task;
mod task_batch;
mod task_ref;
mod template;
mod watch;
mod worker;
mod worker_list;

pub use dead_letter::DeadLetterAction;

use crate::cli::{ClientArgs, Command, ConfigAction, WorkerCommand};
use crate::status::Status;

pub async fn run(command: Command) -> anyhow::Result<Status> {
    match command {
        Command::Server(args) => server::run(&args).await,
        Command::Dev(args) => dev::run(&args).await,
        Command::Migrate(args) => migrate::run(&args).await,
        Command::Config {
            action: ConfigAction::Show { server, output },
        } => config_show::run(&server, output),
        Command::Namespace { action } => namespace::run(action).await,
        Command::Template { action } => template::run(action).await,
        Command::Task { action } => task::run(action).await,
        Command::Step { action } => step::run(action).await,
        Command::Schedule { action } => schedule::run(action).await,
        Command::DeadLetter { action } => dead_letter::run(action).await,
        Command::Worker {
            action: WorkerCommand::List { client },
        } => worker_list::run(&client).await,
        Command::Worker {
            action: WorkerCommand::Run(action),
        } => worker::run(action).await,
        Command::Cluster { action } => cluster::run(action).await,
        Command::Bench(args) => bench::run(&args).await,
        Command::BenchWorker(args) => bench::run_worker(&args).await,
    }
}

/// A client for the server that `args` name.
fn client(args: &ClientArgs) -> anyhow::Result<tasker_client::Client> {
    let client = tasker_client::Client::new(&args.server, args.token.clone())?;
    let Some(path) = &args.ca_cert else {
        return Ok(client);
    };
    let bad_file = |e: &dyn std::fmt::Display| {
        crate::status::Failure::usage(format!("--ca-cert {}: {e}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| bad_file(&e))?;
    client.with_root_certificate(&pem).map_err(|e| bad_file(&e))
}
