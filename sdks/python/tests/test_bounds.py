"""What one request may cost, from the client's side: lists leave out
contexts and results unless asked, the history comes in pages that
``task_history`` reads to the end, a task may carry a deadline, and a
cancel reason over the protocol's limit is refused naming it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict

import pytest

from conftest import Database
from tasker import ApiError, Client

WIDE_STEPS = 120

WIDE = {
    "namespace": "pybounds",
    "name": "wide",
    "version": "1",
    "steps": [{"name": f"s{i:03}", "handler": "pybounds.noop", "timeout": "30s"} for i in range(WIDE_STEPS)],
}
PAIR = {
    "namespace": "pybounds",
    "name": "pair",
    "version": "1",
    "steps": [
        {"name": "first", "handler": "pybounds.noop", "timeout": "30s"},
        {"name": "second", "handler": "pybounds.noop", "depends_on": ["first"], "timeout": "30s"},
    ],
}


@pytest.fixture(scope="module", autouse=True)
def templates(client: Client) -> None:
    client.create_namespace("pybounds")
    client.register_template(WIDE)
    client.register_template(PAIR)


def parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def test_task_lists_carry_contexts_only_when_asked(client: Client) -> None:
    made = client.create_task("pybounds/pair", {"order": 17}, tags=["include"])
    plain = client.list_tasks(namespace="pybounds", template="pair", limit=50)
    listed = next(t for t in plain["tasks"] if t["id"] == made["id"])
    assert "context" not in listed
    asked = client.list_tasks(namespace="pybounds", template="pair", include="context")
    assert next(t for t in asked["tasks"] if t["id"] == made["id"])["context"] == {"order": 17}
    every = {t["id"]: t for t in client.iter_tasks(namespace="pybounds", include="context", limit=1)}
    assert every[made["id"]]["context"] == {"order": 17}
    with pytest.raises(ApiError) as refused:
        client.list_tasks(include="result")
    assert refused.value.status == 400 and "include" in refused.value.message


def test_task_steps_carry_results_unless_told_not_to(client: Client) -> None:
    task = client.create_task("pybounds/pair", {})
    second = next(s for s in client.task_steps(task["id"]) if s["name"] == "second")
    client.resolve_step(second["id"], {"total": 42})  # pending: may be resolved
    with_results = {s["name"]: s for s in client.task_steps(task["id"])}
    assert with_results["second"]["result"] == {"total": 42}
    without = client.task_steps(task["id"], results=False)
    assert without and all("result" not in s for s in without)


def test_task_history_reads_every_page(client: Client, database: Database) -> None:
    task = client.create_task("pybounds/wide", {})
    client.cancel_task(task["id"], "enough")
    stored = database.execute("SELECT count(*) FROM tasker.transitions WHERE task_id = %s", task["id"])[0][0]
    assert stored > 200, "more transitions than the server's default page holds"
    history = client.task_history(task["id"])
    assert len(history) == stored
    ids = [t["id"] for t in history]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first = client.task_history_page(task["id"], limit=100)
    assert len(first["transitions"]) == 100 and first["next_cursor"]
    second = client.task_history_page(task["id"], cursor=first["next_cursor"], limit=100)
    assert [t["id"] for t in first["transitions"] + second["transitions"]] == ids[:200]
    with pytest.raises(ApiError) as refused:
        client.task_history_page(task["id"], limit=1001)
    assert refused.value.status == 400 and "limit" in refused.value.message


def test_a_task_carries_its_deadline(client: Client) -> None:
    task = client.create_task("pybounds/pair", {}, deadline="30m")
    assert task["deadline_at"] is not None
    left = parse(task["deadline_at"]) - parse(task["created_at"])
    assert abs(left - timedelta(minutes=30)) < timedelta(seconds=1)
    assert client.create_task("pybounds/pair", {})["deadline_at"] is None
    with pytest.raises(ApiError) as refused:
        client.create_task("pybounds/pair", {}, deadline="0s")
    assert refused.value.status == 400 and "deadline" in refused.value.message


def test_a_cancel_reason_over_the_limit_is_refused(client: Client) -> None:
    task = client.create_task("pybounds/pair", {})
    with pytest.raises(ApiError) as refused:
        client.cancel_task(task["id"], "r" * 1025)
    assert refused.value.status == 400 and "reason" in refused.value.message
    done: Dict[str, Any] = dict(client.cancel_task(task["id"], "é" * 512))
    assert done["state"] == "cancelled"
