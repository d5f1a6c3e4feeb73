"""Parent results too large for one claim (over
``engine.max_parent_results_bytes``, 1 KiB here) reach the handler all the
same: the worker fetches the ones named in ``parent_result_refs``. A fetch
that fails fails the attempt as retryable ``parent_result_unavailable``;
the step, out of attempts, is then a dead letter the client retries or
resolves. Failure texts over the protocol's limits are shortened to fit."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import urlsplit

import pytest

from conftest import Database, Server, wait_until
from tasker import Client, PermanentError, StepContext, Worker

BIG = 3000  # bytes of the big parent's blob: over the 1 KiB cap

FANIN = {
    "namespace": "pyrefs",
    "name": "fanin",
    "version": "1",
    "steps": [
        {"name": "big", "handler": "pyrefs.big", "timeout": "30s"},
        {"name": "small", "handler": "pyrefs.small", "timeout": "30s"},
        {"name": "join", "handler": "pyrefs.join", "depends_on": ["big", "small"], "timeout": "30s",
         "retry": {"max_attempts": 1}},
    ],
}
# A namespace of its own: a long poll the proxy still holds for the stopped
# worker of the blocked test must not claim this step.
LOUD = {
    "namespace": "pyloud",
    "name": "loud",
    "version": "1",
    "steps": [{"name": "only", "handler": "pyloud.loud", "timeout": "30s"}],
}


class ResultBlocker:
    """An HTTP proxy in front of the server that answers 503 to every
    ``GET /v1/steps/{id}/result`` while ``blocking`` and passes everything
    else (long polls included) through."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self.blocking = True
        self.blocked = 0
        blocker = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if blocker.blocking and self.command == "GET" and self.path.endswith("/result"):
                    blocker.blocked += 1
                    status, payload = 503, b'{"error":{"code":"unavailable","message":"blocked","details":null}}'
                    headers: List[Tuple[str, str]] = [("Content-Type", "application/json")]
                else:
                    conn = http.client.HTTPConnection(host, port, timeout=120)
                    forward = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body, headers=forward)
                    reply = conn.getresponse()
                    status, payload = reply.status, reply.read()
                    headers = [(k, v) for k, v in reply.getheaders()
                               if k.lower() not in ("content-length", "connection", "transfer-encoding")]
                    conn.close()
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(database: Database) -> Iterator[Server]:
    server = Server(database, TASKER_ENGINE_MAX_PARENT_RESULTS_BYTES="1024")
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture(scope="module", autouse=True)
def templates(client: Client) -> None:
    client.create_namespace("pyrefs")
    client.create_namespace("pyloud")
    client.register_template(FANIN)
    client.register_template(LOUD)


def make_worker(worker_id: str, *, loud: bool = False) -> Worker:
    worker = Worker(concurrency=2, worker_id=worker_id)

    @worker.handler("pyrefs", "pyrefs.big")
    def big(ctx: StepContext) -> Dict[str, Any]:
        return {"blob": "x" * BIG}

    @worker.handler("pyrefs", "pyrefs.small")
    def small(ctx: StepContext) -> Dict[str, Any]:
        return {"n": 1}

    @worker.handler("pyrefs", "pyrefs.join")
    def join(ctx: StepContext) -> Dict[str, Any]:
        return {
            "refs": sorted(ctx.step.get("parent_result_refs") or {}),
            "big": len(ctx.parent("big")["blob"]),
            "small": ctx.parent("small"),
        }

    if loud:
        @worker.handler("pyloud", "pyloud.loud")
        def shout(ctx: StepContext) -> None:
            raise PermanentError("a" + "é" * 3000, error_type="  " + "t" * 200 + "  ")

    return worker


def running(worker: Worker, url: str) -> threading.Thread:
    thread = threading.Thread(target=worker.run, kwargs={"server": url, "token": ""}, daemon=True)
    thread.start()
    return thread


def steps_of(client: Client, task_id: str) -> Dict[str, Any]:
    return {s["name"]: s for s in client.task_steps(task_id)}


def test_parent_results_left_out_of_the_claim_are_fetched(client: Client, server: Server) -> None:
    worker = make_worker("py-refs")
    thread = running(worker, server.url)
    try:
        task = client.create_task("pyrefs/fanin", {})
        assert client.wait_for_task(task["id"], timeout=60)["state"] == "complete"
    finally:
        worker.stop()
        thread.join(30)
    join = steps_of(client, task["id"])["join"]
    assert join["result"] == {"refs": ["big"], "big": BIG, "small": {"n": 1}}


def test_a_failed_fetch_fails_the_attempt_and_dead_letters_are_retried_and_resolved(
    client: Client, server: Server
) -> None:
    blocker = ResultBlocker(server.url)
    worker = make_worker("py-refs-blocked")
    thread = running(worker, blocker.url)
    try:
        tasks = [client.create_task("pyrefs/fanin", {}) for _ in range(2)]
        for task in tasks:
            assert client.wait_for_task(task["id"], timeout=60)["state"] == "failed"
        assert blocker.blocked >= 2
        joins = [steps_of(client, t["id"])["join"] for t in tasks]
        for join in joins:
            error = join["error"]
            assert error["error_type"] == "parent_result_unavailable" and error["retryable"]
            assert '"big"' in error["message"] or "'big'" in error["message"]

        letters = list(client.iter_dead_letters(namespace="pyrefs", error_type="parent_result_unavailable", limit=1))
        assert sorted(d["step_id"] for d in letters) == sorted(j["id"] for j in joins)

        blocker.blocking = False
        retried = client.retry_dead_letters([joins[0]["id"]])
        assert (retried["matched"], retried["applied"], retried["refused"]) == (1, 1, [])
        assert client.wait_for_task(tasks[0]["id"], timeout=60)["state"] == "complete"
        assert steps_of(client, tasks[0]["id"])["join"]["result"]["big"] == BIG

        resolved = client.resolve_dead_letters(
            filter={"namespace": "pyrefs", "error_type": "parent_result_unavailable"}, result={"by": "hand"})
        assert (resolved["matched"], resolved["applied"], resolved["more"]) == (1, 1, False)
        assert client.wait_for_task(tasks[1]["id"], timeout=60)["state"] == "complete"
        assert steps_of(client, tasks[1]["id"])["join"]["result"] == {"by": "hand"}
        assert client.list_dead_letters(namespace="pyrefs")["dead_letters"] == []
        with pytest.raises(ValueError):
            client.retry_dead_letters()
    finally:
        worker.stop()
        thread.join(30)
        blocker.close()


def test_failure_texts_over_the_limits_are_shortened_to_fit(client: Client, server: Server) -> None:
    worker = make_worker("py-loud", loud=True)
    thread = running(worker, server.url)
    try:
        task = client.create_task("pyloud/loud", {})
        assert client.wait_for_task(task["id"], timeout=60)["state"] == "failed"
    finally:
        worker.stop()
        thread.join(30)
    error = wait_until("the failure recorded", lambda: steps_of(client, task["id"])["only"]["error"])
    # 4096 bytes of UTF-8 end inside an "é": it goes whole.
    assert error["message"] == "a" + "é" * 2047
    assert error["error_type"] == "t" * 128
    assert worker.stats.failed == 1
