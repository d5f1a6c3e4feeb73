//! Tests of the schedule records against a migrated in-memory store.

use chrono::TimeDelta;
use serde_json::json;
use tasker_model::schedule::{CatchUp, FireKind, FireOutcome, OverlapPolicy};

use super::*;
use crate::testing::{self, execute, test_store};

fn write(name: &str, next_run_in_secs: Option<i64>) -> ScheduleWrite {
    let now = clock::now();
    let next = next_run_in_secs.map(|s| now + TimeDelta::seconds(s));
    ScheduleWrite {
        spec: ScheduleSpec {
            name: name.into(),
            namespace: "default".into(),
            template: "nightly".into(),
            version: None,
            context: json!({"region": "eu"}),
            cron: Some("0 2 * * *".into()),
            time_zone: Some("Europe/Berlin".into()),
            interval: None,
            jitter: Some("30s".into()),
            overlap: OverlapPolicy::BufferOne,
            catch_up: CatchUp::RunOnce,
            paused: next.is_none(),
        },
        anchor_at: now,
        next_fire_at: next,
        next_run_at: next,
    }
}

async fn store_with_namespace() -> SqliteStore {
    let store = test_store().await;
    testing::namespace(&store, "default").await;
    store
}

async fn insert_fire(store: &SqliteStore, id: Uuid, fire_time: Timestamp, outcome: &str) {
    sqlx::query(
        "INSERT INTO schedule_fires (schedule_id, fire_time, kind, outcome, node_id, recorded_at) \
         VALUES (?1, ?2, 'scheduled', ?3, 'n1', ?2)",
    )
    .bind(id.hyphenated())
    .bind(clock::micros(fire_time))
    .bind(outcome)
    .execute(&store.writer)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_schedule_is_stored_as_written_and_its_name_is_unique() {
    let store = store_with_namespace().await;
    let id = Uuid::now_v7();
    let w = write("nightly", Some(60));
    let created = schedule_create(&store, id, &w).await.unwrap();
    assert_eq!(created.id, id);
    assert_eq!(created.spec, w.spec);
    assert_eq!(created.anchor_at, w.anchor_at);
    assert_eq!(created.next_fire_at, w.next_fire_at);
    assert_eq!(created.next_run_at, w.next_run_at);
    assert_eq!(created.last_task_id, None);
    assert_eq!(created.buffered_fire_at, None);
    assert_eq!(schedule_get(&store, id).await.unwrap(), created);

    let taken = schedule_create(&store, Uuid::now_v7(), &w)
        .await
        .unwrap_err();
    assert_eq!(taken.code(), "schedule_conflict");
    assert!(taken.to_string().contains("\"nightly\""), "{taken}");

    schedule_create(&store, Uuid::now_v7(), &write("hourly", None))
        .await
        .unwrap();
    let names: Vec<String> = schedule_list(&store)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.spec.name)
        .collect();
    assert_eq!(names, vec!["hourly", "nightly"]);

    let missing = schedule_get(&store, Uuid::now_v7()).await.unwrap_err();
    assert_eq!(missing.code(), "not_found");
}

#[tokio::test]
async fn an_update_replaces_spec_and_times_and_keeps_the_fires() {
    let store = store_with_namespace().await;
    let id = Uuid::now_v7();
    let created = schedule_create(&store, id, &write("nightly", Some(60)))
        .await
        .unwrap();
    let fired_at = clock::now() - TimeDelta::hours(1);
    insert_fire(&store, id, fired_at, "missed").await;

    let mut changed = write("nightly-eu", Some(600));
    changed.spec.cron = None;
    changed.spec.time_zone = None;
    changed.spec.interval = Some("15m".into());
    changed.spec.overlap = OverlapPolicy::Skip;
    let updated = schedule_update(&store, id, &changed).await.unwrap();
    assert_eq!(updated.spec, changed.spec);
    assert_eq!(updated.next_run_at, changed.next_run_at);
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(schedule_fires(&store, id, 10).await.unwrap().len(), 1);

    let missing = schedule_update(&store, Uuid::now_v7(), &changed)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "not_found");

    schedule_create(&store, Uuid::now_v7(), &write("other", None))
        .await
        .unwrap();
    let taken = schedule_update(&store, id, &write("other", None))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), "schedule_conflict");
    // The refused update changed nothing.
    assert_eq!(schedule_get(&store, id).await.unwrap(), updated);
}

#[tokio::test]
async fn leaving_buffer_one_drops_the_buffered_fire() {
    let store = store_with_namespace().await;
    let id = Uuid::now_v7();
    schedule_create(&store, id, &write("nightly", Some(60)))
        .await
        .unwrap();
    let buffered_at = clock::now() - TimeDelta::minutes(5);
    insert_fire(&store, id, buffered_at, "buffered").await;
    execute(
        &store,
        &format!(
            "UPDATE schedules SET buffered_fire_at = {}",
            clock::micros(buffered_at)
        ),
    )
    .await;

    // Still buffer_one: the fire keeps waiting.
    let kept = schedule_update(&store, id, &write("nightly", Some(120)))
        .await
        .unwrap();
    assert_eq!(kept.buffered_fire_at, Some(buffered_at));
    assert_eq!(
        schedule_fires(&store, id, 10).await.unwrap()[0].outcome,
        FireOutcome::Buffered
    );

    let mut allow = write("nightly", Some(120));
    allow.spec.overlap = OverlapPolicy::Allow;
    let dropped = schedule_update(&store, id, &allow).await.unwrap();
    assert_eq!(dropped.buffered_fire_at, None);
    let fire = &schedule_fires(&store, id, 10).await.unwrap()[0];
    assert_eq!(fire.outcome, FireOutcome::SkippedOverlap);
    assert!(
        fire.message
            .as_deref()
            .unwrap()
            .contains("overlap policy changed")
    );
}

#[tokio::test]
async fn deleting_a_schedule_deletes_its_fires() {
    let store = store_with_namespace().await;
    let id = Uuid::now_v7();
    schedule_create(&store, id, &write("nightly", Some(60)))
        .await
        .unwrap();
    insert_fire(&store, id, clock::now(), "missed").await;
    schedule_delete(&store, id).await.unwrap();
    assert_eq!(
        schedule_get(&store, id).await.unwrap_err().code(),
        "not_found"
    );
    let fires: i64 = sqlx::query_scalar("SELECT count(*) FROM schedule_fires")
        .fetch_one(&store.reader)
        .await
        .unwrap();
    assert_eq!(fires, 0);
    assert_eq!(
        schedule_delete(&store, id).await.unwrap_err().code(),
        "not_found"
    );
}

#[tokio::test]
async fn due_schedules_are_the_unpaused_ones_whose_time_came_and_the_buffered_ones() {
    let store = store_with_namespace().await;
    let late = Uuid::now_v7();
    let later = Uuid::now_v7();
    let future = Uuid::now_v7();
    let paused = Uuid::now_v7();
    schedule_create(&store, later, &write("later", Some(-10)))
        .await
        .unwrap();
    schedule_create(&store, late, &write("late", Some(-60)))
        .await
        .unwrap();
    schedule_create(&store, future, &write("future", Some(3600)))
        .await
        .unwrap();
    schedule_create(&store, paused, &write("paused", None))
        .await
        .unwrap();
    let now = clock::now();
    let ids = |schedules: Vec<Schedule>| schedules.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(schedule_due(&store, now, 10).await.unwrap()),
        vec![late, later]
    );
    assert_eq!(ids(schedule_due(&store, now, 1).await.unwrap()), vec![late]);

    // A paused schedule holding a buffered fire is looked at too, last.
    execute(
        &store,
        &format!(
            "UPDATE schedules SET buffered_fire_at = {} WHERE name = 'paused'",
            clock::micros(now)
        ),
    )
    .await;
    assert_eq!(
        ids(schedule_due(&store, now, 10).await.unwrap()),
        vec![late, later, paused]
    );

    let next = schedule_next_run(&store).await.unwrap().unwrap();
    assert_eq!(
        Some(next),
        schedule_get(&store, late).await.unwrap().next_run_at
    );
    execute(
        &store,
        "UPDATE schedules SET paused = 1, next_fire_at = NULL, next_run_at = NULL",
    )
    .await;
    assert_eq!(schedule_next_run(&store).await.unwrap(), None);
}

#[tokio::test]
async fn fires_are_listed_newest_first_up_to_the_limit() {
    let store = store_with_namespace().await;
    let id = Uuid::now_v7();
    schedule_create(&store, id, &write("nightly", Some(60)))
        .await
        .unwrap();
    let base = clock::now() - TimeDelta::hours(3);
    for hours in [0, 2, 1] {
        insert_fire(&store, id, base + TimeDelta::hours(hours), "missed").await;
    }
    let fires = schedule_fires(&store, id, 2).await.unwrap();
    let times: Vec<Timestamp> = fires.iter().map(|f| f.fire_time).collect();
    assert_eq!(
        times,
        vec![base + TimeDelta::hours(2), base + TimeDelta::hours(1)]
    );
    assert_eq!(fires[0].kind, FireKind::Scheduled);
    assert_eq!(fires[0].outcome, FireOutcome::Missed);
    assert_eq!(fires[0].node_id.as_deref(), Some("n1"));
    assert_eq!(fires[0].task_id, None);
    assert_eq!(
        schedule_fires(&store, Uuid::now_v7(), 10)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}
