//! Real concurrency: many tasks, several claimers on two nodes in parallel.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{DIAMOND, LINEAR, Rows, harness, template};
use tasker_engine::EngineConfig;
use tasker_model::{StepError, TaskState};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_share_a_step_and_every_task_finishes() {
    let h = harness().await;
    let retry = "retry: { max_attempts: 10, backoff: { initial: 0ms, max: 0ms, jitter: 0 } }";
    h.register(&template(
        "default",
        "linear",
        &LINEAR.replace("h.a }", &format!("h.a, {retry} }}")),
    ))
    .await;
    h.register(&template(
        "default",
        "diamond",
        &DIAMOND.replace("h.d,", &format!("h.d, {retry},")),
    ))
    .await;

    const TASKS: usize = 40;
    let mut ids = Vec::new();
    for i in 0..TASKS {
        let name = if i % 2 == 0 { "linear" } else { "diamond" };
        ids.push(h.create("default", name, json!({"i": i})).await.id);
    }

    let leased: Arc<Mutex<HashSet<uuid::Uuid>>> = Arc::default();
    let completed = Arc::new(Mutex::new(Vec::new()));
    let node_b = h.other_node(EngineConfig::default()).await;
    let engines = [h.engine.clone(), node_b.clone(), h.engine.clone(), node_b];
    let mut claimers = Vec::new();
    for (n, engine) in engines.into_iter().enumerate() {
        let leased = leased.clone();
        let completed = completed.clone();
        claimers.push(tokio::spawn(async move {
            let worker = format!("claimer-{n}");
            let mut idle = 0;
            let mut failures = 0u32;
            while idle < 20 {
                let steps = engine.step_claim("default", &worker, 3).await.unwrap();
                if steps.is_empty() {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                idle = 0;
                for step in steps {
                    assert!(
                        leased.lock().unwrap().insert(step.lease.step_id),
                        "step {} claimed twice while leased",
                        step.lease.step_id
                    );
                    // Every fifth first attempt of a retryable step fails once.
                    failures += 1;
                    let fail = step.max_attempts == 10
                        && step.lease.attempt == 1
                        && failures.is_multiple_of(5);
                    if fail {
                        let error = StepError {
                            error_type: "transient".into(),
                            message: "try again".into(),
                            details: json!(null),
                            retryable: true,
                        };
                        engine.step_fail(step.lease, error).await.unwrap();
                    } else {
                        engine
                            .step_complete(step.lease, json!({"by": n}))
                            .await
                            .unwrap();
                        completed.lock().unwrap().push(step.lease.step_id);
                    }
                    // Released only once the result is recorded.
                    leased.lock().unwrap().remove(&step.lease.step_id);
                }
            }
        }));
    }
    for c in claimers {
        c.await.unwrap();
    }

    let completed = completed.lock().unwrap().clone();
    assert_eq!(completed.len(), TASKS * 4, "every step completed once");
    assert_eq!(
        completed.iter().collect::<HashSet<_>>().len(),
        TASKS * 4,
        "no step completed twice"
    );
    for id in ids {
        let task = h.engine.task_get(id).await.unwrap();
        assert_eq!(task.state, TaskState::Complete, "task {id}");
        let finals = h
            .engine
            .task_history(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.step_id.is_none() && t.to_state == "complete")
            .count();
        assert_eq!(finals, 1);
    }
    assert_eq!(h.queue_depth("default").await, 0);
    assert_eq!(
        h.count(Rows::StepsIn("complete")).await,
        h.count(Rows::Steps).await,
        "every step complete"
    );
}
