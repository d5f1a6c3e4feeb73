//! A Tasker worker in Rust, with the worker SDK (`tasker-worker`): the
//! handlers of shop/welcome (docs/first-workflow.md), the same as those of
//! the Python worker beside it.
//!
//! ```sh
//! TASKER_SERVER=http://127.0.0.1:8080 cargo run -p tasker-cli --example first-workflow-worker
//! ```
//!
//! `TASKER_TOKEN` is sent as a bearer token when set. Ctrl-c stops it: steps
//! still running after the shutdown grace are released to other workers.

use serde_json::{Value, json};
use tasker_worker::{HandlerError, StepContext, Worker, WorkerBuilder, handler_fn};

/// The namespace and handlers of this worker, on top of `builder`.
pub fn welcome_worker(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .namespaces(["shop"])
        .handler("shop.greet", handler_fn(greet))
        .handler("shop.shout", handler_fn(shout))
}

/// shop.greet: `{"greeting": "Hello, <name>!"}` from context.name.
///
/// context.fail_times makes the first n attempts fail (retryably), to see a
/// retry happen; an empty name fails permanently.
async fn greet(ctx: StepContext) -> Result<Value, HandlerError> {
    let name = ctx.context()["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        return Err(HandlerError::permanent("context.name is empty").with_type("invalid_name"));
    }
    let fail_times = ctx.context()["fail_times"].as_u64().unwrap_or(0);
    if u64::from(ctx.attempt()) <= fail_times {
        return Err(HandlerError::retryable(format!(
            "failing attempt {} on purpose (context.fail_times)",
            ctx.attempt()
        ))
        .with_type("flaky_greeting"));
    }
    Ok(json!({ "greeting": format!("Hello, {name}!") }))
}

/// shop.shout: the greeting of its parent step "greet", upper-cased.
async fn shout(ctx: StepContext) -> Result<Value, HandlerError> {
    let greeting = ctx
        .parent("greet")
        .and_then(|result| result["greeting"].as_str())
        .ok_or_else(|| {
            HandlerError::permanent("step \"greet\" returned no greeting").with_type("no_greeting")
        })?;
    Ok(json!({ "message": greeting.to_uppercase() }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server =
        std::env::var("TASKER_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let token = std::env::var("TASKER_TOKEN").ok();
    let client = tasker_client::Client::new(&server, token)?;
    let worker = welcome_worker(Worker::builder(client)).build()?;
    eprintln!(
        "worker {} taking steps of shop from {server}; ctrl-c to stop",
        worker.worker_id()
    );
    worker
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
