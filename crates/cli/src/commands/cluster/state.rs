//! What `tasker cluster up` started, kept in the state directory so that
//! `status`, `logs` and `down` (other processes, later) find it:
//!
//! ```text
//!  <state dir>/
//!    cluster.json      the instances: name, kind, pid, port, URL, log file
//!    run/<name>.pid    one pid file per running process
//!    logs/<name>.log   each process's stdout and stderr
//!    nginx/            the balancer's configuration, pid and temp files
//!    postgres/         the database server, when `up` had to start one
//! ```
//!
//! A pid alone is not trusted: a process counts as ours only while it runs
//! (not a zombie) and its command line names the program recorded for it,
//! so a pid reused by an unrelated process is never signalled.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// What an instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Balancer,
    Node,
    Worker,
    Database,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Balancer => "balancer",
            Kind::Node => "node",
            Kind::Worker => "worker",
            Kind::Database => "database",
        }
    }
}

/// One process of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// `balancer`, `node-1`.., `worker-1`.., `postgres`.
    pub name: String,
    pub kind: Kind,
    pub pid: u32,
    /// The file name of the program, as its command line shows it.
    pub program: String,
    /// Where it listens (workers: none).
    pub port: Option<u16>,
    /// Its base URL (nodes and balancer) or connection URL (database).
    pub url: Option<String>,
    pub log: PathBuf,
}

/// Everything `up` started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The database the nodes use, password redacted.
    pub database_url: String,
    pub instances: Vec<Instance>,
}

impl ClusterFile {
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(move |i| i.kind == kind)
    }

    pub fn balancer_url(&self) -> Option<&str> {
        self.of_kind(Kind::Balancer).find_map(|b| b.url.as_deref())
    }
}

/// The state directory and the paths in it.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: &Path) -> StateDir {
        StateDir {
            dir: dir.to_owned(),
        }
    }

    pub fn cluster_file(&self) -> PathBuf {
        self.dir.join("cluster.json")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }

    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.run_dir().join(format!("{name}.pid"))
    }

    pub fn nginx_dir(&self) -> PathBuf {
        self.dir.join("nginx")
    }

    pub fn postgres_dir(&self) -> PathBuf {
        self.dir.join("postgres")
    }

    /// The recorded cluster, if any.
    pub fn load(&self) -> anyhow::Result<Option<ClusterFile>> {
        let path = self.cluster_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let file = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a cluster record; remove it (and stop what it started by hand)",
                path.display()
            )
        })?;
        Ok(Some(file))
    }

    /// Records `file` and one pid file per instance. Written after each
    /// start, so that `down` finds whatever a failed `up` left running.
    pub fn save(&self, file: &ClusterFile) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.run_dir())
            .with_context(|| format!("cannot create {}", self.run_dir().display()))?;
        for instance in &file.instances {
            let path = self.pid_file(&instance.name);
            std::fs::write(&path, format!("{}\n", instance.pid))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let path = self.cluster_file();
        let text = serde_json::to_string_pretty(file)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Removes the record and every pid file; logs stay for reading.
    pub fn forget(&self) -> anyhow::Result<()> {
        let run = self.run_dir();
        if run.exists() {
            std::fs::remove_dir_all(&run)
                .with_context(|| format!("cannot remove {}", run.display()))?;
        }
        let file = self.cluster_file();
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", file.display()))
            }
            _ => Ok(()),
        }
    }
}

/// Whether `instance`'s process still runs (and is still the program
/// recorded for it).
pub fn alive(instance: &Instance) -> bool {
    pid_runs(instance.pid, &instance.program)
}

/// Whether process `pid` runs, is no zombie, and its command line names
/// `program`.
pub fn pid_runs(pid: u32, program: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may itself
    // hold spaces and parentheses.
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    if matches!(state, Some("Z" | "X") | None) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(program))
}

/// Sends `signal` (TERM, KILL, ..) to `pid`; a process already gone is no
/// error.
pub fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// Waits until none of `instances` runs, at most `patience`; returns those
/// still running.
pub fn wait_gone<'a>(instances: &[&'a Instance], patience: Duration) -> Vec<&'a Instance> {
    let deadline = Instant::now() + patience;
    loop {
        let running: Vec<&Instance> = instances.iter().copied().filter(|i| alive(i)).collect();
        if running.is_empty() || Instant::now() >= deadline {
            return running;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of `path` (empty when it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
