"""Retryable and permanent handler errors follow the template's retry
policy (attempts and backoff), and the client's manual retry and resolve
reopen a failed task."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterator, List

import pytest

from conftest import Process, Server, register_examples, start_worker
from tasker import Client
from tasker.types import Step, Transition


@pytest.fixture(scope="module")
def worker(server: Server, client: Client) -> Iterator[Process]:
    register_examples(client)
    process = start_worker(server, "examples.example_worker:app", "--concurrency", "4")
    yield process
    assert process.stop() == 0


def step(client: Client, task_id: str, name: str) -> Step:
    return next(s for s in client.task_steps(task_id) if s["name"] == name)


def at(transition: Transition) -> datetime:
    return datetime.fromisoformat(transition["at"].replace("Z", "+00:00"))


def transitions(client: Client, task_id: str, name: str, to: str) -> List[Transition]:
    return [t for t in client.task_history(task_id) if t["step_name"] == name and t["to_state"] == to]


def test_retryable_errors_are_retried_with_the_templates_backoff(client: Client, worker: Process) -> None:
    task = client.create_task("examples/linear", {"even_number": 2, "fail_times": {"step_2": 2}})
    assert client.wait_for_task(task["id"], timeout=60)["state"] == "complete"
    step_2 = step(client, task["id"], "step_2")
    assert step_2["attempt"] == 3 and step_2["result"]["value"] == 16
    failures = transitions(client, task["id"], "step_2", "retrying")
    assert [t["attempt"] for t in failures] == [1, 2]
    assert all("injected_failure" in (t["reason"] or "") for t in failures), failures
    # linear's backoff: initial 1s, multiplier 2, jitter 0.1.
    ready = transitions(client, task["id"], "step_2", "ready")[1:]
    waits = [(at(r) - at(f)).total_seconds() for f, r in zip(failures, ready)]
    assert 0.85 <= waits[0] <= 1.6 and 1.75 <= waits[1] <= 2.8, waits


def test_retryable_errors_fail_the_step_when_attempts_run_out(client: Client, worker: Process) -> None:
    task = client.create_task("examples/linear", {"even_number": 2, "fail_times": {"step_1": 5}})
    assert client.wait_for_task(task["id"], timeout=60)["state"] == "failed"
    step_1 = step(client, task["id"], "step_1")
    assert (step_1["state"], step_1["attempt"], step_1["max_attempts"]) == ("failed", 3, 3)
    assert step_1["error"]["error_type"] == "injected_failure" and step_1["error"]["retryable"]
    assert step(client, task["id"], "step_2")["state"] == "pending"


def test_permanent_errors_fail_at_once(client: Client, worker: Process) -> None:
    task = client.create_task("examples/linear", {"even_number": 2, "fail_permanently": "step_1"})
    assert client.wait_for_task(task["id"], timeout=60)["state"] == "failed"
    step_1 = step(client, task["id"], "step_1")
    assert (step_1["state"], step_1["attempt"]) == ("failed", 1)
    assert step_1["error"]["error_type"] == "injected_failure" and not step_1["error"]["retryable"]
    assert transitions(client, task["id"], "step_1", "retrying") == []


def test_an_unexpected_exception_is_a_retryable_failure(client: Client, worker: Process) -> None:
    # validate_order allows one attempt: the exception fails the task, typed.
    task = client.create_task("orders/order_fulfillment", {
        "order_id": "o-2", "customer_email": "ada@example.com",
        "items": [{"sku": "tea", "quantity": 1, "unit_price_cents": 1}], "panic": "validate_order",
    })
    assert client.wait_for_task(task["id"], timeout=60)["state"] == "failed"
    error = step(client, task["id"], "validate_order")["error"]
    assert error["error_type"] == "exception" and error["retryable"]
    assert error["details"]["exception"] == "RuntimeError"
    assert "context.panic" in error["message"]


def test_manual_retry_and_resolve_reopen_a_failed_task(client: Client, worker: Process) -> None:
    task = client.create_task("examples/linear", {"even_number": 2, "fail_permanently": "step_3"})
    assert client.wait_for_task(task["id"], timeout=60)["state"] == "failed"
    failed = step(client, task["id"], "step_3")
    retried = client.retry_step(failed["id"])
    assert retried["state"] in ("ready", "running", "failed")
    assert client.wait_for_task(task["id"], timeout=60)["state"] == "failed"  # the context still asks to fail
    resolved = client.resolve_step(failed["id"], {"value": 3})
    assert resolved["state"] == "resolved"
    assert client.wait_for_task(task["id"], timeout=60)["state"] == "complete"
    assert step(client, task["id"], "step_4")["result"]["value"] == 9
