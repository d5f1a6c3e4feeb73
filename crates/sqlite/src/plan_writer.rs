//! Writes the [`Plan`](tasker_model::task_run::Plan)s of one or more
//! [`TaskRun`]s in the caller's writing transaction, one statement per kind
//! of row: each statement takes its rows as one JSON array (bound once,
//! read with `json_each`), so a plan of ten thousand fan-out instances costs
//! a handful of statements, not tens of thousands.
//!
//! ```text
//!  0. fan-out instances: their rows (pending, no message)     INSERT … SELECT
//!  1. new messages (visible now, or hidden until a lease     INSERT … SELECT
//!     ends), one statement per queue and time: ids into the step rows
//!  2. dirty steps                                            UPDATE … FROM
//!     changed tasks (a few)                                  UPDATE per task
//!     transitions                                            INSERT … SELECT
//!  3. messages deleted, messages hidden (or shown) until a time
//!  4. fan-out steps whose instances all finished: the list of their results
//! ```
//!
//! JSON values (results, errors, items, branches) travel as strings holding
//! their JSON text, so that `json_extract` hands back that text unchanged
//! (it would unwrap a JSON string to bare text).
//!
//! Must never: change a row the plan does not name, or commit (the caller
//! owns the transaction).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sqlx::SqliteConnection;
use tasker_model::task_run::NewTransition;
use tasker_model::{TaskRun, Timestamp};
use tasker_store::Result;
use tasker_store::backend::Pending;

use crate::queue::{self, StepMessage};
use crate::{clock, db};

/// Writes the runs' plans (what to announce and observe afterwards is the
/// orchestration's to derive).
pub async fn write(
    conn: &mut SqliteConnection,
    node_id: &str,
    runs: &mut [Pending<'_, '_>],
) -> Result<()> {
    if runs.iter().all(|p| p.run.plan.is_empty()) {
        return Ok(());
    }
    insert_instances(conn, runs).await?;
    send_messages(conn, runs).await?;

    let now = clock::micros(clock::now());
    // Per queue: messages deleted, and new visibility times (the last one
    // set for a message wins, as one call at a time would).
    let mut deletes: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    let mut hides: BTreeMap<&str, BTreeMap<i64, Timestamp>> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut transitions: Vec<&NewTransition> = Vec::new();
    for pending in runs.iter() {
        let run = &*pending.run;
        let plan = &run.plan;
        steps.extend(plan.dirty_steps.iter().map(|&i| step_row(run, i)));
        if plan.task_changed {
            sqlx::query("UPDATE tasks SET state = ?, finished_at = ?, updated_at = ? WHERE id = ?")
                .bind(run.task.state.as_str())
                .bind(clock::micros_opt(run.task.finished_at))
                .bind(now)
                .bind(run.task.id.hyphenated())
                .execute(&mut *conn)
                .await
                .map_err(db)?;
        }
        transitions.extend(&plan.transitions);
        deletes
            .entry(pending.queue)
            .or_default()
            .extend(plan.delete_messages.iter().copied());
        let queue_hides = hides.entry(pending.queue).or_default();
        for &(m, at) in &plan.set_visibility {
            queue_hides.insert(m, at);
        }
    }
    update_steps(conn, steps).await?;
    insert_transitions(conn, node_id, transitions).await?;
    for (queue_name, ids) in &deletes {
        queue::delete(conn, queue_name, &ids.iter().copied().collect::<Vec<_>>()).await?;
    }
    // A message both deleted and hidden in one batch (a heartbeat and the
    // complete of one step) is deleted.
    for (queue_name, queue_hides) in hides {
        let kept: Vec<(i64, Timestamp)> = queue_hides
            .into_iter()
            .filter(|(m, _)| !deletes.get(queue_name).is_some_and(|d| d.contains(m)))
            .collect();
        queue::hide(conn, queue_name, &kept).await?;
    }
    gather(conn, runs).await?;
    Ok(())
}

/// Rows as one JSON array for `json_each`.
fn rows_json(rows: Vec<Value>) -> String {
    Value::Array(rows).to_string()
}

/// Messages sent together: one queue, one visibility time (`None`: now).
type SendGroup<'q> = (&'q str, Option<Timestamp>);

/// Sends the plans' new messages (visible now, or hidden until a lease
/// taken at release ends), one statement per queue and time, and records
/// their ids in the runs' step rows.
async fn send_messages(conn: &mut SqliteConnection, runs: &mut [Pending<'_, '_>]) -> Result<()> {
    let mut groups: BTreeMap<SendGroup<'_>, Vec<(usize, usize)>> = BTreeMap::new();
    for (r, pending) in runs.iter().enumerate() {
        let plan = &pending.run.plan;
        for &s in &plan.enqueue {
            groups
                .entry((pending.queue, None))
                .or_default()
                .push((r, s));
        }
        for &(s, at) in &plan.enqueue_leased {
            groups
                .entry((pending.queue, Some(at)))
                .or_default()
                .push((r, s));
        }
    }
    for ((queue_name, hidden_until), targets) in groups {
        let bodies: Vec<StepMessage> = targets
            .iter()
            .map(|&(r, s)| StepMessage {
                task_id: runs[r].run.task.id,
                step_id: runs[r].run.steps[s].id,
                handler: runs[r].run.def(s).handler.clone(),
            })
            .collect();
        let ids = queue::send(conn, queue_name, &bodies, hidden_until).await?;
        for (&(r, s), id) in targets.iter().zip(ids) {
            let run = &mut *runs[r].run;
            run.steps[s].msg_id = Some(id);
            run.plan.dirty_steps.insert(s);
        }
    }
    Ok(())
}

/// Row `i` of a run as the run holds it, with the result and error the
/// plan sets (the last one set wins).
fn step_row(run: &TaskRun<'_>, i: usize) -> Value {
    let plan = &run.plan;
    let row = &run.steps[i];
    let result = plan.results.iter().rev().find(|(s, _)| *s == i);
    let error = plan.errors.iter().rev().find(|(s, _)| *s == i);
    json!({
        "id": row.id,
        "state": row.state.as_str(),
        "attempt": row.attempt,
        "lease_token": row.lease_token,
        "lease_expires_at": clock::micros_opt(row.lease_expires_at),
        "msg_id": row.msg_id,
        "retry_at": clock::micros_opt(row.retry_at),
        "worker_id": row.worker_id,
        "started_at": clock::micros_opt(row.started_at),
        "finished_at": clock::micros_opt(row.finished_at),
        "set_result": result.is_some(),
        "result": result.map(|(_, v)| v.to_string()),
        "set_error": error.is_some(),
        "error": error
            .and_then(|(_, e)| e.as_ref())
            .map(|e| serde_json::to_string(e).expect("error serializes")),
        "branches": row
            .branches
            .as_ref()
            .map(|b| serde_json::to_string(b).expect("names serialize")),
        "fan_out_count": row.fan_out_count,
    })
}

/// Writes the step rows built by [`step_row`] in one statement.
async fn update_steps(conn: &mut SqliteConnection, rows: Vec<Value>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE steps SET state = u.state, attempt = u.attempt, lease_token = u.lease_token, \
            lease_expires_at = u.lease_expires_at, msg_id = u.msg_id, retry_at = u.retry_at, \
            worker_id = u.worker_id, started_at = u.started_at, finished_at = u.finished_at, \
            result = CASE WHEN u.set_result THEN u.result ELSE steps.result END, \
            error = CASE WHEN u.set_error THEN u.error ELSE steps.error END, \
            branches = u.branches, fan_out_count = u.fan_out_count \
         FROM (SELECT value ->> '$.id' AS id, value ->> '$.state' AS state, \
                      value ->> '$.attempt' AS attempt, value ->> '$.lease_token' AS lease_token, \
                      value ->> '$.lease_expires_at' AS lease_expires_at, \
                      value ->> '$.msg_id' AS msg_id, value ->> '$.retry_at' AS retry_at, \
                      value ->> '$.worker_id' AS worker_id, value ->> '$.started_at' AS started_at, \
                      value ->> '$.finished_at' AS finished_at, \
                      value ->> '$.set_result' AS set_result, value ->> '$.result' AS result, \
                      value ->> '$.set_error' AS set_error, value ->> '$.error' AS error, \
                      value ->> '$.branches' AS branches, \
                      value ->> '$.fan_out_count' AS fan_out_count \
               FROM json_each(?)) AS u \
         WHERE steps.id = u.id",
    )
    .bind(rows_json(rows))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Appends transitions (this node recorded them) in one statement.
pub async fn insert_transitions(
    conn: &mut SqliteConnection,
    node_id: &str,
    transitions: impl IntoIterator<Item = &NewTransition>,
) -> Result<()> {
    let rows: Vec<Value> = transitions
        .into_iter()
        .map(|t| {
            json!({
                "task_id": t.task_id,
                "step_id": t.step_id,
                "from_state": t.from_state,
                "to_state": t.to_state,
                "attempt": t.attempt,
                "worker_id": t.worker_id,
                "reason": t.reason,
                "at": clock::micros(t.at),
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO transitions (task_id, step_id, from_state, to_state, attempt, worker_id, \
                                  reason, at, node_id) \
         SELECT value ->> '$.task_id', value ->> '$.step_id', value ->> '$.from_state', \
                value ->> '$.to_state', value ->> '$.attempt', value ->> '$.worker_id', \
                value ->> '$.reason', value ->> '$.at', ? \
         FROM json_each(?) ORDER BY key",
    )
    .bind(node_id)
    .bind(rows_json(rows))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Inserts the fan-out instances the runs created, pending and without a
/// message (the rest of the plan sends it and updates the row).
async fn insert_instances(conn: &mut SqliteConnection, runs: &[Pending<'_, '_>]) -> Result<()> {
    let mut rows = Vec::new();
    for pending in runs {
        let run = &*pending.run;
        for new in &run.plan.new_steps {
            let row = &run.steps[new.index];
            let instance = row.instance.expect("a new step is a fan-out instance");
            rows.push(json!({
                "id": row.id,
                "task_id": run.task.id,
                "position": new.index,
                "name": run.name(new.index),
                "of": instance.of,
                "number": instance.number,
                "items": Value::Array(new.items.clone()).to_string(),
            }));
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO steps (id, task_id, position, name, state, fan_out_of, fan_out_number, \
                            items) \
         SELECT value ->> '$.id', value ->> '$.task_id', value ->> '$.position', \
                value ->> '$.name', 'pending', value ->> '$.of', value ->> '$.number', \
                value ->> '$.items' \
         FROM json_each(?)",
    )
    .bind(rows_json(rows))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Stores, as the result of each fan-out step whose instances all finished,
/// the list of their results in instance order. Runs after the step rows
/// were written, so the last instance's result is included.
async fn gather(conn: &mut SqliteConnection, runs: &[Pending<'_, '_>]) -> Result<()> {
    for pending in runs {
        for &i in &pending.run.plan.gather {
            sqlx::query(
                "UPDATE steps AS g SET result = ( \
                     SELECT coalesce(json_group_array(json(i.result) ORDER BY i.position), '[]') \
                     FROM steps i WHERE i.task_id = g.task_id AND i.fan_out_of = g.position) \
                 WHERE g.id = ?",
            )
            .bind(pending.run.steps[i].id.hyphenated())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{self, Which};
    use crate::{SqliteLocation, SqliteStore, catalog};
    use tasker_model::TemplateRecord;
    use tasker_model::task_run::ClaimOutcome;
    use uuid::Uuid;

    async fn store_with_task() -> (SqliteStore, TemplateRecord, Uuid) {
        let store = SqliteStore::open(SqliteLocation::Memory, "node-1")
            .await
            .unwrap();
        catalog::migrate(&store).await.unwrap();
        let chain = serde_json::json!({
            "namespace": "default",
            "name": "chain",
            "version": "1",
            "steps": [
                {"name": "a", "handler": "h.a"},
                {"name": "b", "handler": "h.b", "depends_on": ["a"]},
            ],
        });
        let (record, task_id) =
            crate::testing::created_task(&store, chain, serde_json::json!({}), None).await;
        (store, record, task_id)
    }

    /// Loads the task, applies `op` to its run and writes the plan.
    async fn apply<T>(
        store: &SqliteStore,
        template: &TemplateRecord,
        task_id: Uuid,
        op: impl FnOnce(&mut TaskRun<'_>, Timestamp) -> T,
    ) -> T {
        let mut tx = store.begin_write().await.unwrap();
        let (mut loaded, now) = load::tasks(&mut tx, Which::Tasks(&[task_id]))
            .await
            .unwrap();
        let loaded = loaded.remove(&task_id).unwrap();
        let mut run = TaskRun::new(&template.definition, loaded.task, loaded.steps);
        let value = op(&mut run, now);
        write(
            &mut tx,
            "node-1",
            &mut [Pending {
                queue: "default",
                namespace: "default",
                run: &mut run,
            }],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        value
    }

    async fn step_states(store: &SqliteStore, task_id: Uuid) -> Vec<(String, Option<i64>)> {
        sqlx::query_as("SELECT state, msg_id FROM steps WHERE task_id = ? ORDER BY position")
            .bind(task_id.hyphenated())
            .fetch_all(&store.reader)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_claim_then_a_result_release_the_next_step_and_its_message() {
        let (store, template, task_id) = store_with_task().await;
        let mut tx = store.begin_write().await.unwrap();
        let read = queue::read(
            &mut tx,
            "default",
            std::time::Duration::from_secs(30),
            1,
            &[],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let message = read[0];
        let outcome = apply(&store, &template, task_id, |run, now| {
            run.claim(
                0,
                message.msg_id,
                message.visible_at,
                Uuid::now_v7(),
                "w1",
                now,
            )
        })
        .await;
        let ClaimOutcome::Claimed(lease) = outcome else {
            panic!("claimed: {outcome:?}");
        };
        assert_eq!(step_states(&store, task_id).await[0].0, "running");

        let recorded = apply(&store, &template, task_id, |run, now| {
            run.complete(&lease, serde_json::json!({"n": 2}), now)
        })
        .await;
        recorded.unwrap();
        let states = step_states(&store, task_id).await;
        assert_eq!(states[0], ("complete".to_owned(), None));
        assert_eq!(states[1].0, "ready");
        let result: String = sqlx::query_scalar("SELECT result FROM steps WHERE position = 0")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(result, r#"{"n":2}"#);
        // The first message went with its step; the second step's is queued.
        let messages: Vec<i64> = sqlx::query_scalar("SELECT msg_id FROM queue_messages")
            .fetch_all(&store.reader)
            .await
            .unwrap();
        assert_eq!(messages, [states[1].1.unwrap()]);
    }

    #[tokio::test]
    async fn a_cancel_finishes_the_task_and_empties_its_queue() {
        let (store, template, task_id) = store_with_task().await;
        apply(&store, &template, task_id, |run, now| {
            run.cancel("enough", now).unwrap()
        })
        .await;
        let (state, finished): (String, Option<i64>) =
            sqlx::query_as("SELECT state, finished_at FROM tasks WHERE id = ?")
                .bind(task_id.hyphenated())
                .fetch_one(&store.reader)
                .await
                .unwrap();
        assert_eq!(state, "cancelled");
        assert!(finished.is_some());
        assert!(
            step_states(&store, task_id)
                .await
                .iter()
                .all(|(s, m)| s == "cancelled" && m.is_none())
        );
        let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM queue_messages")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(queued, 0);
        let reasons: Vec<Option<String>> =
            sqlx::query_scalar("SELECT reason FROM transitions WHERE step_id IS NULL ORDER BY id")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        assert_eq!(reasons.last().unwrap().as_deref(), Some("enough"));
    }
}
