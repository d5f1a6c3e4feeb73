//! `tasker cluster down`: stops what `up` started, workers first (their
//! running steps are released while the nodes still take releases), then
//! the nodes, then the balancer, then a database `up` started. Each gets
//! SIGTERM, then SIGKILL when the grace runs out. The record and the pid
//! files go; the logs stay. Running it again, or with nothing up, is fine.

use std::time::Duration;

use super::state::{self, ClusterFile, Instance, Kind, StateDir};
use crate::cli::ClusterDownArgs;
use crate::status::Status;

pub async fn run(args: &ClusterDownArgs) -> anyhow::Result<Status> {
    let state = StateDir::new(&std::path::absolute(&args.state.state_dir)?);
    let Some(cluster) = state.load()? else {
        // Pid files without a record are stale: nothing to stop by them.
        state.forget()?;
        eprintln!("no cluster is up in {}", state.dir.display());
        return Ok(Status::Ok);
    };
    let grace = args.grace.as_duration();
    tokio::task::spawn_blocking(move || stop(&state, &cluster, grace)).await??;
    Ok(Status::Ok)
}

/// Stops every instance of `cluster` in order, then forgets it.
pub fn stop(state: &StateDir, cluster: &ClusterFile, grace: Duration) -> anyhow::Result<()> {
    for kind in [Kind::Worker, Kind::Node, Kind::Balancer] {
        let instances: Vec<&Instance> = cluster.of_kind(kind).collect();
        stop_all(&instances, grace);
    }
    if cluster.of_kind(Kind::Database).next().is_some()
        && let Some(server) = tasker_testkit::LocalServer::running_in(&state.postgres_dir())?
    {
        eprintln!(
            "stopping postgres (pid {})",
            server.pid().unwrap_or_default()
        );
        server.stop()?;
    }
    state.forget()
}

/// SIGTERM to each, then SIGKILL to those still running after `grace`.
fn stop_all(instances: &[&Instance], grace: Duration) {
    let running: Vec<&Instance> = instances
        .iter()
        .copied()
        .filter(|i| state::alive(i))
        .collect();
    for instance in &running {
        eprintln!("stopping {} (pid {})", instance.name, instance.pid);
        state::signal(instance.pid, "TERM");
    }
    let stubborn = state::wait_gone(&running, grace);
    for instance in &stubborn {
        eprintln!(
            "{} (pid {}) still running after {grace:?}: killing it",
            instance.name, instance.pid
        );
        state::signal(instance.pid, "KILL");
    }
    for instance in state::wait_gone(&stubborn, Duration::from_secs(5)) {
        eprintln!(
            "warning: {} (pid {}) survived SIGKILL",
            instance.name, instance.pid
        );
    }
}
