//! A local cluster for the cluster suite, started the way a user starts
//! one: `tasker cluster up` with a state directory of its own (a temp dir)
//! and free ports picked by the command (`--base-port 0 --port 0`), its
//! instances read back from `tasker cluster status --output json`, and
//! `tasker cluster down` when dropped.
//!
//! The suite's tests run one at a time ([`serial`]): two clusters at once
//! would overload a 2-core machine and make timing bounds meaningless.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tasker_client::{Client, NewTask};
use tokio::sync::{Mutex, MutexGuard};

use super::{Process, tasker, wait_until};

/// Held for a whole test: only one cluster runs at a time in a test binary.
/// An async mutex, not tied to any runtime (each test has its own), and
/// released when a failing test unwinds.
pub async fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}

/// What `tasker cluster up` is asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: usize,
    pub workers: usize,
    pub worker_concurrency: usize,
    pub record_executions: bool,
    /// Environment for the nodes and workers (e.g. a small pool).
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 3,
            workers: 2,
            worker_concurrency: 8,
            record_executions: false,
            env: Vec::new(),
        }
    }
}

/// One node or worker as `status` reports it.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub pid: u32,
    pub url: Option<String>,
}

impl Member {
    pub fn client(&self) -> Client {
        Client::new(self.url.as_deref().expect("a node has a URL"), None).expect("client")
    }
}

/// A running local cluster, brought down when dropped.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub balancer: String,
    pub nodes: Vec<Member>,
    pub workers: Vec<Member>,
    pub database_url: String,
    pub options: Options,
}

impl Cluster {
    /// `tasker cluster up` against `database_url`; panics with the command's
    /// output when it fails.
    pub fn up(database_url: &str, options: Options) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("tasker-cluster-")
            .tempdir()
            .expect("state dir");
        let mut command = tasker();
        command
            .args(["cluster", "up", "--base-port", "0", "--port", "0"])
            .args(["--nodes", &options.nodes.to_string()])
            .args(["--workers", &options.workers.to_string()])
            .args([
                "--worker-concurrency",
                &options.worker_concurrency.to_string(),
            ])
            .args(["--database-url", database_url])
            .arg("--state-dir")
            .arg(dir.path())
            .env("RUST_LOG", "warn");
        if options.record_executions {
            command
                .arg("--record-executions")
                .arg(dir.path().join("executions.jsonl"));
        }
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let mut up = Process::start("cluster up", &mut command);
        let status = up.wait_exit(Duration::from_secs(120));
        assert!(
            status.success(),
            "tasker cluster up failed ({status}):\n{}",
            up.output()
        );
        let mut cluster = Cluster {
            dir,
            balancer: String::new(),
            nodes: Vec::new(),
            workers: Vec::new(),
            database_url: database_url.to_owned(),
            options,
        };
        let status = cluster.status();
        cluster.balancer = status["balancer_url"]
            .as_str()
            .expect("balancer")
            .to_owned();
        cluster.nodes = members(&status, "node");
        cluster.workers = members(&status, "worker");
        assert_eq!(cluster.nodes.len(), cluster.options.nodes);
        assert_eq!(cluster.workers.len(), cluster.options.workers);
        cluster
    }

    /// `tasker cluster status --output json` (whatever its exit status).
    pub fn status(&self) -> Value {
        let output = self
            .command(&["status", "--output", "json"])
            .output()
            .expect("run tasker cluster status");
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "status printed no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }

    /// `tasker cluster <args> --state-dir <this cluster's>`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = tasker();
        command.args(["cluster"]).args(args);
        command.arg("--state-dir").arg(self.dir.path());
        command
    }

    /// A client through the balancer.
    pub fn client(&self) -> Client {
        Client::new(&self.balancer, None).expect("client")
    }

    /// The file the workers record executions in (`record_executions`).
    pub fn executions_file(&self) -> PathBuf {
        self.dir.path().join("executions.jsonl")
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join("logs").join(format!("{name}.log"))
    }

    /// Another example worker, through the balancer, owned by the test.
    pub fn start_worker(&self, name: &str) -> Process {
        let mut command = tasker();
        command
            .args(["worker", "example", "--server", &self.balancer])
            .args(["--worker-id", name, "--shutdown-grace", "2s"])
            .args([
                "--concurrency",
                &self.options.worker_concurrency.to_string(),
            ])
            .env("RUST_LOG", "warn");
        if self.options.record_executions {
            command
                .arg("--record-executions")
                .arg(self.executions_file());
        }
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        Process::start(name, &mut command)
    }

    /// Waits until the process `pid` is gone (a zombie counts as gone).
    pub async fn wait_gone(&self, pid: u32) {
        wait_until(
            &format!("process {pid} gone"),
            Duration::from_secs(20),
            || async move { (!runs(pid)).then_some(()) },
        )
        .await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let output = self.command(&["down", "--grace", "3s"]).output();
        if let Ok(output) = output
            && !output.status.success()
        {
            eprintln!(
                "tasker cluster down failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

fn members(status: &Value, kind: &str) -> Vec<Member> {
    status["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["kind"] == kind)
        .map(|i| Member {
            name: i["name"].as_str().unwrap().to_owned(),
            pid: i["pid"].as_u64().unwrap() as u32,
            url: i["url"].as_str().map(str::to_owned),
        })
        .collect()
}

/// Whether `pid` runs (and is not a zombie).
pub fn runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// SIGKILL to `pid`.
pub fn kill_hard(pid: u32) {
    super::send_signal("KILL", &pid.to_string());
}

/// A task of an example template.
/// Node settings for fault tests: leases short enough that a killed
/// worker's step comes back within seconds.
pub fn short_leases() -> Vec<(String, String)> {
    vec![("TASKER_ENGINE_LEASE_DURATION".to_owned(), "3s".to_owned())]
}

pub fn new_task(namespace: &str, template: &str, context: Value) -> NewTask {
    NewTask {
        namespace: namespace.to_owned(),
        template: template.to_owned(),
        version: None,
        context,
        idempotency_key: None,
        tags: Vec::new(),
        deadline: None,
    }
}

/// A connection to the test database, for checking what was recorded.
pub async fn connect(url: &str) -> sqlx::PgConnection {
    <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connect to the test database")
}

/// Waits until no task of the database is running; returns the count of
/// tasks in each final state.
pub async fn wait_all_finished(url: &str, patience: Duration) -> Vec<(String, i64)> {
    let mut db = connect(url).await;
    let deadline = std::time::Instant::now() + patience;
    loop {
        let running: i64 =
            sqlx::query_scalar("SELECT count(*) FROM tasker.tasks WHERE state = 'running'")
                .fetch_one(&mut db)
                .await
                .expect("count running tasks");
        if running == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{running} tasks still running after {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sqlx::query_as("SELECT state, count(*) FROM tasker.tasks GROUP BY state ORDER BY state")
        .fetch_all(&mut db)
        .await
        .expect("count tasks by state")
}

/// Every failed step: its task, name, attempts and last error, to name
/// what went wrong when a run expected none.
pub async fn failed_steps(url: &str) -> Vec<(uuid::Uuid, String, i32, Option<Value>)> {
    let mut db = connect(url).await;
    sqlx::query_as(
        "SELECT task_id, name, attempt, error FROM tasker.steps WHERE state = 'failed' \
         ORDER BY task_id, name",
    )
    .fetch_all(&mut db)
    .await
    .expect("read failed steps")
}

/// Steps that have other than exactly one accepted result: a complete step
/// with other than one transition into `complete`, or a transition into
/// `complete` for a step that is not complete.
pub async fn steps_without_exactly_one_result(url: &str) -> Vec<(uuid::Uuid, i64)> {
    let mut db = connect(url).await;
    sqlx::query_as(
        "SELECT s.id, count(t.id) FROM tasker.steps s \
         LEFT JOIN tasker.transitions t ON t.step_id = s.id AND t.to_state = 'complete' \
         GROUP BY s.id, s.state \
         HAVING (s.state = 'complete') <> (count(t.id) = 1)",
    )
    .fetch_all(&mut db)
    .await
    .expect("count accepted results")
}

/// The path of a file under the cluster's state directory.
pub fn state_file(cluster: &Cluster, name: &str) -> PathBuf {
    Path::new(cluster.dir.path()).join(name)
}
