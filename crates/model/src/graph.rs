//! Graph algorithms over a template's steps: cycle detection for validation.

use std::collections::HashMap;

use crate::template::StepDef;

/// The first dependency cycle found, spelled out as step names with the first
/// name repeated at the end (`a -> b -> a`); `None` for an acyclic graph.
/// Unknown dependencies and self-dependencies are ignored here: validation
/// reports them separately, and a self-dependency found first would otherwise
/// hide a longer cycle elsewhere in the graph.
pub fn find_cycle(steps: &[StepDef]) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = steps
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter(|d| **d != s.name)
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    let mut marks = vec![Mark::New; steps.len()];
    let mut path: Vec<usize> = Vec::new();

    // Iterative DFS: templates are small, but recursion depth should not
    // depend on user input.
    for start in 0..steps.len() {
        if marks[start] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        path.push(start);
        while let Some((node, next_edge)) = stack.last_mut() {
            let node = *node;
            if let Some(&child) = edges[node].get(*next_edge) {
                *next_edge += 1;
                match marks[child] {
                    Mark::New => {
                        marks[child] = Mark::OnPath;
                        path.push(child);
                        stack.push((child, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|&n| n == child).unwrap_or(0);
                        // Edges point from a step to its dependency; print the
                        // cycle in "depends on" order and close it.
                        let mut cycle: Vec<String> = path[from..]
                            .iter()
                            .map(|&i| steps[i].name.clone())
                            .collect();
                        cycle.push(steps[child].name.clone());
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                path.pop();
                stack.pop();
            }
        }
    }
    None
}
