//! Schedules fired by the leader of two nodes on one database: each fire
//! time runs exactly once, also when the leader is killed right after a
//! fire and the follower, reading a schedule from before that fire, takes
//! over; backfills of the same range through both nodes at once run each
//! time once. Time is a shared manual clock; leases are moved into the past.
//! On SQLite the two nodes are two engines over its one store.

mod support;

use chrono::TimeDelta;
use support::schedule_nodes::{Nodes, ONE_STEP, at, every_minute};
use support::{Rows, harness, template};
use tasker_engine::Error;
use tasker_model::schedule::{FireKind, FireOutcome};

const FIRES: Rows<'static> = Rows::ScheduleFires;
const STARTED: Rows<'static> = Rows::ScheduleFiresWithOutcome("started");
const TASKS: Rows<'static> = Rows::TasksTagged("schedule:tick");

#[tokio::test]
async fn two_nodes_fire_each_time_once_across_a_leader_killed_after_a_fire() {
    let h = harness().await;
    h.register(&template("default", "tick", ONE_STEP)).await;
    let nodes = Nodes::new(&h, at("2026-03-01T10:00:30Z"), &["node-a", "node-b"]).await;
    let schedule = nodes
        .engine(1)
        .schedule_create(every_minute("tick"))
        .await
        .unwrap();
    assert_eq!(schedule.next_fire_at, Some(at("2026-03-01T10:01:00Z")));
    nodes.join(0).await;
    nodes.join(1).await;

    // Three minutes pass, one at a time: one fire each.
    for minute in 1..=3 {
        nodes.advance(TimeDelta::minutes(1));
        nodes.wait_count(STARTED, minute).await;
        let leader = nodes.leader().await;
        nodes.pass(leader).await;
        assert_eq!(nodes.count(FIRES).await, minute);
    }
    assert_eq!(nodes.count(TASKS).await, 3);

    // The leader is killed right after its fire of 10:04. The follower
    // read the schedule before that fire committed: put its next time back.
    nodes.advance(TimeDelta::minutes(1));
    nodes.wait_count(STARTED, 4).await;
    let killed = nodes.leader().await;
    let survivor = 1 - killed;
    nodes.engine(killed).cluster_abandon().await;
    nodes
        .db
        .schedule_next_fire_set(schedule.id, at("2026-03-01T10:04:00Z"))
        .await;
    nodes.expire_lease().await;
    assert_eq!(nodes.leader().await, survivor, "the follower takes over");
    nodes.pass(survivor).await;
    // 10:04 did not run again, and the schedule moved on to 10:05.
    assert_eq!(nodes.count(FIRES).await, 4);
    assert_eq!(nodes.count(TASKS).await, 4);
    let moved = nodes
        .engine(survivor)
        .schedule_get(schedule.id)
        .await
        .unwrap();
    assert_eq!(moved.next_fire_at, Some(at("2026-03-01T10:05:00Z")));

    // The survivor fires the next time, once.
    nodes.advance(TimeDelta::minutes(1));
    nodes.wait_count(STARTED, 5).await;
    nodes.pass(survivor).await;
    assert_eq!(nodes.count(FIRES).await, 5);
    let fires = nodes
        .engine(0)
        .schedule_fires(schedule.id, 100)
        .await
        .unwrap();
    let times: Vec<_> = fires.iter().map(|f| f.fire_time).collect();
    let expected: Vec<_> = (1..=5)
        .rev()
        .map(|m| at("2026-03-01T10:00:00Z") + TimeDelta::minutes(m))
        .collect();
    assert_eq!(times, expected, "each minute once, newest first");
    assert!(fires.iter().all(|f| f.kind == FireKind::Scheduled
        && f.outcome == FireOutcome::Started
        && f.task_id.is_some()));
    nodes.stop().await;
}

#[tokio::test]
async fn a_leader_killed_before_its_fire_commits_leaves_the_time_to_the_next_leader() {
    let h = harness().await;
    h.register(&template("default", "tick", ONE_STEP)).await;
    let nodes = Nodes::new(&h, at("2026-03-01T10:00:30Z"), &["node-a", "node-b"]).await;
    nodes
        .engine(0)
        .schedule_create(every_minute("tick"))
        .await
        .unwrap();
    // Only node-a runs; it is killed (as a crash would) before the time comes.
    nodes.join(0).await;
    assert_eq!(nodes.leader().await, 0);
    nodes.engine(0).cluster_abandon().await;
    nodes.clock.advance(TimeDelta::seconds(40)); // 10:01:10, due
    nodes.join(1).await;
    nodes.expire_lease().await;
    assert_eq!(nodes.leader().await, 1);
    nodes.wait_count(STARTED, 1).await;
    nodes.pass(1).await;
    assert_eq!(nodes.count(FIRES).await, 1);
    assert_eq!(
        nodes.db.schedule_fire_times().await,
        [at("2026-03-01T10:01:00Z")]
    );
    nodes.stop().await;
}

#[tokio::test]
async fn backfills_of_one_range_through_two_nodes_at_once_run_each_time_once() {
    let h = harness().await;
    h.register(&template("default", "tick", ONE_STEP)).await;
    let nodes = Nodes::new(&h, at("2026-03-01T12:00:00Z"), &["node-a", "node-b"]).await;
    let mut spec = every_minute("tick");
    spec.cron = Some("0 * * * *".into());
    let schedule = nodes.engine(0).schedule_create(spec).await.unwrap();
    let (start, end) = (at("2026-03-01T06:00:00Z"), at("2026-03-01T11:30:00Z"));
    let (a, b) = tokio::join!(
        nodes.engine(0).schedule_backfill(schedule.id, start, end),
        nodes.engine(1).schedule_backfill(schedule.id, start, end),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.fires.len() + b.fires.len(), 6, "06:00 to 11:00");
    assert_eq!(a.already_fired.len() + b.already_fired.len(), 6);
    assert_eq!(nodes.count(STARTED).await, 6);
    assert_eq!(nodes.count(TASKS).await, 6);
    let kinds: i64 = nodes.count(Rows::ScheduleFiresOfKind("backfill")).await;
    assert_eq!(kinds, 6);

    // Again: nothing new.
    let again = nodes
        .engine(1)
        .schedule_backfill(schedule.id, start, end)
        .await
        .unwrap();
    assert!(again.fires.is_empty());
    assert_eq!(again.already_fired.len(), 6);

    // Bad ranges name the field.
    for (start, end) in [
        (end, start),                        // reversed
        (at("2020-01-01T00:00:00Z"), end),   // over 1000 times
        (start, at("2026-03-01T13:00:00Z")), // into the future
    ] {
        match nodes
            .engine(0)
            .schedule_backfill(schedule.id, start, end)
            .await
        {
            Err(Error::ScheduleInvalid { field: "end", .. }) => {}
            other => panic!("expected an invalid end, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn trigger_fires_now_and_records_the_manual_fire() {
    let h = harness().await;
    h.register(&template("default", "tick", ONE_STEP)).await;
    let nodes = Nodes::new(&h, at("2026-03-01T12:00:00.250Z"), &["node-a"]).await;
    let mut spec = every_minute("tick");
    spec.paused = true;
    let schedule = nodes.engine(0).schedule_create(spec).await.unwrap();
    assert_eq!(schedule.next_fire_at, None, "paused");
    let (fire, task) = nodes.engine(0).schedule_trigger(schedule.id).await.unwrap();
    assert_eq!(fire.kind, FireKind::Manual);
    assert_eq!(fire.fire_time, at("2026-03-01T12:00:00.250Z"));
    assert_eq!(fire.task_id, task.as_ref().map(|t| t.id));
    assert_eq!(task.unwrap().context, serde_json::json!({}));

    let resumed = nodes
        .engine(0)
        .schedule_set_paused(schedule.id, false)
        .await
        .unwrap();
    assert_eq!(resumed.next_fire_at, Some(at("2026-03-01T12:01:00Z")));
    let upcoming = nodes.engine(0).schedule_upcoming(&resumed, 3);
    assert_eq!(
        upcoming,
        vec![
            at("2026-03-01T12:01:00Z"),
            at("2026-03-01T12:02:00Z"),
            at("2026-03-01T12:03:00Z"),
        ]
    );
}
