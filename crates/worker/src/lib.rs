//! The Rust worker SDK for Tasker: implement [`Handler`] for each handler
//! name your templates use, register them on a [`Worker`], and run it.
//!
//! ```no_run
//! use std::time::Duration;
//! use tasker_worker::{handler_fn, HandlerError, StepContext, Worker};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = tasker_client::Client::new("http://127.0.0.1:8080", None)?;
//! let worker = Worker::builder(client)
//!     .worker_id("billing-1")
//!     .namespaces(["orders"])
//!     .handler("orders.charge_payment", handler_fn(|ctx: StepContext| async move {
//!         let total = ctx.parent("validate_order").and_then(|v| v["total_cents"].as_i64())
//!             .ok_or_else(|| HandlerError::permanent("validate_order gave no total"))?;
//!         Ok(serde_json::json!({ "charged_cents": total }))
//!     }))
//!     .concurrency(8)
//!     .shutdown_grace(Duration::from_secs(20))
//!     .build()?;
//! worker.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The worker speaks only HTTP to the server ([`tasker_client`]) and never
//! touches the database. Handlers run at least once per step: a worker that
//! dies mid-step has the step delivered again when its lease expires, so a
//! handler's side effects must be idempotent per task. Results are recorded
//! exactly once; the lease fences stale reports.
//!
//! What the runtime does for a handler, so the handler need not:
//! - heartbeats while it runs, at the interval the server asks for;
//! - stops it (drops its future and fires [`StepContext::cancellation`])
//!   when the task is cancelled, the lease is lost, or the step's timeout
//!   elapses (reported as a retryable `timeout` failure);
//! - turns a panic into a retryable `panic` failure;
//! - completes a successful step together with asking for the worker's next
//!   one, which it then runs at once in the same slot: a sequential
//!   workflow's steps follow each other without a poll in between;
//! - sends the reports (results, failures, releases) that finish while
//!   its most report requests (4) are in flight together in the next
//!   request, each still answered and handled on its own; a lone
//!   report goes at once;
//! - retries registration, polls and reports through server outages with
//!   capped exponential [`Backoff`];
//! - on shutdown, stops polling, lets handlers finish within the grace
//!   period, then aborts the rest and releases their steps, which are
//!   delivered again at once without counting the attempt.
//!
//! The protocol underneath is documented in `docs/worker-protocol.md`.

mod attempt_outcome;
mod backoff;
mod builder;
mod cancellation;
mod error;
pub mod examples;
mod handler;
mod handler_error;
mod report_batch;
mod reporter;
mod shutdown_phase;
mod step_context;
mod step_runner;
mod worker;

pub use attempt_outcome::{
    ERROR_HANDLER_NOT_FOUND, ERROR_PANIC, ERROR_RESULT_REJECTED, ERROR_TIMEOUT,
};
pub use backoff::Backoff;
pub use builder::{MAX_WORKER_ID_LEN, WorkerBuilder};
pub use cancellation::{CancelHandle, CancelReason, Cancellation};
pub use error::Error;
pub use handler::{Handler, HandlerFn, handler_fn};
pub use handler_error::{DEFAULT_ERROR_TYPE, HandlerError, MAX_ERROR_TYPE_LEN};
pub use step_context::StepContext;
pub use worker::Worker;

// So handler crates need no direct dependency for the trait's signature.
pub use async_trait::async_trait;
pub use tasker_client;
