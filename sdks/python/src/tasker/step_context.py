"""What a step handler receives: the claimed step and its cancellation.

A :class:`StepContext` wraps one claimed attempt: the task context, the
results of the step's parents, the step's ``config`` from the template and
the attempt number. It also says when the attempt should stop (the task was
cancelled, the lease was lost, the step's timeout passed, the worker is
shutting down): long handlers check :attr:`StepContext.cancelled` or sleep
with :meth:`StepContext.sleep`, which wakes at once on cancellation. An
async handler is cancelled (``asyncio.CancelledError``) instead.

It never talks to the server itself: the worker runtime heartbeats and
reports for it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Mapping, MutableMapping, Optional, Tuple

from .types import ClaimedStep

__all__ = ["StepContext"]


class _StepLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> Tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class StepContext:
    """One attempt of one step, as handed to its handler."""

    def __init__(self, step: ClaimedStep, worker_id: str, logger: logging.Logger) -> None:
        self.step = step
        self.worker_id = worker_id
        self._cancelled = threading.Event()
        self._reason: Optional[str] = None
        self._callbacks: List[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self.logger: logging.LoggerAdapter = _StepLogger(  # type: ignore[type-arg]
            logger,
            {
                "task_id": step["task_id"],
                "step_id": step["lease"]["step_id"],
                "step": step["step_name"],
                "attempt": step["lease"]["attempt"],
            },
        )

    # ---- what the step is ----------------------------------------------

    @property
    def task_id(self) -> str:
        return self.step["task_id"]

    @property
    def step_id(self) -> str:
        return self.step["lease"]["step_id"]

    @property
    def step_name(self) -> str:
        return self.step["step_name"]

    @property
    def handler(self) -> str:
        return self.step["handler"]

    @property
    def namespace(self) -> str:
        return self.step["namespace"]

    @property
    def template(self) -> str:
        """``namespace/name@version`` of the task's template."""
        return f"{self.step['namespace']}/{self.step['template_name']}@{self.step['template_version']}"

    @property
    def attempt(self) -> int:
        """This attempt's number, from 1."""
        return self.step["lease"]["attempt"]

    @property
    def max_attempts(self) -> int:
        return self.step["max_attempts"]

    @property
    def timeout(self) -> float:
        """The step's timeout in seconds, counted from the claim."""
        return self.step["timeout_ms"] / 1000.0

    @property
    def context(self) -> Dict[str, Any]:
        """The task's context."""
        return self.step["context"]

    @property
    def config(self) -> Any:
        """The step's ``config`` from the template (``None`` when absent)."""
        return self.step.get("config")

    @property
    def parent_results(self) -> Mapping[str, Any]:
        """The results of the steps this one depends on, by step name."""
        return self.step["parent_results"]

    def parent(self, name: str) -> Any:
        """The result of parent step ``name`` (``None`` when there is none)."""
        return self.step["parent_results"].get(name)

    # ---- stopping -------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """True once the attempt should stop; its result would not be recorded."""
        return self._cancelled.is_set()

    @property
    def cancel_reason(self) -> Optional[str]:
        """Why: ``task_cancelled``, a 409 lease code, ``timeout`` or ``shutdown``."""
        return self._reason

    def sleep(self, seconds: float) -> bool:
        """Sleeps ``seconds``, or less when the attempt is cancelled meanwhile.
        Returns True when it slept the whole time."""
        return not self._cancelled.wait(seconds)

    def _cancel(self, reason: str) -> None:
        with self._lock:
            if self._cancelled.is_set():
                return
            self._reason = reason
            self._cancelled.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(reason)

    def _on_cancel(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            if not self._cancelled.is_set():
                self._callbacks.append(callback)
                return
            reason = self._reason or "cancelled"
        callback(reason)

    def __repr__(self) -> str:
        return f"<StepContext {self.template} step {self.step_name!r} attempt {self.attempt} of task {self.task_id}>"
