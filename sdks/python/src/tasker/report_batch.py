"""Group commit of a worker's reports (complete, fail, release).

A report goes out at once on its own endpoint while fewer than
``max_in_flight`` report requests are in flight. Reports that finish while
that many are in flight wait, and go together in the next request
(``POST /v1/steps/reports``, at most 256), so a busy worker sends fewer
requests and the server writes them in fewer transactions, while a lone
report is never held back to fill a batch.

Each report gets exactly the answer its own endpoint would have given: its
body, or the :class:`ApiError` / :class:`TransportError` it would have
raised (a whole request that failed fails each of its reports). Retrying is
the caller's business. A server without the batch endpoint (404), or a
batch refused whole with a 4xx, gets the same reports one by one.

::

    slot ─ send(report) ─┬─ < max in flight: own request ──────────────┐
                         └─ else wait; the first waiter takes all that  ├─▶ answers
                            wait (≤ 256) once a request finishes ──────┘
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional

from .errors import ApiError, TransportError
from .transport import Transport, quote_path

__all__ = ["ReportBatcher", "MAX_REPORTS"]

MAX_REPORTS = 256


class _Pending:
    __slots__ = ("report", "taken", "done", "reply", "error")

    def __init__(self, report: Dict[str, Any]) -> None:
        self.report = report
        self.taken = False
        self.done = threading.Event()
        self.reply: Any = None
        self.error: Optional[BaseException] = None

    def settle(self, reply: Any = None, error: Optional[BaseException] = None) -> None:
        self.reply, self.error = reply, error
        self.done.set()


class ReportBatcher:
    def __init__(self, transport: Transport, max_in_flight: int = 4) -> None:
        self.transport = transport
        self.max_in_flight = max_in_flight
        self.batches_supported = True
        self._cond = threading.Condition()
        self._in_flight = 0
        self._waiting: List[_Pending] = []

    def send(self, report: Dict[str, Any]) -> Any:
        """Sends ``{"type", "step_id", "attempt", "token", ...}``; returns
        the endpoint's answer (None for a release) or raises its error."""
        mine = _Pending(report)
        batch: Optional[List[_Pending]] = None
        with self._cond:
            if self._in_flight < self.max_in_flight and not self._waiting:
                self._in_flight += 1
                mine.taken = True
                batch = [mine]
            else:
                self._waiting.append(mine)
                while not mine.taken:
                    if self._waiting[0] is mine and self._in_flight < self.max_in_flight:
                        batch = self._waiting[:MAX_REPORTS]
                        del self._waiting[:MAX_REPORTS]
                        for pending in batch:
                            pending.taken = True
                        self._in_flight += 1
                        break
                    self._cond.wait()
        if batch is not None:
            try:
                self._deliver(batch)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()
        mine.done.wait()
        if mine.error is not None:
            raise mine.error
        return mine.reply

    def _deliver(self, batch: List[_Pending]) -> None:
        if len(batch) == 1 or not self.batches_supported:
            for pending in batch:
                self._single(pending)
            return
        try:
            _, reply = self.transport.request("POST", "/v1/steps/reports", {"reports": [p.report for p in batch]})
        except (TypeError, ValueError):  # a result that is not JSON: only its owner should hear of it
            for pending in batch:
                self._single(pending)
            return
        except ApiError as error:
            if error.status == 404:
                self.batches_supported = False
            if 400 <= error.status < 500:
                for pending in batch:
                    self._single(pending)
                return
            for pending in batch:
                pending.settle(error=error)
            return
        except TransportError as error:
            for pending in batch:
                pending.settle(error=error)
            return
        except BaseException as error:  # pragma: no cover - never leave a waiter hanging
            for pending in batch:
                pending.settle(error=error)
            raise
        results = reply.get("results", []) if isinstance(reply, dict) else []
        for i, pending in enumerate(batch):
            entry = results[i] if i < len(results) else None
            if not isinstance(entry, dict):
                pending.settle(error=TransportError("the server answered fewer reports than it was sent"))
                continue
            status = int(entry.get("status", 500))
            body = {k: v for k, v in entry.items() if k != "status"}
            if 200 <= status < 300:
                pending.settle(reply=body or None)
            else:
                found = body.get("error")
                error_body: Dict[str, Any] = found if isinstance(found, dict) else {}
                pending.settle(error=ApiError(
                    status, str(error_body.get("code", f"http_{status}")),
                    str(error_body.get("message", "")), error_body.get("details"),
                ))

    def _single(self, pending: _Pending) -> None:
        report = dict(pending.report)
        kind = report.pop("type")
        step_id = report.pop("step_id")
        try:
            _, reply = self.transport.request("POST", f"/v1/steps/{quote_path(step_id)}/{kind}", report)
        except BaseException as error:
            pending.settle(error=error)
            return
        pending.settle(reply=reply)
