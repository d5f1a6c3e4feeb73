use tasker_model::{StepState, TaskState};

use crate::graphs::{diamond, template};
use crate::harness::{Harness, t0, task_transitions};

#[test]
fn create_releases_only_the_roots() {
    let (h, plan) = Harness::create(&diamond(3));
    assert_eq!(plan.enqueue, vec![0]);
    assert_eq!(
        plan.dirty_steps.iter().copied().collect::<Vec<_>>(),
        vec![0]
    );
    assert_eq!(task_transitions(&plan), vec![(None, "running")]);
    assert_eq!(plan.transitions[0].reason.as_deref(), Some("created"));
    assert_eq!(plan.transitions[0].at, t0());
    let a = &plan.transitions[1];
    assert_eq!(
        (a.step_id, a.from_state, a.to_state),
        (Some(h.step("a").id), Some("pending"), "ready")
    );
    assert_eq!(plan.transitions.len(), 2);
    assert!(plan.delete_messages.is_empty() && plan.set_visibility.is_empty());

    assert_eq!(h.task.state, TaskState::Running);
    assert_eq!(h.task.finished_at, None);
    assert_eq!(h.state("a"), StepState::Ready);
    for name in ["b", "c", "d"] {
        assert_eq!(h.state(name), StepState::Pending, "{name}");
        assert_eq!(h.step(name).msg_id, None, "{name}");
        assert_eq!(h.step(name).attempt, 0, "{name}");
    }
}

#[test]
fn create_releases_every_root_of_a_graph_with_several() {
    let yaml = template(&[("x", &[]), ("join", &["x", "y"]), ("y", &[])], 3, "1m");
    let (h, plan) = Harness::create(&yaml);
    assert_eq!(plan.enqueue, vec![0, 2]);
    assert_eq!(h.state("join"), StepState::Pending);
}

#[test]
fn create_releases_the_roots_of_every_example_template() {
    for yaml in [
        include_str!("../../../../templates/linear.yaml"),
        include_str!("../../../../templates/diamond.yaml"),
        include_str!("../../../../templates/mixed_dag.yaml"),
        include_str!("../../../../templates/tree.yaml"),
        include_str!("../../../../templates/order_fulfillment.yaml"),
    ] {
        let (h, plan) = Harness::create(yaml);
        let roots: Vec<usize> = h
            .template
            .parent_indices()
            .iter()
            .enumerate()
            .filter(|(_, parents)| parents.is_empty())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(plan.enqueue, roots, "{}", h.template.name);
        assert_eq!(
            roots.len(),
            1,
            "{}: every example has one root",
            h.template.name
        );
    }
}
