//! Next-fire computation across daylight-saving changes, intervals,
//! backfill ranges, jitter and the catch-up rule.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::*;

fn at(text: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn cron(expression: &str, zone: &str) -> Timing {
    Timing::cron(expression, zone).unwrap()
}

/// The next `n` fire times after `from`.
fn next_n(timing: &Timing, from: &str, n: usize) -> Vec<Timestamp> {
    let mut t = at(from);
    (0..n)
        .map(|_| {
            t = timing.next_after(t).unwrap();
            t
        })
        .collect()
}

#[test]
fn berlin_spring_forward_fires_a_skipped_local_time_after_the_gap() {
    // 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    let daily = cron("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        next_n(&daily, "2026-03-27T12:00:00Z", 3),
        vec![
            at("2026-03-28T01:30:00Z"), // 02:30 CET
            at("2026-03-29T01:00:00Z"), // 03:00 CEST, right after the gap
            at("2026-03-30T00:30:00Z"), // 02:30 CEST
        ]
    );
}

#[test]
fn berlin_fall_back_fires_a_repeated_local_time_once() {
    // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    let daily = cron("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        next_n(&daily, "2026-10-24T12:00:00Z", 2),
        vec![
            at("2026-10-25T00:30:00Z"), // the first 02:30 (CEST)
            at("2026-10-26T01:30:00Z"), // 02:30 CET the next day
        ]
    );
}

#[test]
fn berlin_fall_back_hourly_fires_each_local_time_once() {
    // 02:00 happens twice on 2026-10-25; an hourly expression fires at the
    // first 02:00 (CEST) and next at 03:00 CET, two real hours later.
    let hourly = cron("0 * * * *", "Europe/Berlin");
    assert_eq!(
        next_n(&hourly, "2026-10-24T23:30:00Z", 4),
        vec![
            at("2026-10-25T00:00:00Z"), // 02:00 CEST
            at("2026-10-25T02:00:00Z"), // 03:00 CET
            at("2026-10-25T03:00:00Z"),
            at("2026-10-25T04:00:00Z"),
        ]
    );
}

#[test]
fn new_york_keeps_the_wall_clock_across_both_changes() {
    // 2026-03-08 spring forward, 2026-11-01 fall back.
    let nine = cron("0 9 * * *", "America/New_York");
    assert_eq!(
        next_n(&nine, "2026-03-06T15:00:00Z", 3),
        vec![
            at("2026-03-07T14:00:00Z"), // 09:00 EST
            at("2026-03-08T13:00:00Z"), // 09:00 EDT
            at("2026-03-09T13:00:00Z"),
        ]
    );
    assert_eq!(
        next_n(&nine, "2026-10-31T14:00:00Z", 2),
        vec![at("2026-11-01T14:00:00Z"), at("2026-11-02T14:00:00Z")]
    );
    // 01:30 happens twice on 2026-11-01: once, at 01:30 EDT.
    let early = cron("30 1 * * *", "America/New_York");
    assert_eq!(
        next_n(&early, "2026-10-31T12:00:00Z", 2),
        vec![at("2026-11-01T05:30:00Z"), at("2026-11-02T06:30:00Z")]
    );
    // 02:30 does not exist on 2026-03-08: after the gap, at 03:00 EDT.
    let gap = cron("30 2 * * *", "America/New_York");
    assert_eq!(
        next_n(&gap, "2026-03-07T12:00:00Z", 2),
        vec![at("2026-03-08T07:00:00Z"), at("2026-03-09T06:30:00Z")]
    );
}

#[test]
fn an_interval_counts_elapsed_time_across_a_change() {
    let anchor = at("2026-03-29T00:15:00Z");
    let hourly = Timing::interval(std::time::Duration::from_secs(3600), anchor).unwrap();
    let times = next_n(&hourly, "2026-03-29T00:15:00Z", 3);
    assert_eq!(
        times,
        vec![
            at("2026-03-29T01:15:00Z"),
            at("2026-03-29T02:15:00Z"),
            at("2026-03-29T03:15:00Z"),
        ]
    );
    assert_eq!(
        hourly.next_after(at("2026-03-29T02:15:00Z")),
        Some(at("2026-03-29T03:15:00Z"))
    );
    assert_eq!(
        hourly.latest_at_or_before(at("2026-03-29T03:14:59Z")),
        Some(at("2026-03-29T02:15:00Z"))
    );
    assert_eq!(hourly.latest_at_or_before(anchor), None);
    // Before the anchor the first fire is still one interval after it.
    assert_eq!(
        hourly.next_after(at("2026-03-28T00:00:00Z")),
        Some(at("2026-03-29T01:15:00Z"))
    );
}

#[test]
fn bad_input_names_its_field() {
    let issue = Timing::cron("61 * * * *", "UTC").unwrap_err();
    assert_eq!(issue.field, "cron");
    let issue = Timing::cron("not cron", "UTC").unwrap_err();
    assert_eq!(issue.field, "cron");
    let issue = Timing::cron("0 0 30 2 *", "UTC").unwrap_err();
    assert_eq!(issue.field, "cron");
    assert!(issue.message.contains("never"), "{}", issue.message);
    // Six fields (seconds) are not taken.
    assert_eq!(
        Timing::cron("0 0 2 * * *", "UTC").unwrap_err().field,
        "cron"
    );
    let issue = Timing::cron("0 2 * * *", "Mars/Olympus").unwrap_err();
    assert_eq!(issue.field, "time_zone");
    assert!(issue.message.contains("Mars/Olympus"));
    let issue = Timing::interval(
        std::time::Duration::from_millis(10),
        at("2026-01-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(issue.field, "interval");
}

#[test]
fn a_fraction_of_a_second_does_not_shift_cron_times() {
    let minutely = cron("* * * * *", "UTC");
    assert_eq!(
        minutely.next_after(at("2026-01-01T00:00:00.250Z")),
        Some(at("2026-01-01T00:01:00Z"))
    );
    assert_eq!(
        minutely.latest_at_or_before(at("2026-01-01T00:00:59.999Z")),
        Some(at("2026-01-01T00:00:00Z"))
    );
}

#[test]
fn between_lists_a_range_and_refuses_too_many() {
    let hourly = cron("0 * * * *", "UTC");
    let times = hourly
        .between(at("2026-01-01T00:00:00Z"), at("2026-01-01T03:00:00Z"), 10)
        .unwrap();
    assert_eq!(
        times,
        vec![
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T01:00:00Z"),
            at("2026-01-01T02:00:00Z"),
        ]
    );
    assert_eq!(
        hourly.between(at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z"), 10),
        Err(10)
    );
    let none = hourly
        .between(at("2026-01-01T00:10:00Z"), at("2026-01-01T00:50:00Z"), 10)
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn jitter_is_below_its_bound_and_the_same_everywhere() {
    let id = Uuid::now_v7();
    let t = at("2026-01-01T00:00:00Z");
    let jitter = Some(HumanDuration::parse("30s").unwrap());
    let offset = jitter_offset(id, t, jitter);
    assert!(offset >= TimeDelta::zero() && offset < TimeDelta::seconds(30));
    assert_eq!(offset, jitter_offset(id, t, jitter));
    assert_eq!(jitter_offset(id, t, None), TimeDelta::zero());
    // Spread out: several times do not all get the same delay.
    let offsets: std::collections::HashSet<_> = (0..20)
        .map(|m| jitter_offset(id, t + TimeDelta::minutes(m), jitter))
        .collect();
    assert!(offsets.len() > 1);
}

#[test]
fn a_due_schedule_fires_its_latest_time_and_catch_up_decides_if_late() {
    let hourly = cron("0 * * * *", "UTC");
    let next = at("2026-01-01T01:00:00Z");
    assert_eq!(
        plan_due(&hourly, CatchUp::Skip, next, at("2026-01-01T00:59:59Z")),
        None
    );
    // On time: runs under either rule.
    let on_time = plan_due(&hourly, CatchUp::Skip, next, at("2026-01-01T01:00:20Z")).unwrap();
    assert_eq!(
        on_time,
        DuePlan {
            fire_time: next,
            run: true,
            passed_over: false,
            next_fire_at: Some(at("2026-01-01T02:00:00Z")),
        }
    );
    // Three hours without a leader: only the latest time, 04:00, counts.
    let now = at("2026-01-01T04:30:00Z");
    let once = plan_due(&hourly, CatchUp::RunOnce, next, now).unwrap();
    assert_eq!(once.fire_time, at("2026-01-01T04:00:00Z"));
    assert!(once.run && once.passed_over);
    assert_eq!(once.next_fire_at, Some(at("2026-01-01T05:00:00Z")));
    let skipped = plan_due(&hourly, CatchUp::Skip, next, now).unwrap();
    assert_eq!(skipped.fire_time, at("2026-01-01T04:00:00Z"));
    assert!(!skipped.run);
    // Late by less than ON_TIME after a failover: still runs under skip.
    let failover = plan_due(&hourly, CatchUp::Skip, next, at("2026-01-01T01:00:45Z")).unwrap();
    assert!(failover.run);
}
