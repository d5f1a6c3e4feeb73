//! The testkit against whatever server `server_url` resolves to: the one in
//! TASKER_TEST_DATABASE_URL / DATABASE_URL, else the throwaway server.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{Connection as _, PgConnection};
use tasker_testkit::{TestDatabase, server_url};

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .expect("connect to a test database")
}

async fn database_exists(name: &str) -> bool {
    let mut admin = connect(&server_url().await.unwrap()).await;
    let exists = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    exists
}

async fn has_table(url: &str, table: &str) -> bool {
    let mut conn = connect(url).await;
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    found.is_some()
}

/// A key no earlier run has used, so that this run must build the template.
fn unique_key(purpose: &str) -> String {
    format!(
        "tasker-testkit-self-test:{purpose}:{:016x}",
        rand::random::<u64>()
    )
}

#[tokio::test]
async fn two_databases_are_distinct_and_isolated() {
    let a = TestDatabase::create().await.unwrap();
    let b = TestDatabase::create().await.unwrap();
    assert_ne!(a.name, b.name);
    assert_ne!(a.url, b.url);
    assert!(a.name.starts_with("tasker_test_"), "{}", a.name);

    let mut conn = connect(&a.url).await;
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(current, a.name);
    sqlx::raw_sql("CREATE TABLE only_in_a (id int)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    assert!(has_table(&a.url, "only_in_a").await);
    assert!(!has_table(&b.url, "only_in_a").await);
}

static SETUP_RUNS: AtomicUsize = AtomicUsize::new(0);

#[tokio::test]
async fn the_template_setup_runs_once_per_key_and_every_clone_starts_from_it() {
    let key = unique_key("runs-once");
    let setup = |url: String| async move {
        SETUP_RUNS.fetch_add(1, Ordering::SeqCst);
        let mut conn = PgConnection::connect(&url).await?;
        sqlx::raw_sql(
            "CREATE TABLE seeded (value text); INSERT INTO seeded VALUES ('from setup');",
        )
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    };

    // Racing callers of one key, then one more after the template exists.
    let (first, second, third) = tokio::join!(
        TestDatabase::create_from(&key, setup),
        TestDatabase::create_from(&key, setup),
        TestDatabase::create_from(&key, setup),
    );
    let clones = vec![
        first.unwrap(),
        second.unwrap(),
        third.unwrap(),
        TestDatabase::create_from(&key, setup).await.unwrap(),
    ];
    assert_eq!(SETUP_RUNS.load(Ordering::SeqCst), 1);

    for clone in &clones {
        assert!(clone.name.starts_with("tasker_test_"), "{}", clone.name);
        let mut conn = connect(&clone.url).await;
        let rows: Vec<String> = sqlx::query_scalar("SELECT value FROM seeded")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(rows, ["from setup"]);
        conn.close().await.unwrap();
    }

    // Clones are independent copies.
    let mut conn = connect(&clones[0].url).await;
    sqlx::raw_sql("INSERT INTO seeded VALUES ('only in the first clone')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let mut conn = connect(&clones[1].url).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM seeded")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 1);
    conn.close().await.unwrap();

    TestDatabase::drop_template(&key).await.unwrap();
}

#[tokio::test]
async fn a_failed_setup_is_reported_and_runs_again_next_time() {
    let key = unique_key("fails-once");
    let error = TestDatabase::create_from(&key, |_url| async {
        anyhow::bail!("migration 3 is broken")
    })
    .await
    .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("migration 3 is broken"), "{message}");
    assert!(message.contains(&key), "{message}");

    let db = TestDatabase::create_from(&key, |url| async move {
        let mut conn = PgConnection::connect(&url).await?;
        sqlx::raw_sql("CREATE TABLE fixed (id int)")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    })
    .await
    .unwrap();
    assert!(has_table(&db.url, "fixed").await);

    TestDatabase::drop_template(&key).await.unwrap();
}

#[tokio::test]
async fn a_setup_that_leaves_a_connection_open_still_yields_clones() {
    let key = unique_key("leaky-setup");
    let (leaked_tx, leaked_rx) = tokio::sync::oneshot::channel();
    let db = TestDatabase::create_from(&key, |url| async move {
        let mut conn = PgConnection::connect(&url).await?;
        sqlx::raw_sql("CREATE TABLE t (id int)")
            .execute(&mut conn)
            .await?;
        let _ = leaked_tx.send(conn);
        Ok(())
    })
    .await
    .unwrap();
    assert!(has_table(&db.url, "t").await);
    drop(leaked_rx);

    TestDatabase::drop_template(&key).await.unwrap();
}

#[tokio::test]
async fn dropping_removes_the_database_even_with_open_connections() {
    let db = TestDatabase::create().await.unwrap();
    let name = db.name.clone();
    let open = connect(&db.url).await;
    assert!(database_exists(&name).await);

    drop(db);

    assert!(!database_exists(&name).await);
    drop(open);
}

#[tokio::test]
async fn dropping_a_template_makes_the_next_clone_run_its_setup_again() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let key = unique_key("rebuilt");
    let setup = |_url: String| async {
        RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(())
    };
    let first = TestDatabase::create_from(&key, setup).await.unwrap();
    TestDatabase::drop_template(&key).await.unwrap();
    // The clone made before does not depend on its template.
    assert!(database_exists(&first.name).await);
    let _second = TestDatabase::create_from(&key, setup).await.unwrap();
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);

    TestDatabase::drop_template(&key).await.unwrap();
}
