//! Task operations: create, read, list, cancel.

use tasker_model::{Step, Task, TaskRun, Transition};
use tasker_store::{Error, Result, TaskCreate, TaskFilter, TaskPage};
use uuid::Uuid;

use crate::PgStore;
use crate::catalog;
use crate::error::db;
use crate::load;
use crate::queue::{self, StepMessage};
use crate::rows::{self, TASK_COLUMNS, TASK_FROM};

pub async fn create(store: &PgStore, params: TaskCreate) -> Result<(Task, bool)> {
    let template = catalog::template_by_id(store, params.template_id).await?;
    let queue_name = catalog::queue_of(store, &template.namespace).await?;
    let definition = &template.definition;
    let task_id = Uuid::now_v7();
    let step_ids: Vec<Uuid> = definition.steps.iter().map(|_| Uuid::now_v7()).collect();

    let mut tx = store.pool.begin().await.map_err(db)?;
    let now: Option<tasker_model::Timestamp> = sqlx::query_scalar(
        "INSERT INTO tasker.tasks (id, namespace, template_id, state, context, idempotency_key, tags, created_at, updated_at) \
         VALUES ($1, $2, $3, 'running', $4, $5, $6, clock_timestamp(), clock_timestamp()) \
         ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
         RETURNING created_at",
    )
    .bind(task_id)
    .bind(&template.namespace)
    .bind(template.id)
    .bind(&params.context)
    .bind(&params.idempotency_key)
    .bind(&params.tags)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(now) = now else {
        // The key exists: hand back the task it names and write nothing.
        tx.rollback().await.map_err(db)?;
        let key = params.idempotency_key.as_deref().unwrap_or_default();
        let existing = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE t.namespace = $1 AND t.idempotency_key = $2"
        ))
        .bind(&template.namespace)
        .bind(key)
        .fetch_one(&store.pool)
        .await
        .map_err(db)?;
        return Ok((rows::task(&existing)?, false));
    };

    let run = TaskRun::create(definition, task_id, &step_ids, now);
    let bodies: Vec<StepMessage> = run
        .plan
        .enqueue
        .iter()
        .map(|&s| StepMessage {
            task_id,
            step_id: step_ids[s],
            handler: definition.steps[s].handler.clone(),
        })
        .collect();
    let msg_ids = queue::send(&mut tx, &queue_name, &bodies).await?;
    let mut msg_of: Vec<Option<i64>> = vec![None; step_ids.len()];
    for (&s, id) in run.plan.enqueue.iter().zip(msg_ids) {
        msg_of[s] = Some(id);
    }

    let names: Vec<&str> = definition.steps.iter().map(|s| s.name.as_str()).collect();
    let positions: Vec<i16> = (0..step_ids.len() as i16).collect();
    let states: Vec<&str> = run.steps.iter().map(|s| s.state.as_str()).collect();
    let t = &run.plan.transitions;
    sqlx::query(
        "WITH new_steps AS ( \
            INSERT INTO tasker.steps (id, task_id, position, name, state, msg_id) \
            SELECT s.id, $1, s.position, s.name, s.state, s.msg_id \
            FROM unnest($2::uuid[], $3::int2[], $4::text[], $5::text[], $6::bigint[]) AS s(id, position, name, state, msg_id) \
            RETURNING 1 \
         ), history AS ( \
            INSERT INTO tasker.transitions (task_id, step_id, from_state, to_state, reason, at, node_id) \
            SELECT $1, h.step_id, h.from_state, h.to_state, h.reason, $10, $11 \
            FROM unnest($7::uuid[], $8::text[], $9::text[], $12::text[]) AS h(step_id, from_state, to_state, reason) \
            RETURNING 1 \
         ) \
         SELECT (SELECT count(*) FROM new_steps), (SELECT count(*) FROM history)",
    )
    .bind(task_id)
    .bind(&step_ids)
    .bind(&positions)
    .bind(&names)
    .bind(&states)
    .bind(&msg_of)
    .bind(t.iter().map(|t| t.step_id).collect::<Vec<_>>())
    .bind(t.iter().map(|t| t.from_state).collect::<Vec<_>>())
    .bind(t.iter().map(|t| t.to_state).collect::<Vec<_>>())
    .bind(now)
    .bind(store.node_id())
    .bind(t.iter().map(|t| t.reason.clone()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    store.announce(&[(template.namespace.clone(), run.plan.enqueue.len())]);

    Ok((
        Task {
            id: task_id,
            namespace: template.namespace.clone(),
            template_id: template.id,
            template_name: template.name.clone(),
            template_version: template.version.clone(),
            state: run.task.state,
            context: params.context,
            idempotency_key: params.idempotency_key,
            tags: params.tags,
            created_at: now,
            updated_at: now,
            finished_at: None,
        },
        true,
    ))
}

pub async fn get(store: &PgStore, id: Uuid) -> Result<Task> {
    let row = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?
    .ok_or_else(|| Error::not_found(format!("task {id}")))?;
    rows::task(&row)
}

pub async fn list(store: &PgStore, filter: &TaskFilter) -> Result<TaskPage> {
    let limit = filter.limit.unwrap_or(50).clamp(1, 500) as i64;
    let cursor = filter
        .cursor
        .as_deref()
        .map(|c| {
            Uuid::parse_str(c).map_err(|_| Error::Invalid {
                field: "cursor".into(),
                message: format!("\"{c}\" is not a cursor returned by a previous page"),
            })
        })
        .transpose()?;
    let id_range = filter.id_range().map_err(|message| Error::Invalid {
        field: "id_prefix".into(),
        message,
    })?;
    let rows = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM} \
         WHERE ($1::text IS NULL OR t.namespace = $1) \
           AND ($2::text IS NULL OR tp.name = $2) \
           AND ($3::text IS NULL OR t.state = $3) \
           AND ($4::uuid IS NULL OR t.id < $4) \
           AND ($6::uuid IS NULL OR t.id BETWEEN $6 AND $7) \
         ORDER BY t.id DESC LIMIT $5"
    ))
    .bind(&filter.namespace)
    .bind(&filter.template)
    .bind(filter.state.map(|s| s.as_str()))
    .bind(cursor)
    .bind(limit + 1)
    .bind(id_range.map(|(low, _)| low))
    .bind(id_range.map(|(_, high)| high))
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let mut tasks = rows.iter().map(rows::task).collect::<Result<Vec<_>>>()?;
    let next_cursor = if tasks.len() as i64 > limit {
        tasks.truncate(limit as usize);
        tasks.last().map(|t| t.id.to_string())
    } else {
        None
    };
    Ok(TaskPage { tasks, next_cursor })
}

pub async fn steps(store: &PgStore, id: Uuid) -> Result<Vec<Step>> {
    let template_id: Uuid =
        sqlx::query_scalar("SELECT template_id FROM tasker.tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&store.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("task {id}")))?;
    let template = catalog::template_by_id(store, template_id).await?;
    let rows = sqlx::query(&format!(
        "SELECT {} FROM tasker.steps WHERE task_id = $1 ORDER BY position",
        rows::STEP_COLUMNS
    ))
    .bind(id)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    rows.iter().map(|r| rows::step(r, &template)).collect()
}

pub async fn history(store: &PgStore, id: Uuid) -> Result<Vec<Transition>> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker.tasks WHERE id = $1)")
            .bind(id)
            .fetch_one(&store.pool)
            .await
            .map_err(db)?;
    if !exists {
        return Err(Error::not_found(format!("task {id}")));
    }
    let rows = sqlx::query(
        "SELECT h.id, h.task_id, h.step_id, s.name AS step_name, h.from_state, h.to_state, \
                h.attempt, h.worker_id, h.node_id, h.reason, h.at \
         FROM tasker.transitions h LEFT JOIN tasker.steps s ON s.id = h.step_id \
         WHERE h.task_id = $1 ORDER BY h.id",
    )
    .bind(id)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    Ok(rows.iter().map(rows::transition).collect())
}

pub async fn cancel(store: &PgStore, id: Uuid, reason: &str) -> Result<Task> {
    let what = format!("task {id}");
    load::with_task(
        store,
        load::Lock::Tasks(&[id]),
        &what,
        load::Durability::Flushed,
        |run, now| Ok(run.cancel(reason, now)?),
    )
    .await?;
    get(store, id).await
}
