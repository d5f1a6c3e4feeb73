//! Fixtures of the unit tests: a migrated in-memory store (with its
//! default namespace), and rows written
//! the way the engine leaves them (a task with its steps ready and their
//! queue messages, a step leased to a worker, a task finished), so that the
//! reads can be tested without the orchestration. Test-only.

use serde_json::json;
use tasker_model::{Template, Timestamp};
use uuid::Uuid;

use crate::columns::to_json_text;
use crate::{SqliteLocation, SqliteStore, clock};

/// The node id of every test store.
pub(crate) const NODE: &str = "node-test";

/// A fresh in-memory store with every migration applied.
pub(crate) async fn test_store() -> SqliteStore {
    let store = SqliteStore::open(SqliteLocation::Memory, NODE)
        .await
        .expect("in-memory store opens");
    crate::catalog::migrate(&store)
        .await
        .expect("migrations apply");
    store
}

/// Runs one statement (fixtures, moving stored times into the past);
/// returns the rows it changed.
pub(crate) async fn execute(store: &SqliteStore, sql: &str) -> u64 {
    sqlx::query(sql)
        .execute(&store.writer)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .rows_affected()
}

/// Microseconds in `seconds`.
pub(crate) fn secs(seconds: i64) -> i64 {
    seconds * 1_000_000
}

/// Creates a namespace (its queue named after it) unless it exists.
pub(crate) async fn namespace(store: &SqliteStore, name: &str) {
    sqlx::query("INSERT OR IGNORE INTO namespaces (name, queue, created_at) VALUES (?1, ?1, ?2)")
        .bind(name)
        .bind(clock::micros(clock::now()))
        .execute(&store.writer)
        .await
        .expect("namespace insert");
}

/// Registers a template of `namespace/name@version` whose steps run one
/// after another, each with the handler `h.<step>` and three attempts.
pub(crate) async fn template(
    store: &SqliteStore,
    namespace: &str,
    name: &str,
    version: &str,
    steps: &[&str],
) -> Uuid {
    self::namespace(store, namespace).await;
    // Each step depends on the one before it.
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let mut def = json!({
                "name": step,
                "handler": format!("h.{step}"),
                "retry": {"max_attempts": 3},
            });
            if i > 0 {
                def["depends_on"] = json!([steps[i - 1]]);
            }
            def
        })
        .collect();
    let definition = Template::from_json(json!({
        "namespace": namespace,
        "name": name,
        "version": version,
        "steps": steps,
    }))
    .expect("fixture template is valid");
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO templates (id, namespace, name, version, content_hash, definition, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(id.hyphenated())
    .bind(namespace)
    .bind(name)
    .bind(version)
    .bind(definition.content_hash())
    .bind(to_json_text(&definition))
    .bind(clock::micros(clock::now()))
    .execute(&store.writer)
    .await
    .expect("template insert");
    id
}

/// A task written by a fixture.
#[derive(Debug, Clone)]
pub(crate) struct TestTask {
    pub id: Uuid,
    /// Its steps' ids, by position.
    pub steps: Vec<Uuid>,
}

/// A running task of a new template `namespace/t@<n>` with `steps`, every
/// step ready with a visible queue message (the fixture does not follow
/// the graph: reads do not care).
pub(crate) async fn task(store: &SqliteStore, namespace: &str, steps: &[&str]) -> TestTask {
    let version = Uuid::new_v4().simple().to_string();
    let template_id = template(store, namespace, "t", &version, steps).await;
    task_of(store, namespace, template_id, steps, &[]).await
}

/// A running task of `template_id` carrying `tags`, created now.
pub(crate) async fn task_of(
    store: &SqliteStore,
    namespace: &str,
    template_id: Uuid,
    steps: &[&str],
    tags: &[&str],
) -> TestTask {
    let id = Uuid::now_v7();
    let now = clock::micros(clock::now());
    sqlx::query(
        "INSERT INTO tasks (id, namespace, template_id, state, context, tags, created_at, updated_at) \
         VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?6)",
    )
    .bind(id.hyphenated())
    .bind(namespace)
    .bind(template_id.hyphenated())
    .bind(to_json_text(&json!({"order": 7})))
    .bind(to_json_text(tags))
    .bind(now)
    .execute(&store.writer)
    .await
    .expect("task insert");
    let mut step_ids = Vec::new();
    for (position, name) in steps.iter().enumerate() {
        let step_id = Uuid::now_v7();
        let message = json!({"task_id": id, "step_id": step_id, "handler": format!("h.{name}")});
        let msg_id: i64 = sqlx::query_scalar(
            "INSERT INTO queue_messages (queue, vt, enqueued_at, message) \
             SELECT queue, ?2, ?2, ?3 FROM namespaces WHERE name = ?1 RETURNING msg_id",
        )
        .bind(namespace)
        .bind(now)
        .bind(to_json_text(&message))
        .fetch_one(&store.writer)
        .await
        .expect("message insert");
        sqlx::query(
            "INSERT INTO steps (id, task_id, position, name, state, msg_id) \
             VALUES (?1, ?2, ?3, ?4, 'ready', ?5)",
        )
        .bind(step_id.hyphenated())
        .bind(id.hyphenated())
        .bind(position as i64)
        .bind(*name)
        .bind(msg_id)
        .execute(&store.writer)
        .await
        .expect("step insert");
        step_ids.push(step_id);
    }
    TestTask {
        id,
        steps: step_ids,
    }
}

/// Leases a ready step to `worker` for `lease_secs` from now (negative: a
/// lease that ran out), hiding its message until then, as a claim does.
pub(crate) async fn run_step(store: &SqliteStore, step_id: &Uuid, worker: &str, lease_secs: i64) {
    let now = clock::micros(clock::now());
    let until = now + secs(lease_secs);
    sqlx::query(
        "UPDATE queue_messages SET vt = ?2, read_ct = read_ct + 1 \
         WHERE msg_id = (SELECT msg_id FROM steps WHERE id = ?1)",
    )
    .bind(step_id.hyphenated())
    .bind(until)
    .execute(&store.writer)
    .await
    .expect("message hide");
    sqlx::query(
        "UPDATE steps SET state = 'running', attempt = attempt + 1, lease_token = ?2, \
           lease_expires_at = ?3, worker_id = ?4, started_at = ?5 WHERE id = ?1",
    )
    .bind(step_id.hyphenated())
    .bind(Uuid::new_v4().hyphenated())
    .bind(until)
    .bind(worker)
    .bind(now)
    .execute(&store.writer)
    .await
    .expect("step lease");
}

/// Ends a step in `state` (`complete`, `failed`, …) with `result` or
/// `error`, deleting its queue message.
pub(crate) async fn end_step(
    store: &SqliteStore,
    step_id: &Uuid,
    state: &str,
    result: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
) {
    sqlx::query(
        "DELETE FROM queue_messages WHERE msg_id = (SELECT msg_id FROM steps WHERE id = ?1)",
    )
    .bind(step_id.hyphenated())
    .execute(&store.writer)
    .await
    .expect("message delete");
    sqlx::query(
        "UPDATE steps SET state = ?2, msg_id = NULL, lease_token = NULL, lease_expires_at = NULL, \
           attempt = max(attempt, 1), result = ?3, error = ?4, finished_at = ?5 WHERE id = ?1",
    )
    .bind(step_id.hyphenated())
    .bind(state)
    .bind(result.map(|r| to_json_text(&r)))
    .bind(error.map(|e| to_json_text(&e)))
    .bind(clock::micros(clock::now()))
    .execute(&store.writer)
    .await
    .expect("step end");
}

/// Finishes a task in `state` at `at`, ending its steps still in flight
/// as `cancelled`.
pub(crate) async fn finish_task(store: &SqliteStore, task: &TestTask, state: &str, at: Timestamp) {
    for step in &task.steps {
        let in_flight: bool = sqlx::query_scalar(
            "SELECT state IN ('ready', 'running', 'retrying') FROM steps WHERE id = ?1",
        )
        .bind(step.hyphenated())
        .fetch_one(&store.writer)
        .await
        .expect("step state");
        if in_flight {
            end_step(store, step, "cancelled", None, None).await;
        }
    }
    sqlx::query("UPDATE tasks SET state = ?2, finished_at = ?3, updated_at = ?3 WHERE id = ?1")
        .bind(task.id.hyphenated())
        .bind(state)
        .bind(clock::micros(at))
        .execute(&store.writer)
        .await
        .expect("task finish");
}

/// Registers `template` (JSON of a template) and creates one task of it
/// through the shared task creation, as the engine would; returns the
/// template's record and the task's id.
pub(crate) async fn created_task(
    store: &SqliteStore,
    template: serde_json::Value,
    context: serde_json::Value,
    deadline: Option<std::time::Duration>,
) -> (tasker_model::TemplateRecord, Uuid) {
    let template = Template::from_json(template).expect("fixture template is valid");
    let (record, _) = tasker_store::catalog::template_register(store, &template)
        .await
        .expect("template registers");
    let (task, _) = tasker_store::orchestration::task_creation::create(
        store,
        &tasker_store::TaskCreate {
            template_id: record.id,
            context,
            idempotency_key: None,
            tags: Vec::new(),
            deadline,
        },
    )
    .await
    .expect("task is created");
    (record, task.id)
}
