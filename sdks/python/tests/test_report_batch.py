"""Reports that wait while the worker's report requests are in flight go
together in one `POST /v1/steps/reports`, and each still gets the answer
its own endpoint would have given."""

from __future__ import annotations

import re
import threading
from typing import Any, Dict, List

from conftest import wait_until
from tasker import ApiError, Client
from tasker.report_batch import ReportBatcher
from tasker.types import ClaimedStep


def route_count(client: Client, route: str) -> int:
    raw = client.transport._exchange("GET", "/metrics", None, {}, 10)[2].decode()
    pattern = re.compile(r'^tasker_http_request_duration_seconds_count\{method="POST",route="' + re.escape(route) + r'",status="\d+"\} (\d+)', re.M)
    return sum(int(n) for n in pattern.findall(raw))


def test_waiting_reports_go_in_one_request_each_with_its_own_answer(client: Client) -> None:
    client.create_namespace("pybatch")
    client.register_template({"namespace": "pybatch", "name": "one", "version": "1",
                              "steps": [{"name": "s", "handler": "pybatch.h", "timeout": "1m",
                                         "retry": {"max_attempts": 3}}]})
    tasks = [client.create_task("pybatch/one") for _ in range(3)]
    client.register_worker("batcher", ["pybatch"], ["pybatch.h"], concurrency=3)
    claimed: List[ClaimedStep] = []
    wait_until("three steps claimed", lambda: claimed.extend(client.poll("batcher", ["pybatch"], 3 - len(claimed), 1000)) or len(claimed) == 3)
    a, b, c = claimed

    def lease(step: ClaimedStep) -> Dict[str, Any]:
        return {"step_id": step["lease"]["step_id"], "attempt": step["lease"]["attempt"], "token": step["lease"]["token"]}

    reports = {
        "complete": {"type": "complete", **lease(a), "result": {"ok": 1}},
        "stale": {"type": "complete", **lease(a), "attempt": 99, "result": {"late": True}},
        "fail": {"type": "fail", **lease(b), "retryable": False, "error_type": "bad", "message": "no"},
        "release": {"type": "release", **lease(c)},
    }
    batcher = ReportBatcher(client.transport, max_in_flight=1)
    batcher._in_flight = 1  # a report request in flight: the next ones wait
    answers: Dict[str, Any] = {}

    def send(name: str) -> None:
        try:
            answers[name] = batcher.send(reports[name])
        except ApiError as error:
            answers[name] = error

    before = (route_count(client, "/v1/steps/reports"), route_count(client, "/v1/steps/{id}/complete"))
    threads = [threading.Thread(target=send, args=(name,)) for name in reports]
    for t in threads:
        t.start()
    wait_until("four reports waiting", lambda: len(batcher._waiting) == 4)
    with batcher._cond:
        batcher._in_flight = 0  # the request in flight finished
        batcher._cond.notify_all()
    for t in threads:
        t.join(30)
    after = (route_count(client, "/v1/steps/reports"), route_count(client, "/v1/steps/{id}/complete"))
    assert after == (before[0] + 1, before[1]), "one batch request, no single complete"

    assert answers["complete"]["recorded"] == "applied"
    assert isinstance(answers["stale"], ApiError) and (answers["stale"].status, answers["stale"].code) == (409, "lease_mismatch")
    assert answers["fail"]["recorded"] == "applied"
    assert answers["release"] is None
    states = {s["task_id"]: (s["state"], s["attempt"]) for t in tasks for s in client.task_steps(t["id"])}
    assert states[a["task_id"]] == ("complete", 1)
    assert states[b["task_id"]] == ("failed", 1)
    assert states[c["task_id"]] == ("ready", 0)
    for t in tasks:
        if client.get_task(t["id"])["state"] == "running":
            client.cancel_task(t["id"])


def test_a_lone_report_goes_at_once_on_its_own_endpoint(client: Client) -> None:
    client.create_namespace("pybatch")
    task = client.create_task("pybatch/one")
    client.register_worker("lone", ["pybatch"], ["pybatch.h"])
    step = wait_until("a step", lambda: (client.poll("lone", ["pybatch"], 1, 1000) or [None])[0])
    before = route_count(client, "/v1/steps/{id}/complete")
    reply = ReportBatcher(client.transport).send({"type": "complete", "step_id": step["lease"]["step_id"],
                                                  "attempt": step["lease"]["attempt"], "token": step["lease"]["token"],
                                                  "result": 1})
    assert reply["recorded"] == "applied"
    assert route_count(client, "/v1/steps/{id}/complete") == before + 1
    assert client.get_task(task["id"])["state"] == "complete"
