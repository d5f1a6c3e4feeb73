//! The processes a benchmark starts: a server node when no server was named
//! (`tasker server` on PostgreSQL, or `tasker dev` on a temporary SQLite
//! directory), and worker processes (`tasker bench-worker`), each this same
//! binary, so that work crosses real HTTP between real processes as it does
//! for a user. Every process is killed when its handle is dropped: a run
//! that fails half-way leaves nothing behind.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// What a started node stores its data in.
#[derive(Debug, Clone, Copy)]
pub enum NodeStore<'a> {
    /// `tasker server` on this PostgreSQL database.
    Postgres { database_url: &'a str },
    /// `tasker dev` on a fresh temporary directory: the embedded SQLite
    /// store with its synced commits (not `--memory`, which syncs nothing).
    /// Its in-process example worker serves the `examples` namespace only.
    Sqlite,
}

/// A server node the benchmark started.
#[derive(Debug)]
pub struct ServerProcess {
    // Dropped first: the node is killed before its directory is removed.
    child: Child,
    _directory: Option<tempfile::TempDir>,
    pub url: String,
}

impl ServerProcess {
    /// Starts a node on a loopback port chosen by the system, auth off, and
    /// waits for its "listening on" line.
    pub async fn start(binary: Option<&Path>, store: NodeStore<'_>) -> anyhow::Result<Self> {
        let exe = match binary {
            Some(path) => path.to_owned(),
            None => std::env::current_exe().context("cannot find the tasker binary")?,
        };
        let mut command = Command::new(&exe);
        let directory = match store {
            NodeStore::Postgres { database_url } => {
                command
                    .args(["server", "--listen", "127.0.0.1:0", "--log-level", "warn"])
                    .args(["--node-id", &format!("bench-{}", std::process::id())])
                    .args(["--database-url", database_url]);
                None
            }
            NodeStore::Sqlite => {
                let directory = tempfile::Builder::new()
                    .prefix("tasker-bench-")
                    .tempdir()
                    .context("cannot create a directory for the SQLite node")?;
                command
                    .args(["dev", "--listen", "127.0.0.1:0", "--log-level", "warn"])
                    .arg("--dir")
                    .arg(directory.path());
                Some(directory)
            }
        };
        let mut child = command
            .env("TASKER_AUTH_ENABLED", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} as a server node", exe.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    return Ok::<_, anyhow::Error>(url.to_owned());
                }
            }
            bail!("the server exited before it listened; see its output above")
        })
        .await
        .context("the server did not start listening within 60s")??;
        // Keep draining stdout so that the server never blocks writing to it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            _directory: directory,
            url,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the node and waits until it has exited, then removes its
    /// directory, if it had one.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Worker processes running the benchmark's no-op handler.
#[derive(Debug, Default)]
pub struct WorkerProcesses {
    children: Vec<Child>,
}

impl WorkerProcesses {
    /// Starts `count` workers of `concurrency` slots each on `namespace`,
    /// each keeping up to `report_requests` report requests in flight.
    pub fn start(
        server: &str,
        token: Option<&str>,
        namespace: &str,
        count: usize,
        (concurrency, report_requests): (usize, usize),
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the tasker binary")?;
        let mut children = Vec::with_capacity(count);
        for _ in 0..count {
            let mut command = Command::new(&exe);
            command
                .args(["bench-worker", "--server", server, "--namespace", namespace])
                .args(["--concurrency", &concurrency.to_string()])
                .args(["--report-requests", &report_requests.to_string()])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            match token {
                Some(token) => command.env("TASKER_TOKEN", token),
                None => command.env_remove("TASKER_TOKEN"),
            };
            children.push(command.spawn().context("cannot start a bench worker")?);
        }
        Ok(Self { children })
    }

    /// The worker id each process registers with (`bench-<pid>`).
    pub fn worker_ids(&self) -> Vec<String> {
        self.children
            .iter()
            .filter_map(Child::id)
            .map(|pid| format!("bench-{pid}"))
            .collect()
    }

    /// Stops every worker and waits until each has exited.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
        }
        for child in &mut self.children {
            let _ = child.wait().await;
        }
    }
}

/// A process's resident memory now and at its peak (Linux `/proc`), in bytes.
pub fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
