//! `examples/diamond`: fan out to two branches that join again.

use serde_json::{Value, json};

use super::{Body, checked, parent_value, start};
use crate::handler_error::HandlerError;
use crate::step_context::StepContext;

pub(super) const HANDLERS: [(&str, Body); 4] = [
    ("examples.diamond.start", begin),
    ("examples.diamond.branch_b", branch_b),
    ("examples.diamond.branch_c", branch_c),
    ("examples.diamond.end", end),
];

fn begin(ctx: &StepContext) -> Result<Value, HandlerError> {
    let value = checked(start(ctx)?.checked_add(1), "context.start + 1")?;
    Ok(json!({ "value": value }))
}

fn branch_b(ctx: &StepContext) -> Result<Value, HandlerError> {
    let value = checked(parent_value(ctx, "start")?.checked_mul(2), "start × 2")?;
    Ok(json!({ "value": value, "branch": "b" }))
}

fn branch_c(ctx: &StepContext) -> Result<Value, HandlerError> {
    let value = checked(parent_value(ctx, "start")?.checked_mul(3), "start × 3")?;
    Ok(json!({ "value": value, "branch": "c" }))
}

fn end(ctx: &StepContext) -> Result<Value, HandlerError> {
    let b = parent_value(ctx, "branch_b")?;
    let c = parent_value(ctx, "branch_c")?;
    let value = checked(b.checked_add(c), "branch_b + branch_c")?;
    Ok(json!({ "value": value, "joined": ["branch_b", "branch_c"] }))
}
