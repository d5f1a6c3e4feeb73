//! The byte budget of parent results in one claimed step. A step with many
//! parents, or parents with large results, would otherwise ship all of them
//! with every claim (and every redelivery). Results that do not fit in
//! `engine.max_parent_results_bytes` leave the claim: the claimed step
//! names them in `parent_result_refs` (parent name → step id) and the
//! worker fetches each with `GET /v1/steps/{id}/result` when it needs it.
//! The smallest results stay inline, so most parents still arrive with the
//! claim. This never refuses a claim: the steps are already leased.

use std::collections::HashMap;

use tasker_model::ClaimedStep;

use crate::Engine;

/// The names of the parents whose results leave the claim: the largest
/// ones, until what stays fits in `budget` bytes of JSON.
pub fn over_budget(
    parent_results: &serde_json::Map<String, serde_json::Value>,
    budget: usize,
) -> Vec<String> {
    let mut sizes: Vec<(usize, &String)> = parent_results
        .iter()
        .map(|(name, result)| (json_len(result), name))
        .collect();
    let total: usize = sizes.iter().map(|(size, _)| size).sum();
    if total <= budget {
        return Vec::new();
    }
    sizes.sort();
    let mut kept = 0;
    let mut moved = Vec::new();
    for (size, name) in sizes {
        if kept + size <= budget {
            kept += size;
        } else {
            moved.push(name.clone());
        }
    }
    moved
}

fn json_len(value: &serde_json::Value) -> usize {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len())
}

impl Engine {
    /// Moves parent results over the budget out of each claimed step, into
    /// references. Finding the ids costs a read of the task's steps, only
    /// for a step over the budget; if that read fails the results stay
    /// inline (the step is leased already and must reach its worker).
    pub(crate) async fn cap_parent_results(&self, mut steps: Vec<ClaimedStep>) -> Vec<ClaimedStep> {
        let budget = self.config.max_parent_results_bytes;
        for step in &mut steps {
            let moved = over_budget(&step.parent_results, budget);
            if moved.is_empty() {
                continue;
            }
            let ids: HashMap<String, uuid::Uuid> = match self.store.task_steps(step.task_id).await {
                Ok(all) => all.into_iter().map(|s| (s.name, s.id)).collect(),
                Err(error) => {
                    tracing::warn!(%error, step = %step.lease.step_id, "cannot look up parent steps; their results stay in the claim");
                    continue;
                }
            };
            for name in moved {
                if let Some(&id) = ids.get(&name) {
                    step.parent_results.remove(&name);
                    step.parent_result_refs.insert(name, id);
                }
            }
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn results(pairs: &[(&str, usize)]) -> serde_json::Map<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(name, len)| (name.to_string(), json!("x".repeat(*len))))
            .collect()
    }

    #[test]
    fn results_within_the_budget_all_stay() {
        assert!(over_budget(&results(&[("a", 10), ("b", 20)]), 100).is_empty());
        assert!(over_budget(&serde_json::Map::new(), 0).is_empty());
    }

    #[test]
    fn the_largest_results_leave_until_the_rest_fits() {
        // Each string is its length plus two quotes.
        let parents = results(&[("small", 8), ("big", 98), ("medium", 38), ("huge", 500)]);
        let mut moved = over_budget(&parents, 100);
        moved.sort();
        assert_eq!(moved, ["big", "huge"]);
        assert_eq!(over_budget(&parents, 10), ["medium", "big", "huge"]);
        assert_eq!(over_budget(&parents, 0).len(), 4);
    }
}
