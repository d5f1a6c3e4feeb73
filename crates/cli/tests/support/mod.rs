//! What the process-level tests of `scripts/dev`, the worker's shutdown, the
//! first-workflow guide and the cluster suite share: the `tasker` binary with
//! a clean environment, a `tasker server` on port 0 whose address is read
//! from its "listening on" line, and (in `cluster`) a local cluster started
//! with `tasker cluster up`. Child processes and waiting on conditions come
//! from `tasker_testkit::process`.

#![allow(dead_code)]

pub mod browser;
pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[allow(unused_imports)]
pub use tasker_testkit::process::{Process, listening_url, send_signal, wait_until};

/// The repository's root: scripts, docs and templates are found from it.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The `tasker` binary with a clean slate: no `TASKER_*` variable of the
/// caller's environment leaks in.
pub fn tasker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tasker"));
    clean_env(&mut command);
    command.current_dir(repo_root());
    command
}

pub fn clean_env(command: &mut Command) {
    for (name, _) in std::env::vars() {
        if name.starts_with("TASKER_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
}

/// A `tasker server` on port 0 of `database_url`, auth off.
pub struct Server {
    pub process: Process,
    pub url: String,
}

impl Server {
    pub fn start(database_url: &str) -> Server {
        let mut process = Process::start(
            "server",
            tasker()
                .args(["server", "--listen", "127.0.0.1:0", "--node-id", "test"])
                .args(["--database-url", database_url])
                .env("TASKER_AUTH_ENABLED", "false")
                .env("RUST_LOG", "warn"),
        );
        let url = listening_url(&process.wait_for_line("listening on ", Duration::from_secs(60)));
        Server { process, url }
    }

    pub fn client(&self) -> tasker_client::Client {
        tasker_client::Client::new(&self.url, None).expect("client")
    }
}

/// Waits until step `name` of task `id` is in `state`.
pub async fn wait_for_step(
    client: &tasker_client::Client,
    id: uuid::Uuid,
    name: &str,
    state: tasker_model::StepState,
) -> tasker_model::Step {
    wait_until(
        &format!("step {name} {state}"),
        Duration::from_secs(60),
        || async {
            let steps = client.task_steps(id).await.ok()?;
            steps
                .into_iter()
                .find(|s| s.name == name && s.state == state)
        },
    )
    .await
}
