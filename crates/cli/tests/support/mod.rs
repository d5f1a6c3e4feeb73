//! What the process-level tests of `scripts/dev`, the worker's shutdown and
//! the first-workflow guide share: child processes whose output is collected
//! line by line and echoed, a `tasker server` on port 0 whose address is read
//! from its "listening on" line, and waiting on conditions.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A child process whose stdout and stderr lines are collected (and echoed
/// to the test's stderr), killed when dropped.
pub struct Process {
    pub child: Child,
    name: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub fn start(name: &str, command: &mut Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect(name, stdout, lines.clone());
        collect(name, stderr, lines.clone());
        Process {
            child,
            name: name.to_owned(),
            lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line printed so far, stdout and stderr interleaved.
    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line containing `marker` and returns it; fails when the
    /// process exits first or `patience` runs out.
    pub fn wait_for_line(&mut self, marker: &str, patience: Duration) -> String {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|line| line.contains(marker))
            {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the readers catch up with the last lines.
                std::thread::sleep(Duration::from_millis(100));
                if let Some(line) = self
                    .lines
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|l| l.contains(marker))
                {
                    return line.clone();
                }
                panic!(
                    "{} exited ({status}) without printing {marker:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} printed no {marker:?} within {patience:?}:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit, failing after `patience`.
    pub fn wait_exit(&mut self, patience: Duration) -> ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {patience:?}:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (e.g. "INT", "TERM") to the process.
    pub fn signal(&self, signal: &str) {
        send_signal(signal, &self.pid().to_string());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!("killing {}", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `kill -<signal> -- <target>`; a target `-<pgid>` signals a process group.
pub fn send_signal(signal: &str, target: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {target} failed");
}

fn collect(name: &str, stream: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    let name = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{name}] {line}");
            lines.lock().unwrap().push(line);
        }
    });
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

/// The URL in a `listening on http://<address> ...` line, or in a line
/// quoting such a URL.
pub fn listening_url(line: &str) -> String {
    let start = line
        .find("http://")
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    line[start..]
        .split_whitespace()
        .next()
        .expect("a URL")
        .to_owned()
}

/// Polls `check` every 50 ms until it returns `Some`, failing with `what`
/// after `patience`.
pub async fn wait_until<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {patience:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
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
