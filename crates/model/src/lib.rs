//! Tasker's domain: templates and their validation, the task and step state
//! machines, and [`TaskRun`], the pure logic behind every engine operation.
//!
//! This crate must never perform I/O or read the clock; callers pass `now`.

pub mod backoff;
pub mod duration;
pub mod explanation;
pub mod graph;
pub mod limits;
pub mod records;
pub mod schedule;
pub mod step_state;
pub mod task_run;
pub mod task_state;
pub mod template;
pub mod wire;

pub use duration::HumanDuration;
pub use explanation::{StepExplanation, TaskExplanation, WaitReason};
pub use records::*;
pub use schedule::{Schedule, ScheduleFire, ScheduleSpec};
pub use step_state::StepState;
pub use task_run::{
    ClaimOutcome, HeartbeatOutcome, LeaseError, OperationError, Plan, Recorded, TaskRun,
};
pub use task_state::TaskState;
pub use template::Template;
