//! Handlers for the example templates in `templates/` (namespaces `examples`
//! and `orders`), for demos and end-to-end tests. Register them all with
//! [`register_examples`].
//!
//! Every result is derived from the task context and the parents' results,
//! so a test can tell from the final results that data flowed from parents to
//! children. With `start` read from `context.start` (default 0):
//!
//! | template | results |
//! |---|---|
//! | `linear` | each step squares its input: `step_1` squares `context.even_number`, `step_k` squares `step_{k-1}`'s `value`; `{"even_number": 2}` ends with `step_4.value = 65536` |
//! | `diamond` | `start = start+1`, `branch_b = 2·start`, `branch_c = 3·start`, `end = branch_b + branch_c` |
//! | `tree` | `root = start+1`, `left/right = root·10 + (1 or 2)` (from `config.side`), leaf `x_n = parent·10 + n` |
//! | `mixed_dag` | `init = start+1`, `fetch_s = init·10 + (1, 2, 3 for a, b, c)` (from `config.source`), `merge_ab = fetch_a + fetch_b`, `enrich_c = 2·fetch_c`, `finalize = merge_ab + enrich_c` |
//! | `order_routing` | `weigh_order` chooses `ship_freight` from 30 kg (`context.weight_kg`), else `ship_parcel`; `notify_customer` (convergence `any`) names the carrier |
//! | `csv_import` | `read_csv` returns the rows of `context.csv` (or `context.rows` generated ones) as items; each `import_rows[n]` instance counts and totals its chunk of 100; `summarize` adds the chunks up |
//! | `order_fulfillment` | `validate_order` totals the items (`total_cents`), `charge_payment` charges that total, `ship_order` quotes the reservation and charge ids, `send_confirmation` the tracking number |
//!
//! Numeric results are `{"value": n, ...}`; an overflow fails permanently.
//!
//! # Behaviour injected from the task context
//!
//! Every example handler first obeys these context keys, each naming steps
//! by their **step name** (not handler name), so that tests can provoke each
//! path of the runtime and the engine:
//!
//! - `"sleep_ms": {"<step>": ms}` — sleep that long before working (stops at
//!   once when the attempt is cancelled); use it to hit timeouts, to cancel a
//!   task mid-step or to test shutdown.
//! - `"fail_times": {"<step>": n}` — fail retryably (`error_type`
//!   `injected_failure`) on attempts 1..=n, succeed afterwards.
//! - `"fail_permanently": "<step>"` — fail permanently (`injected_failure`).
//! - `"panic": "<step>"` — panic, which the runtime reports as a retryable
//!   `panic` failure.
//!
//! The order is: sleep, panic, permanent failure, counted failures, work.
//! Example: `{"even_number": 2, "fail_times": {"step_2": 2}, "sleep_ms":
//! {"step_3": 500}}` completes after `step_2` failed twice.
//!
//! # Recording executions
//!
//! [`register_examples_recording`] appends one line per handler execution to
//! an [`ExecutionLog`] file (before the injected behaviour), so that a test
//! can count how often each step's handler ran, across worker processes
//! sharing the file, and compare that with the accepted results.

mod csv_import;
mod diamond;
mod execution_log;
mod linear;
mod mixed_dag;
mod orders;
mod routing;
mod tree;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::builder::WorkerBuilder;
use crate::handler::Handler;
use crate::handler_error::HandlerError;
use crate::step_context::StepContext;

/// Namespaces the example templates live in.
pub const NAMESPACES: [&str; 2] = ["examples", "orders"];

/// `error_type` of failures asked for by the task context.
pub const ERROR_INJECTED: &str = "injected_failure";

/// The work of one example handler, after the injected behaviour. Pure, so
/// it is tested without a runtime.
type Body = fn(&StepContext) -> Result<Value, HandlerError>;

/// Every example handler by name.
fn bodies() -> Vec<(&'static str, Body)> {
    let mut all = Vec::new();
    all.extend(linear::HANDLERS);
    all.extend(diamond::HANDLERS);
    all.extend(tree::HANDLERS);
    all.extend(mixed_dag::HANDLERS);
    all.extend(orders::HANDLERS);
    all.extend(routing::HANDLERS);
    all.extend(csv_import::HANDLERS);
    all
}

/// Names of every example handler.
pub fn handler_names() -> Vec<&'static str> {
    bodies().into_iter().map(|(name, _)| name).collect()
}

pub use execution_log::{Execution, ExecutionLog};

/// Adds every example handler to `builder`. Poll [`NAMESPACES`] to run the
/// example templates.
pub fn register_examples(builder: WorkerBuilder) -> WorkerBuilder {
    register(builder, None)
}

/// [`register_examples`], each handler first recording its execution in `log`.
pub fn register_examples_recording(builder: WorkerBuilder, log: ExecutionLog) -> WorkerBuilder {
    register(builder, Some(Arc::new(log)))
}

fn register(builder: WorkerBuilder, log: Option<Arc<ExecutionLog>>) -> WorkerBuilder {
    bodies().into_iter().fold(builder, |builder, (name, body)| {
        builder.handler(
            name,
            Example {
                body,
                log: log.clone(),
            },
        )
    })
}

/// An example handler: its execution recorded (when asked), injected
/// behaviour, then its body.
struct Example {
    body: Body,
    log: Option<Arc<ExecutionLog>>,
}

#[async_trait]
impl Handler for Example {
    async fn run(&self, ctx: StepContext) -> Result<Value, HandlerError> {
        if let Some(log) = &self.log {
            log.record(&ctx).map_err(|e| {
                HandlerError::retryable(format!("could not record the execution: {e}"))
            })?;
        }
        obey_context(&ctx).await?;
        (self.body)(&ctx)
    }
}

/// The behaviour that the task context asks of this step (see the module
/// docs).
async fn obey_context(ctx: &StepContext) -> Result<(), HandlerError> {
    let context = ctx.context();
    let step = ctx.step_name();
    if let Some(ms) = context["sleep_ms"][step].as_u64() {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => {}
            reason = ctx.cancellation().cancelled() => {
                return Err(HandlerError::retryable(format!("stopped while sleeping: {reason}"))
                    .with_type("cancelled"));
            }
        }
    }
    if context["panic"].as_str() == Some(step) {
        panic!("context.panic names step \"{step}\"");
    }
    if context["fail_permanently"].as_str() == Some(step) {
        return Err(HandlerError::permanent(format!(
            "context.fail_permanently names step \"{step}\""
        ))
        .with_type(ERROR_INJECTED));
    }
    if let Some(times) = context["fail_times"][step].as_u64() {
        let attempt = u64::from(ctx.attempt());
        if attempt <= times {
            return Err(HandlerError::retryable(format!(
                "context.fail_times fails the first {times} attempts of step \"{step}\"; this is attempt {attempt}"
            ))
            .with_type(ERROR_INJECTED));
        }
    }
    Ok(())
}

/// `context.start`, default 0.
fn start(ctx: &StepContext) -> Result<i64, HandlerError> {
    match &ctx.context()["start"] {
        Value::Null => Ok(0),
        value => value
            .as_i64()
            .ok_or_else(|| HandlerError::permanent("context.start must be an integer")),
    }
}

/// The integer `value` of a parent's result.
fn parent_value(ctx: &StepContext, parent: &str) -> Result<i64, HandlerError> {
    ctx.parent(parent)
        .and_then(|result| result["value"].as_i64())
        .ok_or_else(|| {
            HandlerError::permanent(format!(
                "step \"{}\" expected an integer \"value\" in the result of parent \"{parent}\"",
                ctx.step_name()
            ))
        })
}

/// The only parent's name, for steps whose parent varies by step name.
fn only_parent(ctx: &StepContext) -> Result<&str, HandlerError> {
    let mut parents = ctx.parent_results().keys();
    match (parents.next(), parents.next()) {
        (Some(parent), None) => Ok(parent),
        _ => Err(HandlerError::permanent(format!(
            "step \"{}\" expected exactly one parent result, got {}",
            ctx.step_name(),
            ctx.parent_results().len()
        ))),
    }
}

/// Checked arithmetic result, failing permanently on overflow.
fn checked(value: Option<i64>, what: &str) -> Result<i64, HandlerError> {
    value.ok_or_else(|| HandlerError::permanent(format!("{what} overflows")).with_type("overflow"))
}

#[cfg(test)]
mod tests;
