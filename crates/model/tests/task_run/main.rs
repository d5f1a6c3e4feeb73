//! [`tasker_model::TaskRun`] through its public API, operation by operation,
//! the way a backend drives it (see [`harness`]).

mod cancel;
mod claim;
mod complete;
mod convergence;
mod create;
mod decisions;
mod fail;
mod fan_out;
mod graphs;
mod harness;
mod lease;
mod manual;
mod simulation;
