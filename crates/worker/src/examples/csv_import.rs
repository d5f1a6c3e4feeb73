//! `examples/csv_import`: read rows, import them in fan-out chunks, sum up.

use serde_json::{Value, json};

use super::Body;
use crate::handler_error::HandlerError;
use crate::step_context::StepContext;

pub(super) const HANDLERS: [(&str, Body); 3] = [
    ("examples.csv.read_csv", read_csv),
    ("examples.csv.import_rows", import_rows),
    ("examples.csv.summarize", summarize),
];

/// The rows as items `{"id": .., "amount": ..}`: parsed from `context.csv`
/// (header line first) or generated for `context.rows`.
fn read_csv(ctx: &StepContext) -> Result<Value, HandlerError> {
    let context = ctx.context();
    if let Some(count) = context["rows"].as_u64() {
        let items: Vec<Value> = (1..=count)
            .map(|i| json!({ "id": i, "amount": i }))
            .collect();
        return Ok(json!({ "items": items }));
    }
    let text = context["csv"]
        .as_str()
        .ok_or_else(|| HandlerError::permanent("context.csv (text) or context.rows is required"))?;
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(id), Some(amount)) = (fields.first(), fields.get(1)) else {
            return Err(HandlerError::permanent(format!(
                "line {}: expected id,amount",
                n + 1
            )));
        };
        let amount: i64 = amount.parse().map_err(|_| {
            HandlerError::permanent(format!(
                "line {}: amount \"{amount}\" is not a whole number",
                n + 1
            ))
        })?;
        items.push(json!({ "id": id, "amount": amount }));
    }
    Ok(json!({ "items": items }))
}

/// Imports one chunk: counts its rows and totals their amounts.
fn import_rows(ctx: &StepContext) -> Result<Value, HandlerError> {
    let fan_out = ctx.fan_out().ok_or_else(|| {
        HandlerError::permanent("import_rows runs as a fan-out instance and needs its items")
    })?;
    let mut total: i64 = 0;
    for item in &fan_out.items {
        let amount = item["amount"]
            .as_i64()
            .ok_or_else(|| HandlerError::permanent(format!("row {item} has no whole amount")))?;
        total = total
            .checked_add(amount)
            .ok_or_else(|| HandlerError::permanent("total overflows").with_type("overflow"))?;
    }
    Ok(json!({ "chunk": fan_out.number, "imported": fan_out.items.len(), "total": total }))
}

/// Sums the chunks' results (a list, one per instance, in order).
fn summarize(ctx: &StepContext) -> Result<Value, HandlerError> {
    let chunks = match ctx.parent("import_rows") {
        Some(Value::Array(chunks)) => chunks.as_slice(),
        _ => &[],
    };
    let imported: u64 = chunks.iter().filter_map(|c| c["imported"].as_u64()).sum();
    let total: i64 = chunks.iter().filter_map(|c| c["total"].as_i64()).sum();
    Ok(json!({ "chunks": chunks.len(), "imported": imported, "total": total }))
}
