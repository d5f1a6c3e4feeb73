//! `examples/tree`: a root, two branches, and leaves under each branch.

use serde_json::{Value, json};

use super::{Body, checked, only_parent, parent_value, start};
use crate::handler_error::HandlerError;
use crate::step_context::StepContext;

pub(super) const HANDLERS: [(&str, Body); 3] = [
    ("examples.tree.root", root),
    ("examples.tree.branch", branch),
    ("examples.tree.leaf", leaf),
];

fn root(ctx: &StepContext) -> Result<Value, HandlerError> {
    let value = checked(start(ctx)?.checked_add(1), "context.start + 1")?;
    Ok(json!({ "value": value }))
}

/// `root·10 + 1` for `config.side = left`, `+ 2` for `right`.
fn branch(ctx: &StepContext) -> Result<Value, HandlerError> {
    let side = ctx.config()["side"].as_str().unwrap_or_default();
    let digit = match side {
        "left" => 1,
        "right" => 2,
        other => {
            return Err(HandlerError::permanent(format!(
                "config.side must be \"left\" or \"right\", not \"{other}\""
            )));
        }
    };
    let root = parent_value(ctx, "root")?;
    let value = checked(
        root.checked_mul(10).and_then(|v| v.checked_add(digit)),
        "root × 10 + side",
    )?;
    Ok(json!({ "value": value, "side": side }))
}

/// `parent·10 + n` for a step named `<anything>_<n>`.
fn leaf(ctx: &StepContext) -> Result<Value, HandlerError> {
    let name = ctx.step_name();
    let index: i64 = name
        .rsplit_once('_')
        .and_then(|(_, n)| n.parse().ok())
        .ok_or_else(|| {
            HandlerError::permanent(format!(
                "leaf step names end in _<number>; \"{name}\" does not"
            ))
        })?;
    let parent = only_parent(ctx)?;
    let value = checked(
        parent_value(ctx, parent)?
            .checked_mul(10)
            .and_then(|v| v.checked_add(index)),
        "parent × 10 + index",
    )?;
    Ok(json!({ "value": value, "parent": parent }))
}
