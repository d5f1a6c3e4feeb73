"""The handlers of the example templates (templates/ of the Tasker
repository: namespaces ``examples`` and ``orders``) in Python, the same as
the Rust ones of ``tasker worker example``.

    tasker-worker examples.example_worker:app          # from sdks/python
    python examples/example_worker.py                  # the same

Every handler first obeys these keys of the task context, which name steps
by their step name, so that each path of the runtime can be seen without
writing code (applied in this order):

* ``sleep_ms: {"<step>": ms}``: sleep that long first (stops early when the
  attempt is cancelled);
* ``panic: "<step>"``: raise an unexpected exception (a retryable
  ``exception`` failure);
* ``fail_permanently: "<step>"``: fail permanently (``injected_failure``);
* ``fail_times: {"<step>": n}``: fail attempts 1..n retryably
  (``injected_failure``), then succeed.

Numeric results are ``{"value": n, ...}``; a value outside 64-bit integers
fails permanently (``overflow``), as in the Rust handlers.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List

from tasker import PermanentError, RetryableError, StepContext, Worker

app = Worker(concurrency=4, version="python examples")

INJECTED = "injected_failure"
I64 = 2**63


def obey_context(ctx: StepContext) -> None:
    context, step = ctx.context, ctx.step_name
    sleep_ms = (context.get("sleep_ms") or {}).get(step)
    if isinstance(sleep_ms, int):
        ctx.logger.info("sleeping %d ms (context.sleep_ms)", sleep_ms, extra={"event": "sleeping"})
        if not ctx.sleep(sleep_ms / 1000):
            raise RetryableError(f"stopped while sleeping: {ctx.cancel_reason}", error_type="cancelled")
    if context.get("panic") == step:
        raise RuntimeError(f'context.panic names step "{step}"')
    if context.get("fail_permanently") == step:
        raise PermanentError(f'context.fail_permanently names step "{step}"', error_type=INJECTED)
    times = (context.get("fail_times") or {}).get(step)
    if isinstance(times, int) and ctx.attempt <= times:
        raise RetryableError(
            f'context.fail_times fails the first {times} attempts of step "{step}"; this is attempt {ctx.attempt}',
            error_type=INJECTED,
        )


def example(namespace: str, *names: str):  # type: ignore[no-untyped-def]
    """Registers ``fn`` under each handler name, behind :func:`obey_context`."""

    def register(fn):  # type: ignore[no-untyped-def]
        def handler(ctx: StepContext) -> Any:
            obey_context(ctx)
            return fn(ctx)

        handler.__name__ = fn.__name__
        for name in names:
            app.add_handler(namespace, name, handler)
        return fn

    return register


def checked(value: int, what: str) -> int:
    if not -I64 <= value < I64:
        raise PermanentError(f"{what} overflows", error_type="overflow")
    return value


def start(ctx: StepContext) -> int:
    value = ctx.context.get("start", 0)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise PermanentError("context.start must be an integer")
    return value


def parent_value(ctx: StepContext, parent: str) -> int:
    result = ctx.parent(parent)
    value = result.get("value") if isinstance(result, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise PermanentError(
            f'step "{ctx.step_name}" expected an integer "value" in the result of parent "{parent}"'
        )
    return value


def only_parent(ctx: StepContext) -> str:
    parents = list(ctx.parent_results)
    if len(parents) != 1:
        raise PermanentError(f'step "{ctx.step_name}" expected exactly one parent result, got {len(parents)}')
    return parents[0]


# ---- examples/linear -------------------------------------------------------


@example("examples", *(f"examples.linear.step_{i}" for i in range(1, 5)))
def square(ctx: StepContext) -> Dict[str, Any]:
    """Squares context.even_number (the first step) or the parent's value."""
    if not ctx.parent_results:
        value = ctx.context.get("even_number")
        if not isinstance(value, int) or isinstance(value, bool):
            raise PermanentError("context.even_number must be an integer")
    else:
        value = parent_value(ctx, only_parent(ctx))
    return {"value": checked(value * value, f"{value} squared"), "input": value}


# ---- examples/diamond ------------------------------------------------------


@example("examples", "examples.diamond.start")
def diamond_start(ctx: StepContext) -> Dict[str, Any]:
    return {"value": checked(start(ctx) + 1, "context.start + 1")}


@example("examples", "examples.diamond.branch_b")
def branch_b(ctx: StepContext) -> Dict[str, Any]:
    return {"value": checked(parent_value(ctx, "start") * 2, "start × 2"), "branch": "b"}


@example("examples", "examples.diamond.branch_c")
def branch_c(ctx: StepContext) -> Dict[str, Any]:
    return {"value": checked(parent_value(ctx, "start") * 3, "start × 3"), "branch": "c"}


@example("examples", "examples.diamond.end")
def diamond_end(ctx: StepContext) -> Dict[str, Any]:
    value = parent_value(ctx, "branch_b") + parent_value(ctx, "branch_c")
    return {"value": checked(value, "branch_b + branch_c"), "joined": ["branch_b", "branch_c"]}


# ---- examples/tree ---------------------------------------------------------


@example("examples", "examples.tree.root")
def tree_root(ctx: StepContext) -> Dict[str, Any]:
    return {"value": checked(start(ctx) + 1, "context.start + 1")}


@example("examples", "examples.tree.branch")
def tree_branch(ctx: StepContext) -> Dict[str, Any]:
    side = (ctx.config or {}).get("side", "")
    digits = {"left": 1, "right": 2}
    if side not in digits:
        raise PermanentError(f'config.side must be "left" or "right", not "{side}"')
    value = parent_value(ctx, "root") * 10 + digits[side]
    return {"value": checked(value, "root × 10 + side"), "side": side}


@example("examples", "examples.tree.leaf")
def tree_leaf(ctx: StepContext) -> Dict[str, Any]:
    _, _, index = ctx.step_name.rpartition("_")
    if not index.isdigit():
        raise PermanentError(f'leaf step names end in _<number>; "{ctx.step_name}" does not')
    parent = only_parent(ctx)
    value = parent_value(ctx, parent) * 10 + int(index)
    return {"value": checked(value, "parent × 10 + index"), "parent": parent}


# ---- examples/mixed_dag ----------------------------------------------------


@example("examples", "examples.mixed_dag.init")
def mixed_init(ctx: StepContext) -> Dict[str, Any]:
    return {"value": checked(start(ctx) + 1, "context.start + 1")}


@example("examples", "examples.mixed_dag.fetch")
def mixed_fetch(ctx: StepContext) -> Dict[str, Any]:
    source = (ctx.config or {}).get("source", "")
    offsets = {"a": 1, "b": 2, "c": 3}
    if source not in offsets:
        raise PermanentError(f'config.source must be "a", "b" or "c", not "{source}"')
    value = parent_value(ctx, "init") * 10 + offsets[source]
    return {"value": checked(value, "init × 10 + source"), "source": source}


@example("examples", "examples.mixed_dag.merge_ab")
def mixed_merge_ab(ctx: StepContext) -> Dict[str, Any]:
    value = parent_value(ctx, "fetch_a") + parent_value(ctx, "fetch_b")
    return {"value": checked(value, "fetch_a + fetch_b"), "merged": ["fetch_a", "fetch_b"]}


@example("examples", "examples.mixed_dag.enrich_c")
def mixed_enrich_c(ctx: StepContext) -> Dict[str, Any]:
    return {"value": checked(parent_value(ctx, "fetch_c") * 2, "fetch_c × 2")}


@example("examples", "examples.mixed_dag.finalize")
def mixed_finalize(ctx: StepContext) -> Dict[str, Any]:
    value = parent_value(ctx, "merge_ab") + parent_value(ctx, "enrich_c")
    return {"value": checked(value, "merge_ab + enrich_c")}


# ---- orders/order_fulfillment ----------------------------------------------
# Nothing leaves the process; identifiers derive from the order id, so each
# handler is idempotent per order, as the template asks.


def invalid(message: str) -> PermanentError:
    return PermanentError(message, error_type="invalid_order")


def order_id(ctx: StepContext) -> str:
    value = ctx.context.get("order_id")
    if not isinstance(value, str) or not value:
        raise invalid("context.order_id must be a non-empty string")
    return value


def parent(ctx: StepContext, name: str) -> Dict[str, Any]:
    result = ctx.parent(name)
    if result is None:
        raise PermanentError(f'step "{ctx.step_name}" has no result from parent "{name}"')
    return result  # type: ignore[no-any-return]


@example("orders", "orders.validate_order")
def validate_order(ctx: StepContext) -> Dict[str, Any]:
    """Checks the items against config.max_items and the currency against
    config.allowed_currencies; totals the order."""
    oid = order_id(ctx)
    config = ctx.config or {}
    items = ctx.context.get("items")
    if not isinstance(items, list) or not items:
        raise invalid("context.items must be a non-empty array")
    max_items = config.get("max_items", 100)
    if len(items) > max_items:
        raise invalid(f"{len(items)} items; at most {max_items} per order")
    currency = ctx.context.get("currency") or "USD"
    allowed = config.get("allowed_currencies")
    if isinstance(allowed, list) and currency not in allowed:
        raise invalid(f"currency {currency} is not accepted")
    total, units, skus = 0, 0, []  # type: int, int, List[str]
    for i, item in enumerate(items):
        sku = item.get("sku") if isinstance(item, dict) else None
        quantity = item.get("quantity") if isinstance(item, dict) else None
        price = item.get("unit_price_cents") if isinstance(item, dict) else None
        if not (isinstance(sku, str) and isinstance(quantity, int) and quantity >= 1
                and isinstance(price, int) and price >= 0):
            raise invalid(f"context.items[{i}] needs sku, quantity >= 1 and unit_price_cents >= 0")
        total += quantity * price
        if total >= I64:
            raise invalid(f"context.items[{i}]: order total overflows")
        units += quantity
        skus.append(sku)
    return {"order_id": oid, "currency": currency, "total_cents": total, "units": units, "skus": skus}


@example("orders", "orders.reserve_inventory")
def reserve_inventory(ctx: StepContext) -> Dict[str, Any]:
    oid = order_id(ctx)
    validated = parent(ctx, "validate_order")
    config = ctx.config or {}
    return {
        "reservation_id": f"res-{oid}",
        "warehouse": config.get("warehouse") or "primary",
        "hold_for": config.get("hold_for"),
        "skus": validated.get("skus"),
        "units": validated.get("units"),
    }


@example("orders", "orders.charge_payment")
def charge_payment(ctx: StepContext) -> Dict[str, Any]:
    oid = order_id(ctx)
    validated = parent(ctx, "validate_order")
    amount = validated.get("total_cents")
    if not isinstance(amount, int):
        raise PermanentError("validate_order gave no integer total_cents")
    config = ctx.config or {}
    capture = config.get("capture")
    return {
        "charge_id": f"ch-{oid}",
        "amount_cents": amount,
        "currency": validated.get("currency"),
        "provider": config.get("provider"),
        "captured": capture if isinstance(capture, bool) else True,
    }


@example("orders", "orders.ship_order")
def ship_order(ctx: StepContext) -> Dict[str, Any]:
    oid = order_id(ctx)
    reservation = parent(ctx, "reserve_inventory")
    charge = parent(ctx, "charge_payment")
    config = ctx.config or {}
    carrier = config.get("carrier") or "example_post"
    return {
        "shipment_id": f"shp-{oid}",
        "tracking_number": f"{carrier.upper()}-{oid}",
        "carrier": carrier,
        "service_level": config.get("service_level"),
        "reservation_id": reservation.get("reservation_id"),
        "charge_id": charge.get("charge_id"),
        "ship_to": ctx.context.get("shipping_address"),
    }


@example("orders", "orders.send_confirmation")
def send_confirmation(ctx: StepContext) -> Dict[str, Any]:
    oid = order_id(ctx)
    shipment = parent(ctx, "ship_order")
    email = ctx.context.get("customer_email")
    if not isinstance(email, str):
        raise invalid("context.customer_email must be a string")
    return {
        "order_id": oid,
        "sent_to": email,
        "email_template": (ctx.config or {}).get("email_template"),
        "tracking_number": shipment.get("tracking_number"),
    }


if __name__ == "__main__":
    from tasker.cli import main

    sys.exit(main(["__main__:app", *sys.argv[1:]]))
