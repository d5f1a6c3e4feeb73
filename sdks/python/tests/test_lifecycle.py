"""What happens to steps when workers die, stop, run long or come back
late, against a server with a 2 s lease (heartbeats every ~0.67 s):

* a worker SIGKILLed mid-step: the step is delivered again, as the next
  attempt, to another worker, which completes it;
* SIGTERM: the worker stops polling, finishes its running step and exits 0;
  with a grace shorter than the step it releases the step (attempt not
  counted) instead;
* heartbeats keep a step that runs longer than the lease on its first
  attempt;
* a worker cut off from the server while its handler runs comes back after
  its step was redelivered and completed elsewhere: its completion is
  refused as stale, logged and counted, and the worker keeps working.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, Dict, Iterator, List
from urllib.parse import urlsplit

import pytest

from conftest import Database, Process, Server, register_examples, start_worker, wait_until
from tasker import Client, StepContext, Worker
from tasker.types import Step
from tcp_proxy import TcpProxy

LEASE_SECONDS = 2


@pytest.fixture(scope="module")
def server(database: Database) -> Iterator[Server]:
    server = Server(database, TASKER_ENGINE_LEASE_DURATION=f"{LEASE_SECONDS}s")
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture(scope="module", autouse=True)
def templates(client: Client) -> None:
    register_examples(client)
    client.create_namespace("pytest")
    client.register_template({
        "namespace": "pytest",
        "name": "one_step",
        "version": "1",
        "steps": [{"name": "only", "handler": "pytest.block", "timeout": "1m",
                   "retry": {"max_attempts": 3, "backoff": {"initial": "100ms", "max": "1s", "multiplier": 2.0, "jitter": 0.0}}}],
    })


def step(client: Client, task_id: str, name: str) -> Step:
    return next(s for s in client.task_steps(task_id) if s["name"] == name)


def running_on(client: Client, task_id: str, name: str, worker_id: str) -> Any:
    s = step(client, task_id, name)
    return s if s["state"] == "running" and s["worker_id"] == worker_id else None


def test_a_killed_worker_s_step_is_redelivered_and_completed_by_another(server: Server, client: Client) -> None:
    first = start_worker(server, "examples.example_worker:app", "--worker-id", "doomed", name="doomed")
    task = client.create_task("examples/linear", {"even_number": 2, "sleep_ms": {"step_2": 2500}})
    wait_until("step_2 running on doomed", lambda: running_on(client, task["id"], "step_2", "doomed"))
    first.signal(signal.SIGKILL)
    first.popen.wait(10)
    second = start_worker(server, "examples.example_worker:app", "--worker-id", "rescuer", name="rescuer")
    try:
        assert client.wait_for_task(task["id"], timeout=60)["state"] == "complete"
    finally:
        assert second.stop() == 0
    step_2 = step(client, task["id"], "step_2")
    assert (step_2["attempt"], step_2["worker_id"], step_2["result"]["value"]) == (2, "rescuer", 16)
    history = client.task_history(task["id"])
    assert any(t["step_name"] == "step_2" and t["reason"] == "lease expired" for t in history), history
    assert len([t for t in history if t["step_name"] == "step_2" and t["to_state"] == "complete"]) == 1


def test_sigterm_finishes_the_running_step_then_exits(server: Server, client: Client) -> None:
    worker = start_worker(server, "examples.example_worker:app", "--worker-id", "drainer", name="drainer")
    task = client.create_task("examples/linear", {"even_number": 2, "sleep_ms": {"step_1": 1500}})
    wait_until("step_1 running", lambda: running_on(client, task["id"], "step_1", "drainer"))
    # Running on the server is not yet running in the worker: the claim
    # commits before the poll's answer arrives, and a step that arrives
    # after SIGTERM is handed back unstarted. Its handler's line is.
    worker.wait_for_line('"event": "sleeping"')
    worker.signal(signal.SIGTERM)
    assert worker.popen.wait(30) == 0
    step_1 = step(client, task["id"], "step_1")
    assert (step_1["state"], step_1["attempt"], step_1["worker_id"]) == ("complete", 1, "drainer")
    # It took no new work while draining: step_2 was never completed by it
    # (if its last long-poll was handed step_2, the lease runs out).
    assert worker.count('"completed": 1,') == 1
    successor = start_worker(server, "examples.example_worker:app", "--worker-id", "successor", name="successor")
    try:
        assert client.wait_for_task(task["id"], timeout=60)["state"] == "complete"
    finally:
        assert successor.stop() == 0
    assert {s["name"]: s["worker_id"] for s in client.task_steps(task["id"])} == {
        "step_1": "drainer", "step_2": "successor", "step_3": "successor", "step_4": "successor"}


def test_sigterm_releases_a_step_that_outlasts_the_grace(server: Server, client: Client) -> None:
    worker = start_worker(server, "examples.example_worker:app", "--worker-id", "impatient",
                          "--shutdown-grace", "0.5", name="impatient")
    task = client.create_task("examples/linear", {"even_number": 2, "sleep_ms": {"step_1": 60000}})
    wait_until("step_1 running", lambda: running_on(client, task["id"], "step_1", "impatient"))
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.popen.wait(30) == 0
    assert time.monotonic() - started < 10
    step_1 = step(client, task["id"], "step_1")
    # Released, the attempt not counted: the next claim is attempt 1 again.
    assert (step_1["state"], step_1["attempt"]) == ("ready", 0), (step_1["worker_id"], [(t["to_state"], t["worker_id"]) for t in client.task_history(task["id"])])
    history = client.task_history(task["id"])
    assert any(t["step_name"] == "step_1" and t["from_state"] == "running" and t["to_state"] == "ready"
               for t in history), history
    client.cancel_task(task["id"], "test over")


def test_heartbeats_keep_a_long_step_past_its_lease(server: Server, client: Client) -> None:
    worker = start_worker(server, "examples.example_worker:app", "--worker-id", "steady", name="steady")
    try:
        task = client.create_task("examples/linear", {"even_number": 2, "sleep_ms": {"step_1": 3 * LEASE_SECONDS * 1000}})
        assert client.wait_for_task(task["id"], timeout=60)["state"] == "complete"
    finally:
        assert worker.stop() == 0
    step_1 = step(client, task["id"], "step_1")
    assert (step_1["attempt"], step_1["worker_id"]) == (1, "steady")
    assert not any(t["reason"] == "lease expired" for t in client.task_history(task["id"]))


def test_a_stale_completion_is_refused_and_reported(server: Server, client: Client,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    address = urlsplit(server.url)
    proxy = TcpProxy((address.hostname or "127.0.0.1", address.port or 80))
    first_attempt_running = threading.Event()
    let_first_attempt_finish = threading.Event()
    ran: List[int] = []

    def block(ctx: StepContext) -> Dict[str, Any]:
        ran.append(ctx.attempt)
        if ctx.attempt == 1:
            first_attempt_running.set()
            let_first_attempt_finish.wait(60)
        return {"attempt": ctx.attempt, "worker": ctx.worker_id}

    cut_off = Worker(concurrency=1, worker_id="cut-off", shutdown_grace=5)
    cut_off.add_handler("pytest", "pytest.block", block)
    rescuer = Worker(concurrency=1, worker_id="direct", shutdown_grace=5)
    rescuer.add_handler("pytest", "pytest.block", block)
    caplog.set_level(logging.INFO, logger="tasker.worker")
    threads = [threading.Thread(target=cut_off.run, kwargs={"client": Client(proxy.url, token="")}, daemon=True)]
    try:
        threads[0].start()
        task = client.create_task("pytest/one_step")
        assert first_attempt_running.wait(30)
        proxy.cut()  # heartbeats fail from here on: the lease runs out
        threads.append(threading.Thread(target=rescuer.run, kwargs={"client": Client(server.url, token="")}, daemon=True))
        threads[1].start()
        done = client.wait_for_task(task["id"], timeout=60)
        assert done["state"] == "complete"
        assert step(client, task["id"], "only")["result"] == {"attempt": 2, "worker": "direct"}

        let_first_attempt_finish.set()  # its complete fails against the cut proxy, is retried...
        time.sleep(0.3)
        proxy.restore()  # ...and refused once it gets through
        wait_until("the stale completion reported", lambda: cut_off.stats.stale_reports == 1)
        assert cut_off.stats.completed == 0
        assert any(getattr(r, "event", None) == "stale_report" for r in caplog.records)
        assert step(client, task["id"], "only")["result"] == {"attempt": 2, "worker": "direct"}
        assert sorted(ran) == [1, 2]

        # The worker did not crash: it takes the next step.
        rescuer.stop()
        threads[1].join(30)
        again = client.create_task("pytest/one_step")
        assert client.wait_for_task(again["id"], timeout=30)["state"] == "complete"
        assert step(client, again["id"], "only")["worker_id"] == "cut-off"
    finally:
        let_first_attempt_finish.set()
        for w in (cut_off, rescuer):
            w.stop()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        proxy.cut()
