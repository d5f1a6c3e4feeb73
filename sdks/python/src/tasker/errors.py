"""Errors raised by the client and the ones a step handler raises.

A handler signals how its failure should be treated by raising
:class:`RetryableError` (tried again after the template's backoff while
attempts are left) or :class:`PermanentError` (the step fails at once). Any
other exception is reported as a retryable failure of type ``exception``.

The client raises :class:`ApiError` for an answer of the server that is not
a success (with the server's stable ``code``) and :class:`TransportError`
when no answer arrived at all.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
    "TaskerError",
    "ApiError",
    "TransportError",
    "HandlerError",
    "RetryableError",
    "PermanentError",
    "LEASE_CODES",
]

#: 409 codes that end an attempt on the server: stop, send no report.
LEASE_CODES = frozenset(
    {"lease_expired", "lease_mismatch", "task_cancelled", "step_not_running", "step_timed_out"}
)


class TaskerError(Exception):
    """Base of every error this package raises."""


class TransportError(TaskerError):
    """No answer from the server: refused, reset, timed out. Temporary."""


class ApiError(TaskerError):
    """The server answered with an error: ``{"error": {code, message, details}}``.

    ``status`` is the HTTP status; ``code`` the stable machine code (or
    ``http_<status>`` when a proxy answered without one); ``retry_after`` the
    ``Retry-After`` header in seconds, when there was one.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after

    @property
    def temporary(self) -> bool:
        """A 5xx: the server, its database or a proxy is unavailable for now."""
        return self.status >= 500

    @property
    def lease_lost(self) -> bool:
        """A 409 lease code: the attempt is over on the server."""
        return self.status == 409 and self.code in LEASE_CODES


class HandlerError(TaskerError):
    """A step handler's failure, reported with ``error_type`` and ``details``.

    Raise one of its two kinds: :class:`RetryableError` or
    :class:`PermanentError`.
    """

    retryable: bool = True

    def __init__(
        self, message: str, *, error_type: str = "handler_error", details: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.details = details


class RetryableError(HandlerError):
    """A failure that may pass: the step runs again after the template's
    backoff while it has attempts left."""

    retryable = True


class PermanentError(HandlerError):
    """A failure that trying again cannot cure: the step fails at once,
    without using its other attempts."""

    retryable = False
