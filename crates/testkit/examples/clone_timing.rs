//! Measures what the testkit costs a test: finding the server, creating an
//! empty database, building a template, cloning it, and dropping a database.
//!
//! `cargo run -p tasker-testkit --example clone_timing [tables]` (default 30
//! tables with an index each, about the size of a real schema).

use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection};
use tasker_testkit::{TestDatabase, server_url};

const ROUNDS: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tables: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(30);
    let key = format!(
        "tasker-testkit-example:clone-timing:{tables}:{:016x}",
        rand::random::<u64>()
    );
    let setup = |url: String| async move {
        let mut conn = PgConnection::connect(&url).await?;
        for i in 0..tables {
            let sql = format!(
                "CREATE TABLE t{i} (id bigserial PRIMARY KEY, a text, b jsonb, c timestamptz DEFAULT now());
                 CREATE INDEX ON t{i} (a);"
            );
            sqlx::raw_sql(&sql).execute(&mut conn).await?;
        }
        conn.close().await?;
        Ok(())
    };

    let started = Instant::now();
    let url = server_url().await?;
    println!(
        "server_url (first call in this process): {:?} -> {url}",
        started.elapsed()
    );

    let (empty, _) = timed(ROUNDS, TestDatabase::create).await?;
    let started = Instant::now();
    let first = TestDatabase::create_from(&key, setup).await?;
    let build = started.elapsed();
    drop(first);
    let (clones, drops) = timed(ROUNDS, || TestDatabase::create_from(&key, setup)).await?;
    TestDatabase::drop_template(&key).await?;

    println!("create (empty database):           {}", summary(&empty));
    println!("create_from, building the template: {build:?} ({tables} tables)");
    println!("create_from, cloning the template:  {}", summary(&clones));
    println!("drop (in Drop):                     {}", summary(&drops));
    Ok(())
}

/// Times `rounds` creations and the drop of each.
async fn timed<F, Fut>(
    rounds: usize,
    mut create: F,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<TestDatabase>>,
{
    let (mut creates, mut drops) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        let db = create().await?;
        creates.push(started.elapsed());
        let started = Instant::now();
        drop(db);
        drops.push(started.elapsed());
    }
    Ok((creates, drops))
}

fn summary(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    format!(
        "mean {mean:.1?}, median {:.1?}, min {:.1?}, max {:.1?} ({} runs)",
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
        times.len()
    )
}
