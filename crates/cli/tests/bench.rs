//! `tasker bench --quick`: every scenario runs for real (a server process,
//! worker processes, a fresh database) so that the command cannot rot. No
//! figure is asserted: only that each scenario ran everything it set out to.

use std::process::{Command, Stdio};

use serde_json::Value;
use tasker_testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_in_its_short_form() {
    let db = TestDatabase::create().await.unwrap();
    let output = tokio::task::spawn_blocking({
        let url = db.url.clone();
        move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_tasker"));
            for (name, _) in std::env::vars() {
                if name.starts_with("TASKER_") {
                    command.env_remove(name);
                }
            }
            command
                .args([
                    "bench",
                    "--quick",
                    "--output",
                    "json",
                    "--database-url",
                    &url,
                ])
                .args(["--workers", "2", "--concurrency", "8"])
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "tasker bench failed: {:?}",
        output.status
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the report is JSON");

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
    for (burn_down, (shape, steps)) in report["throughput"]
        .as_array()
        .unwrap()
        .iter()
        .zip([("one", 1), ("linear", 4)])
    {
        assert_eq!(burn_down["shape"], shape);
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
