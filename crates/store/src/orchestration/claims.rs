//! Claims: leasing ready steps of one namespace's queue to waiting polls,
//! and building what a worker receives for each step.
//!
//! ```text
//!  retrying(Once,
//!    BEGIN (relaxed: a lost claim is only delivered again)
//!      messages_read(queue, lease, total room, handlers)   ◀─ skips locked messages
//!      tasks_lock(FreeTasks, with contexts)                ◀─ never waits while holding messages
//!      per message: first slot with room running its handler ─▶ TaskRun::claim
//!        task gone / step gone ─▶ delete (orphan)
//!        task busy, no slot     ─▶ show again at once (and wake the polls)
//!      plan_write; payloads_load (parents' results, items; only when needed)
//!    COMMIT)
//! ```

use std::collections::HashMap;
use std::time::Duration;

use tasker_model::{ClaimOutcome, ClaimedStep, FanOutItems, Lease, StepState, TaskRun, Timestamp};
use uuid::Uuid;

use super::{events, write_runs};
use crate::backend::{
    Backend, Durability, Load, LoadedTask, PayloadRequest, Payloads, Repeat, Transaction, Written,
};
use crate::{ClaimBatch, ClaimSlot, ClaimedBatch, Event, Result, StepClaim};

/// Leases up to `params.max` ready steps for one poll: a batch of one slot.
pub async fn claim<B: Backend>(backend: &B, params: StepClaim) -> Result<Vec<ClaimedStep>> {
    let batch = ClaimBatch {
        namespace: params.namespace,
        lease_for: params.lease_for,
        slots: vec![ClaimSlot {
            worker_id: params.worker_id,
            max: params.max,
            handlers: params.handlers,
        }],
    };
    Ok(claim_batch(backend, batch)
        .await?
        .steps
        .pop()
        .unwrap_or_default())
}

/// Leases steps of one namespace for several waiting polls in one
/// transaction (see [`crate::Store::step_claim_batch`]).
pub async fn claim_batch<B: Backend>(backend: &B, batch: ClaimBatch) -> Result<ClaimedBatch> {
    let queue = backend.queue_of(&batch.namespace).await?;
    let claim = Claim {
        namespace: &batch.namespace,
        queue: &queue,
        lease_for: batch.lease_for,
        slots: &batch.slots,
    };
    let claim = &claim;
    backend
        .retrying(Repeat::Once, move || {
            Box::pin(async move {
                // Relaxed: losing a claim in a crash only means its steps
                // are delivered again (fenced by the lease); an empty claim
                // writes nothing, so it has nothing to flush either way.
                let mut tx = backend.begin(Durability::Relaxed).await?;
                let claimed = claim_in(&mut tx, claim).await?;
                let next_visible_in = if claimed.room_left {
                    tx.messages_next_visible_in(claim.queue).await?
                } else {
                    None
                };
                tx.commit().await?;
                backend.after_commit(&claimed.written);
                Ok(ClaimedBatch {
                    steps: claimed.steps,
                    next_visible_in,
                })
            })
        })
        .await
}

/// One queue read on behalf of one or more polls.
pub(crate) struct Claim<'a> {
    pub namespace: &'a str,
    pub queue: &'a str,
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

/// A step leased in this transaction: its task, its row, its lease and
/// when the lease ends.
pub(crate) type Leased = (Uuid, usize, Lease, Timestamp);

/// Leases steps of one queue for the claim's slots on the caller's
/// transaction: reads up to their total room (only messages of handlers some
/// slot runs), then hands each message to the first slot with room that runs
/// its handler. Messages no slot can take, and those of tasks another
/// transaction holds, are made visible again at once.
pub(crate) async fn claim_in<T: Transaction>(tx: &mut T, claim: &Claim<'_>) -> Result<Claimed> {
    let mut room: Vec<u32> = claim.slots.iter().map(|s| s.max.min(1000)).collect();
    let total = room.iter().sum::<u32>().clamp(1, 1000);
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
    let messages = tx
        .messages_read(claim.queue, claim.lease_for, total, &handlers)
        .await?;
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
    let (loaded, now) = tx
        .tasks_lock(
            crate::backend::Lock::FreeTasks(&task_ids),
            Load::RowsAndContexts,
        )
        .await?;
    let busy = busy_tasks(tx, &task_ids, &loaded).await?;
    let mut runs: HashMap<Uuid, TaskRun<'_>> =
        loaded.iter().map(|(id, t)| (*id, t.run())).collect();

    let mut handed_back = Vec::new();
    let mut orphans = Vec::new();
    let mut claimed: Vec<Leased> = Vec::new();
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
        tx.messages_delete(claim.queue, &orphans).await?;
    }
    if !handed_back.is_empty() {
        tx.messages_show(claim.queue, &handed_back).await?;
    }
    let mut written = write_runs(tx, &loaded, &mut runs).await?;
    if !handed_back.is_empty() {
        // Visible again once this commits: polls must look again, since
        // nothing else will announce these steps.
        written
            .ready
            .push((claim.namespace.to_owned(), handed_back.len()));
    }
    let payloads = claim_payloads(tx, &loaded, &claimed, &HashMap::new()).await?;
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
    let room_left = (messages.len() as u32) < total;
    Ok(Claimed {
        steps,
        written,
        room_left,
    })
}

/// Of the tasks a claim read messages for, those that exist but that it
/// could not lock (another transaction holds them). Asked only when some
/// task was not locked, which is rare.
async fn busy_tasks<T: Transaction>(
    tx: &mut T,
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
    tx.tasks_existing(&missing).await
}

/// Results of steps written in this transaction, by (task, position):
/// what a completion with `next` hands the children it leased without
/// reading it back.
pub(crate) type KnownResults = HashMap<(Uuid, usize), serde_json::Value>;

/// Builds what workers receive for the steps leased: step definition, task
/// context and the results of the step's parents (and a fan-out instance's
/// items), in the order of `claimed`. Contexts loaded with the lock and
/// `known` results are used as they are; only what is still missing is read
/// (nothing at all for root steps of tasks locked with their contexts).
pub(crate) async fn claim_payloads<T: Transaction>(
    tx: &mut T,
    loaded: &HashMap<Uuid, LoadedTask>,
    claimed: &[Leased],
    known: &KnownResults,
) -> Result<Vec<ClaimedStep>> {
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let mut contexts: Vec<Uuid> = claimed
        .iter()
        .map(|c| c.0)
        .filter(|task_id| loaded[task_id].context.is_none())
        .collect();
    contexts.sort_unstable();
    contexts.dedup();
    let mut results: Vec<(Uuid, usize)> = claimed
        .iter()
        .flat_map(|&(task_id, index, ..)| {
            loaded[&task_id]
                .parents_of(index)
                .into_iter()
                .map(move |p| (task_id, p))
        })
        .filter(|key| !known.contains_key(key))
        .collect();
    results.sort_unstable();
    results.dedup();
    // Fan-out instances carry their items.
    let items: Vec<Uuid> = claimed
        .iter()
        .filter(|&&(task_id, index, ..)| loaded[&task_id].steps[index].instance.is_some())
        .map(|c| c.2.step_id)
        .collect();
    let request = PayloadRequest {
        contexts,
        results,
        items,
    };
    let mut payloads =
        if request.contexts.is_empty() && request.results.is_empty() && request.items.is_empty() {
            Payloads::default()
        } else {
            tx.payloads_load(&request).await?
        };
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
                items: payloads.items.remove(&lease.step_id).unwrap_or_default(),
            });
            let parent_results = task
                .parents_of(index)
                .into_iter()
                .map(|p| {
                    let name = template.definition.steps[p].name.clone();
                    (
                        name,
                        known
                            .get(&(task_id, p))
                            .or_else(|| payloads.results.get(&(task_id, p)))
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
                context: task
                    .context
                    .as_ref()
                    .or_else(|| payloads.contexts.get(&task_id))
                    .cloned()
                    .unwrap_or_default(),
                parent_results,
                parent_result_refs: Default::default(),
                fan_out,
            }
        })
        .collect())
}

/// Whether a worker that declared `handlers` runs `handler` (one that
/// declared none runs every handler of its namespaces).
pub(crate) fn runs_handler(handlers: &[String], handler: &str) -> bool {
    handlers.is_empty() || handlers.iter().any(|h| h == handler)
}
