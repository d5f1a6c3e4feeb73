//! What the benchmark reads from PostgreSQL directly: its version and the
//! settings that bound Tasker, the durable-commit floor measured on the same
//! database, transaction counts and row churn from its statistics views.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, PgPool, Row as _};

/// The table the commit-floor probe writes; created and dropped by each run.
const PROBE_TABLE: &str = "tasker_bench_commit_probe";

pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .with_context(|| "the database URL cannot be parsed".to_owned())?;
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.disable_statement_logging())
        .await
        .context("cannot connect to the database")
}

/// The server's version and the settings that decide what a commit costs.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub server_version: String,
    pub settings: BTreeMap<String, String>,
}

pub async fn settings(pool: &PgPool) -> anyhow::Result<Settings> {
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(pool)
        .await?;
    let rows =
        sqlx::query("SELECT name, setting FROM pg_settings WHERE name = ANY($1) ORDER BY name")
            .bind(
                [
                    "autovacuum",
                    "autovacuum_naptime",
                    "fsync",
                    "synchronous_commit",
                    "wal_sync_method",
                    "shared_buffers",
                    "max_connections",
                    "commit_delay",
                ]
                .as_slice(),
            )
            .fetch_all(pool)
            .await?;
    let settings = rows
        .iter()
        .map(|row| (row.get::<String, _>(0), row.get::<String, _>(1)))
        .collect();
    Ok(Settings {
        server_version,
        settings,
    })
}

/// Durable commits per second of single-row inserts, one per transaction.
#[derive(Debug, Clone, Serialize)]
pub struct CommitFloor {
    pub one_connection: f64,
    pub eight_connections: f64,
}

/// Measures PostgreSQL's own durable-commit rate for `each` with one and
/// with eight connections: the floor every Tasker figure is read against.
pub async fn commit_floor(pool: &PgPool, each: Duration) -> anyhow::Result<CommitFloor> {
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())"
    ))
    .execute(pool)
    .await
    .context("cannot create the commit probe table")?;
    let one = commits_per_second(pool, 1, each).await;
    let eight = commits_per_second(pool, 8, each).await;
    sqlx::query(&format!("DROP TABLE IF EXISTS {PROBE_TABLE}"))
        .execute(pool)
        .await?;
    Ok(CommitFloor {
        one_connection: one?,
        eight_connections: eight?,
    })
}

async fn commits_per_second(
    pool: &PgPool,
    connections: usize,
    each: Duration,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let deadline = started + each;
    let mut clients = Vec::new();
    for _ in 0..connections {
        let pool = pool.clone();
        clients.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            // Durable commits whatever the database's default says.
            sqlx::query("SET synchronous_commit = on")
                .execute(&mut *conn)
                .await?;
            let mut commits = 0u64;
            while Instant::now() < deadline {
                sqlx::query(&format!("INSERT INTO {PROBE_TABLE} DEFAULT VALUES"))
                    .execute(&mut *conn)
                    .await?;
                commits += 1;
            }
            sqlx::query("RESET synchronous_commit")
                .execute(&mut *conn)
                .await?;
            Ok::<_, sqlx::Error>(commits)
        }));
    }
    let mut total = 0;
    for client in clients {
        total += client.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Transactions committed and rolled back in this database so far, as its
/// statistics say now.
pub async fn transactions(pool: &PgPool) -> anyhow::Result<i64> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Row versions each table has inserted, updated (in place or not) and deleted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Churn {
    pub inserted: i64,
    pub updated: i64,
    pub hot_updated: i64,
    pub deleted: i64,
}

impl Churn {
    /// Row versions left dead: every update and delete makes one.
    pub fn dead(&self) -> i64 {
        self.updated + self.deleted
    }
}

/// Per table of the `tasker` and `pgmq` schemas, its counters now.
pub async fn churn(pool: &PgPool) -> anyhow::Result<BTreeMap<String, Churn>> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::query(
        "SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del \
         FROM pg_stat_user_tables WHERE schemaname IN ('tasker', 'pgmq')",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                row.get::<String, _>(0),
                Churn {
                    inserted: row.get(1),
                    updated: row.get(2),
                    hot_updated: row.get(3),
                    deleted: row.get(4),
                },
            )
        })
        .collect())
}

/// What changed between two readings of [`churn`], tables that did not
/// change left out.
pub fn churn_between(
    before: &BTreeMap<String, Churn>,
    after: &BTreeMap<String, Churn>,
) -> BTreeMap<String, Churn> {
    after
        .iter()
        .filter_map(|(table, now)| {
            let was = before.get(table).cloned().unwrap_or_default();
            let delta = Churn {
                inserted: now.inserted - was.inserted,
                updated: now.updated - was.updated,
                hot_updated: now.hot_updated - was.hot_updated,
                deleted: now.deleted - was.deleted,
            };
            (delta.inserted + delta.updated + delta.deleted > 0).then(|| (table.clone(), delta))
        })
        .collect()
}

/// Statistics reach the views late: a backend flushes its counters at most
/// once a second, and one that went idle right after a flush waits up to
/// ten seconds before it flushes again. A reading must wait that out.
pub async fn let_statistics_settle() {
    tokio::time::sleep(Duration::from_millis(11_000)).await;
}
