//! The leader's sweeps on SQLite through the `Store` trait, on a database
//! file: a lease that ran out is handed back, a task past its deadline
//! fails, and a ready step whose message is gone gets a new one. Stored
//! times are moved into the past through a connection of the test's own,
//! instead of waiting them out.

use std::time::Duration;

use tasker_model::{StepState, TaskState, Template};
use tasker_sqlite::{SqliteLocation, SqliteStore};
use tasker_store::{StepClaim, Store, StuckKind, TaskCreate};
use uuid::Uuid;

struct Fixture {
    store: SqliteStore,
    /// The test's own connections to the same file.
    pool: sqlx::SqlitePool,
    _dir: tempfile::TempDir,
}

async fn fixture() -> anyhow::Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let store =
        SqliteStore::open(SqliteLocation::Directory(dir.path().to_owned()), "node-1").await?;
    store.migrate().await?;
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("tasker.db").display()
    ))
    .await?;
    Ok(Fixture {
        store,
        pool,
        _dir: dir,
    })
}

impl Fixture {
    async fn task(&self, deadline: Option<Duration>) -> anyhow::Result<Uuid> {
        let template = Template::from_json(serde_json::json!({
            "namespace": "default", "name": "one", "version": "1",
            "steps": [{"name": "a", "handler": "h", "timeout": "10m"}],
        }))?;
        let (record, _) = self.store.template_register(&template).await?;
        let (task, _) = self
            .store
            .task_create(TaskCreate {
                template_id: record.id,
                context: serde_json::json!({}),
                idempotency_key: None,
                tags: Vec::new(),
                deadline,
            })
            .await?;
        Ok(task.id)
    }

    async fn claim(&self) -> anyhow::Result<Vec<tasker_model::ClaimedStep>> {
        Ok(self
            .store
            .step_claim(StepClaim {
                namespace: "default".into(),
                worker_id: "worker-1".into(),
                max: 1,
                lease_for: Duration::from_secs(30),
                handlers: Vec::new(),
            })
            .await?)
    }

    async fn execute(&self, sql: &str) -> anyhow::Result<u64> {
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }
}

#[tokio::test]
async fn a_lease_that_ran_out_is_handed_back_and_claimed_again() -> anyhow::Result<()> {
    let f = fixture().await?;
    let task = f.task(None).await?;
    let first = f.claim().await?;
    assert_eq!(first.len(), 1);
    assert_eq!(f.store.maintenance_steps_time_out(100).await?, (0, 0));

    // The lease ran out a minute ago (the attempt is within its timeout).
    f.execute("UPDATE steps SET lease_expires_at = lease_expires_at - 60000000")
        .await?;
    f.execute("UPDATE queue_messages SET vt = vt - 60000000")
        .await?;
    assert_eq!(f.store.maintenance_steps_time_out(100).await?, (0, 1));
    let steps = f.store.task_steps(task).await?;
    assert_eq!(steps[0].state, StepState::Ready);

    let again = f.claim().await?;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].lease.attempt, 2);
    assert_ne!(again[0].lease.token, first[0].lease.token);
    Ok(())
}

#[tokio::test]
async fn a_task_past_its_deadline_fails() -> anyhow::Result<()> {
    let f = fixture().await?;
    let task = f.task(Some(Duration::from_secs(3600))).await?;
    assert_eq!(f.store.maintenance_tasks_exceed_deadline(100).await?, 0);
    f.execute("UPDATE tasks SET deadline_at = deadline_at - 7200000000")
        .await?;
    assert_eq!(f.store.maintenance_tasks_exceed_deadline(100).await?, 1);
    let failed = f.store.task_get(task).await?;
    assert_eq!(failed.state, TaskState::Failed);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM queue_messages")
        .fetch_one(&f.pool)
        .await?;
    assert_eq!(queued, 0, "the failed task's message is gone");
    assert!(f.claim().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_ready_step_whose_message_is_gone_gets_a_new_one() -> anyhow::Result<()> {
    let f = fixture().await?;
    let task = f.task(None).await?;
    assert_eq!(f.execute("DELETE FROM queue_messages").await?, 1);
    assert!(f.claim().await?.is_empty());

    let repaired = f.store.maintenance_stuck_repair(100).await?;
    let count = |kind| {
        repaired
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(count(StuckKind::QueuedWithoutMessage), 1);
    assert_eq!(count(StuckKind::RunningWithoutMessage), 0);
    let claimed = f.claim().await?;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].task_id, task);
    // Nothing is stuck any more.
    let again = f.store.maintenance_stuck_repair(100).await?;
    assert!(again.iter().all(|(_, n)| *n == 0), "{again:?}");
    Ok(())
}
