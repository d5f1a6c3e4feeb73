"""The worker application: handlers by name, and how to run them.

::

    worker = Worker(concurrency=8)

    @worker.handler("orders", "orders.charge_payment")
    def charge(ctx: StepContext) -> dict:
        ...

    worker.run()                     # until SIGTERM / ctrl-c, then drains

A handler is a plain or an ``async`` function taking a
:class:`~tasker.StepContext` and returning a JSON-serialisable result, or
raising :class:`~tasker.RetryableError` / :class:`~tasker.PermanentError`.
The worker declares its handlers when it registers, so the server leases it
only steps it can run; it polls the namespaces its handlers live in.

This module holds configuration and registration only; the protocol is
carried out by :mod:`tasker.runtime`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from .client import Client
from .step_context import StepContext

__all__ = ["Worker", "WorkerStats", "Handler"]

Handler = Callable[[StepContext], Any]


@dataclass
class _Registered:
    namespace: str
    fn: Handler
    is_async: bool


@dataclass
class WorkerStats:
    """What a run has done so far (counts since the run started)."""

    completed: int = 0
    failed: int = 0
    released: int = 0
    #: Attempts the server ended while they ran (cancelled task, lost lease,
    #: server-side timeout): their results were not reported.
    abandoned: int = 0
    #: Reports the server refused as stale (409 with a lease code).
    stale_reports: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)


class Worker:
    """A set of step handlers and the settings to run them with.

    ``concurrency`` is how many steps run at once (one thread each; async
    handlers share one event loop). ``namespaces`` limits the worker to
    those of its handlers' namespaces (default: all of them).
    ``shutdown_grace`` is how long running steps may finish after SIGTERM
    before they are released to other workers.
    """

    def __init__(
        self,
        *,
        concurrency: int = 4,
        namespaces: Optional[Sequence[str]] = None,
        worker_id: Optional[str] = None,
        version: Optional[str] = None,
        shutdown_grace: float = 30.0,
        poll_wait_ms: int = 20_000,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        self.concurrency = concurrency
        self.namespaces: Optional[List[str]] = list(namespaces) if namespaces else None
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.version = version
        self.shutdown_grace = shutdown_grace
        self.poll_wait_ms = poll_wait_ms
        self.logger = logger or logging.getLogger("tasker.worker")
        self.stats = WorkerStats()
        self._handlers: Dict[str, _Registered] = {}
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._running = threading.Event()

    # ---- handlers -------------------------------------------------------

    def handler(self, namespace: str, name: str) -> Callable[[Handler], Handler]:
        """Decorator: ``fn`` runs steps of ``namespace`` whose template names
        handler ``name``."""

        def register(fn: Handler) -> Handler:
            self.add_handler(namespace, name, fn)
            return fn

        return register

    def add_handler(self, namespace: str, name: str, fn: Handler) -> None:
        if not namespace or not name:
            raise ValueError("a handler needs a namespace and a name")
        if name in self._handlers:
            raise ValueError(f"handler {name!r} is registered twice")
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)
        )
        self._handlers[name] = _Registered(namespace, fn, is_async)

    @property
    def handler_names(self) -> List[str]:
        """The handlers this worker declares (those of its namespaces)."""
        chosen = self.active_namespaces
        return sorted(name for name, h in self._handlers.items() if h.namespace in chosen)

    @property
    def active_namespaces(self) -> List[str]:
        """The namespaces this worker polls."""
        mine = sorted({h.namespace for h in self._handlers.values()})
        if self.namespaces is None:
            return mine
        return [ns for ns in mine if ns in self.namespaces]

    def _lookup(self, name: str) -> Optional[_Registered]:
        registered = self._handlers.get(name)
        if registered is None or registered.namespace not in self.active_namespaces:
            return None
        return registered

    # ---- running --------------------------------------------------------

    def run(
        self,
        server: Optional[str] = None,
        token: Optional[str] = None,
        *,
        client: Optional[Client] = None,
        install_signal_handlers: Optional[bool] = None,
    ) -> None:
        """Runs until :meth:`stop` (or SIGTERM/SIGINT), then drains: stops
        polling, lets running steps finish for ``shutdown_grace`` seconds
        and releases the rest. A second signal ends the grace at once.

        Raises :class:`~tasker.ApiError` when the server refuses the worker
        for good (a 401/403 or another 4xx that retrying cannot fix)."""
        from .runtime import Runtime

        if not self.active_namespaces:
            raise ValueError(
                "this worker has no handlers in the namespaces it was asked to poll"
                f" ({', '.join(self.namespaces or []) or 'none'})"
            )
        client = client or Client(server, token)
        if install_signal_handlers is None:
            install_signal_handlers = threading.current_thread() is threading.main_thread()
        previous: Dict[int, Any] = {}
        if install_signal_handlers:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        self._stop.clear()
        self._hurry.clear()
        self._running.set()
        try:
            Runtime(self, client).run(self._stop, self._hurry)
        finally:
            self._running.clear()
            for number, handler in previous.items():
                signal.signal(number, handler)

    async def run_async(self, server: Optional[str] = None, token: Optional[str] = None, **kw: Any) -> None:
        """:meth:`run` from asyncio code (in a thread; stop it with :meth:`stop`)."""
        await asyncio.to_thread(self.run, server, token, install_signal_handlers=False, **kw)

    def stop(self, *, hurry: bool = False) -> None:
        """Begins a graceful drain; ``hurry`` skips the grace period."""
        if hurry:
            self._hurry.set()
        self._stop.set()

    def wait_running(self, timeout: Optional[float] = None) -> bool:
        """Waits until :meth:`run` has started (for tests and embedding)."""
        return self._running.wait(timeout)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stop.is_set():
            self.logger.warning("second signal: releasing running steps now", extra={"event": "hurry"})
            self._hurry.set()
        else:
            self.logger.info(
                "signal %s: draining", signal.Signals(signum).name, extra={"event": "draining"}
            )
        self._stop.set()
