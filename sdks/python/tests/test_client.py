"""The client against a real server: templates from files, strings and
dicts; tasks with idempotency keys; listing, watching, cancelling; errors
with the server's codes; the async client; async handlers in a worker run
in this process."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict

import pytest

from conftest import TEMPLATES, Server, register_examples
from tasker import ApiError, AsyncClient, Client, PermanentError, StepContext, TransportError, Worker

ECHO = {
    "namespace": "pyclient",
    "name": "echo",
    "version": "1",
    "steps": [
        {"name": "first", "handler": "pyclient.echo", "timeout": "30s"},
        {"name": "second", "handler": "pyclient.echo_async", "depends_on": ["first"], "timeout": "30s",
         "config": {"suffix": "!"}},
    ],
}


@pytest.fixture(scope="module", autouse=True)
def templates(client: Client) -> None:
    register_examples(client)
    client.create_namespace("pyclient")
    client.register_template(ECHO)


def test_registering_the_same_template_again_is_a_no_op_and_other_content_conflicts(client: Client) -> None:
    again = client.register_template(TEMPLATES / "linear.yaml")
    assert (again["namespace"], again["name"], again["version"]) == ("examples", "linear", "1")
    from_text = client.register_template((TEMPLATES / "diamond.yaml").read_text())
    assert from_text["name"] == "diamond"
    changed = dict(ECHO, description="something else")
    with pytest.raises(ApiError) as refused:
        client.register_template(changed)
    assert (refused.value.status, refused.value.code) == (409, "template_conflict")


def test_an_invalid_template_names_its_problems(client: Client) -> None:
    with pytest.raises(ApiError) as refused:
        client.register_template({"namespace": "pyclient", "name": "bad", "version": "1", "steps": [
            {"name": "a", "handler": "h", "depends_on": ["missing"]}]})
    assert refused.value.status == 422 and refused.value.code == "template_invalid"
    assert any("missing" in d["message"] for d in refused.value.details), refused.value.details


def test_an_idempotency_key_stands_for_one_task(client: Client) -> None:
    first = client.create_task("examples/diamond", {"start": 7}, idempotency_key="order-7")
    again = client.create_task("diamond", {"start": 7}, namespace="examples", idempotency_key="order-7")
    assert again["id"] == first["id"]
    with pytest.raises(ApiError) as refused:
        client.create_task("examples/diamond", {"start": 8}, idempotency_key="order-7")
    assert (refused.value.status, refused.value.code) == (409, "idempotency_conflict")
    assert client.get_task(first["id"])["idempotency_key"] == "order-7"


def test_list_filters_and_pages(client: Client) -> None:
    made = {client.create_task("examples/tree", {"start": n}, tags=["paging"])["id"] for n in range(5)}
    page = client.list_tasks(namespace="examples", template="tree", limit=2)
    assert len(page["tasks"]) == 2 and page["next_cursor"]
    every = {t["id"] for t in client.iter_tasks(namespace="examples", template="tree", limit=2)}
    assert made <= every
    assert all(t["template_name"] == "tree" for t in client.iter_tasks(template="tree"))


def test_cancel_and_watch(client: Client) -> None:
    task = client.create_task("examples/linear", {"even_number": 4})
    cancelled = client.cancel_task(task["id"], "no longer wanted")
    assert cancelled["state"] == "cancelled"
    seen = list(client.watch_task(task["id"], timeout=10))
    assert seen[-1]["state"] == "cancelled"
    with pytest.raises(ApiError) as refused:
        client.cancel_task(task["id"])
    assert refused.value.code == "task_finished"


def test_errors_carry_the_servers_code(client: Client) -> None:
    with pytest.raises(ApiError) as missing:
        client.get_task("00000000-0000-7000-8000-000000000000")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with pytest.raises(ApiError) as invalid:
        client.create_task("examples/linear", {"even_number": 3})
    assert (invalid.value.status, invalid.value.code) == (422, "context_invalid")


def test_an_unreachable_server_is_a_transport_error() -> None:
    with pytest.raises(TransportError):
        Client("http://127.0.0.1:1", token="", retry_for=0).health()


def test_the_async_client_and_async_handlers(server: Server) -> None:
    worker = Worker(concurrency=2, worker_id="py-async")

    @worker.handler("pyclient", "pyclient.echo")
    def echo(ctx: StepContext) -> Dict[str, Any]:
        if "word" not in ctx.context:
            raise PermanentError("context.word is missing", error_type="bad_context")
        return {"word": ctx.context["word"], "attempt": ctx.attempt}

    @worker.handler("pyclient", "pyclient.echo_async")
    async def echo_async(ctx: StepContext) -> Dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"word": ctx.parent("first")["word"].upper() + ctx.config["suffix"]}

    thread = threading.Thread(target=worker.run, kwargs={"server": server.url, "token": ""}, daemon=True)
    thread.start()

    async def scenario() -> None:
        client = AsyncClient(server.url, token="")
        task = await client.create_task("pyclient/echo", {"word": "hello"}, idempotency_key="async-1")
        done = await client.wait_for_task(task["id"], timeout=30)
        assert done["state"] == "complete"
        steps = {s["name"]: s for s in await client.task_steps(task["id"])}
        assert steps["second"]["result"] == {"word": "HELLO!"}
        assert steps["first"]["worker_id"] == "py-async"
        states = [t["state"] async for t in client.watch_task(task["id"], timeout=5)]
        assert states == ["complete"]
        bad = await client.create_task("pyclient/echo", {})
        failed = await client.wait_for_task(bad["id"], timeout=30)
        assert failed["state"] == "failed"
        step = (await client.task_steps(bad["id"]))[0]
        assert step["error"]["error_type"] == "bad_context" and not step["error"]["retryable"]

    try:
        asyncio.run(scenario())
    finally:
        worker.stop()
        thread.join(30)
    assert worker.stats.completed == 2 and worker.stats.failed == 1
