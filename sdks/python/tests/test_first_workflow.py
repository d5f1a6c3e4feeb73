"""docs/first-workflow.md's SDK worker, as the guide quotes it, runs the
guide's template: a greeting shouted, a retry, a permanent failure."""

from __future__ import annotations

from typing import Iterator

import pytest

from conftest import REPO, Process, Server, start_worker
from tasker import Client

GUIDE = REPO / "docs" / "first-workflow.md"
FILES = REPO / "docs" / "first-workflow"


@pytest.fixture(scope="module")
def worker(server: Server, client: Client) -> Iterator[Process]:
    client.create_namespace("shop")
    client.register_template(FILES / "welcome.yaml")
    process = start_worker(server, "sdk_worker:app", name="sdk_worker", cwd=FILES)
    yield process
    assert process.stop() == 0


def test_the_guide_quotes_the_sdk_worker_as_it_is() -> None:
    assert (FILES / "sdk_worker.py").read_text() in GUIDE.read_text()


def test_the_greeting_is_shouted(client: Client, worker: Process) -> None:
    task = client.create_task("shop/welcome", {"name": "Ada"})
    assert client.wait_for_task(task["id"], timeout=30)["state"] == "complete"
    steps = {s["name"]: s for s in client.task_steps(task["id"])}
    assert steps["shout"]["result"] == {"message": "HELLO, ADA!"}


def test_a_flaky_greeting_is_retried_and_an_empty_name_fails(client: Client, worker: Process) -> None:
    # Created together: the flaky retry's backoff runs out while the worker's
    # poll waits, after a wake-up the claim loop saw with no poll to serve.
    for _ in range(3):
        flaky = client.create_task("shop/welcome", {"name": "Ada", "fail_times": 1})
        empty = client.create_task("shop/welcome", {"name": ""})
        assert client.wait_for_task(flaky["id"], timeout=10)["state"] == "complete"
        greet = next(s for s in client.task_steps(flaky["id"]) if s["name"] == "greet")
        assert (greet["attempt"], greet["result"]) == (2, {"greeting": "Hello, Ada!"})
        assert client.wait_for_task(empty["id"], timeout=30)["state"] == "failed"
        greet = next(s for s in client.task_steps(empty["id"]) if s["name"] == "greet")
        assert (greet["attempt"], greet["error"]["error_type"], greet["error"]["retryable"]) == (1, "invalid_name", False)
