//! What a schedule does while its previous run is still going (each
//! overlap policy), with fire times missed while no leader ran (each
//! catch-up rule), and with bad input. One node, which leads; time is a
//! manual clock.

mod support;

use chrono::TimeDelta;
use serde_json::json;
use support::schedule_nodes::{Nodes, ONE_STEP, at, every_minute};
use support::{Harness, Rows, harness, template};
use tasker_engine::Error;
use tasker_model::schedule::{FireOutcome, OverlapPolicy};
use tasker_model::{ScheduleFire, ScheduleSpec, TaskState};

const FIRES: Rows<'static> = Rows::ScheduleFires;
const TASKS: Rows<'static> = Rows::Tasks;

async fn one_node(h: &Harness) -> Nodes {
    h.register(&template("default", "tick", ONE_STEP)).await;
    let nodes = Nodes::new(h, at("2026-03-01T10:00:30Z"), &["node-a"]).await;
    nodes.join(0).await;
    nodes.leader().await;
    nodes
}

/// A minutely schedule with `overlap`, fired once (its task left running)
/// and then once more; returns the nodes and the fires, oldest first.
async fn second_fire_while_first_runs(
    h: &Harness,
    overlap: OverlapPolicy,
) -> (Nodes, uuid::Uuid, Vec<ScheduleFire>) {
    let nodes = one_node(h).await;
    let mut spec = every_minute("tick");
    spec.overlap = overlap;
    let schedule = nodes.engine(0).schedule_create(spec).await.unwrap();
    nodes.advance(TimeDelta::minutes(1));
    nodes.wait_count(TASKS, 1).await;
    nodes.advance(TimeDelta::minutes(1));
    nodes.wait_count(FIRES, 2).await;
    let fires = fires_of(&nodes, schedule.id).await;
    assert_eq!(fires[0].outcome, FireOutcome::Started);
    (nodes, schedule.id, fires)
}

#[tokio::test]
async fn a_waiting_fire_is_dropped_when_the_policy_changes() {
    let h = harness().await;
    let (nodes, id, fires) = second_fire_while_first_runs(&h, OverlapPolicy::BufferOne).await;
    assert_eq!(fires[1].outcome, FireOutcome::Buffered);
    let mut spec = nodes.engine(0).schedule_get(id).await.unwrap().spec;
    spec.overlap = OverlapPolicy::Skip;
    let changed = nodes.engine(0).schedule_update(id, spec).await.unwrap();
    assert_eq!(changed.buffered_fire_at, None);
    assert_eq!(
        fires_of(&nodes, id).await[1].outcome,
        FireOutcome::SkippedOverlap
    );
    nodes.stop().await;
}

async fn fires_of(nodes: &Nodes, id: uuid::Uuid) -> Vec<ScheduleFire> {
    let mut fires = nodes.engine(0).schedule_fires(id, 100).await.unwrap();
    fires.reverse();
    fires
}

#[tokio::test]
async fn skip_records_the_overlapping_fire_and_starts_nothing() {
    let h = harness().await;
    let (nodes, _, fires) = second_fire_while_first_runs(&h, OverlapPolicy::Skip).await;
    assert_eq!(fires[1].outcome, FireOutcome::SkippedOverlap);
    assert_eq!(fires[1].task_id, None);
    assert!(fires[1].message.as_deref().unwrap().contains("still going"));
    assert_eq!(nodes.count(TASKS).await, 1);
    nodes.stop().await;
}

#[tokio::test]
async fn allow_starts_a_second_run_beside_the_first() {
    let h = harness().await;
    let (nodes, _, fires) = second_fire_while_first_runs(&h, OverlapPolicy::Allow).await;
    assert_eq!(fires[1].outcome, FireOutcome::Started);
    assert_eq!(nodes.count(TASKS).await, 2);
    nodes.stop().await;
}

#[tokio::test]
async fn cancel_previous_cancels_the_running_task_and_starts_the_new_one() {
    let h = harness().await;
    let (nodes, _, fires) = second_fire_while_first_runs(&h, OverlapPolicy::CancelPrevious).await;
    assert_eq!(fires[1].outcome, FireOutcome::Started);
    let first = nodes
        .engine(0)
        .task_get(fires[0].task_id.unwrap())
        .await
        .unwrap();
    assert_eq!(first.state, TaskState::Cancelled);
    let second = nodes
        .engine(0)
        .task_get(fires[1].task_id.unwrap())
        .await
        .unwrap();
    assert_eq!(second.state, TaskState::Running);
    nodes.stop().await;
}

#[tokio::test]
async fn buffer_one_waits_for_the_previous_run_and_skips_beyond_one() {
    let h = harness().await;
    let (nodes, id, fires) = second_fire_while_first_runs(&h, OverlapPolicy::BufferOne).await;
    assert_eq!(fires[1].outcome, FireOutcome::Buffered);
    assert_eq!(
        nodes
            .engine(0)
            .schedule_get(id)
            .await
            .unwrap()
            .buffered_fire_at,
        Some(fires[1].fire_time)
    );
    // A third time while one waits: skipped.
    nodes.advance(TimeDelta::minutes(1));
    nodes.wait_count(FIRES, 3).await;
    assert_eq!(
        fires_of(&nodes, id).await[2].outcome,
        FireOutcome::SkippedOverlap
    );
    assert_eq!(nodes.count(TASKS).await, 1);

    // The first run finishes: the buffered fire starts its task.
    let step = nodes
        .engine(0)
        .step_claim("default", "worker-1", 1)
        .await
        .unwrap()
        .pop()
        .unwrap();
    nodes
        .engine(0)
        .step_complete(step.lease, json!({}))
        .await
        .unwrap();
    nodes.engine(0).schedules_wake();
    nodes.wait_count(TASKS, 2).await;
    let fires = fires_of(&nodes, id).await;
    assert_eq!(fires[1].outcome, FireOutcome::Started);
    assert!(fires[1].task_id.is_some());
    assert_eq!(
        nodes
            .engine(0)
            .schedule_get(id)
            .await
            .unwrap()
            .buffered_fire_at,
        None
    );
    nodes.stop().await;
}

/// Hourly; the leader away from 10:00:30 to 13:30:30.
async fn hours_without_a_leader(h: &Harness, catch_up: &str) -> (Nodes, Vec<ScheduleFire>) {
    let nodes = one_node(h).await;
    let spec: ScheduleSpec = serde_json::from_value(json!({
        "name": "hourly", "template": "tick", "cron": "0 * * * *", "catch_up": catch_up
    }))
    .unwrap();
    let schedule = nodes.engine(0).schedule_create(spec).await.unwrap();
    nodes.advance(TimeDelta::minutes(210));
    nodes.wait_count(FIRES, 1).await;
    nodes.pass(0).await;
    assert_eq!(nodes.count(FIRES).await, 1, "one fire for the whole gap");
    let after = nodes.engine(0).schedule_get(schedule.id).await.unwrap();
    assert_eq!(after.next_fire_at, Some(at("2026-03-01T14:00:00Z")));
    let fires = fires_of(&nodes, schedule.id).await;
    (nodes, fires)
}

#[tokio::test]
async fn catch_up_run_once_runs_the_latest_missed_time_once() {
    let h = harness().await;
    let (nodes, fires) = hours_without_a_leader(&h, "run_once").await;
    assert_eq!(fires[0].fire_time, at("2026-03-01T13:00:00Z"));
    assert_eq!(fires[0].outcome, FireOutcome::Started);
    assert_eq!(nodes.count(TASKS).await, 1);
    nodes.stop().await;
}

#[tokio::test]
async fn catch_up_skip_records_the_missed_time_and_starts_nothing() {
    let h = harness().await;
    let (nodes, fires) = hours_without_a_leader(&h, "skip").await;
    assert_eq!(fires[0].fire_time, at("2026-03-01T13:00:00Z"));
    assert_eq!(fires[0].outcome, FireOutcome::Missed);
    assert_eq!(nodes.count(TASKS).await, 0);
    nodes.stop().await;
}

#[tokio::test]
async fn an_interval_fires_every_interval_from_its_creation() {
    let h = harness().await;
    let nodes = one_node(&h).await;
    let spec: ScheduleSpec = serde_json::from_value(json!({
        "name": "often", "template": "tick", "interval": "90s", "overlap": "allow"
    }))
    .unwrap();
    let schedule = nodes.engine(0).schedule_create(spec).await.unwrap();
    assert_eq!(schedule.next_fire_at, Some(at("2026-03-01T10:02:00Z")));
    nodes.advance(TimeDelta::seconds(90));
    nodes.wait_count(FIRES, 1).await;
    nodes.advance(TimeDelta::seconds(90));
    nodes.wait_count(FIRES, 2).await;
    let times: Vec<_> = fires_of(&nodes, schedule.id)
        .await
        .iter()
        .map(|f| f.fire_time)
        .collect();
    assert_eq!(
        times,
        vec![at("2026-03-01T10:02:00Z"), at("2026-03-01T10:03:30Z")]
    );
    nodes.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_stores_nothing() {
    let h = harness().await;
    h.register(&template("default", "tick", ONE_STEP)).await;
    let nodes = Nodes::new(&h, at("2026-03-01T10:00:30Z"), &["node-a"]).await;
    let engine = nodes.engine(0);
    for (change, field) in [
        (json!({"cron": "0 25 * * *"}), "cron"),
        (
            json!({"cron": "0 2 * * *", "time_zone": "Europe/Atlantis"}),
            "time_zone",
        ),
        (json!({"cron": null, "interval": "soon"}), "interval"),
        (json!({"interval": "1m"}), "cron"),
        (json!({"jitter": "a bit"}), "jitter"),
        (json!({"name": ""}), "name"),
    ] {
        let mut spec = serde_json::to_value(every_minute("tick")).unwrap();
        for (key, value) in change.as_object().unwrap() {
            spec[key] = value.clone();
        }
        let spec: ScheduleSpec = serde_json::from_value(spec).unwrap();
        match engine.schedule_create(spec).await {
            Err(Error::ScheduleInvalid { field: got, .. }) => assert_eq!(got, field, "{change}"),
            other => panic!("{change}: expected invalid {field}, got {other:?}"),
        }
    }
    let mut unknown = every_minute("tick");
    unknown.template = "tock".into();
    assert_eq!(
        engine.schedule_create(unknown).await.unwrap_err().code(),
        "not_found"
    );
    let mut not_object = every_minute("tick");
    not_object.context = json!([1]);
    assert!(matches!(
        engine.schedule_create(not_object).await,
        Err(Error::ScheduleInvalid {
            field: "context",
            ..
        })
    ));
    assert_eq!(nodes.count(Rows::Schedules).await, 0);
    engine.schedule_create(every_minute("tick")).await.unwrap();
    assert_eq!(
        engine
            .schedule_create(every_minute("tick"))
            .await
            .unwrap_err()
            .code(),
        "schedule_conflict"
    );
}
