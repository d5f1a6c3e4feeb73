//! `idle`: what waiting costs. K worker processes long-poll a namespace that
//! has no work; the database's own transaction counter says how much work
//! their waiting makes, and `/proc` what the node holds in memory.

use std::time::Duration;

use anyhow::bail;
use serde::Serialize;
use sqlx::PgPool;
use tasker_client::Client;

use super::database;
use super::processes::{WorkerProcesses, memory_of};
use super::progress::Progress;

/// The namespace the idle workers poll; nothing is ever created in it.
pub const NAMESPACE: &str = "bench_idle";

/// Transactions each reading of the counter itself costs.
const READING_TRANSACTIONS: i64 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub workers: usize,
    pub seconds: f64,
    /// Every transaction of this database while only the workers waited.
    pub transactions_per_second: f64,
    pub server_rss_bytes: Option<u64>,
}

pub async fn run(
    client: &Client,
    pool: &PgPool,
    server: &str,
    token: Option<&str>,
    workers: usize,
    seconds: u64,
    server_pid: Option<u32>,
) -> anyhow::Result<Idle> {
    client.namespace_create(NAMESPACE).await?;
    let running = WorkerProcesses::start(server, token, NAMESPACE, workers, (1, 4))?;
    let measured = measure(client, pool, workers, seconds).await;
    let rss = server_pid.and_then(memory_of).map(|(now, _)| now);
    running.stop().await;
    let (transactions, elapsed) = measured?;
    Ok(Idle {
        workers,
        seconds: elapsed,
        transactions_per_second: transactions as f64 / elapsed,
        server_rss_bytes: rss,
    })
}

async fn measure(
    client: &Client,
    pool: &PgPool,
    workers: usize,
    seconds: u64,
) -> anyhow::Result<(i64, f64)> {
    let mut progress = Progress::new(
        format!("idle: {workers} workers registering"),
        workers as u64,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let cluster = client.cluster().await?;
        let live = cluster
            .workers
            .iter()
            .filter(|w| w.worker.namespaces.iter().any(|n| n == NAMESPACE))
            .count();
        progress.set(live as u64);
        if live >= workers {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("only {live} of {workers} idle workers registered within 60s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress.finish();
    // Registration and the first polls are not idle work.
    database::let_statistics_settle().await;
    let before = database::transactions(pool).await?;
    // Between the two readings: the statistics lag the transactions by up
    // to the settling time at both ends alike.
    let started = std::time::Instant::now();
    let mut progress = Progress::new(format!("idle: measuring for {seconds}s"), seconds);
    for second in 1..=seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        progress.set(second);
    }
    progress.finish();
    database::let_statistics_settle().await;
    let after = database::transactions(pool).await?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(((after - before - READING_TRANSACTIONS).max(0), elapsed))
}
