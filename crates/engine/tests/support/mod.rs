//! Shared set-up for engine tests: a fresh migrated database per test, on
//! the backend `TASKER_TEST_BACKEND` names (`postgres`, the default, or
//! `sqlite`; see `backend.rs`), and what a test checks in that database
//! (`database.rs`, `time_shift.rs`, `fault.rs`), the same on either.
#![allow(dead_code)]

pub mod backend;
pub mod database;
pub mod fault;
pub mod schedule_nodes;
pub mod silent_proxy;
mod time_shift;

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tasker_engine::{Engine, EngineConfig, NewTask};
use tasker_model::{ClaimedStep, Task};
use tasker_postgres::{PgStore, PoolConfig};
use tasker_sqlite::{SqliteLocation, SqliteStore};
use tasker_testkit::TestDatabase;

// Each test file uses some of these.
#[allow(unused_imports)]
pub use backend::{Backend, TestStore, backend, skip_on_sqlite};
#[allow(unused_imports)]
pub use database::{Database, Rows};
#[allow(unused_imports)]
pub use fault::Fault;

pub struct Harness {
    pub engine: Engine,
    /// The store of the harness's node, `node-a`.
    pub store: TestStore,
    /// The test's own connections to the store's database.
    pub db: Database,
    /// What holds the database: dropped with the harness.
    place: Place,
}

/// Where a test's database lives.
enum Place {
    /// A database of its own on the tests' PostgreSQL server.
    Postgres(TestDatabase),
    /// A directory of its own holding the SQLite file.
    Sqlite(tempfile::TempDir),
}

pub async fn harness() -> Harness {
    harness_with(EngineConfig::default()).await
}

pub async fn harness_with(config: EngineConfig) -> Harness {
    let (store, db, place) = match backend() {
        Backend::Postgres => postgres().await,
        Backend::Sqlite => sqlite().await,
    };
    let engine = Engine::new(store.shared(), config);
    Harness {
        engine,
        store,
        db,
        place,
    }
}

async fn postgres() -> (TestStore, Database, Place) {
    let key = format!("tasker-{}", tasker_postgres::schema_fingerprint());
    let db = TestDatabase::create_from(&key, |url| async move {
        let store = PgStore::connect(&url, &small_pool(), "setup").await?;
        TestStore::Postgres(store.clone()).migrate().await?;
        store.pool().close().await;
        Ok(())
    })
    .await
    .expect("test database");
    let store = PgStore::connect(&db.url, &small_pool(), "node-a")
        .await
        .expect("connect");
    let database = Database::Postgres(store.pool().clone());
    (TestStore::Postgres(store), database, Place::Postgres(db))
}

async fn sqlite() -> (TestStore, Database, Place) {
    let dir = tempfile::tempdir().expect("a directory for the SQLite database");
    let store = SqliteStore::open(SqliteLocation::Directory(dir.path().to_owned()), "node-a")
        .await
        .expect("the SQLite store opens");
    let store = TestStore::Sqlite(store);
    store.migrate().await.expect("SQLite migrations");
    let file = SqliteLocation::Directory(dir.path().to_owned())
        .database_file()
        .expect("a file database");
    // The test's own connection (the store holds the lock file, not the
    // database); it waits for the store's writer rather than fail. One
    // connection: a connection parses DDL against the schema it last read,
    // so a trigger dropped on one connection would still "already exist"
    // when the next fault is injected on another.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(file)
                .busy_timeout(Duration::from_secs(30)),
        )
        .await
        .expect("the test's SQLite connections");
    (store, Database::Sqlite(pool), Place::Sqlite(dir))
}

pub fn small_pool() -> PoolConfig {
    PoolConfig {
        max_connections: 8,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(30),
        ..PoolConfig::default()
    }
}

impl Harness {
    pub fn backend(&self) -> Backend {
        match self.place {
            Place::Postgres(_) => Backend::Postgres,
            Place::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The store of node `node_id`: on PostgreSQL a store with its own
    /// connections, as another process would have; on SQLite, which serves
    /// one node, the harness's own store.
    pub async fn node_store(&self, node_id: &str) -> TestStore {
        match &self.place {
            Place::Postgres(db) => TestStore::Postgres(
                PgStore::connect(&db.url, &small_pool(), node_id)
                    .await
                    .expect("connect"),
            ),
            Place::Sqlite(_) => self.store.clone(),
        }
    }

    /// A second engine on the same database, as another node would be
    /// (on SQLite: over the same store, see [`Harness::node_store`]).
    pub async fn other_node(&self, config: EngineConfig) -> Engine {
        Engine::new(self.node_store("node-b").await.shared(), config)
    }

    /// The URL of the test's PostgreSQL database; for tests that only run
    /// there.
    pub fn postgres_url(&self) -> &str {
        match &self.place {
            Place::Postgres(db) => &db.url,
            Place::Sqlite(_) => {
                panic!("a PostgreSQL-only test ran on SQLite: guard it with skip_on_sqlite")
            }
        }
    }

    /// The test's PostgreSQL database itself; for tests that only run there.
    pub fn into_postgres(self) -> (TestDatabase, PgStore) {
        let store = self.store.postgres().clone();
        match self.place {
            Place::Postgres(db) => (db, store),
            Place::Sqlite(_) => unreachable!("store.postgres() refused SQLite"),
        }
    }

    pub async fn register(&self, yaml: &str) {
        self.engine
            .template_register_yaml(yaml)
            .await
            .expect("template registers");
    }

    pub async fn create(
        &self,
        namespace: &str,
        template: &str,
        context: serde_json::Value,
    ) -> Task {
        self.engine
            .task_create(NewTask {
                namespace: namespace.into(),
                template: template.into(),
                context,
                ..NewTask::default()
            })
            .await
            .expect("task created")
            .0
    }

    pub async fn claim(&self, namespace: &str, max: u32) -> Vec<ClaimedStep> {
        self.engine
            .step_claim(namespace, "worker-1", max)
            .await
            .expect("claim")
    }

    pub async fn claim_one(&self, namespace: &str) -> ClaimedStep {
        let mut claimed = self.claim(namespace, 1).await;
        assert_eq!(claimed.len(), 1, "expected exactly one ready step");
        claimed.pop().unwrap()
    }

    pub async fn count(&self, rows: Rows<'_>) -> i64 {
        self.db.count(rows).await
    }

    pub async fn queue_depth(&self, namespace: &str) -> i64 {
        self.db.queue_depth(namespace).await
    }
}

pub fn template(namespace: &str, name: &str, steps: &str) -> String {
    format!("namespace: {namespace}\nname: {name}\nversion: \"1\"\nsteps:\n{steps}")
}

pub const LINEAR: &str = "
  - { name: a, handler: h.a }
  - { name: b, handler: h.b, depends_on: [a] }
  - { name: c, handler: h.c, depends_on: [b] }
  - { name: d, handler: h.d, depends_on: [c] }
";

pub const DIAMOND: &str = "
  - { name: a, handler: h.a }
  - { name: b, handler: h.b, depends_on: [a] }
  - { name: c, handler: h.c, depends_on: [a] }
  - { name: d, handler: h.d, depends_on: [b, c] }
";

/// A root, eight parallel steps and a join: completions of the branches all
/// touch one task, and the join waits for all of them.
pub const FAN: &str = "
  - { name: root, handler: h.root }
  - { name: b1, handler: h.b, depends_on: [root] }
  - { name: b2, handler: h.b, depends_on: [root] }
  - { name: b3, handler: h.b, depends_on: [root] }
  - { name: b4, handler: h.b, depends_on: [root] }
  - { name: b5, handler: h.b, depends_on: [root] }
  - { name: b6, handler: h.b, depends_on: [root] }
  - { name: b7, handler: h.b, depends_on: [root] }
  - { name: b8, handler: h.b, depends_on: [root] }
  - { name: join, handler: h.join, depends_on: [b1, b2, b3, b4, b5, b6, b7, b8] }
";
