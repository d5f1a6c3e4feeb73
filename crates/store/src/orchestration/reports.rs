//! Reports of lease holders — results (with `next`), failures, releases,
//! heartbeats — written together in one transaction: a node's group commit.
//!
//! ```text
//!  BEGIN
//!    lock the tasks of every reported step (in id order)
//!    per report, in order: TaskRun::complete | fail | release | heartbeat
//!      a completion with `next` leases the children it released itself
//!    write every run's plan (plan_write)
//!    reports with room left: read the queues they name, one claim per
//!      namespace for all of them (busy tasks skipped)
//!  COMMIT (waits for the flush unless only heartbeats were written)
//! ```
//!
//! Each report is answered on its own: a stale lease refuses its report and
//! nothing else. A database error aborts the whole transaction, so no batch
//! is ever half written; every report of it gets the error and is sent
//! again by its worker. A batch whose connection was lost (before or during
//! COMMIT) runs once more on a fresh connection, and each report is answered
//! from that run.

use std::collections::HashMap;
use std::time::Duration;

use tasker_model::{ClaimedStep, LeaseError, Recorded, TaskRun};
use uuid::Uuid;

use super::claims::{Claim, Claimed, KnownResults, claim_in, claim_payloads, runs_handler};
use super::write_runs;
use crate::backend::{Backend, Durability, Load, Lock, Repeat, Transaction, Written};
use crate::{ClaimSlot, Error, Event, NextClaim, ReportOutcome, Result, StepReport};

/// Writes `reports` in one transaction; one answer per report, in order.
pub async fn write<B: Backend>(
    backend: &B,
    reports: Vec<StepReport>,
) -> Result<Vec<Result<ReportOutcome>>> {
    if reports.is_empty() {
        return Ok(Vec::new());
    }
    // The queues `next` names; a report naming an unknown namespace is
    // refused before anything of it is recorded.
    let mut queues: HashMap<String, Option<String>> = HashMap::new();
    for report in &reports {
        if let StepReport::Complete {
            next: Some(next), ..
        } = report
        {
            for namespace in &next.namespaces {
                if !queues.contains_key(namespace) {
                    let queue = match backend.queue_of(namespace).await {
                        Ok(queue) => Some(queue),
                        Err(Error::NotFound { .. }) => None,
                        Err(other) => return Err(other),
                    };
                    queues.insert(namespace.clone(), queue);
                }
            }
        }
    }
    let refusals: Vec<Option<String>> = reports
        .iter()
        .map(|report| match report {
            StepReport::Complete {
                next: Some(next), ..
            } => next
                .namespaces
                .iter()
                .find(|ns| queues[*ns].is_none())
                .cloned(),
            _ => None,
        })
        .collect();
    let durability = if reports
        .iter()
        .all(|r| matches!(r, StepReport::Heartbeat { .. }))
    {
        // Losing a heartbeat only shortens a lease the holder renews.
        Durability::Relaxed
    } else {
        Durability::Flushed
    };
    // Children leased for `next` need their tasks' contexts.
    let load = if reports
        .iter()
        .any(|r| matches!(r, StepReport::Complete { next: Some(_), .. }))
    {
        Load::RowsAndContexts
    } else {
        Load::Rows
    };
    let reports = &reports;
    let refusals = &refusals;
    let queues = &queues;
    // Idempotent by construction: every report is fenced by its lease (see
    // `Repeat::Idempotent`), so even a batch whose COMMIT was lost may run
    // again, and each report still gets its own answer from that run.
    backend
        .retrying(Repeat::Idempotent, move || {
            Box::pin(async move {
                let mut tx = backend.begin(durability).await?;
                let step_ids: Vec<Uuid> = reports.iter().map(|r| r.lease().step_id).collect();
                let (loaded, now) = tx.tasks_lock(Lock::TasksOfSteps(&step_ids), load).await?;
                let mut runs: HashMap<Uuid, TaskRun<'_>> =
                    loaded.iter().map(|(id, t)| (*id, t.run())).collect();
                let owners: HashMap<Uuid, Uuid> = runs
                    .values()
                    .flat_map(|run| run.steps.iter().map(|s| (s.id, run.task.id)))
                    .collect();

                let mut outcomes: Vec<Result<ReportOutcome>> = Vec::with_capacity(reports.len());
                // Children leased in place: (report, task, step index, lease, until).
                let mut leased_here = Vec::new();
                for (i, report) in reports.iter().enumerate() {
                    if let Some(namespace) = &refusals[i] {
                        outcomes.push(Err(Error::not_found(format!("namespace \"{namespace}\""))));
                        continue;
                    }
                    let Some((task_id, run)) = owners
                        .get(&report.lease().step_id)
                        .and_then(|task_id| Some((*task_id, runs.get_mut(task_id)?)))
                    else {
                        // A lease for a step that does not exist is simply not the
                        // current lease.
                        outcomes.push(Err(Error::Lease(LeaseError::LeaseMismatch)));
                        continue;
                    };
                    let outcome = match report {
                        StepReport::Complete {
                            lease,
                            result,
                            next,
                        } => {
                            let before = run.plan.enqueue.clone();
                            run.complete(lease, result.clone(), now).map(|recorded| {
                                if let Some(next) = next
                                    && recorded == Recorded::Applied
                                    && next.namespaces.contains(&loaded[&task_id].namespace)
                                {
                                    // The children this completion released go
                                    // straight to the same worker: no queue read,
                                    // their message hidden for the lease.
                                    let until = now
                                        + chrono::TimeDelta::from_std(next.lease_for)
                                            .unwrap_or(chrono::TimeDelta::MAX);
                                    let released: Vec<usize> = run
                                        .plan
                                        .enqueue
                                        .iter()
                                        .filter(|index| !before.contains(index))
                                        .copied()
                                        .collect();
                                    let mut taken = 0;
                                    for index in released {
                                        if taken >= next.max {
                                            break;
                                        }
                                        // Fan-out instances go through the queue, to
                                        // spread over every worker.
                                        if run.steps[index].instance.is_some()
                                            || !runs_handler(
                                                &next.handlers,
                                                &run.def(index).handler,
                                            )
                                        {
                                            // Left in the queue for a worker that runs it.
                                            continue;
                                        }
                                        let token = Uuid::new_v4();
                                        if let Some(lease) = run.claim_released(
                                            index,
                                            until,
                                            token,
                                            &next.worker_id,
                                            now,
                                        ) {
                                            // Capped at the step's timeout.
                                            let until =
                                                run.steps[index].lease_expires_at.unwrap_or(until);
                                            leased_here.push((i, task_id, index, lease, until));
                                            taken += 1;
                                        }
                                    }
                                }
                                ReportOutcome::Completed {
                                    recorded,
                                    next: Vec::new(),
                                }
                            })
                        }
                        StepReport::Fail { lease, error } => run
                            .fail(lease, error.clone(), now)
                            .map(ReportOutcome::Failed),
                        StepReport::Release { lease } => {
                            run.release(lease, now).map(|()| ReportOutcome::Released)
                        }
                        StepReport::Heartbeat { lease, lease_for } => run
                            .heartbeat(lease, *lease_for, now)
                            .map(ReportOutcome::Heartbeat),
                    };
                    outcomes.push(outcome.map_err(Error::from));
                }

                let mut written = write_runs(&mut tx, &loaded, &mut runs).await?;
                let claimed: Vec<_> = leased_here
                    .iter()
                    .map(|&(_, task_id, index, lease, until)| (task_id, index, lease, until))
                    .collect();
                // The results just recorded go to the children leased here
                // as they are, without reading them back.
                let leasing: std::collections::HashSet<Uuid> =
                    claimed.iter().map(|c| c.0).collect();
                let known: KnownResults = runs
                    .values()
                    .filter(|run| leasing.contains(&run.task.id))
                    .flat_map(|run| {
                        run.plan
                            .results
                            .iter()
                            .map(|(index, value)| ((run.task.id, *index), value.clone()))
                    })
                    .collect();
                let payloads = claim_payloads(&mut tx, &loaded, &claimed, &known).await?;
                written
                    .events
                    .extend(payloads.iter().map(|step| Event::StepClaimed {
                        namespace: step.namespace.clone(),
                        queue_wait: Duration::ZERO,
                    }));
                for (payload, &(i, ..)) in payloads.into_iter().zip(&leased_here) {
                    next_of(&mut outcomes[i]).push(payload);
                }
                read_queues_for_next(&mut tx, reports, &mut outcomes, queues, &mut written).await?;

                tx.commit().await?;
                backend.after_commit(&written);
                Ok(outcomes)
            })
        })
        .await
}

/// The steps leased for a completion's `next` (empty for other outcomes).
fn next_of(outcome: &mut Result<ReportOutcome>) -> &mut Vec<ClaimedStep> {
    match outcome {
        Ok(ReportOutcome::Completed { next, .. }) => next,
        _ => unreachable!("steps are leased only for applied completions"),
    }
}

/// A completion (by its place in the batch) that wants more steps from a
/// queue: its slot and its lease length.
type NextSlot = (usize, ClaimSlot, Duration);

/// Fills each applied completion's `next` from the queues it names, in its
/// order, after the children it released: one claim per namespace for all
/// the completions that still have room.
async fn read_queues_for_next<T: Transaction>(
    tx: &mut T,
    reports: &[StepReport],
    outcomes: &mut [Result<ReportOutcome>],
    queues: &HashMap<String, Option<String>>,
    written: &mut Written,
) -> Result<()> {
    let wanting: Vec<(usize, &NextClaim)> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, report)| match (report, &outcomes[i]) {
            (
                StepReport::Complete {
                    next: Some(next), ..
                },
                Ok(ReportOutcome::Completed {
                    recorded: Recorded::Applied,
                    ..
                }),
            ) => Some((i, next)),
            _ => None,
        })
        .collect();
    let rounds = wanting
        .iter()
        .map(|(_, next)| next.namespaces.len())
        .max()
        .unwrap_or(0);
    for round in 0..rounds {
        // Per namespace, the completions naming it in this round, with room.
        let mut by_namespace: Vec<(&str, Vec<NextSlot>)> = Vec::new();
        for &(i, next) in &wanting {
            let Some(namespace) = next.namespaces.get(round) else {
                continue;
            };
            let room = next
                .max
                .saturating_sub(next_of(&mut outcomes[i]).len() as u32);
            if room == 0 {
                continue;
            }
            let slot = ClaimSlot {
                worker_id: next.worker_id.clone(),
                max: room,
                handlers: next.handlers.clone(),
            };
            match by_namespace.iter_mut().find(|(ns, _)| ns == namespace) {
                Some((_, slots)) => slots.push((i, slot, next.lease_for)),
                None => by_namespace.push((namespace, vec![(i, slot, next.lease_for)])),
            }
        }
        for (namespace, entries) in by_namespace {
            let Some(Some(queue_name)) = queues.get(namespace) else {
                continue;
            };
            let slots: Vec<ClaimSlot> = entries.iter().map(|(_, slot, _)| slot.clone()).collect();
            let lease_for = entries.iter().map(|(.., d)| *d).max().unwrap_or_default();
            let claim = Claim {
                namespace,
                queue: queue_name,
                lease_for,
                slots: &slots,
            };
            let Claimed {
                steps,
                written: also,
                ..
            } = claim_in(tx, &claim).await?;
            written.extend(also);
            for ((i, ..), steps) in entries.into_iter().zip(steps) {
                next_of(&mut outcomes[i]).extend(steps);
            }
        }
    }
    Ok(())
}
