//! `orders/order_fulfillment`: validate, reserve and charge in parallel,
//! ship, confirm. Nothing leaves the process; identifiers are derived from
//! the order id, so every handler is idempotent per order as the template
//! asks.

use serde_json::{Value, json};

use super::Body;
use crate::handler_error::HandlerError;
use crate::step_context::StepContext;

pub(super) const HANDLERS: [(&str, Body); 5] = [
    ("orders.validate_order", validate_order),
    ("orders.reserve_inventory", reserve_inventory),
    ("orders.charge_payment", charge_payment),
    ("orders.ship_order", ship_order),
    ("orders.send_confirmation", send_confirmation),
];

fn invalid(message: String) -> HandlerError {
    HandlerError::permanent(message).with_type("invalid_order")
}

fn order_id(ctx: &StepContext) -> Result<&str, HandlerError> {
    ctx.context()["order_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid("context.order_id must be a non-empty string".into()))
}

fn parent<'a>(ctx: &'a StepContext, name: &str) -> Result<&'a Value, HandlerError> {
    ctx.parent(name).ok_or_else(|| {
        HandlerError::permanent(format!(
            "step \"{}\" has no result from parent \"{name}\"",
            ctx.step_name()
        ))
    })
}

/// Checks the items against `config.max_items` and the currency against
/// `config.allowed_currencies`; totals the order.
fn validate_order(ctx: &StepContext) -> Result<Value, HandlerError> {
    let order_id = order_id(ctx)?;
    let context = ctx.context();
    let config = ctx.config();
    let items = context["items"]
        .as_array()
        .filter(|items| !items.is_empty())
        .ok_or_else(|| invalid("context.items must be a non-empty array".into()))?;
    let max_items = config["max_items"].as_u64().unwrap_or(100);
    if items.len() as u64 > max_items {
        return Err(invalid(format!(
            "{} items; at most {max_items} per order",
            items.len()
        )));
    }
    let currency = context["currency"].as_str().unwrap_or("USD");
    if let Some(allowed) = config["allowed_currencies"].as_array()
        && !allowed.iter().any(|c| c.as_str() == Some(currency))
    {
        return Err(invalid(format!("currency {currency} is not accepted")));
    }
    let mut total_cents: i64 = 0;
    let mut units: i64 = 0;
    let mut skus = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (Some(sku), Some(quantity), Some(price)) = (
            item["sku"].as_str(),
            item["quantity"].as_i64().filter(|q| *q >= 1),
            item["unit_price_cents"].as_i64().filter(|p| *p >= 0),
        ) else {
            return Err(invalid(format!(
                "context.items[{i}] needs sku, quantity >= 1 and unit_price_cents >= 0"
            )));
        };
        let line = quantity
            .checked_mul(price)
            .and_then(|line| total_cents.checked_add(line))
            .ok_or_else(|| invalid(format!("context.items[{i}]: order total overflows")))?;
        total_cents = line;
        units += quantity;
        skus.push(sku.to_owned());
    }
    Ok(json!({
        "order_id": order_id,
        "currency": currency,
        "total_cents": total_cents,
        "units": units,
        "skus": skus,
    }))
}

fn reserve_inventory(ctx: &StepContext) -> Result<Value, HandlerError> {
    let order_id = order_id(ctx)?;
    let validated = parent(ctx, "validate_order")?;
    Ok(json!({
        "reservation_id": format!("res-{order_id}"),
        "warehouse": ctx.config()["warehouse"].as_str().unwrap_or("primary"),
        "hold_for": ctx.config()["hold_for"],
        "skus": validated["skus"],
        "units": validated["units"],
    }))
}

fn charge_payment(ctx: &StepContext) -> Result<Value, HandlerError> {
    let order_id = order_id(ctx)?;
    let validated = parent(ctx, "validate_order")?;
    let amount = validated["total_cents"]
        .as_i64()
        .ok_or_else(|| HandlerError::permanent("validate_order gave no integer total_cents"))?;
    Ok(json!({
        "charge_id": format!("ch-{order_id}"),
        "amount_cents": amount,
        "currency": validated["currency"],
        "provider": ctx.config()["provider"],
        "captured": ctx.config()["capture"].as_bool().unwrap_or(true),
    }))
}

fn ship_order(ctx: &StepContext) -> Result<Value, HandlerError> {
    let order_id = order_id(ctx)?;
    let reservation = parent(ctx, "reserve_inventory")?;
    let charge = parent(ctx, "charge_payment")?;
    let carrier = ctx.config()["carrier"].as_str().unwrap_or("example_post");
    Ok(json!({
        "shipment_id": format!("shp-{order_id}"),
        "tracking_number": format!("{}-{order_id}", carrier.to_uppercase()),
        "carrier": carrier,
        "service_level": ctx.config()["service_level"],
        "reservation_id": reservation["reservation_id"],
        "charge_id": charge["charge_id"],
        "ship_to": ctx.context()["shipping_address"],
    }))
}

fn send_confirmation(ctx: &StepContext) -> Result<Value, HandlerError> {
    let order_id = order_id(ctx)?;
    let shipment = parent(ctx, "ship_order")?;
    let email = ctx.context()["customer_email"]
        .as_str()
        .ok_or_else(|| invalid("context.customer_email must be a string".into()))?;
    Ok(json!({
        "order_id": order_id,
        "sent_to": email,
        "email_template": ctx.config()["email_template"],
        "tracking_number": shipment["tracking_number"],
    }))
}
