//! Shared set-up for engine tests: a fresh migrated database per test.
#![allow(dead_code)]

pub mod schedule_nodes;
pub mod silent_proxy;

use std::sync::Arc;
use std::time::Duration;

use tasker_engine::{Engine, EngineConfig, NewTask};
use tasker_model::{ClaimedStep, Task};
use tasker_postgres::{PgStore, PoolConfig};
use tasker_testkit::TestDatabase;

pub struct Harness {
    pub engine: Engine,
    pub store: PgStore,
    pub db: TestDatabase,
}

pub async fn harness() -> Harness {
    harness_with(EngineConfig::default()).await
}

pub async fn harness_with(config: EngineConfig) -> Harness {
    let key = format!("tasker-{}", tasker_postgres::schema_fingerprint());
    let db = TestDatabase::create_from(&key, |url| async move {
        let store = PgStore::connect(&url, &small_pool(), "setup").await?;
        store_migrate(&store).await?;
        store.pool().close().await;
        Ok(())
    })
    .await
    .expect("test database");
    let store = PgStore::connect(&db.url, &small_pool(), "node-a")
        .await
        .expect("connect");
    let engine = Engine::new(Arc::new(store.clone()), config);
    Harness { engine, store, db }
}

async fn store_migrate(store: &PgStore) -> anyhow::Result<()> {
    use tasker_store::Store;
    store.migrate().await?;
    Ok(())
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
    /// A second engine on the same database, as another node would be.
    pub async fn other_node(&self, config: EngineConfig) -> Engine {
        let store = PgStore::connect(&self.db.url, &small_pool(), "node-b")
            .await
            .expect("connect");
        Engine::new(Arc::new(store), config)
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

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .expect("count query")
    }

    pub async fn queue_depth(&self, namespace: &str) -> i64 {
        self.count(&format!("SELECT count(*) FROM pgmq.q_tasker_{namespace}"))
            .await
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
