//! `examples/linear`: four steps in a chain, each squaring its input.

use serde_json::{Value, json};

use super::{Body, checked, only_parent, parent_value};
use crate::handler_error::HandlerError;
use crate::step_context::StepContext;

pub(super) const HANDLERS: [(&str, Body); 4] = [
    ("examples.linear.step_1", square),
    ("examples.linear.step_2", square),
    ("examples.linear.step_3", square),
    ("examples.linear.step_4", square),
];

/// Squares `context.even_number` (the first step) or the parent's `value`.
fn square(ctx: &StepContext) -> Result<Value, HandlerError> {
    let input = if ctx.parent_results().is_empty() {
        ctx.context()["even_number"]
            .as_i64()
            .ok_or_else(|| HandlerError::permanent("context.even_number must be an integer"))?
    } else {
        parent_value(ctx, only_parent(ctx)?)?
    };
    let value = checked(input.checked_mul(input), &format!("{input} squared"))?;
    Ok(json!({ "value": value, "input": input }))
}
