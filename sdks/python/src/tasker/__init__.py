"""Tasker's Python SDK: a client for the HTTP API and a worker runtime.

* :class:`Client` / :class:`AsyncClient`: templates, tasks, steps.
* :class:`Worker`: step handlers by name, run with heartbeats, retries,
  concurrency and a graceful drain; ``tasker-worker module:app`` runs one.
* :class:`RetryableError` / :class:`PermanentError`: how a handler fails.
"""

from .backoff import Backoff
from .client import DEFAULT_SERVER, AsyncClient, Client
from .errors import (
    LEASE_CODES,
    ApiError,
    HandlerError,
    PermanentError,
    RetryableError,
    TaskerError,
    TransportError,
)
from .step_context import StepContext
from .worker import Worker, WorkerStats

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "ApiError",
    "Backoff",
    "Client",
    "DEFAULT_SERVER",
    "HandlerError",
    "LEASE_CODES",
    "PermanentError",
    "RetryableError",
    "StepContext",
    "TaskerError",
    "TransportError",
    "Worker",
    "WorkerStats",
    "__version__",
]
