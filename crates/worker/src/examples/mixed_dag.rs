//! `examples/mixed_dag`: fan-out to three fetches, a two-way join, and a
//! final join of unequal branches.

use serde_json::{Value, json};

use super::{Body, checked, parent_value, start};
use crate::handler_error::HandlerError;
use crate::step_context::StepContext;

pub(super) const HANDLERS: [(&str, Body); 5] = [
    ("examples.mixed_dag.init", init),
    ("examples.mixed_dag.fetch", fetch),
    ("examples.mixed_dag.merge_ab", merge_ab),
    ("examples.mixed_dag.enrich_c", enrich_c),
    ("examples.mixed_dag.finalize", finalize),
];

fn init(ctx: &StepContext) -> Result<Value, HandlerError> {
    let value = checked(start(ctx)?.checked_add(1), "context.start + 1")?;
    Ok(json!({ "value": value }))
}

/// `init·10 + 1, 2 or 3` for `config.source` `a`, `b` or `c`.
fn fetch(ctx: &StepContext) -> Result<Value, HandlerError> {
    let source = ctx.config()["source"].as_str().unwrap_or_default();
    let offset = match source {
        "a" => 1,
        "b" => 2,
        "c" => 3,
        other => {
            return Err(HandlerError::permanent(format!(
                "config.source must be \"a\", \"b\" or \"c\", not \"{other}\""
            )));
        }
    };
    let init = parent_value(ctx, "init")?;
    let value = checked(
        init.checked_mul(10).and_then(|v| v.checked_add(offset)),
        "init × 10 + source",
    )?;
    Ok(json!({ "value": value, "source": source }))
}

fn merge_ab(ctx: &StepContext) -> Result<Value, HandlerError> {
    let a = parent_value(ctx, "fetch_a")?;
    let b = parent_value(ctx, "fetch_b")?;
    let value = checked(a.checked_add(b), "fetch_a + fetch_b")?;
    Ok(json!({ "value": value, "merged": ["fetch_a", "fetch_b"] }))
}

fn enrich_c(ctx: &StepContext) -> Result<Value, HandlerError> {
    let value = checked(parent_value(ctx, "fetch_c")?.checked_mul(2), "fetch_c × 2")?;
    Ok(json!({ "value": value }))
}

fn finalize(ctx: &StepContext) -> Result<Value, HandlerError> {
    let merged = parent_value(ctx, "merge_ab")?;
    let enriched = parent_value(ctx, "enrich_c")?;
    let value = checked(merged.checked_add(enriched), "merge_ab + enrich_c")?;
    Ok(json!({ "value": value }))
}
