//! `tasker bench --quick`: every scenario runs for real (a server process,
//! worker processes, a fresh database, or a `tasker dev` node on SQLite) so
//! that the command cannot rot. No figure is asserted: only that each
//! scenario ran everything it set out to.

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tasker_testkit::TestDatabase;

/// `tasker bench` with `args`, no `TASKER_*` variable of this environment
/// leaking in.
async fn bench(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tasker"));
        for (name, _) in std::env::vars() {
            if name.starts_with("TASKER_") {
                command.env_remove(name);
            }
        }
        command
            .arg("bench")
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The JSON report of a run that must have succeeded.
fn report_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "tasker bench failed: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the report is JSON")
}

/// The throughput scenario's runs: shape, when its tasks are created, steps
/// per task.
const THROUGHPUT_RUNS: [(&str, &str, u64); 3] = [
    ("one", "before", 1),
    ("linear", "before", 4),
    ("one", "while_running", 1),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_in_its_short_form() {
    let db = TestDatabase::create().await.unwrap();
    let output = bench(&[
        "--quick",
        "--output",
        "json",
        "--database-url",
        &db.url,
        "--workers",
        "2",
        "--concurrency",
        "8",
    ])
    .await;
    let report = report_of(&output);
    assert_eq!(report["backend"], "postgres");
    assert_eq!(report["not_measured"], serde_json::json!([]));

    let floor = &report["commit_floor"];
    assert!(floor["one_connection"].as_f64().unwrap() > 0.0);
    assert!(floor["eight_connections"].as_f64().unwrap() > 0.0);
    assert!(report["database"]["settings"]["fsync"].is_string());

    let runs = report["parameters"]["runs"].as_u64().unwrap();
    let shapes: Vec<&str> = report["latency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|shape| {
            assert_eq!(
                shape["create_to_complete"]["count"].as_u64(),
                Some(runs),
                "{shape}"
            );
            let steps = shape["steps"].as_u64().unwrap();
            // Every step but the root is a handoff of every run.
            assert_eq!(
                shape["handoff"]["count"].as_u64(),
                Some(runs * (steps - 1)),
                "{shape}"
            );
            shape["shape"].as_str().unwrap()
        })
        .collect();
    assert_eq!(shapes, ["linear", "diamond", "mixed", "tree"]);

    let create = &report["create"][0];
    assert_eq!(
        create["sequential"]["count"],
        report["parameters"]["create_tasks"]
    );
    assert!(create["concurrent_per_second"].as_f64().unwrap() > 0.0);
    assert!(create["batched_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(create["batch_size"], 100);

    let tasks = report["parameters"]["tasks"].as_u64().unwrap();
    let runs = report["throughput"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{report}");
    for (burn_down, (shape, created, steps)) in runs.iter().zip(THROUGHPUT_RUNS) {
        assert_eq!(burn_down["shape"], shape);
        assert_eq!(burn_down["created"], created);
        assert_eq!(burn_down["tasks"].as_u64(), Some(tasks));
        assert_eq!(burn_down["steps"].as_u64(), Some(tasks * steps));
        assert!(burn_down["steps_per_second"].as_f64().unwrap() > 0.0);
        // The steps table churns on every step: the statistics were read.
        assert!(
            burn_down["dead_rows_per_step"]["tasker.steps"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        assert!(burn_down["server_peak_rss_bytes"].as_u64().unwrap() > 0);
    }

    let idle = &report["idle"];
    assert_eq!(idle["workers"], report["parameters"]["idle_workers"]);
    assert!(idle["seconds"].as_f64().unwrap() > 0.0);

    let soak = &report["soak"];
    let phases: Vec<&str> = soak["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|phase| {
            assert!(phase["seconds"].as_f64().unwrap() > 0.0, "{phase}");
            assert!(phase["table_bytes"].as_i64().unwrap() > 0, "{phase}");
            phase["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(phases, ["clean", "held", "released"]);
    let soaked: u64 = soak["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|phase| phase["steps"].as_u64().unwrap())
        .sum();
    assert!(soaked > 0, "the soak ran no step: {soak}");

    // Every task of the run ended: latency and throughput ones complete,
    // create ones cancelled, the soak's backlog drained.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let running: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasker.tasks WHERE state = 'running'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(running, 0);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_throughput_run_in_their_short_form_on_sqlite() {
    let output = bench(&[
        "--backend",
        "sqlite",
        "--quick",
        "--output",
        "json",
        "--scenario",
        "latency",
        "--scenario",
        "throughput",
        "--workers",
        "2",
        "--concurrency",
        "8",
    ])
    .await;
    let report = report_of(&output);
    assert_eq!(report["backend"], "sqlite");
    // What only PostgreSQL gives is said to be missing, never a zero.
    assert!(report["commit_floor"].is_null(), "{report}");
    assert!(report["database"].is_null(), "{report}");
    let not_measured = report["not_measured"].as_array().unwrap();
    for figure in [
        "commit floor",
        "transactions per step",
        "dead rows per step",
    ] {
        assert!(
            not_measured.iter().any(|f| f == figure),
            "{figure} not listed as not measured: {not_measured:?}"
        );
    }

    let runs = report["parameters"]["runs"].as_u64().unwrap();
    let shapes: Vec<&str> = report["latency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|shape| {
            assert_eq!(
                shape["create_to_complete"]["count"].as_u64(),
                Some(runs),
                "{shape}"
            );
            let steps = shape["steps"].as_u64().unwrap();
            assert_eq!(
                shape["handoff"]["count"].as_u64(),
                Some(runs * (steps - 1)),
                "{shape}"
            );
            shape["shape"].as_str().unwrap()
        })
        .collect();
    assert_eq!(shapes, ["linear", "diamond", "mixed", "tree"]);

    let tasks = report["parameters"]["tasks"].as_u64().unwrap();
    let burn_downs = report["throughput"].as_array().unwrap();
    assert_eq!(burn_downs.len(), 3, "{report}");
    for (burn_down, (shape, created, steps)) in burn_downs.iter().zip(THROUGHPUT_RUNS) {
        assert_eq!(burn_down["shape"], shape);
        assert_eq!(burn_down["created"], created);
        assert_eq!(burn_down["tasks"].as_u64(), Some(tasks));
        assert_eq!(burn_down["steps"].as_u64(), Some(tasks * steps));
        assert!(burn_down["seconds"].as_f64().unwrap() > 0.0);
        assert!(burn_down["steps_per_second"].as_f64().unwrap() > 0.0);
        assert!(burn_down["transactions_per_step"].is_null());
        assert!(burn_down["dead_rows_per_step"].is_null());
        assert!(burn_down["server_peak_rss_bytes"].as_u64().unwrap() > 0);
    }
    // Neither the create scenario nor those that need PostgreSQL ran.
    assert_eq!(report["create"], serde_json::json!([]));
    assert!(report["idle"].is_null() && report["soak"].is_null());

    // The text form says the same.
    let text = bench(&[
        "--backend",
        "sqlite",
        "--quick",
        "--scenario",
        "latency",
        "--runs",
        "1",
    ])
    .await;
    assert!(text.status.success(), "{text:?}");
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("SQLite"), "{text}");
    assert!(text.contains("not measured on SQLite"), "{text}");
}

#[tokio::test]
async fn what_sqlite_cannot_measure_is_refused_by_name() {
    for (args, expected) in [
        (
            &["--backend", "sqlite", "--scenario", "idle"][..],
            "--scenario idle needs PostgreSQL",
        ),
        (
            &[
                "--backend",
                "sqlite",
                "--scenario",
                "latency",
                "--scenario",
                "soak",
            ][..],
            "--scenario soak needs PostgreSQL",
        ),
        (
            &[
                "--backend",
                "sqlite",
                "--database-url",
                "postgres://127.0.0.1/x",
            ][..],
            "--backend sqlite measures a SQLite node",
        ),
        (&[][..], "--backend postgres needs --database-url"),
    ] {
        let output = bench(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
