//! One module per command group; each turns parsed arguments into calls on
//! the engine (server, migrate) or the HTTP client (everything else) and
//! prints the outcome.

mod bench;
mod config_show;
mod migrate;
mod namespace;
mod server;
mod step;
mod store_connection;
mod task;
mod template;
mod watch;
mod worker;

use crate::cli::{ClientArgs, Command, ConfigAction};
use crate::status::Status;

pub async fn run(command: Command) -> anyhow::Result<Status> {
    match command {
        Command::Server(args) => server::run(&args).await,
        Command::Migrate(args) => migrate::run(&args).await,
        Command::Config {
            action: ConfigAction::Show { server, output },
        } => config_show::run(&server, output),
        Command::Namespace { action } => namespace::run(action).await,
        Command::Template { action } => template::run(action).await,
        Command::Task { action } => task::run(action).await,
        Command::Step { action } => step::run(action).await,
        Command::Worker { action } => worker::run(action).await,
        Command::Bench(args) => bench::run(&args).await,
        Command::BenchWorker(args) => bench::run_worker(&args).await,
    }
}

/// A client for the server that `args` name.
fn client(args: &ClientArgs) -> anyhow::Result<tasker_client::Client> {
    Ok(tasker_client::Client::new(
        &args.server,
        args.token.clone(),
    )?)
}
