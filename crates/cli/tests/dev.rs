//! `tasker dev` as a user runs it: a real process on an embedded SQLite
//! database, listening on port 0 (the test reads the printed address). The
//! demo runs to the end; a restart on the same directory keeps finished and
//! in-flight tasks; the guard rails refuse a second server on the same
//! database and a reachable address without auth.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::{Process, listening_url, tasker, wait_for_step, wait_until};
use tasker_client::{Client, NewTask};
use tasker_model::{StepState, TaskState};

/// How long a process may take to print its address (the database is
/// created and migrated first).
const START: Duration = Duration::from_secs(60);

/// An admin token long enough for the configuration's checks.
const TOKEN: &str = "dev-test-token-0123456789";

/// `tasker dev` on `dir`, port 0, with `env`; its URL once it listens.
fn start_dev(name: &str, dir: &Path, env: &[(&str, &str)]) -> (Process, String) {
    let mut command = tasker();
    command
        .args(["dev", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .env("TASKER_LOG_LEVEL", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut process = Process::start(name, &mut command);
    let url = listening_url(&process.wait_for_line("listening on ", START));
    (process, url)
}

#[test]
fn the_demo_runs_every_task_to_completion_and_exits_0() {
    let mut dev = Process::start(
        "dev",
        tasker()
            .args(["dev", "--demo", "--memory", "--listen", "127.0.0.1:0"])
            .env("TASKER_LOG_LEVEL", "warn"),
    );
    let status = dev.wait_exit(Duration::from_secs(240));
    let output = dev.output();
    assert!(status.success(), "{status}:\n{output}");
    assert!(output.contains("demo: all 8 tasks completed"), "{output}");
    let summary = &output[output.find("demo summary:").expect("a summary")..];
    assert_eq!(summary.matches("  complete ").count(), 8, "{summary}");
    // The retrying task showed its retry as it happened.
    assert!(output.contains("running → retrying"), "{output}");
    // What the user is told at start.
    for shown in [
        "/docs",
        "/metrics",
        "/ui",
        "in memory",
        "task create examples/linear",
        "curl -X POST",
    ] {
        assert!(output.contains(shown), "no {shown:?} in:\n{output}");
    }
}

#[test]
fn a_demo_past_its_time_limit_exits_1() {
    // The demo's retried step waits out a backoff of a second: never done
    // within 100 ms.
    let mut dev = Process::start(
        "dev",
        tasker()
            .args(["dev", "--demo", "--demo-timeout", "100ms", "--memory"])
            .args(["--listen", "127.0.0.1:0"])
            .env("TASKER_LOG_LEVEL", "warn"),
    );
    let status = dev.wait_exit(Duration::from_secs(120));
    let output = dev.output();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("demo: not finished within --demo-timeout 100ms"),
        "{output}"
    );
    assert!(!output.contains("demo: all"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_finished_and_in_flight_tasks() {
    let dir = tempfile::tempdir().unwrap();
    // Short leases: the killed process's step comes back within seconds.
    let env = [("TASKER_ENGINE_LEASE_DURATION", "2s")];
    let (mut first, url) = start_dev("dev-1", dir.path(), &env);
    let client = Client::new(&url, None).unwrap();

    let (finished, _) = client
        .task_create(&NewTask::new("examples", "linear").context(json!({"even_number": 2})))
        .await
        .unwrap();
    wait_for_task(&client, finished.id, TaskState::Complete).await;

    let (in_flight, _) = client
        .task_create(
            &NewTask::new("examples", "linear")
                .context(json!({"even_number": 2, "sleep_ms": {"step_2": 3000}})),
        )
        .await
        .unwrap();
    wait_for_step(&client, in_flight.id, "step_2", StepState::Running).await;
    support::send_signal("KILL", &first.pid().to_string());
    first.wait_exit(Duration::from_secs(10));

    let (_second, url) = start_dev("dev-2", dir.path(), &env);
    let client = Client::new(&url, None).unwrap();
    // The same node name as before: the restart leads at once, without
    // waiting for the dead process's leadership lease (15 s) to expire.
    wait_until(
        "the restarted node leads",
        Duration::from_secs(5),
        || async {
            let cluster = client.cluster().await.ok()?;
            (cluster.leader?.node_id == cluster.node_id).then_some(())
        },
    )
    .await;
    let task = client.task_get(finished.id).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    let steps = client.task_steps(finished.id).await.unwrap();
    let last = steps.iter().find(|s| s.name == "step_4").unwrap();
    assert_eq!(last.result.as_ref().unwrap()["value"], 65536);

    wait_for_task(&client, in_flight.id, TaskState::Complete).await;
    let steps = client.task_steps(in_flight.id).await.unwrap();
    let redelivered = steps.iter().find(|s| s.name == "step_2").unwrap();
    assert_eq!(
        redelivered.attempt, 2,
        "step_2 ran again after its lease expired: {redelivered:?}"
    );
    let last = steps.iter().find(|s| s.name == "step_4").unwrap();
    assert_eq!(last.result.as_ref().unwrap()["value"], 65536);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_releases_the_running_step_so_a_restart_runs_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // The running step gets one second to finish, then is released.
    let env = [("TASKER_SERVER_SHUTDOWN_GRACE", "1s")];
    let (mut first, url) = start_dev("dev-1", dir.path(), &env);
    let client = Client::new(&url, None).unwrap();
    let (task, _) = client
        .task_create(
            &NewTask::new("examples", "linear")
                .context(json!({"even_number": 2, "sleep_ms": {"step_1": 3000}})),
        )
        .await
        .unwrap();
    wait_for_step(&client, task.id, "step_1", StepState::Running).await;
    first.signal("INT");
    let status = first.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}:\n{}", first.output());

    let (_second, url) = start_dev("dev-2", dir.path(), &[]);
    let client = Client::new(&url, None).unwrap();
    // Well within the 30 s lease: the step was given back, not abandoned.
    wait_until(
        "the released step's task completes",
        Duration::from_secs(20),
        || async {
            let task = client.task_get(task.id).await.ok()?;
            (task.state == TaskState::Complete).then_some(())
        },
    )
    .await;
    let history = client.task_history(task.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.step_name.as_deref() == Some("step_1")
                && t.from_state.as_deref() == Some("running")
                && t.to_state == "ready"),
        "step_1 was released: {history:#?}"
    );
}

#[test]
fn a_second_server_on_the_same_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_first, _) = start_dev("dev-1", dir.path(), &[]);
    let mut second = Process::start(
        "dev-2",
        tasker()
            .args(["dev", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir.path()),
    );
    let status = second.wait_exit(START);
    let output = second.output();
    assert_eq!(status.code(), Some(5), "a conflict:\n{output}");
    assert!(output.contains("another Tasker server"), "{output}");
    assert!(output.contains("PostgreSQL"), "{output}");
    assert!(!output.contains("listening on"), "{output}");
}

#[test]
fn a_directory_that_cannot_be_created_is_named() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut dev = Process::start(
        "dev",
        tasker()
            .args(["dev", "--listen", "127.0.0.1:0", "--dir"])
            .arg(file.path()),
    );
    let status = dev.wait_exit(START);
    let output = dev.output();
    assert_eq!(status.code(), Some(2), "a usage error:\n{output}");
    assert!(output.contains("--dir: cannot create"), "{output}");
}

#[test]
fn a_reachable_address_needs_auth() {
    let mut open = Process::start(
        "dev-open",
        tasker().args(["dev", "--memory", "--listen", "0.0.0.0:0"]),
    );
    let status = open.wait_exit(START);
    let output = open.output();
    assert_eq!(status.code(), Some(2), "a usage error:\n{output}");
    assert!(output.contains("0.0.0.0:0"), "{output}");
    assert!(output.contains("auth.enabled"), "{output}");
    assert!(!output.contains("listening on"), "{output}");

    // With auth on and a token, the same address is served, and SIGTERM
    // stops the worker, then the server, with status 0.
    let mut guarded = Process::start(
        "dev-auth",
        tasker()
            .args(["dev", "--memory", "--listen", "0.0.0.0:0"])
            .env("TASKER_AUTH_ENABLED", "true")
            .env("TASKER_AUTH_ADMIN_TOKENS", TOKEN)
            .env("TASKER_LOG_LEVEL", "info"),
    );
    guarded.wait_for_line("listening on http://0.0.0.0:", START);
    guarded.wait_for_line("worker registered", START);
    guarded.signal("TERM");
    let status = guarded.wait_exit(Duration::from_secs(60));
    let output = guarded.output();
    assert!(status.success(), "{status}:\n{output}");
    let worker_stopped = output.find("worker stopped").expect("the worker stopped");
    let server_stopping = output
        .find("finishing requests in flight")
        .expect("the server stopped");
    assert!(
        worker_stopped < server_stopping,
        "the worker stops before the server:\n{output}"
    );
}

async fn wait_for_task(client: &Client, id: uuid::Uuid, state: TaskState) {
    wait_until(
        &format!("task {id} {state}"),
        Duration::from_secs(90),
        || async {
            let task = client.task_get(id).await.ok()?;
            (task.state == state).then_some(())
        },
    )
    .await;
}
