//! Step operations: claim, heartbeat, complete, fail, manual retry, resolve.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::{PgConnection, Row};
use tasker_model::{ClaimOutcome, ClaimedStep, FanOutItems, Lease, Step, StepState, TaskRun};
use tasker_store::{ClaimBatch, ClaimSlot, ClaimedBatch, Error, Event, Result, StepClaim};
use uuid::Uuid;

use crate::PgStore;
use crate::catalog;
use crate::error::{commit_error, db, with_retry};
use crate::events;
use crate::load::{self, Durability, LoadedTask, Lock, with_task};
use crate::plan_writer::{self, Pending, Written};
use crate::queue;

/// PGMQ visibility is in whole seconds; a lease is never shorter than asked.
fn lease_seconds(lease_for: Duration) -> i32 {
    (lease_for.as_millis().div_ceil(1000)).clamp(1, i32::MAX as u128) as i32
}

pub async fn claim(store: &PgStore, params: StepClaim) -> Result<Vec<ClaimedStep>> {
    let batch = ClaimBatch {
        namespace: params.namespace,
        lease_for: params.lease_for,
        slots: vec![ClaimSlot {
            worker_id: params.worker_id,
            max: params.max,
            handlers: params.handlers,
        }],
    };
    Ok(claim_batch(store, batch)
        .await?
        .steps
        .pop()
        .unwrap_or_default())
}

/// Leases steps of one namespace for several waiting polls in one
/// transaction (see [`tasker_store::Store::step_claim_batch`]).
pub async fn claim_batch(store: &PgStore, batch: ClaimBatch) -> Result<ClaimedBatch> {
    let queue_name = catalog::queue_of(store, &batch.namespace).await?;
    with_retry(store, || async {
        let mut tx = store.pool.begin().await.map_err(db)?;
        let claim = Claim {
            namespace: &batch.namespace,
            queue_name: &queue_name,
            lease_for: batch.lease_for,
            slots: &batch.slots,
        };
        let claimed = claim_in(store, &mut tx, &claim).await?;
        let next_visible_in = if claimed.room_left {
            queue::next_visible_in(&mut tx, &queue_name).await?
        } else {
            None
        };
        if claimed.steps.iter().all(Vec::is_empty) {
            // Usually an empty poll: nothing to relax.
            tx.commit().await.map_err(commit_error)?;
        } else {
            load::commit(tx, Durability::Relaxed).await?;
        }
        store.after_commit(&claimed.written);
        Ok(ClaimedBatch {
            steps: claimed.steps,
            next_visible_in,
        })
    })
    .await
}

/// One queue read on behalf of one or more polls.
pub(crate) struct Claim<'a> {
    pub namespace: &'a str,
    pub queue_name: &'a str,
    pub lease_for: Duration,
    pub slots: &'a [ClaimSlot],
}

/// What [`claim_in`] leased, per slot, and what to do after the commit.
pub(crate) struct Claimed {
    pub steps: Vec<Vec<ClaimedStep>>,
    pub written: Written,
    /// Some slot could have taken more than the queue had for it.
    pub room_left: bool,
}

/// Leases steps of one queue for the claim's slots on the caller's
/// transaction: reads up to their total room (only messages of handlers some
/// slot runs), then hands each message to the first slot with room that runs
/// its handler. Messages no slot can take, and those of tasks another
/// transaction holds, are made visible again at once.
pub(crate) async fn claim_in(
    store: &PgStore,
    tx: &mut PgConnection,
    claim: &Claim<'_>,
) -> Result<Claimed> {
    let mut room: Vec<u32> = claim.slots.iter().map(|s| s.max.min(1000)).collect();
    let total = room.iter().sum::<u32>().clamp(1, 1000) as i32;
    // A slot that runs every handler makes the read unfiltered.
    let handlers: Vec<String> = if claim.slots.iter().any(|s| s.handlers.is_empty()) {
        Vec::new()
    } else {
        let mut all: Vec<String> = claim
            .slots
            .iter()
            .flat_map(|s| s.handlers.clone())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let lease_secs = lease_seconds(claim.lease_for);
    let messages = queue::read(tx, claim.queue_name, lease_secs, total, &handlers).await?;
    let mut steps = vec![Vec::new(); claim.slots.len()];
    if messages.is_empty() {
        return Ok(Claimed {
            steps,
            written: Written::default(),
            room_left: true,
        });
    }
    let task_ids: Vec<Uuid> = messages
        .iter()
        .filter_map(|m| m.body.map(|b| b.task_id))
        .collect();
    let (loaded, now) = load::lock_tasks(store, tx, Lock::FreeTasks(&task_ids)).await?;
    let busy = busy_tasks(tx, &task_ids, &loaded).await?;
    let mut runs: HashMap<Uuid, TaskRun<'_>> =
        loaded.iter().map(|(id, t)| (*id, t.run())).collect();

    let mut handed_back = Vec::new();
    let mut orphans = Vec::new();
    let mut claimed: Vec<(Uuid, usize, Lease, tasker_model::Timestamp)> = Vec::new();
    let mut slot_of = Vec::new();
    let mut waits = Vec::new();
    for message in &messages {
        let target = message.body.and_then(|body| {
            let run = runs.get_mut(&body.task_id)?;
            let index = run.step_index(body.step_id)?;
            Some((body.task_id, run, index))
        });
        let Some((task_id, run, index)) = target else {
            if message
                .body
                .is_some_and(|body| busy.contains(&body.task_id))
            {
                // Another transaction holds the task (a completion, a
                // cancel): give the message back rather than wait for it.
                handed_back.push(message.msg_id);
            } else {
                // A message whose task or step does not exist: nothing can
                // use it.
                orphans.push(message.msg_id);
            }
            continue;
        };
        let handler = &run.def(index).handler;
        let Some(slot) = (0..claim.slots.len())
            .find(|&i| room[i] > 0 && runs_handler(&claim.slots[i].handlers, handler))
        else {
            // Read for a slot that has filled up since: for another poll.
            handed_back.push(message.msg_id);
            continue;
        };
        let step = &run.steps[index];
        let ready_since = match step.state {
            StepState::Retrying => step.retry_at,
            StepState::Running => step.lease_expires_at,
            _ => Some(message.enqueued_at),
        };
        let token = Uuid::new_v4();
        if let ClaimOutcome::Claimed(lease) = run.claim(
            index,
            message.msg_id,
            message.visible_at,
            token,
            &claim.slots[slot].worker_id,
            now,
        ) {
            room[slot] -= 1;
            // The lease may end before the message's read visibility: it
            // never outlasts the step's timeout.
            let until = run.steps[index]
                .lease_expires_at
                .unwrap_or(message.visible_at);
            claimed.push((task_id, index, lease, until));
            slot_of.push(slot);
            waits.push(events::since(ready_since, now));
        }
    }
    if !orphans.is_empty() {
        queue::delete(tx, claim.queue_name, &orphans).await?;
    }
    if !handed_back.is_empty() {
        queue::make_visible(tx, claim.queue_name, &handed_back).await?;
    }
    let mut written = write_runs(store, tx, &loaded, &mut runs).await?;
    if !handed_back.is_empty() {
        // Visible again once this commits: polls must look again, since
        // nothing else will announce these steps.
        written
            .ready
            .push((claim.namespace.to_owned(), handed_back.len()));
    }
    let payloads = claim_payloads(tx, &loaded, &claimed).await?;
    written
        .events
        .extend(
            payloads
                .iter()
                .zip(waits)
                .map(|(step, queue_wait)| Event::StepClaimed {
                    namespace: step.namespace.clone(),
                    queue_wait,
                }),
        );
    for (payload, slot) in payloads.into_iter().zip(slot_of) {
        steps[slot].push(payload);
    }
    let room_left = (messages.len() as i32) < total;
    Ok(Claimed {
        steps,
        written,
        room_left,
    })
}

/// Of the tasks a claim read messages for, those that exist but that it
/// could not lock (another transaction holds them). Asked only when some
/// task was not locked, which is rare.
async fn busy_tasks(
    conn: &mut PgConnection,
    wanted: &[Uuid],
    locked: &HashMap<Uuid, LoadedTask>,
) -> Result<Vec<Uuid>> {
    let missing: Vec<Uuid> = wanted
        .iter()
        .filter(|id| !locked.contains_key(id))
        .copied()
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    sqlx::query_scalar("SELECT id FROM tasker.tasks WHERE id = ANY($1)")
        .bind(&missing)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)
}

/// Builds what workers receive: step definition, task context and the
/// results of the step's parents, in one query.
pub(crate) async fn claim_payloads(
    conn: &mut PgConnection,
    loaded: &HashMap<Uuid, LoadedTask>,
    claimed: &[(Uuid, usize, Lease, tasker_model::Timestamp)],
) -> Result<Vec<ClaimedStep>> {
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let mut task_ids: Vec<Uuid> = claimed.iter().map(|c| c.0).collect();
    task_ids.sort_unstable();
    task_ids.dedup();
    let (mut parent_tasks, mut parent_positions) = (Vec::new(), Vec::new());
    for &(task_id, index, ..) in claimed {
        for p in loaded[&task_id].parents_of(index) {
            parent_tasks.push(task_id);
            parent_positions.push(p as i32);
        }
    }
    let rows = sqlx::query(
        "SELECT id AS task_id, NULL::int4 AS position, context AS value FROM tasker.tasks WHERE id = ANY($1) \
         UNION ALL \
         SELECT s.task_id, s.position, s.result FROM tasker.steps s \
         JOIN unnest($2::uuid[], $3::int4[]) AS p(task_id, position) \
           ON s.task_id = p.task_id AND s.position = p.position",
    )
    .bind(&task_ids)
    .bind(&parent_tasks)
    .bind(&parent_positions)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut contexts: HashMap<Uuid, serde_json::Value> = HashMap::new();
    let mut results: HashMap<(Uuid, i32), serde_json::Value> = HashMap::new();
    for row in rows {
        let task_id: Uuid = row.get("task_id");
        let position: Option<i32> = row.get("position");
        let value: Option<serde_json::Value> = row.get("value");
        match position {
            None => {
                contexts.insert(task_id, value.unwrap_or_default());
            }
            Some(p) => {
                results.insert((task_id, p), value.unwrap_or_default());
            }
        }
    }
    // Fan-out instances carry their items (read only when there are any).
    let instance_ids: Vec<Uuid> = claimed
        .iter()
        .filter(|&&(task_id, index, ..)| loaded[&task_id].steps[index].instance.is_some())
        .map(|c| c.2.step_id)
        .collect();
    let mut items: HashMap<Uuid, Vec<serde_json::Value>> = HashMap::new();
    if !instance_ids.is_empty() {
        let rows = sqlx::query("SELECT id, items FROM tasker.steps WHERE id = ANY($1)")
            .bind(&instance_ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        for row in rows {
            let value: Option<serde_json::Value> = row.get("items");
            let list = match value {
                Some(serde_json::Value::Array(list)) => list,
                _ => Vec::new(),
            };
            items.insert(row.get("id"), list);
        }
    }
    Ok(claimed
        .iter()
        .map(|&(task_id, index, lease, visible_at)| {
            let task = &loaded[&task_id];
            let template = &task.template;
            let row = &task.steps[index];
            let def_index = row.instance.map_or(index, |i| i.of);
            let def = &template.definition.steps[def_index];
            let fan_out = row.instance.map(|instance| FanOutItems {
                number: instance.number,
                items: items.remove(&lease.step_id).unwrap_or_default(),
            });
            let parent_results = task
                .parents_of(index)
                .into_iter()
                .map(|p| {
                    let name = template.definition.steps[p].name.clone();
                    (
                        name,
                        results
                            .get(&(task_id, p as i32))
                            .cloned()
                            .unwrap_or_default(),
                    )
                })
                .collect();
            ClaimedStep {
                lease,
                lease_expires_at: visible_at,
                task_id,
                namespace: task.namespace.clone(),
                template_name: template.name.clone(),
                template_version: template.version.clone(),
                step_name: match row.instance {
                    Some(instance) => format!("{}[{}]", def.name, instance.number),
                    None => def.name.clone(),
                },
                handler: def.handler.clone(),
                config: def.config.clone(),
                max_attempts: def.retry.max_attempts,
                timeout_ms: def.timeout.as_millis(),
                context: contexts.get(&task_id).cloned().unwrap_or_default(),
                parent_results,
                parent_result_refs: Default::default(),
                fan_out,
            }
        })
        .collect())
}

pub(crate) async fn write_runs(
    store: &PgStore,
    conn: &mut PgConnection,
    loaded: &HashMap<Uuid, LoadedTask>,
    runs: &mut HashMap<Uuid, TaskRun<'_>>,
) -> Result<Written> {
    let mut pending: Vec<Pending<'_, '_>> = runs
        .iter_mut()
        .map(|(id, run)| Pending {
            queue: &loaded[id].queue,
            namespace: &loaded[id].namespace,
            run,
        })
        .collect();
    plan_writer::write(conn, store.node_id(), &mut pending).await
}

/// Runs `op` on the task that owns `step_id`, locked, and writes its plan.
async fn with_step_task<T, F>(
    store: &PgStore,
    step_id: Uuid,
    durability: Durability,
    op: F,
) -> Result<T>
where
    F: Fn(&mut TaskRun<'_>, usize, tasker_model::Timestamp) -> Result<T>,
{
    let what = format!("step {step_id}");
    with_task(
        store,
        Lock::TasksOfSteps(&[step_id]),
        &what,
        durability,
        |run, now| {
            let index = run
                .step_index(step_id)
                .ok_or_else(|| Error::not_found(what.clone()))?;
            op(run, index, now)
        },
    )
    .await
}

/// Whether a worker that declared `handlers` runs `handler` (one that
/// declared none runs every handler of its namespaces).
pub(crate) fn runs_handler(handlers: &[String], handler: &str) -> bool {
    handlers.is_empty() || handlers.iter().any(|h| h == handler)
}

pub async fn retry(store: &PgStore, step_id: Uuid) -> Result<Step> {
    let task_id = with_step_task(store, step_id, Durability::Flushed, |run, index, now| {
        run.retry_step(index, now)?;
        Ok(run.task.id)
    })
    .await?;
    step_of(store, task_id, step_id).await
}

pub async fn resolve(
    store: &PgStore,
    step_id: Uuid,
    result: Option<serde_json::Value>,
) -> Result<Step> {
    let task_id = with_step_task(store, step_id, Durability::Flushed, |run, index, now| {
        run.resolve_step(index, result.clone(), now)?;
        Ok(run.task.id)
    })
    .await?;
    step_of(store, task_id, step_id).await
}

/// One step by id; `NotFound` naming it when there is none.
pub async fn get(store: &PgStore, step_id: Uuid) -> Result<Step> {
    let task_id: Uuid = sqlx::query_scalar("SELECT task_id FROM tasker.steps WHERE id = $1")
        .bind(step_id)
        .fetch_optional(&store.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::not_found(format!("step {step_id}")))?;
    step_of(store, task_id, step_id).await
}

async fn step_of(store: &PgStore, task_id: Uuid, step_id: Uuid) -> Result<Step> {
    crate::tasks::steps(store, task_id)
        .await?
        .into_iter()
        .find(|s| s.id == step_id)
        .ok_or_else(|| Error::not_found(format!("step {step_id}")))
}
