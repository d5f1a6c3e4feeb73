//! Fan-out: a step whose template has `fan_out: {over: source}` runs once per
//! chunk of its source's items.
//!
//! ```text
//!   source ──complete {"items": [a, b, c]}──▶ process_rows      (pending: waits)
//!                                             process_rows[0]   (ready, items [a])
//!                                             process_rows[1]   (ready, items [b])
//!                                             process_rows[2]   (ready, items [c])
//!   every instance complete ──Gather──▶ process_rows complete, its result
//!                                       the list of the instances' results
//! ```
//! The instances are real step rows (own attempts, lease, result) created in
//! the plan that records the source's result, so the source's completion and
//! its instances commit together. The fan-out step's own row stands for the
//! whole group: its children converge on it. An empty fan-out skips it, yet
//! counts as satisfied for its children (they run, receiving `[]`).

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Instance, NewStep, StepRow, TaskRun};
use crate::records::{StepError, Timestamp};
use crate::step_state::{StepEvent, StepState};

/// The default of `engine.max_fan_out_instances`: most instances one
/// fan-out step may get in one task.
pub const DEFAULT_MAX_FAN_OUT: u32 = 10_000;

/// `error_type` of a fan-out source whose result has no `items` list.
pub const INVALID_FAN_OUT: &str = "invalid_fan_out";

/// `error_type` of a fan-out source whose items need more instances than
/// allowed.
pub const FAN_OUT_LIMIT_EXCEEDED: &str = "fan_out_limit_exceeded";

impl TaskRun<'_> {
    /// Whether template step `index` is a fan-out step's own row.
    pub(super) fn is_fan_out_group(&self, index: usize) -> bool {
        self.steps[index].instance.is_none() && self.def(index).fan_out.is_some()
    }

    /// Checks the result of step `index` against the fan-out steps that run
    /// over its items: it must hold `{"items": [...]}` needing no more
    /// instances than each allows. The error is the step's failure.
    pub fn check_fan_out_source(
        &self,
        index: usize,
        result: &serde_json::Value,
    ) -> Result<(), StepError> {
        if self.steps[index].instance.is_some() {
            return Ok(());
        }
        let fan_outs = self.template.fan_outs_over(index);
        if fan_outs.is_empty() {
            return Ok(());
        }
        let source = &self.template.steps[index].name;
        let fail = |error_type: &str, message: String| StepError {
            error_type: error_type.into(),
            message,
            details: serde_json::Value::Null,
            retryable: false,
        };
        let Some(items) = result.get("items").and_then(|i| i.as_array()) else {
            let names: Vec<&str> = fan_outs
                .iter()
                .map(|&f| self.template.steps[f].name.as_str())
                .collect();
            return Err(fail(
                INVALID_FAN_OUT,
                format!(
                    "step \"{source}\" feeds fan-out step(s) {} and must complete with {{\"items\": [...]}}",
                    names.join(", ")
                ),
            ));
        };
        for f in fan_outs {
            let def = &self.template.steps[f];
            let fan_out = def.fan_out.as_ref().expect("fan_outs_over");
            let instances = instances_for(items.len(), fan_out.chunk_size);
            let (limit, by) = self.fan_out_limit(f);
            if instances > limit as usize {
                return Err(fail(
                    FAN_OUT_LIMIT_EXCEEDED,
                    format!(
                        "step \"{source}\" returned {} items: {instances} instances of \"{}\" \
                         (chunk_size {}) exceed the limit of {limit} ({by})",
                        items.len(),
                        def.name,
                        fan_out.chunk_size
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The most instances fan-out step `f` may get, and which setting says so.
    fn fan_out_limit(&self, f: usize) -> (u32, &'static str) {
        let cap = self.max_fan_out;
        match self.template.steps[f]
            .fan_out
            .as_ref()
            .and_then(|f| f.max_instances)
        {
            Some(max) if max < cap => (max, "its fan_out.max_instances"),
            _ => (cap, "the server's engine.max_fan_out_instances"),
        }
    }

    /// Settles a fan-out step's own row: once its source is done it fans
    /// out (or is skipped with it); once every instance is done it gathers.
    pub(super) fn settle_fan_out(&mut self, group: usize, now: Timestamp) {
        if self.steps[group].state != StepState::Pending {
            return;
        }
        if self.steps[group].fan_out_count.is_some() {
            let done = (0..self.steps.len()).all(|i| {
                self.steps[i].instance.is_none_or(|inst| inst.of != group)
                    || self.steps[i].state.satisfies_dependents()
            });
            if done {
                self.steps[group].finished_at = Some(now);
                self.plan.gather.push(group);
                self.step_event(group, StepEvent::Gather, None, now);
            }
            return;
        }
        let source = self.parents[group][0];
        match self.steps[source].state {
            StepState::Skipped => {
                let reason = format!("parent \"{}\" was skipped", self.name(source));
                self.steps[group].finished_at = Some(now);
                self.step_event(group, StepEvent::Skip, Some(&reason), now);
            }
            state if state.satisfies_dependents() => self.expand(group, source, now),
            _ => {}
        }
    }

    /// Creates the instances of fan-out step `group` over the items `source`
    /// just recorded (none when it was resolved without a result).
    fn expand(&mut self, group: usize, source: usize, now: Timestamp) {
        let items: Vec<serde_json::Value> = self
            .plan
            .results
            .iter()
            .rev()
            .find(|(i, _)| *i == source)
            .and_then(|(_, r)| r.get("items"))
            .and_then(|i| i.as_array())
            .cloned()
            .unwrap_or_default();
        let chunk_size = self.def(group).fan_out.as_ref().map_or(1, |f| f.chunk_size);
        let chunks: Vec<&[serde_json::Value]> = items.chunks(chunk_size as usize).collect();
        self.steps[group].fan_out_count = Some(chunks.len() as u32);
        self.plan.dirty_steps.insert(group);
        if chunks.is_empty() {
            self.steps[group].finished_at = Some(now);
            self.plan
                .results
                .push((group, serde_json::Value::Array(Vec::new())));
            self.step_event(group, StepEvent::Skip, Some("fan-out over 0 items"), now);
            return;
        }
        let group_id = self.steps[group].id;
        for (number, chunk) in chunks.into_iter().enumerate() {
            let index = self.steps.len();
            let mut row = StepRow::new(instance_id(group_id, number as u32));
            row.instance = Some(Instance {
                of: group,
                number: number as u32,
            });
            self.steps.push(row);
            self.parents.push(Vec::new());
            self.children.push(vec![group]);
            self.plan.new_steps.push(NewStep {
                index,
                items: chunk.to_vec(),
            });
            self.step_event(index, StepEvent::Release, None, now);
        }
    }
}

/// Instances needed for `items` items in chunks of `chunk_size`.
pub fn instances_for(items: usize, chunk_size: u32) -> usize {
    items.div_ceil(chunk_size.max(1) as usize)
}

/// A stable id for instance `number` of a fan-out step's row: a run that is
/// written again after a lost commit creates the same rows.
fn instance_id(group: Uuid, number: u32) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(group.as_bytes());
    hash.update(number.to_be_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
