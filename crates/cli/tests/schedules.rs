//! `tasker schedule` against a real server: create, get (with next fire
//! times), trigger, backfill, fires, pause, and a bad range refused naming
//! the field.

mod support;

use std::process::Command;

use support::{Server, tasker};
use tasker_testkit::TestDatabase;

const TICK: &str = "name: tick\nversion: \"1\"\nsteps:\n  - { name: a, handler: h.a }\n";

fn run(server: &Server, args: &[&str]) -> std::process::Output {
    let mut command: Command = tasker();
    command
        .arg("schedule")
        .args(args)
        .args(["--server", &server.url])
        .output()
        .expect("run tasker")
}

fn json(output: &std::process::Output) -> serde_json::Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_commands_create_fire_backfill_and_list_fires() {
    let db = TestDatabase::create().await.unwrap();
    let server = Server::start(&db.url);
    server.client().template_register_yaml(TICK).await.unwrap();

    let created = json(&run(
        &server,
        &[
            "create",
            "--name",
            "nightly",
            "--template",
            "tick",
            "--cron",
            "0 2 * * *",
            "--time-zone",
            "America/New_York",
            "--context",
            r#"{"n": 1}"#,
            "-o",
            "json",
        ],
    ));
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["upcoming"].as_array().unwrap().len(), 5);

    let text = run(&server, &["get", &id]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("cron \"0 2 * * *\" in America/New_York"),
        "{text}"
    );
    assert!(text.contains("upcoming"), "{text}");

    let fired = json(&run(&server, &["trigger", &id, "-o", "json"]));
    assert_eq!(fired["task"]["context"], serde_json::json!({"n": 1}));

    let backfilled = json(&run(
        &server,
        &[
            "backfill",
            &id,
            "--start",
            "2026-01-01T00:00:00Z",
            "--end",
            "2026-01-04T00:00:00Z",
            "-o",
            "json",
        ],
    ));
    assert_eq!(backfilled["fires"].as_array().unwrap().len(), 3);

    let fires = json(&run(&server, &["fires", &id, "-o", "json"]));
    assert_eq!(fires.as_array().unwrap().len(), 4);

    let paused = json(&run(&server, &["pause", &id, "-o", "json"]));
    assert_eq!(paused["next_fire_at"], serde_json::Value::Null);

    let refused = run(
        &server,
        &[
            "backfill",
            &id,
            "--start",
            "2026-01-04T00:00:00Z",
            "--end",
            "2026-01-01T00:00:00Z",
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "invalid input");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("end"), "{stderr}");
}
