"""The example templates complete with the Python handlers of
examples/example_worker.py, run by a real `tasker-worker` process; each
result shows that data flowed from parents to children."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

from conftest import Process, Server, register_examples, start_worker
from tasker import Client


@pytest.fixture(scope="module")
def worker(server: Server, client: Client) -> Iterator[Process]:
    register_examples(client)
    process = start_worker(server, "examples.example_worker:app", "--concurrency", "4")
    yield process
    assert process.stop() == 0


def results(client: Client, task_id: str) -> Dict[str, Any]:
    return {s["name"]: s["result"] for s in client.task_steps(task_id)}


def run(client: Client, template: str, context: Dict[str, Any]) -> Dict[str, Any]:
    task = client.create_task(template, context)
    done = client.wait_for_task(task["id"], timeout=60)
    assert done["state"] == "complete", (done, client.task_steps(task["id"]))
    return results(client, task["id"])


def values(step_results: Dict[str, Any]) -> Dict[str, int]:
    return {name: result["value"] for name, result in step_results.items()}


def test_linear_squares_through_four_steps(client: Client, worker: Process) -> None:
    got = run(client, "examples/linear", {"even_number": 2})
    assert values(got) == {"step_1": 4, "step_2": 16, "step_3": 256, "step_4": 65536}
    assert got["step_4"]["input"] == 256


def test_diamond_joins_both_branches(client: Client, worker: Process) -> None:
    got = run(client, "examples/diamond", {"start": 1})
    assert values(got) == {"start": 2, "branch_b": 4, "branch_c": 6, "end": 10}


def test_tree_uses_each_steps_config(client: Client, worker: Process) -> None:
    got = run(client, "examples/tree", {"start": 0})
    assert values(got) == {
        "root": 1, "left": 11, "right": 12,
        "left_1": 111, "left_2": 112, "right_1": 121, "right_2": 122, "right_3": 123,
    }


def test_mixed_dag_merges_unequal_branches(client: Client, worker: Process) -> None:
    got = run(client, "examples/mixed_dag", {"start": 0})
    assert values(got) == {
        "init": 1, "fetch_a": 11, "fetch_b": 12, "fetch_c": 13,
        "merge_ab": 23, "enrich_c": 26, "finalize": 49,
    }


def test_order_fulfillment_ships_and_confirms(client: Client, worker: Process) -> None:
    got = run(client, "orders/order_fulfillment", {
        "order_id": "o-1",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "items": [{"sku": "tea", "quantity": 2, "unit_price_cents": 450},
                  {"sku": "cup", "quantity": 1, "unit_price_cents": 1200}],
    })
    assert got["validate_order"]["total_cents"] == 2100
    assert got["validate_order"]["skus"] == ["tea", "cup"]
    assert got["charge_payment"] == {
        "charge_id": "ch-o-1", "amount_cents": 2100, "currency": "EUR",
        "provider": "example_pay", "captured": True,
    }
    assert got["reserve_inventory"]["reservation_id"] == "res-o-1"
    assert got["ship_order"]["tracking_number"] == "EXAMPLE_POST-o-1"
    assert got["ship_order"]["charge_id"] == "ch-o-1"
    assert got["send_confirmation"]["tracking_number"] == "EXAMPLE_POST-o-1"
    assert got["send_confirmation"]["sent_to"] == "ada@example.com"


def test_many_tasks_at_once_each_complete_once(client: Client, worker: Process) -> None:
    tasks = [client.create_task("examples/diamond", {"start": n}) for n in range(20)]
    for n, task in enumerate(tasks):
        assert client.wait_for_task(task["id"], timeout=60)["state"] == "complete"
        assert results(client, task["id"])["end"]["value"] == 5 * (n + 1)
        completions = [t for t in client.task_history(task["id"]) if t["step_id"] and t["to_state"] == "complete"]
        assert len(completions) == 4, completions
