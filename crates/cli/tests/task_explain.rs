//! `tasker task explain` against a real `tasker server` process: a task
//! whose namespace no live worker serves is explained as such, in the
//! sentences a person reads and in the JSON a script reads.

mod support;

use support::{Server, tasker};
use tasker_client::{NewTask, WorkerRegistration};
use tasker_testkit::TestDatabase;

fn explain(server: &Server, args: &[&str]) -> (Option<i32>, String, String) {
    let output = tasker()
        .args(["task", "explain"])
        .args(args)
        .env("TASKER_SERVER", &server.url)
        .output()
        .expect("run tasker task explain");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn tasker_ok(server: &Server, args: &[&str]) {
    let output = tasker()
        .args(args)
        .env("TASKER_SERVER", &server.url)
        .output()
        .expect("run tasker");
    assert!(output.status.success(), "{args:?}: {output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waiting_on_a_namespace_no_worker_serves_is_explained_as_such() {
    let db = TestDatabase::create().await.unwrap();
    let server = Server::start(&db.url);
    let client = server.client();
    tasker_ok(&server, &["namespace", "create", "orders"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ship.yaml");
    std::fs::write(
        &file,
        "namespace: orders\nname: ship\nversion: \"1\"\nsteps:\n  \
         - { name: pack, handler: orders.pack }\n  \
         - { name: send, handler: orders.send, depends_on: [pack] }\n",
    )
    .unwrap();
    tasker_ok(&server, &["template", "register", file.to_str().unwrap()]);
    // A live worker, of another namespace only.
    client
        .worker_register(&WorkerRegistration {
            worker_id: "billing-1".into(),
            namespaces: vec!["default".into()],
            handlers: vec![],
            concurrency: 1,
            version: None,
        })
        .await
        .unwrap();
    let (task, _) = client
        .task_create(&NewTask {
            namespace: "orders".into(),
            template: "ship".into(),
            ..NewTask::default()
        })
        .await
        .unwrap();

    // Named by `last`, as a person at a terminal would.
    let (code, stdout, stderr) = explain(&server, &["last"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "task {} (orders): running; 2 of 2 steps not finished",
            task.id
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("step pack (ready, handler orders.pack, attempt 0 of 3)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("No live worker serves namespace \"orders\": start a worker for it."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Waits for its parents to finish: pack (ready)."),
        "{stdout}"
    );

    // Named by a prefix, for a script.
    let prefix = &task.id.to_string()[..13];
    let (code, stdout, stderr) = explain(&server, &[prefix, "--output", "json"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(json["task_id"], task.id.to_string());
    assert_eq!(
        json["steps"][0]["reasons"][1],
        serde_json::json!({"kind": "no_worker_serves_namespace", "namespace": "orders"})
    );

    // An unknown task is an error that names it.
    let (code, _, stderr) = explain(&server, &["0190b5a0-0000-7000-8000-000000000000"]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("0190b5a0-0000-7000-8000-000000000000"),
        "{stderr}"
    );
}
