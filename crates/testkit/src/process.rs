//! Child processes for process-level tests (the end-to-end tests and the
//! cluster suite): output collected line by line and echoed to the test's
//! stderr, waiting for a printed line, signals, and waiting on conditions
//! with a deadline.
//!
//! A [`Process`] is killed when dropped, so a failing test leaves nothing
//! running. Nothing here sleeps for correctness: every wait polls a
//! condition and fails with a message naming what it waited for.

use std::io::{BufRead as _, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child process whose stdout and stderr lines are collected (and echoed
/// to the test's stderr), killed when dropped.
#[derive(Debug)]
pub struct Process {
    pub child: Child,
    name: String,
    lines: Arc<Mutex<Vec<String>>>,
    /// Output streams not yet read to their end.
    streams_open: Arc<AtomicUsize>,
}

/// How long an exited process's last lines may take to be read: its pipes
/// close at its exit unless a process it started still holds them.
const DRAIN_PATIENCE: Duration = Duration::from_secs(5);

impl Process {
    /// Starts `command` with piped output; panics when it cannot start.
    pub fn start(name: &str, command: &mut Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let streams_open = Arc::new(AtomicUsize::new(2));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect(name, stdout, lines.clone(), streams_open.clone());
        collect(name, stderr, lines.clone(), streams_open.clone());
        Process {
            child,
            name: name.to_owned(),
            lines,
            streams_open,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
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
            if let Some(line) = self.find_line(marker) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain_output();
                if let Some(line) = self.find_line(marker) {
                    return line;
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

    /// After the process exited: waits until its output has been read to
    /// the end, so that [`Process::output`] holds its last lines, or for at
    /// most [`DRAIN_PATIENCE`] (a process it started may keep the pipes).
    fn drain_output(&self) {
        let deadline = Instant::now() + DRAIN_PATIENCE;
        while self.streams_open.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn find_line(&self, marker: &str) -> Option<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|line| line.contains(marker))
            .cloned()
    }

    /// Waits for the process to exit, failing after `patience`.
    pub fn wait_exit(&mut self, patience: Duration) -> ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.drain_output();
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
/// Panics when `kill` fails (e.g. no such process).
pub fn send_signal(signal: &str, target: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {target} failed");
}

fn collect(
    name: &str,
    stream: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    streams_open: Arc<AtomicUsize>,
) {
    let name = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{name}] {line}");
            lines.lock().unwrap().push(line);
        }
        streams_open.fetch_sub(1, Ordering::Release);
    });
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
