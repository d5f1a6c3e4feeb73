//! In-process engine benchmark against a real PostgreSQL: task creation
//! latency and claim → complete cycles (sequential, concurrent, batched).
//!
//! Run: `TASKER_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!       cargo bench -p tasker-engine --bench engine_cycle`
//! Use a durable server (fsync on) for numbers worth recording.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use tasker_engine::{Engine, EngineConfig, NewTask};
use tasker_postgres::{PgStore, PoolConfig};
use tasker_store::{StepCompletion, Store};
use tasker_testkit::TestDatabase;

const LINEAR: &str = "name: linear\nversion: \"1\"\nsteps:\n  - { name: a, handler: h.a }\n  - { name: b, handler: h.b, depends_on: [a] }\n  - { name: c, handler: h.c, depends_on: [b] }\n  - { name: d, handler: h.d, depends_on: [c] }\n";

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn setup() -> anyhow::Result<(TestDatabase, Engine)> {
    let key = format!("tasker-{}", tasker_postgres::schema_fingerprint());
    let db = TestDatabase::create_from(&key, |url| async move {
        let store = PgStore::connect(&url, &PoolConfig::default(), "setup").await?;
        store.migrate().await?;
        store.pool().close().await;
        Ok(())
    })
    .await?;
    let pool = PoolConfig {
        max_connections: 16,
        ..PoolConfig::default()
    };
    let store = PgStore::connect(&db.url, &pool, "bench").await?;
    let settings: (String, String) =
        sqlx::query_as("SELECT current_setting('fsync'), current_setting('synchronous_commit')")
            .fetch_one(store.pool())
            .await?;
    println!(
        "server: fsync={} synchronous_commit={}",
        settings.0, settings.1
    );
    let engine = Engine::new(Arc::new(store), EngineConfig::default());
    engine.template_register_yaml(LINEAR).await?;
    Ok((db, engine))
}

async fn create_tasks(engine: &Engine, n: usize) -> anyhow::Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new(3)?;
    for i in 0..n {
        let start = Instant::now();
        engine
            .task_create(NewTask {
                namespace: "default".into(),
                template: "linear".into(),
                context: json!({"i": i}),
                ..NewTask::default()
            })
            .await?;
        hist.record(start.elapsed().as_micros() as u64)?;
    }
    Ok(hist)
}

/// `clients` loops, each claiming one step and then completing each step
/// with `step_complete_and_claim` (the next step leased in the same
/// transaction), as the worker SDK does, until `total` steps are done.
async fn chained(
    engine: &Engine,
    clients: usize,
    total: usize,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let namespaces = vec!["default".to_string()];
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..clients {
        let engine = engine.clone();
        let done = done.clone();
        let namespaces = namespaces.clone();
        handles.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).unwrap();
            let worker = format!("bench-{c}");
            let mut empty = 0;
            while done.load(std::sync::atomic::Ordering::Relaxed) < total && empty < 200 {
                let t = Instant::now();
                let mut steps = engine.step_claim("default", &worker, 1).await.unwrap();
                let Some(mut step) = steps.pop() else {
                    empty += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                };
                empty = 0;
                let mut t = t;
                loop {
                    let (_, mut next) = engine
                        .step_complete_and_claim(
                            step.lease,
                            json!({"ok": true}),
                            &worker,
                            &namespaces,
                            &[],
                            1,
                        )
                        .await
                        .unwrap();
                    hist.record(t.elapsed().as_micros() as u64).unwrap();
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    t = Instant::now();
                    match next.pop() {
                        Some(s) => step = s,
                        None => break,
                    }
                }
            }
            hist
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for h in handles {
        hist.add(h.await?)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((
        done.load(std::sync::atomic::Ordering::Relaxed) as f64 / elapsed,
        hist,
    ))
}

/// `clients` loops, each claiming up to `batch` steps and completing them
/// (one transaction per batch), until `total` steps are done.
async fn cycles(
    engine: &Engine,
    clients: usize,
    batch: u32,
    total: usize,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..clients {
        let engine = engine.clone();
        let done = done.clone();
        handles.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).unwrap();
            let worker = format!("bench-{c}");
            let mut empty = 0;
            while done.load(std::sync::atomic::Ordering::Relaxed) < total && empty < 200 {
                let t = Instant::now();
                let steps = engine.step_claim("default", &worker, batch).await.unwrap();
                if steps.is_empty() {
                    empty += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                empty = 0;
                let n = steps.len();
                let items = steps
                    .into_iter()
                    .map(|s| StepCompletion {
                        lease: s.lease,
                        result: json!({"ok": true}),
                    })
                    .collect();
                for r in engine.step_complete_many(items).await.unwrap() {
                    r.unwrap();
                }
                let per_cycle = t.elapsed().as_micros() as u64 / n as u64;
                for _ in 0..n {
                    hist.record(per_cycle).unwrap();
                }
                done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
            hist
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for h in handles {
        hist.add(h.await?)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((
        done.load(std::sync::atomic::Ordering::Relaxed) as f64 / elapsed,
        hist,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tasks: usize = std::env::var("BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let (_db, engine) = setup().await?;

    let create = create_tasks(&engine, tasks).await?;
    println!(
        "create 4-step task, sequential: n={} p50={:.2} ms p99={:.2} ms",
        create.len(),
        ms(&create, 0.5),
        ms(&create, 0.99)
    );

    for (label, clients, batch) in [
        ("sequential, 1 client, batch 1", 1, 1),
        ("8 clients, batch 1", 8, 1),
        ("4 clients, batch 32", 4, 32),
        ("8 clients, batch 64", 8, 64),
    ] {
        // Each run drains `tasks` fresh 4-step tasks.
        if label != "sequential, 1 client, batch 1" {
            create_tasks(&engine, tasks).await?;
        }
        let (rate, hist) = cycles(&engine, clients, batch, tasks * 4).await?;
        println!(
            "claim+complete, {label}: {rate:.0} steps/s, per-step p50={:.2} ms p99={:.2} ms",
            ms(&hist, 0.5),
            ms(&hist, 0.99)
        );
    }
    for clients in [1, 8] {
        create_tasks(&engine, tasks).await?;
        let (rate, hist) = chained(&engine, clients, tasks * 4).await?;
        println!(
            "complete-and-claim chains, {clients} client(s): {rate:.0} steps/s, per-step p50={:.2} ms p99={:.2} ms",
            ms(&hist, 0.5),
            ms(&hist, 0.99)
        );
    }
    Ok(())
}
