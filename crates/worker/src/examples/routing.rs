//! `orders/order_routing`: a decision between freight and parcel shipping.

use serde_json::{Value, json};

use super::Body;
use crate::handler_error::HandlerError;
use crate::step_context::StepContext;

pub(super) const HANDLERS: [(&str, Body); 4] = [
    ("orders.routing.weigh_order", weigh_order),
    ("orders.routing.ship_freight", ship_freight),
    ("orders.routing.ship_parcel", ship_parcel),
    ("orders.routing.notify_customer", notify_customer),
];

/// Orders this heavy or heavier go by freight.
pub const FREIGHT_FROM_KG: f64 = 30.0;

fn weight(ctx: &StepContext) -> Result<f64, HandlerError> {
    ctx.context()["weight_kg"]
        .as_f64()
        .ok_or_else(|| HandlerError::permanent("context.weight_kg must be a number"))
}

fn weigh_order(ctx: &StepContext) -> Result<Value, HandlerError> {
    let kg = weight(ctx)?;
    let branch = if kg >= FREIGHT_FROM_KG {
        "ship_freight"
    } else {
        "ship_parcel"
    };
    Ok(json!({ "branches": [branch], "weight_kg": kg }))
}

fn ship_freight(ctx: &StepContext) -> Result<Value, HandlerError> {
    Ok(json!({ "carrier": "freight", "pallets": (weight(ctx)? / 500.0).ceil() }))
}

fn ship_parcel(ctx: &StepContext) -> Result<Value, HandlerError> {
    Ok(json!({ "carrier": "parcel", "parcels": (weight(ctx)? / 10.0).ceil().max(1.0) }))
}

/// Names the carrier of whichever branch ran.
fn notify_customer(ctx: &StepContext) -> Result<Value, HandlerError> {
    let carrier = ctx
        .parent_results()
        .values()
        .find_map(|result| result["carrier"].as_str())
        .ok_or_else(|| HandlerError::permanent("no shipping step reported a carrier"))?;
    Ok(json!({ "notified": true, "carrier": carrier }))
}
