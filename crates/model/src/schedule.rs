//! Schedules: what starts a task of a template on a cron expression (in a
//! time zone) or at a fixed interval, checked before anything is stored, and
//! the records of a schedule and of each of its fires.
//!
//! When a schedule fires is computed in [`timing`] (pure: every function
//! takes `now`), and what the scheduler does with a due schedule is decided
//! by [`timing::plan_due`]. Nothing here reads the clock or stores anything.

pub mod timing;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::duration::HumanDuration;
use crate::records::Timestamp;
pub use timing::{DuePlan, Timing};

/// The most fires one backfill may start.
pub const MAX_BACKFILL_FIRES: usize = 1000;

/// What a run does while the previous run of the same schedule is still
/// going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// The fire is recorded as `skipped_overlap` and starts nothing.
    #[default]
    Skip,
    /// The fire starts a task anyway.
    Allow,
    /// The fire waits (`buffered`) and starts when the previous run has
    /// finished; while one fire waits, further fires are skipped.
    BufferOne,
    /// The previous task is cancelled, then the fire starts a task.
    CancelPrevious,
}

impl OverlapPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Allow => "allow",
            Self::BufferOne => "buffer_one",
            Self::CancelPrevious => "cancel_previous",
        }
    }
}

impl std::str::FromStr for OverlapPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "skip" => Ok(Self::Skip),
            "allow" => Ok(Self::Allow),
            "buffer_one" => Ok(Self::BufferOne),
            "cancel_previous" => Ok(Self::CancelPrevious),
            other => Err(format!(
                "unknown overlap policy \"{other}\"; use skip, allow, buffer_one or cancel_previous"
            )),
        }
    }
}

/// What happens to fire times that passed while no leader ran (see
/// [`timing::plan_due`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// The latest missed time runs once; earlier missed times do not.
    #[default]
    RunOnce,
    /// Missed times are recorded as `missed` and start nothing; the
    /// schedule goes on with its next time.
    Skip,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunOnce => "run_once",
            Self::Skip => "skip",
        }
    }
}

impl std::str::FromStr for CatchUp {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "run_once" => Ok(Self::RunOnce),
            "skip" => Ok(Self::Skip),
            other => Err(format!(
                "unknown catch-up rule \"{other}\"; use run_once or skip"
            )),
        }
    }
}

/// What a user writes to create or replace a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "nightly-linear", "namespace": "examples", "template": "linear",
    "context": {"even_number": 2}, "cron": "0 2 * * *", "time_zone": "Europe/Berlin",
    "jitter": "30s", "overlap": "skip", "catch_up": "run_once"
})))]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Unique among schedules; 1-128 characters.
    pub name: String,
    /// Default `default`.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Template name within the namespace.
    pub template: String,
    /// Template version; default the newest at each fire.
    #[serde(default)]
    pub version: Option<String>,
    /// The context of every task started, checked against the template's
    /// context schema. Default `{}`.
    #[serde(default = "empty_object")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub context: serde_json::Value,
    /// A five-field cron expression (minute hour day-of-month month
    /// day-of-week), e.g. `0 2 * * *`. Exactly one of `cron` and `interval`.
    #[serde(default)]
    pub cron: Option<String>,
    /// IANA time zone the cron expression is read in, e.g. `Europe/Berlin`.
    /// Default `UTC`; only with `cron`.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// A fixed interval, e.g. `15m`; fires at creation time plus multiples
    /// of it. Exactly one of `cron` and `interval`.
    #[serde(default)]
    pub interval: Option<String>,
    /// Each fire starts up to this much later than its time (the same
    /// delay on every node), e.g. `30s`. Default none.
    #[serde(default)]
    pub jitter: Option<String>,
    #[serde(default)]
    pub overlap: OverlapPolicy,
    #[serde(default)]
    pub catch_up: CatchUp,
    /// A paused schedule does not fire until resumed. Default false.
    #[serde(default)]
    pub paused: bool,
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// One thing wrong with a spec, naming its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub field: &'static str,
    pub message: String,
}

impl ScheduleSpec {
    /// The spec's timing and jitter, or the first thing wrong with it.
    /// `anchor` is where an interval counts from.
    pub fn check(&self, anchor: Timestamp) -> Result<(Timing, Option<HumanDuration>), Issue> {
        let issue = |field, message: String| Issue { field, message };
        if self.name.is_empty() || self.name.chars().count() > 128 {
            return Err(issue("name", "must be 1-128 characters".into()));
        }
        crate::template::validate_namespace(&self.namespace)
            .map_err(|message| issue("namespace", message))?;
        if self.template.is_empty() {
            return Err(issue("template", "must name a template".into()));
        }
        if !self.context.is_object() {
            return Err(issue(
                "context",
                "must be a JSON object, e.g. {\"order_id\": 42}".into(),
            ));
        }
        let timing = match (&self.cron, &self.interval) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(issue(
                    "cron",
                    "give exactly one of cron (with an optional time_zone) and interval".into(),
                ));
            }
            (Some(cron), None) => {
                let zone = self.time_zone.as_deref().unwrap_or("UTC");
                Timing::cron(cron, zone)?
            }
            (None, Some(interval)) => {
                if self.time_zone.is_some() {
                    return Err(issue(
                        "time_zone",
                        "only a cron expression has a time zone; an interval counts elapsed time"
                            .into(),
                    ));
                }
                let every =
                    HumanDuration::parse(interval).map_err(|message| issue("interval", message))?;
                Timing::interval(every.as_duration(), anchor)?
            }
        };
        let jitter = self
            .jitter
            .as_deref()
            .map(|j| HumanDuration::parse(j).map_err(|message| issue("jitter", message)))
            .transpose()?;
        Ok((timing, jitter))
    }
}

/// A stored schedule, with when it fires next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// Where an interval counts from: the creation (or last change) time.
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub anchor_at: Timestamp,
    /// The next fire time; `null` while paused.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub next_fire_at: Option<Timestamp>,
    /// When the next fire starts: its time plus this schedule's jitter.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub next_run_at: Option<Timestamp>,
    /// The task of the latest fire that started one.
    pub last_task_id: Option<Uuid>,
    /// A fire waiting for the previous run to finish (`buffer_one`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub buffered_fire_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub updated_at: Timestamp,
}

/// Why a fire happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FireKind {
    /// The schedule's own time, fired by the leader.
    Scheduled,
    /// `POST /v1/schedules/{id}/trigger`.
    Manual,
    /// `POST /v1/schedules/{id}/backfill`.
    Backfill,
}

/// What a fire did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FireOutcome {
    /// A task was started (`task_id`).
    Started,
    /// The previous run was still going (overlap `skip`, or a fire was
    /// already buffered).
    SkippedOverlap,
    /// Waiting for the previous run to finish (overlap `buffer_one`).
    Buffered,
    /// The time passed while no leader ran (catch-up `skip`).
    Missed,
    /// No task could be started (`message` says why, e.g. the template is
    /// gone or the context no longer fits its schema).
    Failed,
}

macro_rules! text_enum {
    ($ty:ty { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok(Self::$variant),)*
                    other => Err(format!("unknown value \"{other}\"")),
                }
            }
        }
    };
}

text_enum!(FireKind { Scheduled => "scheduled", Manual => "manual", Backfill => "backfill" });
text_enum!(FireOutcome {
    Started => "started",
    SkippedOverlap => "skipped_overlap",
    Buffered => "buffered",
    Missed => "missed",
    Failed => "failed",
});

/// One fire of a schedule: at most one per schedule and fire time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleFire {
    pub schedule_id: Uuid,
    /// The time the fire was for (before jitter).
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub fire_time: Timestamp,
    pub kind: FireKind,
    pub outcome: FireOutcome,
    pub task_id: Option<Uuid>,
    /// Why a fire `failed`.
    pub message: Option<String>,
    /// The node that recorded the fire.
    pub node_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub recorded_at: Timestamp,
}
