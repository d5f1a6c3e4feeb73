//! `tasker cluster up|status|logs|down`: a local cluster for people and
//! tests — N server nodes on consecutive ports, M example workers, and an
//! nginx round-robin balancer in front, against one PostgreSQL.
//!
//! ```text
//!   workers ──▶ balancer (nginx, :8080) ──▶ node-1 (:8081) ─┐
//!   clients ──▶        round robin      ──▶ node-2 (:8082) ─┼──▶ PostgreSQL
//!                                       ──▶ node-N ...     ─┘
//! ```
//!
//! Every process runs detached with its pid, log and the balancer's files
//! in the state directory (`state`), so that later commands find them. This
//! is a development and test harness: auth is off on its nodes, and it
//! must never be pointed at a database holding data anyone cares about
//! (`up` applies migrations to it and, when it starts a PostgreSQL itself,
//! runs it with `fsync=off`).

mod down;
mod logs;
mod nginx;
mod ports;
mod state;
mod status;
mod up;

use crate::cli::ClusterAction;
use crate::status::Status;

pub async fn run(action: ClusterAction) -> anyhow::Result<Status> {
    match action {
        ClusterAction::Up(args) => up::run(&args).await,
        ClusterAction::Status(args) => status::run(&args).await,
        ClusterAction::Logs(args) => logs::run(&args).await,
        ClusterAction::Down(args) => down::run(&args).await,
    }
}
