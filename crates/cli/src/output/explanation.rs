//! `tasker task explain` for people: the task's one-line summary, then one
//! block per unfinished step with each reason as a plain sentence.

use std::fmt::Write as _;

use tasker_client::TaskExplanation;

pub fn explanation_text(explanation: &TaskExplanation) -> String {
    let mut out = format!(
        "task {} ({}): {}\n",
        explanation.task_id, explanation.namespace, explanation.summary
    );
    for step in &explanation.steps {
        let _ = writeln!(
            out,
            "\nstep {} ({}, handler {}, attempt {} of {})",
            step.name, step.state, step.handler, step.attempt, step.max_attempts
        );
        if step.reasons.is_empty() {
            out.push_str("  Nothing known holds it.\n");
        }
        for reason in &step.reasons {
            let _ = writeln!(out, "  {}", reason.sentence());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use tasker_client::{StepExplanation, StepState, TaskState, WaitReason};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn one_block_per_step_with_one_sentence_per_reason() {
        let explanation = TaskExplanation {
            task_id: Uuid::nil(),
            namespace: "orders".into(),
            state: TaskState::Running,
            summary: "running; 1 of 2 steps not finished".into(),
            steps: vec![StepExplanation {
                step_id: Uuid::nil(),
                name: "ship".into(),
                handler: "ship_parcel".into(),
                state: StepState::Ready,
                attempt: 0,
                max_attempts: 3,
                reasons: vec![WaitReason::NoWorkerServesNamespace {
                    namespace: "orders".into(),
                }],
            }],
            at: chrono::Utc::now(),
        };
        assert_eq!(
            explanation_text(&explanation),
            "task 00000000-0000-0000-0000-000000000000 (orders): running; 1 of 2 steps not finished\n\
             \n\
             step ship (ready, handler ship_parcel, attempt 0 of 3)\n  \
             No live worker serves namespace \"orders\": start a worker for it.\n"
        );
    }
}
