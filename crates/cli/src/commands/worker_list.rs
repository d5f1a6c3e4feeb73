//! `tasker worker list`, and the live workers for the warnings of other
//! commands when nobody would run their steps.

use tasker_client::Client;
use tasker_store::Worker;

use super::client;
use crate::cli::{ClientArgs, Output};
use crate::output::{Coverage, emit, emit_json, handlers_summarized, worker_table};
use crate::status::Status;

pub async fn run(args: &ClientArgs) -> anyhow::Result<Status> {
    let live = client(args)?.cluster().await?.workers;
    let workers: Vec<Worker> = live.iter().map(|w| w.worker.clone()).collect();
    match args.output {
        // With each worker's steps in flight.
        Output::Json => emit_json(&live)?,
        Output::Text if workers.is_empty() => {
            eprintln!("no live workers: none has polled or heartbeated recently")
        }
        Output::Text => {
            emit(&worker_table(&workers, chrono::Utc::now()).to_string())?;
            if handlers_summarized(&workers) {
                eprintln!("`tasker worker list -o json` names every handler");
            }
        }
    }
    Ok(Status::Ok)
}

/// The workers the server heard from recently; `None` when it cannot say
/// (a token without the right role, an older server): warnings are then
/// left out, never turned into a failure.
pub async fn live_workers(client: &Client) -> Option<Vec<Worker>> {
    client
        .cluster()
        .await
        .ok()
        .map(|c| c.workers.into_iter().map(|w| w.worker).collect())
}

/// Warns on stderr about the steps (name, handler) of `namespace` that no
/// live worker would take.
pub fn warn_uncovered<'s>(
    workers: Option<&[Worker]>,
    namespace: &str,
    steps: impl IntoIterator<Item = (&'s str, &'s str)>,
) {
    let Some(workers) = workers else { return };
    for warning in Coverage::new(workers).warnings(namespace, steps) {
        eprintln!("{warning}");
    }
}
