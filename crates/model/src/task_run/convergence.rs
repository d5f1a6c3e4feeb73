//! Which pending steps run and which are skipped: decision results and the
//! convergence rules (`all`, `all_done`, `any`).
//!
//! From a child's point of view each parent edge is satisfied (the parent is
//! complete or resolved and, if it is a decision, chose this child), skipped
//! (the parent was skipped, or is a decision that did not choose this child)
//! or still open. [`TaskRun::settle`] turns the edges into release or skip by
//! the child's rule; a skip releases its own children in turn, so everything
//! only reachable through an unchosen branch is skipped in the same plan.
//! A fan-out step's own row is settled by its own rules (see `fan_out`).

use super::TaskRun;
use crate::records::Timestamp;
use crate::step_state::{StepEvent, StepState};
use crate::template::Convergence;

/// `error_type` of a decision step whose result names no valid branches.
pub const INVALID_DECISION: &str = "invalid_decision";

/// How a parent ended, as one child sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Satisfied,
    Skipped,
    Open,
}

impl TaskRun<'_> {
    fn edge(&self, parent: usize, child: usize) -> Edge {
        let row = &self.steps[parent];
        match row.state {
            // An empty fan-out is skipped, yet what converges on it runs.
            StepState::Skipped if row.fan_out_count == Some(0) => Edge::Satisfied,
            StepState::Skipped => Edge::Skipped,
            state if state.satisfies_dependents() => {
                let chosen = match &row.branches {
                    Some(branches) if self.template.steps[parent].decision => {
                        branches.contains(&self.template.steps[child].name)
                    }
                    _ => true,
                };
                if chosen {
                    Edge::Satisfied
                } else {
                    Edge::Skipped
                }
            }
            _ => Edge::Open,
        }
    }

    /// Releases or skips a pending step whose parents allow it by its
    /// convergence rule; leaves it pending while that is still open.
    pub(super) fn settle(&mut self, index: usize, now: Timestamp) {
        if self.steps[index].state != StepState::Pending {
            return;
        }
        if self.is_fan_out_group(index) {
            return self.settle_fan_out(index, now);
        }
        let edges: Vec<(usize, Edge)> = self.parents[index]
            .iter()
            .map(|&p| (p, self.edge(p, index)))
            .collect();
        let all = |want: &[Edge]| edges.iter().all(|(_, e)| want.contains(e));
        let first_skipped = edges.iter().find(|(_, e)| *e == Edge::Skipped);
        let skip_reason = |parent: usize| {
            let def = &self.template.steps[parent];
            if def.decision && self.steps[parent].state != StepState::Skipped {
                format!("not chosen by decision \"{}\"", def.name)
            } else {
                format!("parent \"{}\" was skipped", def.name)
            }
        };
        let event = match self.def(index).convergence {
            Convergence::All => match first_skipped {
                Some(&(parent, _)) => Some((StepEvent::Skip, Some(skip_reason(parent)))),
                None if all(&[Edge::Satisfied]) => Some((StepEvent::Release, None)),
                None => None,
            },
            Convergence::AllDone => {
                all(&[Edge::Satisfied, Edge::Skipped]).then_some((StepEvent::Release, None))
            }
            Convergence::Any => {
                if edges.iter().any(|(_, e)| *e == Edge::Satisfied) {
                    Some((StepEvent::Release, None))
                } else if !edges.is_empty() && all(&[Edge::Skipped]) {
                    Some((StepEvent::Skip, Some("every parent was skipped".to_owned())))
                } else {
                    None
                }
            }
        };
        if let Some((event, reason)) = event {
            if event == StepEvent::Skip {
                self.steps[index].finished_at = Some(now);
            }
            self.step_event(index, event, reason.as_deref(), now);
        }
    }

    /// The branches a decision step's result chooses: `{"branches": [..]}`
    /// naming steps that depend on it (none is allowed). An error says what
    /// is wrong, for the step's `invalid_decision` failure.
    pub fn decision_branches(
        &self,
        index: usize,
        result: &serde_json::Value,
    ) -> Result<Vec<String>, String> {
        let def = &self.def(index);
        let children = self.template.children_of(index);
        let expected = || {
            format!(
                "decision step \"{}\" must complete with {{\"branches\": [...]}} naming some of: {}",
                def.name,
                children.join(", ")
            )
        };
        let Some(list) = result.get("branches").and_then(|b| b.as_array()) else {
            return Err(expected());
        };
        let mut branches: Vec<String> = Vec::with_capacity(list.len());
        for item in list {
            let Some(name) = item.as_str() else {
                return Err(format!("{}; got {item}", expected()));
            };
            if !children.contains(&name) {
                return Err(format!(
                    "decision step \"{}\" chose \"{name}\", which is not one of its branches ({})",
                    def.name,
                    children.join(", ")
                ));
            }
            if !branches.iter().any(|b| b == name) {
                branches.push(name.to_owned());
            }
        }
        Ok(branches)
    }
}
