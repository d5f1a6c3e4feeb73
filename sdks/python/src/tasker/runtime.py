"""The worker protocol of docs/worker-protocol.md, carried out with threads.

::

    poller ──poll(max = free slots)──▶ queue ──▶ slot threads (concurrency)
                                                 run handler ─▶ complete (+ next) ─▶ run next
    heartbeater: every heartbeat_interval per running attempt; cancels the
                 attempt on "cancelled" or a 409 lease code, and at its timeout

Failures and what they do: a transport error or 5xx is retried with capped
backoff (polls re-register after it, reports are re-sent for up to 60 s);
a 409 lease code ends the attempt without a report (a refused report is
logged as stale and counted, never raised); 404 ``worker_not_registered``
registers again; 404 ``namespace_not_found`` is logged and polled again
after a long wait; any other 4xx stops the worker with that error.

Shutdown: polling stops, steps that arrive after it are released unstarted,
running steps get the grace period, then are released. This module never
kills a handler's thread: a handler that ignores cancellation keeps its
slot until it returns, and its result is then dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .backoff import Backoff
from .client import Client
from .errors import ApiError, HandlerError, TransportError
from .limits import fit_error_type, fit_message
from .report_batch import ReportBatcher
from .step_context import StepContext
from .types import ClaimedStep

if TYPE_CHECKING:  # pragma: no cover
    from .worker import Worker, _Registered

REPORT_BUDGET = 60.0
RELEASE_BUDGET = 5.0
NAMESPACE_MISSING_WAIT = 5.0

Outcome = Tuple[str, Dict[str, Any]]  # ("complete" | "fail", body fields)


class _Attempt:
    __slots__ = ("step", "ctx", "deadline", "next_beat", "lost", "timed_out")

    def __init__(self, step: ClaimedStep, ctx: StepContext, interval: float) -> None:
        now = time.monotonic()
        self.step = step
        self.ctx = ctx
        self.deadline = now + step["timeout_ms"] / 1000.0
        self.next_beat = now + interval
        self.lost: Optional[str] = None
        self.timed_out = False

    @property
    def lease(self) -> Tuple[str, int, str]:
        lease = self.step["lease"]
        return lease["step_id"], lease["attempt"], lease["token"]


class _AsyncRunner:
    """One event loop in a thread of its own for every async handler."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="tasker-async", daemon=True).start()

    def run(self, coroutine: Any, ctx: StepContext) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        ctx._on_cancel(lambda _reason: None if future.cancel() else None)
        return future.result()


class Runtime:
    def __init__(self, worker: "Worker", client: Client) -> None:
        self.worker = worker
        self.client = client
        self.log: logging.Logger = worker.logger
        self.stats = worker.stats
        self.backoff = Backoff()
        self.reports = ReportBatcher(client.transport)
        self.namespaces = worker.active_namespaces
        self.handlers = worker.handler_names
        self.concurrency = max(1, worker.concurrency)
        self.worker_id = worker.worker_id
        self._cond = threading.Condition()
        self._free = self.concurrency
        self._attempts: Dict[str, _Attempt] = {}
        self._queue: "queue.Queue[Optional[ClaimedStep]]" = queue.Queue()
        self._stopping = threading.Event()
        self._idle = threading.Event()  # set when nothing is claimed or running
        self._idle.set()
        self._claimed = 0  # steps claimed and not yet finished, released or reported
        self._async: Optional[_AsyncRunner] = None
        self._async_lock = threading.Lock()
        self._fatal: Optional[BaseException] = None
        self._poll_thread: Optional[int] = None
        self._poller: Optional[threading.Thread] = None
        self.interval = 10.0
        self.wait_ms = worker.poll_wait_ms

    # ---- the run --------------------------------------------------------

    def run(self, stop: threading.Event, hurry: threading.Event) -> None:
        settings = self._register(stop)
        if settings is not None:
            self.interval = max(0.05, settings["heartbeat_interval_ms"] / 1000.0)
            if settings.get("max_poll_wait_ms"):
                self.wait_ms = min(self.wait_ms, int(settings["max_poll_wait_ms"]))
            self.log.info(
                "worker %s taking steps of %s from %s",
                self.worker_id,
                ", ".join(self.namespaces),
                self.client.server,
                extra={"event": "started", "worker_id": self.worker_id, "concurrency": self.concurrency},
            )
            for i in range(self.concurrency):
                threading.Thread(target=self._slot, name=f"tasker-slot-{i}", daemon=True).start()
            threading.Thread(target=self._heartbeats, name="tasker-heartbeat", daemon=True).start()
            self._poller = threading.Thread(target=self._poll, args=(stop,), name="tasker-poll", daemon=True)
            self._poller.start()
            while not stop.wait(0.5):
                pass
            self._drain(hurry)
        if self._fatal is not None:
            raise self._fatal

    def _register(self, stop: threading.Event) -> Optional[Dict[str, Any]]:
        failures = 0
        while not stop.is_set():
            try:
                return self.client.register_worker(
                    self.worker_id,
                    self.namespaces,
                    self.handlers,
                    concurrency=self.concurrency,
                    version=self.worker.version,
                )
            except (TransportError, ApiError) as error:
                if isinstance(error, ApiError) and not error.temporary:
                    self._fatal = error
                    self.log.error("registration refused: %s", error, extra={"event": "fatal"})
                    stop.set()
                    return None
                failures += 1
                wait = self._delay(failures, error)
                self.log.warning(
                    "server unavailable (%s); registering again in %.1fs", error, wait,
                    extra={"event": "unavailable"},
                )
                stop.wait(wait)
        return None

    def _delay(self, failures: int, error: BaseException) -> float:
        retry_after = error.retry_after if isinstance(error, ApiError) else None
        return self.backoff.next_delay(failures, retry_after)

    def _drain(self, hurry: threading.Event) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        grace = 0.0 if hurry.is_set() else self.worker.shutdown_grace
        deadline = time.monotonic() + grace
        self.log.info("draining: %d steps in hand, %gs grace", self._claimed, grace, extra={"event": "draining"})
        while not self._idle.is_set() and not hurry.is_set():
            if not self._idle.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    break
        # Abort the open long-poll before handing anything back, or the
        # server could hand a released step straight back to it; whatever
        # it had claimed for it is released by the server, and a reply
        # that raced the abort is released by the poller.
        if self._poll_thread is not None:
            self.client.transport.abort(self._poll_thread)
        if self._poller is not None:
            self._poller.join(2.0)
        with self._cond:
            unfinished = list(self._attempts.values())
        for attempt in unfinished:
            attempt.lost = "shutdown"
            attempt.ctx._cancel("shutdown")
            self._release(attempt.step)
        for _ in range(self.concurrency):
            self._queue.put(None)
        self.log.info("stopped", extra={"event": "stopped", **self.stats_dict()})

    def stats_dict(self) -> Dict[str, int]:
        s = self.stats
        return {
            "completed": s.completed,
            "failed": s.failed,
            "released": s.released,
            "abandoned": s.abandoned,
            "stale_reports": s.stale_reports,
        }

    # ---- claiming -------------------------------------------------------

    def _take(self, n: int) -> None:
        with self._cond:
            self._claimed += n
            if self._claimed:
                self._idle.clear()

    def _done(self, n: int = 1, free: int = 0) -> None:
        with self._cond:
            self._claimed -= n
            self._free += free
            if self._claimed == 0:
                self._idle.set()
            self._cond.notify_all()

    def _poll(self, stop: threading.Event) -> None:
        self._poll_thread = threading.get_ident()
        failures = 0
        while not self._stopping.is_set():
            with self._cond:
                while self._free == 0 and not self._stopping.is_set():
                    self._cond.wait()
                wanted = self._free
            if self._stopping.is_set():
                return
            try:
                self.log.debug("polling for %d steps", wanted, extra={"event": "poll"})
                steps = self.client.poll(self.worker_id, self.namespaces, wanted, self.wait_ms)
                self.log.debug("poll brought %d steps", len(steps), extra={"event": "polled"})
                failures = 0
            except (TransportError, ApiError) as error:
                if self._stopping.is_set():  # the drain aborted this poll
                    return
                if isinstance(error, ApiError) and error.code == "worker_not_registered":
                    self._register(stop)
                    continue
                if isinstance(error, ApiError) and error.code == "namespace_not_found":
                    self.log.error("%s; polling again in %.0fs", error.message, NAMESPACE_MISSING_WAIT,
                                   extra={"event": "namespace_not_found"})
                    self._stopping.wait(NAMESPACE_MISSING_WAIT)
                    continue
                if isinstance(error, ApiError) and not error.temporary:
                    self.log.error("poll refused: %s; stopping", error, extra={"event": "fatal"})
                    self._fatal = error
                    stop.set()
                    return
                failures += 1
                wait = self._delay(failures, error)
                self.log.warning("poll failed (%s); again in %.1fs", error, wait, extra={"event": "unavailable"})
                if self._stopping.wait(wait):
                    return
                self._register(stop)
                continue
            if not steps:
                continue
            if self._stopping.is_set():  # claimed while shutting down: hand back unstarted
                for step in steps:
                    self._release(step)
                return
            self._take(len(steps))
            with self._cond:
                self._free -= len(steps)
            for step in steps:
                self._queue.put(step)

    # ---- running steps --------------------------------------------------

    def _slot(self) -> None:
        while True:
            step = self._queue.get()
            if step is None:
                return
            chain: Optional[ClaimedStep] = step
            while chain is not None:
                if self._stopping.is_set():
                    self._release(chain)
                    break
                chain = self._run(chain)
            self._done(1, free=1)

    def _run(self, step: ClaimedStep) -> Optional[ClaimedStep]:
        """Runs one attempt and reports it; returns the step leased with the
        complete (``next``), if any."""
        ctx = StepContext(step, self.worker_id, self.log)
        attempt = _Attempt(step, ctx, self.interval)
        step_id = step["lease"]["step_id"]
        with self._cond:
            self._attempts[step_id] = attempt
        try:
            outcome = self._execute(attempt)
        finally:
            with self._cond:
                self._attempts.pop(step_id, None)
        if attempt.lost is not None:
            if attempt.lost != "shutdown":
                self.stats.add("abandoned")
                ctx.logger.info("the server ended this attempt (%s): no report", attempt.lost,
                                extra={"event": "abandoned", "reason": attempt.lost})
            return None
        if attempt.timed_out or time.monotonic() > attempt.deadline:
            outcome = _fail(True, "timeout", f"the handler ran past the step's timeout of {ctx.timeout:g}s")
        if outcome[0] == "complete":
            return self._complete(attempt, outcome[1]["result"])
        self._report_fail(attempt, outcome[1])
        return None

    def _execute(self, attempt: _Attempt) -> Outcome:
        ctx = attempt.ctx
        registered = self.worker._lookup(ctx.handler)
        if registered is None:
            return _fail(True, "handler_not_found", f"this worker has no handler {ctx.handler!r}")
        missing = self._fetch_parent_results(attempt.step)
        if missing is not None:
            return missing
        try:
            if registered.is_async:
                result = self._async_runner().run(registered.fn(ctx), ctx)
            else:
                result = registered.fn(ctx)
            return "complete", {"result": result}
        except HandlerError as error:
            return _fail(error.retryable, error.error_type, error.message, error.details)
        except (concurrent.futures.CancelledError, asyncio.CancelledError):
            return _fail(True, "cancelled", f"stopped: {ctx.cancel_reason or 'cancelled'}")
        except Exception as error:  # a bug in the handler: a later attempt may pass
            ctx.logger.exception("handler raised %s", type(error).__name__, extra={"event": "handler_exception"})
            return _fail(
                True,
                "exception",
                f"{type(error).__name__}: {error}",
                {"exception": type(error).__name__, "traceback": traceback.format_exc()[-4000:]},
            )

    def _fetch_parent_results(self, step: ClaimedStep) -> Optional[Outcome]:
        """Fetches the parent results the claim left out (named in
        ``parent_result_refs``) into ``parent_results``, so the handler sees
        every parent; a fetch that fails fails the attempt as retryable
        ``parent_result_unavailable``."""
        refs = step.get("parent_result_refs") or {}
        for name, step_id in refs.items():
            try:
                step["parent_results"][name] = self.client.step_result(step_id)
            except (TransportError, ApiError) as error:
                return _fail(
                    True,
                    "parent_result_unavailable",
                    f"cannot fetch the result of parent step {name!r}: {error}",
                )
        return None

    def _async_runner(self) -> _AsyncRunner:
        with self._async_lock:
            if self._async is None:
                self._async = _AsyncRunner()
            return self._async

    def _complete(self, attempt: _Attempt, result: Any) -> Optional[ClaimedStep]:
        step_id, number, token = attempt.lease
        ask = None if self._stopping.is_set() else {"worker_id": self.worker_id, "namespaces": self.namespaces, "max": 1}
        try:
            report = {"type": "complete", "step_id": step_id, "attempt": number, "token": token, "result": result}
            if ask is not None:
                report["next"] = ask
            reply = self._send(lambda: self.reports.send(report), attempt.ctx)
        except (TypeError, ValueError) as error:  # not JSON-serialisable
            self._report_fail(attempt, _fail(False, "result_rejected", f"the result is not JSON: {error}")[1])
            return None
        except ApiError as error:
            if error.status == 404 and ask is not None:
                report.pop("next", None)
                reply = self._send(lambda: self.reports.send(report), attempt.ctx)
            elif error.status in (400, 413, 422):
                self._report_fail(attempt, _fail(False, "result_rejected", f"the server refused the result: {error}")[1])
                return None
            else:
                attempt.ctx.logger.error("complete refused: %s", error, extra={"event": "report_refused"})
                return None
        if reply is None:
            return None
        self.stats.add("completed")
        nexts: List[ClaimedStep] = reply.get("next") or []
        if self._stopping.is_set():
            for extra in nexts:
                self._release(extra)
            return None
        for extra in nexts[1:]:  # asked for one; hand back any more
            self._release(extra)
        return nexts[0] if nexts else None

    def _report_fail(self, attempt: _Attempt, fields: Dict[str, Any]) -> None:
        step_id, number, token = attempt.lease
        try:
            report = {"type": "fail", "step_id": step_id, "attempt": number, "token": token, **fields}
            reply = self._send(lambda: self.reports.send(report), attempt.ctx)
        except ApiError as error:
            attempt.ctx.logger.error("fail refused: %s", error, extra={"event": "report_refused"})
            return
        if reply is not None:
            self.stats.add("failed")
            attempt.ctx.logger.info(
                "failed (%s, %s): %s", fields["error_type"],
                "retryable" if fields["retryable"] else "permanent", fields["message"],
                extra={"event": "step_failed", "error_type": fields["error_type"], "retryable": fields["retryable"]},
            )

    def _send(self, call: Callable[[], Any], ctx: Optional[StepContext], budget: float = REPORT_BUDGET) -> Any:
        """``call()`` re-sent through transport errors and 5xx for up to
        ``budget`` seconds; None when it gave up or the server refused the
        lease as stale. Other errors are raised."""
        started = time.monotonic()
        failures = 0
        log = ctx.logger if ctx is not None else self.log
        while True:
            try:
                reply = call()
                return {} if reply is None else reply
            except ApiError as error:
                if error.lease_lost:
                    self.stats.add("stale_reports")
                    log.warning("stale report refused (%s): another attempt or the server had already decided",
                                error.code, extra={"event": "stale_report", "code": error.code})
                    return None
                if not error.temporary:
                    raise
                last: BaseException = error
            except TransportError as error:
                last = error
            failures += 1
            wait = self._delay(failures, last)
            if time.monotonic() - started + wait > budget:
                log.error("giving up on a report after %.0fs (%s); the lease will expire",
                          time.monotonic() - started, last, extra={"event": "report_abandoned"})
                return None
            log.warning("report failed (%s); again in %.1fs", last, wait, extra={"event": "unavailable"})
            time.sleep(wait)

    def _release(self, step: ClaimedStep) -> None:
        lease = step["lease"]
        try:
            sent = self._send(
                lambda: self.reports.send({"type": "release", **lease}),
                None,
                RELEASE_BUDGET,
            )
        except ApiError as error:
            self.log.error("release refused: %s", error, extra={"event": "report_refused"})
            return
        if sent is not None:
            self.stats.add("released")
            self.log.info("released step %s", step["step_name"],
                          extra={"event": "released", "step_id": lease["step_id"], "task_id": step["task_id"]})

    # ---- heartbeats -----------------------------------------------------

    def _heartbeats(self) -> None:
        while True:
            now = time.monotonic()
            with self._cond:
                running = list(self._attempts.values())
            for attempt in running:
                if attempt.lost is not None:
                    continue
                if now >= attempt.deadline and not attempt.timed_out:
                    attempt.timed_out = True
                    attempt.ctx._cancel("timeout")
                if now >= attempt.next_beat:
                    self._beat(attempt)
            if self._stopping.is_set() and self._idle.is_set():
                return
            soonest = min([a.next_beat for a in running] + [now + 0.25])
            time.sleep(max(0.01, min(0.25, soonest - time.monotonic())))

    def _beat(self, attempt: _Attempt) -> None:
        step_id, number, token = attempt.lease
        try:
            reply = self.client.heartbeat(step_id, number, token, timeout=max(1.0, self.interval))
        except ApiError as error:
            if error.lease_lost:
                attempt.lost = error.code
                attempt.ctx._cancel(error.code)
                return
            attempt.next_beat = time.monotonic() + (min(1.0, self.interval / 3) if error.temporary else self.interval)
            attempt.ctx.logger.warning("heartbeat failed: %s", error, extra={"event": "heartbeat_failed"})
            return
        except TransportError as error:
            attempt.next_beat = time.monotonic() + min(1.0, self.interval / 3)
            attempt.ctx.logger.warning("heartbeat failed: %s", error, extra={"event": "heartbeat_failed"})
            return
        if reply.get("cancelled"):
            attempt.lost = "task_cancelled"
            attempt.ctx._cancel("task_cancelled")
            return
        attempt.next_beat = time.monotonic() + self.interval


def _fail(retryable: bool, error_type: str, message: str, details: Any = None) -> Outcome:
    """A fail report's fields, the error type and message shortened to the
    protocol's limits (a longer one would be refused and the failure lost)."""
    return "fail", {
        "retryable": retryable,
        "error_type": fit_error_type(str(error_type)),
        "message": fit_message(str(message)),
        "details": details,
    }
