//! The code a worker runs for a step. A [`Handler`] is registered under the
//! name that template steps give in `handler:`; the runtime calls it once per
//! attempt, possibly many times for one step (handlers run at least once, so
//! their side effects should be idempotent per task).

use std::future::Future;

use async_trait::async_trait;
use serde_json::Value;

use crate::handler_error::HandlerError;
use crate::step_context::StepContext;

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt. `Ok(result)` completes the step with `result`
    /// (passed to its children as a parent result); `Err` fails the attempt,
    /// retryably or not as the error's type says.
    async fn run(&self, ctx: StepContext) -> Result<Value, HandlerError>;
}

/// A [`Handler`] made from an async closure; see [`handler_fn`].
pub struct HandlerFn<F> {
    f: F,
}

/// Wraps an async function or closure as a [`Handler`]:
///
/// ```
/// use tasker_worker::{handler_fn, HandlerError, StepContext};
///
/// let double = handler_fn(|ctx: StepContext| async move {
///     let n = ctx.context()["n"]
///         .as_i64()
///         .ok_or_else(|| HandlerError::permanent("context.n must be an integer"))?;
///     Ok(serde_json::json!({ "value": n * 2 }))
/// });
/// # let _ = double;
/// ```
pub fn handler_fn<F, Fut>(f: F) -> HandlerFn<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
{
    HandlerFn { f }
}

#[async_trait]
impl<F, Fut> Handler for HandlerFn<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
{
    async fn run(&self, ctx: StepContext) -> Result<Value, HandlerError> {
        (self.f)(ctx).await
    }
}
