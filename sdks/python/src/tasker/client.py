"""The Tasker client: templates, namespaces, tasks, steps and the worker plane.

:class:`Client` is the one implementation; :class:`AsyncClient` runs the
same calls in a thread (``asyncio.to_thread``), so both behave alike. Every
method maps to one endpoint of docs/api.md and returns the server's JSON.

Operator calls that are safe to repeat (reads, template registration,
namespace creation, a task create that carries an idempotency key, cancel)
are retried through transport errors and 5xx answers with capped backoff
for up to ``retry_for`` seconds. A create without an idempotency key is
sent once: a lost reply could otherwise create the task twice. The
worker-plane calls are never retried here: the worker runtime decides.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, TypeVar, Union, cast

from .backoff import Backoff
from .errors import ApiError, TransportError
from .transport import Transport, quote_path
from .operations import Operations
from .types import TERMINAL_TASK_STATES, ClaimedStep, HistoryPage, Step, Task, TaskPage, Transition

__all__ = ["Client", "AsyncClient", "DEFAULT_SERVER"]

DEFAULT_SERVER = "http://127.0.0.1:8080"

T = TypeVar("T")
TemplateSource = Union[str, "os.PathLike[str]", Mapping[str, Any]]


class Client(Operations):
    """A synchronous client of one Tasker server (or load balancer).

    ``server`` defaults to ``$TASKER_SERVER`` (else ``http://127.0.0.1:8080``)
    and ``token`` to ``$TASKER_TOKEN``. Thread-safe: each thread keeps its
    own keep-alive connection.
    """

    def __init__(
        self,
        server: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
        retry_for: float = 30.0,
        backoff: Backoff = Backoff(),
    ) -> None:
        server = server or os.environ.get("TASKER_SERVER") or DEFAULT_SERVER
        token = token if token is not None else (os.environ.get("TASKER_TOKEN") or None)
        self.transport = Transport(server, token, timeout)
        self.retry_for = retry_for
        self.backoff = backoff

    @property
    def server(self) -> str:
        return self.transport.base_url

    def close(self) -> None:
        """Closes the calling thread's connection."""
        self.transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing -------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, *, retry: bool = False, **kw: Any) -> Any:
        if not retry:
            return self.transport.request(method, path, body, **kw)[1]
        started = time.monotonic()
        failures = 0
        while True:
            try:
                return self.transport.request(method, path, body, **kw)[1]
            except (TransportError, ApiError) as error:
                if isinstance(error, ApiError) and not error.temporary:
                    raise
                failures += 1
                retry_after = error.retry_after if isinstance(error, ApiError) else None
                wait = self.backoff.next_delay(failures, retry_after)
                if time.monotonic() - started + wait > self.retry_for:
                    raise
                time.sleep(wait)

    # ---- probes ---------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        return cast(Dict[str, Any], self._call("GET", "/health"))

    def cluster(self) -> Dict[str, Any]:
        return cast(Dict[str, Any], self._call("GET", "/v1/cluster", retry=True))

    # ---- namespaces and templates --------------------------------------

    def create_namespace(self, name: str) -> Dict[str, Any]:
        """Creates a namespace (or returns the existing one)."""
        return cast(Dict[str, Any], self._call("POST", "/v1/namespaces", {"name": name}, retry=True))

    def list_namespaces(self) -> List[Dict[str, Any]]:
        return cast(List[Dict[str, Any]], self._call("GET", "/v1/namespaces", retry=True)["namespaces"])

    def register_template(self, source: TemplateSource) -> Dict[str, Any]:
        """Registers a template from a YAML or JSON file path, a YAML/JSON
        string, or a dict. Registering the same content again is a no-op;
        other content under the same version is 409 ``template_conflict``."""
        if isinstance(source, Mapping):
            return cast(Dict[str, Any], self._call("POST", "/v1/templates", dict(source), retry=True))
        text: str
        if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source and Path(source).is_file()):
            text = Path(source).read_text(encoding="utf-8")
        else:
            text = str(source)
        stripped = text.lstrip()
        if stripped.startswith("{"):
            raw, content_type = text.encode(), "application/json"
        else:
            raw, content_type = text.encode(), "application/yaml"
        return cast(
            Dict[str, Any],
            self._call("POST", "/v1/templates", raw_body=raw, content_type=content_type, retry=True),
        )

    def list_templates(self, namespace: Optional[str] = None) -> List[Dict[str, Any]]:
        reply = self._call("GET", "/v1/templates", query={"namespace": namespace}, retry=True)
        return cast(List[Dict[str, Any]], reply["templates"])

    def get_template(self, namespace: str, name: str, version: Optional[str] = None) -> Dict[str, Any]:
        path = f"/v1/templates/{quote_path(namespace)}/{quote_path(name)}"
        return cast(Dict[str, Any], self._call("GET", path, query={"version": version}, retry=True))

    # ---- tasks ----------------------------------------------------------

    def create_task(
        self,
        template: str,
        context: Optional[Mapping[str, Any]] = None,
        *,
        namespace: Optional[str] = None,
        version: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        tags: Optional[List[str]] = None,
        deadline: Optional[str] = None,
    ) -> Task:
        """Creates a task of ``template`` (``"name"`` or ``"namespace/name"``).

        ``deadline`` (a duration such as ``"30m"``) is how long the task may
        take from now before it fails with ``deadline_exceeded``; without
        one the template's applies, if any.

        With an ``idempotency_key`` the create is retried through outages and
        a repeat returns the same task; without one it is sent once."""
        if namespace is None and "/" in template:
            namespace, template = template.split("/", 1)
        body: Dict[str, Any] = {"template": template, "context": dict(context or {})}
        if namespace is not None:
            body["namespace"] = namespace
        if version is not None:
            body["version"] = version
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        if tags:
            body["tags"] = list(tags)
        if deadline is not None:
            body["deadline"] = deadline
        return cast(Task, self._call("POST", "/v1/tasks", body, retry=idempotency_key is not None))

    def create_tasks(self, tasks: List[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """Creates up to 1000 tasks in one request (bodies as for
        ``POST /v1/tasks``); returns one result per item, in order."""
        reply = self._call("POST", "/v1/tasks/batch", {"tasks": [dict(t) for t in tasks]})
        return cast(List[Dict[str, Any]], reply["results"])

    def get_task(self, task_id: str) -> Task:
        return cast(Task, self._call("GET", f"/v1/tasks/{quote_path(task_id)}", retry=True))

    def list_tasks(
        self,
        *,
        namespace: Optional[str] = None,
        template: Optional[str] = None,
        state: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        include: Optional[str] = None,
    ) -> TaskPage:
        """One page of tasks, newest first; pass ``next_cursor`` on for the next.

        The tasks come without their ``context`` unless ``include="context"``."""
        query = {
            "namespace": namespace,
            "template": template,
            "state": state,
            "limit": limit,
            "cursor": cursor,
            "include": include,
        }
        return cast(TaskPage, self._call("GET", "/v1/tasks", query=query, retry=True))

    def iter_tasks(self, **filters: Any) -> Iterator[Task]:
        """Every task matching the filters of :meth:`list_tasks`, page by page."""
        cursor: Optional[str] = None
        while True:
            page = self.list_tasks(cursor=cursor, **filters)
            yield from page["tasks"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    def task_steps(self, task_id: str, *, results: bool = True) -> List[Step]:
        """The steps of a task, with their results unless ``results=False``
        (the server leaves the key out then: a smaller answer)."""
        query = {"include": "result"} if results else None
        reply = self._call("GET", f"/v1/tasks/{quote_path(task_id)}/steps", query=query, retry=True)
        return cast(List[Step], reply["steps"])

    def task_history(self, task_id: str) -> List[Transition]:
        """The task's whole audit history, oldest first, read a page at a time."""
        transitions: List[Transition] = []
        cursor: Optional[str] = None
        while True:
            page = self.task_history_page(task_id, cursor=cursor)
            transitions.extend(page["transitions"])
            cursor = page["next_cursor"]
            if not cursor:
                return transitions

    def task_history_page(
        self, task_id: str, *, cursor: Optional[str] = None, limit: Optional[int] = None
    ) -> HistoryPage:
        """One page of the task's history: up to ``limit`` transitions (the
        server's default, 200, when None) after ``cursor``, the previous
        page's ``next_cursor``."""
        query = {"cursor": cursor, "limit": limit}
        path = f"/v1/tasks/{quote_path(task_id)}/history"
        return cast(HistoryPage, self._call("GET", path, query=query, retry=True))

    def cancel_task(self, task_id: str, reason: Optional[str] = None) -> Task:
        body = {"reason": reason} if reason is not None else None
        return cast(Task, self._call("POST", f"/v1/tasks/{quote_path(task_id)}/cancel", body, retry=True))

    def watch_task(
        self, task_id: str, *, interval: float = 0.5, timeout: Optional[float] = None
    ) -> Iterator[Task]:
        """Yields the task whenever its state or one of its steps' states
        changed, until the task is complete, failed or cancelled.

        Raises :class:`TimeoutError` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: Optional[str] = None
        while True:
            task = self.get_task(task_id)
            steps = self.task_steps(task_id, results=False)
            fingerprint = json.dumps(
                [task["state"], sorted((s["name"], s["state"], s["attempt"]) for s in steps)]
            )
            if fingerprint != seen:
                seen = fingerprint
                yield task
            if task["state"] in TERMINAL_TASK_STATES:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} still {task['state']} after {timeout}s")
            time.sleep(interval)

    def wait_for_task(self, task_id: str, *, timeout: Optional[float] = None, interval: float = 0.2) -> Task:
        """The task once it is complete, failed or cancelled."""
        last: Optional[Task] = None
        for last in self.watch_task(task_id, interval=interval, timeout=timeout):
            pass
        assert last is not None
        return last

    # ---- steps ----------------------------------------------------------

    def get_step(self, step_id: str) -> Step:
        return cast(Step, self._call("GET", f"/v1/steps/{quote_path(step_id)}", retry=True))

    def retry_step(self, step_id: str) -> Step:
        """Runs a failed step again with a fresh budget of attempts."""
        return cast(Step, self._call("POST", f"/v1/steps/{quote_path(step_id)}/retry"))

    def resolve_step(self, step_id: str, result: Any = None) -> Step:
        """Marks a failed or pending step resolved with ``result``."""
        return cast(Step, self._call("POST", f"/v1/steps/{quote_path(step_id)}/resolve", {"result": result}))

    # ---- worker plane (no retries here: the worker runtime decides) -----

    def register_worker(
        self,
        worker_id: str,
        namespaces: List[str],
        handlers: List[str],
        *,
        concurrency: int = 1,
        version: Optional[str] = None,
    ) -> Dict[str, Any]:
        body = {
            "worker_id": worker_id,
            "namespaces": namespaces,
            "handlers": handlers,
            "concurrency": concurrency,
            "version": version,
        }
        return cast(Dict[str, Any], self._call("POST", "/v1/workers/register", body))

    def poll(self, worker_id: str, namespaces: List[str], max_steps: int, wait_ms: int) -> List[ClaimedStep]:
        body = {"namespaces": namespaces, "max": max_steps, "wait_ms": wait_ms}
        reply = self._call(
            "POST", f"/v1/workers/{quote_path(worker_id)}/poll", body, timeout=wait_ms / 1000 + 10
        )
        return cast(List[ClaimedStep], reply["steps"])

    def heartbeat(self, step_id: str, attempt: int, token: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        body = {"attempt": attempt, "token": token}
        return cast(
            Dict[str, Any],
            self._call("POST", f"/v1/steps/{quote_path(step_id)}/heartbeat", body, timeout=timeout),
        )

    def complete(
        self, step_id: str, attempt: int, token: str, result: Any, *, next: Optional[Dict[str, Any]] = None
    ) -> Dict[str, Any]:
        body: Dict[str, Any] = {"attempt": attempt, "token": token, "result": result}
        if next is not None:
            body["next"] = next
        return cast(Dict[str, Any], self._call("POST", f"/v1/steps/{quote_path(step_id)}/complete", body))

    def fail(
        self,
        step_id: str,
        attempt: int,
        token: str,
        *,
        retryable: bool,
        error_type: str,
        message: str,
        details: Any = None,
    ) -> Dict[str, Any]:
        body = {
            "attempt": attempt,
            "token": token,
            "retryable": retryable,
            "error_type": error_type,
            "message": message,
            "details": details,
        }
        return cast(Dict[str, Any], self._call("POST", f"/v1/steps/{quote_path(step_id)}/fail", body))

    def step_result(self, step_id: str) -> Any:
        """A step's result (None while it has none), through the worker plane:
        how a worker fetches a parent result its claim named in
        ``parent_result_refs`` (the worker runtime does it by itself)."""
        return self._call("GET", f"/v1/steps/{quote_path(step_id)}/result")["result"]

    def release(self, step_id: str, attempt: int, token: str) -> None:
        self._call("POST", f"/v1/steps/{quote_path(step_id)}/release", {"attempt": attempt, "token": token})

    def reports(self, reports: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Several reports in one request; one answer per report, in order."""
        return cast(List[Dict[str, Any]], self._call("POST", "/v1/steps/reports", {"reports": reports})["results"])


def _in_thread(method: Callable[..., T]) -> Callable[..., "asyncio.Future[T]"]:
    name = method.__name__

    @functools.wraps(method)
    async def call(self: "AsyncClient", *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.sync, name), *args, **kwargs)

    return call  # type: ignore[return-value]


class AsyncClient:
    """The asyncio face of :class:`Client`: the same calls, awaited. Each
    runs the synchronous implementation in a thread of the default
    executor, keeping that thread's keep-alive connection."""

    def __init__(self, server: Optional[str] = None, token: Optional[str] = None, **options: Any) -> None:
        self.sync = Client(server, token, **options)

    @property
    def server(self) -> str:
        return self.sync.server

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    health = _in_thread(Client.health)
    cluster = _in_thread(Client.cluster)
    create_namespace = _in_thread(Client.create_namespace)
    list_namespaces = _in_thread(Client.list_namespaces)
    register_template = _in_thread(Client.register_template)
    list_templates = _in_thread(Client.list_templates)
    get_template = _in_thread(Client.get_template)
    create_task = _in_thread(Client.create_task)
    create_tasks = _in_thread(Client.create_tasks)
    get_task = _in_thread(Client.get_task)
    list_tasks = _in_thread(Client.list_tasks)
    task_steps = _in_thread(Client.task_steps)
    task_history = _in_thread(Client.task_history)
    task_history_page = _in_thread(Client.task_history_page)
    cancel_task = _in_thread(Client.cancel_task)
    get_step = _in_thread(Client.get_step)
    retry_step = _in_thread(Client.retry_step)
    resolve_step = _in_thread(Client.resolve_step)
    register_worker = _in_thread(Client.register_worker)
    poll = _in_thread(Client.poll)
    heartbeat = _in_thread(Client.heartbeat)
    complete = _in_thread(Client.complete)
    fail = _in_thread(Client.fail)
    step_result = _in_thread(Client.step_result)
    release = _in_thread(Client.release)
    reports = _in_thread(Client.reports)
    list_dead_letters = _in_thread(Client.list_dead_letters)
    retry_dead_letters = _in_thread(Client.retry_dead_letters)
    resolve_dead_letters = _in_thread(Client.resolve_dead_letters)
    create_schedule = _in_thread(Client.create_schedule)
    list_schedules = _in_thread(Client.list_schedules)
    get_schedule = _in_thread(Client.get_schedule)
    update_schedule = _in_thread(Client.update_schedule)
    delete_schedule = _in_thread(Client.delete_schedule)
    pause_schedule = _in_thread(Client.pause_schedule)
    resume_schedule = _in_thread(Client.resume_schedule)
    trigger_schedule = _in_thread(Client.trigger_schedule)
    backfill_schedule = _in_thread(Client.backfill_schedule)
    schedule_fires = _in_thread(Client.schedule_fires)

    async def wait_for_task(self, task_id: str, *, timeout: Optional[float] = None, interval: float = 0.2) -> Task:
        """The task once it is complete, failed or cancelled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            task = await self.get_task(task_id)
            if task["state"] in TERMINAL_TASK_STATES:
                return task
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} still {task['state']} after {timeout}s")
            await asyncio.sleep(interval)

    async def watch_task(self, task_id: str, *, interval: float = 0.5, timeout: Optional[float] = None):  # type: ignore[no-untyped-def]
        """Async iterator over :meth:`Client.watch_task`'s changes."""
        iterator = self.sync.watch_task(task_id, interval=interval, timeout=timeout)
        sentinel = object()
        while True:
            task = await asyncio.to_thread(next, iterator, sentinel)
            if task is sentinel:
                return
            yield task
