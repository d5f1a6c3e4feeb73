//! `scripts/dev` as a user runs it, on a fresh database: started in a
//! process group of its own and stopped the way a terminal's ctrl-c stops
//! it (SIGINT to the whole group).
//!
//! The script runs `cargo build` first. Here `cargo` is a stand-in on `PATH`
//! that records its arguments and prints a line like cargo's progress, and
//! `CARGO_TARGET_DIR` points at the binaries this test run already built: a
//! real build from inside `cargo test` would rebuild `tasker` under the
//! running tests.

mod support;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Process, Server, listening_url, repo_root, send_signal, wait_for_step};
use tasker_client::{Client, NewTask};
use tasker_model::StepState;
use tasker_testkit::TestDatabase;

/// Marks every process the script starts (they inherit it), so that any
/// left running afterwards can be found.
const MARKER_VAR: &str = "DEV_SCRIPT_TEST_MARKER";

struct DevScript {
    process: Process,
    marker: String,
    cargo_log: PathBuf,
    _stub_dir: tempfile::TempDir,
}

impl DevScript {
    fn start(database_url: &str, listen: &str, env: &[(&str, &str)]) -> DevScript {
        DevScript::start_with_stubs(database_url, listen, env, &[])
    }

    /// Like [`DevScript::start`], with more stand-in commands on `PATH`:
    /// (name, shell script body).
    fn start_with_stubs(
        database_url: &str,
        listen: &str,
        env: &[(&str, &str)],
        stubs: &[(&str, &str)],
    ) -> DevScript {
        let stub_dir = tempfile::tempdir().unwrap();
        for (name, body) in stubs {
            let path = stub_dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        let cargo_log = stub_dir.path().join("cargo-args");
        let stub = stub_dir.path().join("cargo");
        std::fs::write(
            &stub,
            "#!/bin/sh\n\
             echo \"$*\" >> \"$STUB_CARGO_LOG\"\n\
             echo \"   Compiling tasker-cli (cargo stand-in: $*)\" >&2\n",
        )
        .unwrap();
        std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        // <target>/debug/tasker
        let target_dir = Path::new(env!("CARGO_BIN_EXE_tasker"))
            .parent()
            .and_then(Path::parent)
            .unwrap();
        let marker = format!("{MARKER_VAR}={:016x}", rand_u64());
        let mut command = Command::new("bash");
        support::clean_env(&mut command);
        command
            .arg(repo_root().join("scripts/dev"))
            .current_dir(repo_root())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    stub_dir.path().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("STUB_CARGO_LOG", &cargo_log)
            .env("CARGO_TARGET_DIR", target_dir)
            .env("TASKER_DATABASE_URL", database_url)
            .env("TASKER_SERVER_LISTEN", listen)
            .env(MARKER_VAR, &marker[MARKER_VAR.len() + 1..])
            // Its own process group, as a shell gives a foreground job.
            .process_group(0);
        for (name, value) in env {
            command.env(name, value);
        }
        DevScript {
            process: Process::start("scripts/dev", &mut command),
            marker,
            cargo_log,
            _stub_dir: stub_dir,
        }
    }

    /// Waits for "Tasker is running on <url>" and returns the URL.
    fn running(&mut self) -> String {
        listening_url(
            &self
                .process
                .wait_for_line("Tasker is running on", Duration::from_secs(120)),
        )
    }

    /// What a terminal's ctrl-c does: SIGINT to the foreground process group.
    fn ctrl_c(&self) {
        send_signal("INT", &format!("-{}", self.process.pid()));
    }

    /// Processes still running that the script started.
    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            if environ
                .split(|b| *b == 0)
                .any(|var| var == self.marker.as_bytes())
            {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push(format!(
                    "pid {}: {}",
                    entry.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                ));
            }
        }
        found
    }
}

/// `url` with its password, if it has one, redacted as the script does.
fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').unwrap().0;
            format!("{scheme}://{user}:<redacted>@{host}")
        }
        _ => url.to_owned(),
    }
}

fn rand_u64() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

/// A diamond task whose `branch_b` sleeps a minute, once it runs.
async fn long_running_task(server: &str) -> (Client, uuid::Uuid) {
    let client = Client::new(server, None).unwrap();
    let (task, _) = client
        .task_create(
            &NewTask::new("examples", "diamond").context(json!({"sleep_ms": {"branch_b": 60000}})),
        )
        .await
        .unwrap();
    wait_for_step(&client, task.id, "branch_b", StepState::Running).await;
    (client, task.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_worker_first_so_the_running_step_is_released_not_lost() {
    let db = TestDatabase::create().await.unwrap();
    let mut dev = DevScript::start(&db.url, "127.0.0.1:0", &[]);
    let server = dev.running();

    // Build progress reaches the terminal: cargo runs without --quiet and
    // its output is not swallowed.
    let cargo_args = std::fs::read_to_string(&dev.cargo_log).unwrap();
    assert!(cargo_args.starts_with("build"), "{cargo_args}");
    assert!(
        !cargo_args.contains("-q") && !cargo_args.contains("--quiet"),
        "cargo ran quietly: {cargo_args}"
    );
    assert!(
        dev.process
            .output()
            .contains("Compiling tasker-cli (cargo stand-in")
    );
    // A URL without a password is shown as it is.
    assert!(
        dev.process
            .output()
            .contains(&format!("==> database: {}", shown_url(&db.url))),
        "{}",
        dev.process.output()
    );

    let (_, task_id) = long_running_task(&server).await;
    let stopping = Instant::now();
    dev.ctrl_c();
    let status = dev.process.wait_exit(Duration::from_secs(30));
    let took = stopping.elapsed();
    assert_eq!(status.code(), Some(130), "{}", dev.process.output());
    // The worker's grace (5 s by default) plus the release, not 30 s of
    // heartbeating a server that is already gone.
    assert!(took < Duration::from_secs(15), "ctrl-c took {took:?}");
    assert_eq!(dev.leftovers(), Vec::<String>::new(), "left running");
    let output = dev.process.output();
    let worker_at = output.find("==> stopping the worker").expect(&output);
    let server_at = output.find("==> stopping the server").expect(&output);
    assert!(worker_at < server_at, "the worker stops first:\n{output}");

    // What the history says, through a server of our own on the database.
    let check = Server::start(&db.url);
    let client = check.client();
    let steps = client.task_steps(task_id).await.unwrap();
    let branch_b = steps.iter().find(|s| s.name == "branch_b").unwrap();
    assert_eq!(branch_b.state, StepState::Ready, "{branch_b:?}");
    assert_eq!(branch_b.attempt, 0, "a released attempt is not counted");
    let history = client.task_history(task_id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.reason.as_deref() == Some("released by its worker")),
        "{history:?}"
    );
    assert!(
        !history.iter().any(|t| t
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("expired") || r.contains("lost"))),
        "{history:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_kills_the_worker_and_the_server_at_once() {
    let db = TestDatabase::create().await.unwrap();
    // A grace that the first ctrl-c would wait out.
    let mut dev = DevScript::start(
        &db.url,
        "127.0.0.1:0",
        &[("TASKER_DEV_SHUTDOWN_GRACE", "120s")],
    );
    let server = dev.running();
    long_running_task(&server).await;

    let stopping = Instant::now();
    dev.ctrl_c();
    dev.process
        .wait_for_line("==> stopping the worker", Duration::from_secs(10));
    dev.ctrl_c();
    let status = dev.process.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "forced stop took {:?}",
        stopping.elapsed()
    );
    assert_eq!(dev.leftovers(), Vec::<String>::new(), "left running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_reported_with_its_holder_and_never_contacted() {
    let db = TestDatabase::create().await.unwrap();
    // Someone else's server.
    let foreign = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    foreign.set_nonblocking(true).unwrap();
    let address = foreign.local_addr().unwrap().to_string();

    let mut dev = DevScript::start(&db.url, &address, &[]);
    let status = dev.process.wait_exit(Duration::from_secs(60));
    let output = dev.process.output();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "{address} is already taken by pid {}",
            std::process::id()
        )),
        "the holder is named:\n{output}"
    );
    assert!(output.contains("TASKER_SERVER_LISTEN="), "{output}");
    assert!(!output.contains("Tasker is running"), "{output}");
    assert!(
        matches!(foreign.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the script connected to the foreign server"
    );
    assert_eq!(dev.leftovers(), Vec::<String>::new(), "left running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_after_the_check_stops_the_script_before_it_talks_to_anyone() {
    let db = TestDatabase::create().await.unwrap();
    let foreign = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    foreign.set_nonblocking(true).unwrap();
    let address = foreign.local_addr().unwrap().to_string();

    // An `ss` that sees no listener: the port looks free when the script
    // checks, as when it is taken between the check and the server's bind.
    let mut dev = DevScript::start_with_stubs(&db.url, &address, &[], &[("ss", "exit 0")]);
    let status = dev.process.wait_exit(Duration::from_secs(60));
    let output = dev.process.output();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains(&format!("cannot listen on {address}")),
        "{output}"
    );
    assert!(
        output.contains("the server exited (status 1) before listening"),
        "{output}"
    );
    assert!(!output.contains("Tasker is running"), "{output}");
    assert!(
        matches!(foreign.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the script talked to the foreign server"
    );
    assert_eq!(dev.leftovers(), Vec::<String>::new(), "left running");
}

#[test]
fn database_urls_are_shown_without_their_password_only() {
    for (url, shown) in [
        ("postgres://user@host/db", "postgres://user@host/db"),
        ("postgres://host:5432/db", "postgres://host:5432/db"),
        (
            "postgres://user:secret@host:5432/db",
            "postgres://user:<redacted>@host:5432/db",
        ),
        (
            "postgresql://user:s%40cret@host/db?sslmode=disable",
            "postgresql://user:<redacted>@host/db?sslmode=disable",
        ),
        (
            "postgres://user@host/db?password=secret&sslmode=disable",
            "postgres://user@host/db?password=<redacted>&sslmode=disable",
        ),
    ] {
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#". scripts/lib/redact_url.sh && redact_url "$1""#)
            .arg("redact")
            .arg(url)
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim_end(), shown);
    }
}
