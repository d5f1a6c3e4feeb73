//! End-to-end latency through HTTP: a server and one SDK worker in this
//! process (real loopback HTTP, real PostgreSQL), running a linear 4-step
//! template one task at a time.
//!
//! Measured per task: create request sent → task seen complete by the
//! client (polling every 1 ms), and the database's own `created_at →
//! finished_at`. Measured per handoff: step k's handler returns → step k+1's
//! handler starts (both in this process, one clock).
//!
//! Run: `TASKER_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!       cargo bench -p tasker-cli --bench http_latency` (BENCH_RUNS, default 300).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use tasker_api::{ApiConfig, AppState, AuthConfig};
use tasker_client::{Client, NewTask};
use tasker_engine::{Engine, EngineConfig};
use tasker_postgres::{Notifier, PgStore, PoolConfig};
use tasker_store::Store;
use tasker_testkit::TestDatabase;
use tasker_worker::{Worker, handler_fn};

const TEMPLATE: &str = "namespace: bench\nname: linear4\nversion: \"1\"\nsteps:\n  - { name: s1, handler: bench.step }\n  - { name: s2, handler: bench.step, depends_on: [s1] }\n  - { name: s3, handler: bench.step, depends_on: [s2] }\n  - { name: s4, handler: bench.step, depends_on: [s3] }\n";

/// (task, step) → (handler started, handler returned).
type Marks = Arc<Mutex<HashMap<(uuid::Uuid, String), (Instant, Instant)>>>;

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let db = TestDatabase::create().await?;
    let store = PgStore::connect(&db.url, &PoolConfig::default(), "bench").await?;
    store.migrate().await?;
    let engine = Engine::new(Arc::new(store.clone()), EngineConfig::default());
    let local = engine.waiters().clone();
    store.set_local_wake(Arc::new(move |ns| local.wake(ns)));
    let waiters = engine.waiters().clone();
    let _notifier = Notifier::start(db.url.clone(), Arc::new(move |ns| waiters.wake(ns)));
    let config = ApiConfig {
        auth: AuthConfig::disabled(),
        ..ApiConfig::for_engine(engine.config())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tasker_api::serve(
        listener,
        AppState::new(engine, config),
        async {
            let _ = server_stopped.await;
        },
    ));

    let client = Client::new(&url, None)?;
    client.namespace_create("bench").await?;
    client.template_register_yaml(TEMPLATE).await?;

    let marks: Marks = Arc::default();
    let recorder = marks.clone();
    let worker = Worker::builder(Client::new(&url, None)?)
        .worker_id("bench-worker")
        .namespaces(["bench"])
        .concurrency(4)
        .handler(
            "bench.step",
            handler_fn(move |ctx| {
                let recorder = recorder.clone();
                async move {
                    let started = Instant::now();
                    let key = (ctx.task_id(), ctx.step_name().to_owned());
                    recorder
                        .lock()
                        .unwrap()
                        .insert(key, (started, Instant::now()));
                    Ok(json!({"ok": true}))
                }
            }),
        )
        .build()?;
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(async move {
        worker
            .run(async {
                let _ = worker_stopped.await;
            })
            .await
    });

    let mut client_seen = Histogram::<u64>::new(3)?;
    let mut recorded = Histogram::<u64>::new(3)?;
    let mut handoff = Histogram::<u64>::new(3)?;
    let warmup = 20;
    for i in 0..warmup + runs {
        let start = Instant::now();
        let (task, _) = client
            .task_create(&NewTask::new("bench", "linear4").context(json!({"i": i})))
            .await?;
        let task = loop {
            let t = client.task_get(task.id).await?;
            if t.state.is_terminal() {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let seen = start.elapsed();
        assert_eq!(task.state, tasker_model::TaskState::Complete);
        if i < warmup {
            continue;
        }
        client_seen.record(seen.as_micros() as u64)?;
        let finished = task.finished_at.expect("finished task");
        recorded.record((finished - task.created_at).num_microseconds().unwrap_or(0) as u64)?;
        let marks = marks.lock().unwrap();
        for k in 1..4 {
            let (_, ended) = marks[&(task.id, format!("s{k}"))];
            let (next_started, _) = marks[&(task.id, format!("s{}", k + 1))];
            handoff.record(next_started.duration_since(ended).as_micros() as u64)?;
        }
    }
    println!("linear 4-step task through HTTP, one worker, {runs} runs (after {warmup} warm-up):");
    println!(
        "  create -> complete seen by client: p50={:.2} ms p95={:.2} ms p99={:.2} ms",
        ms(&client_seen, 0.5),
        ms(&client_seen, 0.95),
        ms(&client_seen, 0.99)
    );
    println!(
        "  created_at -> finished_at (database clock): p50={:.2} ms p95={:.2} ms p99={:.2} ms",
        ms(&recorded, 0.5),
        ms(&recorded, 0.95),
        ms(&recorded, 0.99)
    );
    println!(
        "  handoff (step k handler returns -> step k+1 handler starts), n={}: p50={:.2} ms p95={:.2} ms p99={:.2} ms",
        handoff.len(),
        ms(&handoff, 0.5),
        ms(&handoff, 0.95),
        ms(&handoff, 0.99)
    );
    let _ = stop_worker.send(());
    let _ = worker.await;
    let _ = stop_server.send(());
    let _ = server.await;
    Ok(())
}
