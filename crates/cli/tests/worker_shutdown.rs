//! `tasker worker example` stopping when its server is already gone: it must
//! not spend its shutdown grace heartbeating a server that cannot answer.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Process, Server, tasker, wait_for_step};
use tasker_client::NewTask;
use tasker_model::StepState;
use tasker_testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_server_is_gone_stops_without_waiting_out_its_grace() {
    let db = TestDatabase::create().await.unwrap();
    let mut server = Server::start(&db.url);
    let client = server.client();
    client.namespace_create("examples").await.unwrap();
    let yaml = std::fs::read_to_string(support::repo_root().join("templates/linear.yaml")).unwrap();
    client.template_register_yaml(&yaml).await.unwrap();

    let mut worker = Process::start(
        "worker",
        tasker()
            .args(["worker", "example", "--server", &server.url])
            .args(["--namespace", "examples"])
            .args(["--shutdown-grace", "120s"])
            .env("RUST_LOG", "info"),
    );
    let (task, _) = client
        .task_create(
            &NewTask::new("examples", "linear")
                .context(json!({"even_number": 2, "sleep_ms": {"step_1": 60000}})),
        )
        .await
        .unwrap();
    wait_for_step(&client, task.id, "step_1", StepState::Running).await;

    // The server first, as a terminal's ctrl-c to both would.
    server.process.signal("TERM");
    assert!(server.process.wait_exit(Duration::from_secs(30)).success());
    let stopping = Instant::now();
    worker.signal("TERM");
    let status = worker.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "the worker took {:?} with a 120 s grace",
        stopping.elapsed()
    );
    assert!(
        worker.output().contains("the server stopped answering"),
        "{}",
        worker.output()
    );
}
