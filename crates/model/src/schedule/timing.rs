//! When a schedule fires: the next fire time after an instant, the fire
//! times of a range (backfill), the delay of a fire's jitter, and what to
//! do with a schedule that is due ([`plan_due`]). Pure: `now` is an argument.
//!
//! Cron expressions are read in their time zone, with these rules where
//! daylight-saving time changes the wall clock:
//! - a local time skipped by a spring-forward change (02:30 in Berlin on
//!   the last Sunday of March) fires at the first time after the gap (03:00);
//! - a local time that occurs twice at a fall-back change fires once, at
//!   its first occurrence (also for an hourly `0 * * * *`: the repeated
//!   02:00 does not fire again).
//!
//! Intervals count elapsed time from their anchor and ignore the wall clock.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{CatchUp, Issue};
use crate::duration::HumanDuration;
use crate::records::Timestamp;

/// A due fire whose time is at most this old runs even under the catch-up
/// rule `skip`: a leader failover (about one leadership lease) or a busy
/// scheduler is not a missed fire.
pub const ON_TIME: TimeDelta = TimeDelta::seconds(60);

/// The shortest interval.
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    /// A five-field cron expression read in a time zone.
    Cron { cron: Box<Cron>, zone: Tz },
    /// `anchor + k × every`, k ≥ 1.
    Interval { every: TimeDelta, anchor: Timestamp },
}

impl Timing {
    /// A cron expression in an IANA time zone; refused when it does not
    /// parse, names an unknown zone, or never matches.
    pub fn cron(expression: &str, zone: &str) -> Result<Self, Issue> {
        let zone: Tz = zone.parse().map_err(|_| Issue {
            field: "time_zone",
            message: format!(
                "unknown time zone \"{zone}\"; use an IANA name such as \"Europe/Berlin\" or \"UTC\""
            ),
        })?;
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let invalid = |why: String| Issue {
            field: "cron",
            message: format!(
                "\"{expression}\" is not a cron expression: {why}; write five fields \
                 (minute hour day-of-month month day-of-week), e.g. \"0 2 * * *\""
            ),
        };
        let cron = parser
            .parse(expression)
            .map_err(|e| invalid(e.to_string()))?;
        let timing = Self::Cron {
            cron: Box::new(cron),
            zone,
        };
        // An expression such as "0 0 30 2 *" parses and never fires.
        let epoch = DateTime::<Utc>::from_timestamp(0, 0).expect("the epoch");
        if timing.next_after(epoch).is_none() {
            return Err(invalid("it never matches a date".into()));
        }
        Ok(timing)
    }

    /// Every `every` from `anchor` (the first fire one interval after it).
    pub fn interval(every: std::time::Duration, anchor: Timestamp) -> Result<Self, Issue> {
        if every < MIN_INTERVAL {
            return Err(Issue {
                field: "interval",
                message: "must be at least 1s".into(),
            });
        }
        let every = TimeDelta::from_std(every).map_err(|_| Issue {
            field: "interval",
            message: "is too large".into(),
        })?;
        Ok(Self::Interval { every, anchor })
    }

    /// The first fire time strictly after `t`; `None` when there is none
    /// (a cron expression past the last year it can match).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Cron { cron, zone } => cron
                .find_next_occurrence(&whole_second(t).with_timezone(zone), false)
                .ok()
                .map(|local| local.with_timezone(&Utc)),
            Self::Interval { every, anchor } => {
                let every_ms = every.num_milliseconds();
                let since = (t - *anchor).num_milliseconds();
                let k = if since < 0 {
                    1
                } else {
                    since.div_euclid(every_ms) + 1
                };
                anchor.checked_add_signed(TimeDelta::milliseconds(k.checked_mul(every_ms)?))
            }
        }
    }

    /// The last fire time at or before `t`, if any.
    pub fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Cron { cron, zone } => cron
                .find_previous_occurrence(&whole_second(t).with_timezone(zone), true)
                .ok()
                .map(|local| local.with_timezone(&Utc)),
            Self::Interval { every, anchor } => {
                let every_ms = every.num_milliseconds();
                let k = (t - *anchor).num_milliseconds().div_euclid(every_ms);
                (k >= 1).then(|| *anchor + TimeDelta::milliseconds(k * every_ms))
            }
        }
    }

    /// The fire times in `[start, end)`, oldest first; `Err(max)` when
    /// there are more than `max`.
    pub fn between(
        &self,
        start: Timestamp,
        end: Timestamp,
        max: usize,
    ) -> Result<Vec<Timestamp>, usize> {
        let mut times = Vec::new();
        let mut next = match self.latest_at_or_before(start) {
            Some(t) if t == start => Some(t),
            _ => self.next_after(start),
        };
        while let Some(t) = next.filter(|t| *t < end) {
            if times.len() == max {
                return Err(max);
            }
            times.push(t);
            next = self.next_after(t);
        }
        Ok(times)
    }
}

/// `t` without its fraction of a second: cron times are whole minutes, and
/// the search keeps the fraction it starts from.
fn whole_second(t: Timestamp) -> Timestamp {
    DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// How much later than `fire_time` a fire starts: a delay below `jitter`
/// derived from the schedule and the time, so that every node computes the
/// same one and schedules sharing a time spread out.
pub fn jitter_offset(
    schedule_id: Uuid,
    fire_time: Timestamp,
    jitter: Option<HumanDuration>,
) -> TimeDelta {
    let Some(jitter) = jitter.map(HumanDuration::as_millis).filter(|&j| j > 0) else {
        return TimeDelta::zero();
    };
    let mut hasher = Sha256::new();
    hasher.update(schedule_id.as_bytes());
    hasher.update(fire_time.timestamp_millis().to_le_bytes());
    let digest = hasher.finalize();
    let value = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    TimeDelta::milliseconds((value % jitter) as i64)
}

/// What to do with a schedule whose next fire time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePlan {
    /// The time to fire (and record) now: the latest due time.
    pub fire_time: Timestamp,
    /// False when the catch-up rule skips it: record it as `missed`.
    pub run: bool,
    /// Due times before `fire_time` that are passed over (not recorded).
    pub passed_over: bool,
    /// The schedule's next fire time after this one.
    pub next_fire_at: Option<Timestamp>,
}

/// The plan for a schedule whose stored next fire time is `next_fire_at`,
/// at `now`; `None` when it is not yet due.
///
/// The catch-up rule: only the latest of the times that have come is
/// fired; earlier ones (passed while no leader ran) are passed over. With
/// `run_once` the latest runs however late it is; with `skip` it runs only
/// when it is at most [`ON_TIME`] old, and is recorded as `missed`
/// otherwise.
pub fn plan_due(
    timing: &Timing,
    catch_up: CatchUp,
    next_fire_at: Timestamp,
    now: Timestamp,
) -> Option<DuePlan> {
    if next_fire_at > now {
        return None;
    }
    let fire_time = timing
        .latest_at_or_before(now)
        .filter(|latest| *latest > next_fire_at)
        .unwrap_or(next_fire_at);
    let run = match catch_up {
        CatchUp::RunOnce => true,
        CatchUp::Skip => now - fire_time <= ON_TIME,
    };
    Some(DuePlan {
        fire_time,
        run,
        passed_over: fire_time != next_fire_at,
        next_fire_at: timing.next_after(now.max(fire_time)),
    })
}

#[cfg(test)]
mod tests;
