#!/usr/bin/env python3
"""A Tasker worker in Python, standard library only: the handlers of
shop/welcome (docs/first-workflow.md), over the HTTP protocol of
docs/worker-protocol.md.

    TASKER_SERVER=http://127.0.0.1:8080 python3 docs/first-workflow/worker.py

TASKER_TOKEN is sent as a bearer token when set (a worker token; not needed
when the server runs with auth off, as scripts/dev does). It runs one step
at a time; ctrl-c or SIGTERM stops it after the step in hand is reported.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

SERVER = os.environ.get("TASKER_SERVER", "http://127.0.0.1:8080").rstrip("/")
TOKEN = os.environ.get("TASKER_TOKEN")
WORKER_ID = f"python-{socket.gethostname()}-{os.getpid()}"
NAMESPACES = ["shop"]


class Fail(Exception):
    """A handler's failure: retryable ones are tried again (with the
    template's backoff) until the step's attempts run out."""

    def __init__(self, message, error_type, retryable):
        super().__init__(message)
        self.error_type = error_type
        self.retryable = retryable


# ---- the handlers --------------------------------------------------------


def greet(step):
    """shop.greet: {"greeting": "Hello, <name>!"} from context.name.

    context.fail_times makes the first n attempts fail (retryably), to see a
    retry happen; an empty name fails permanently."""
    context = step["context"]
    name = context.get("name", "")
    if not name:
        raise Fail("context.name is empty", "invalid_name", retryable=False)
    if step["lease"]["attempt"] <= context.get("fail_times", 0):
        raise Fail(
            f"failing attempt {step['lease']['attempt']} on purpose (context.fail_times)",
            "flaky_greeting",
            retryable=True,
        )
    return {"greeting": f"Hello, {name}!"}


def shout(step):
    """shop.shout: the greeting of its parent step "greet", upper-cased."""
    greeting = step["parent_results"].get("greet", {}).get("greeting")
    if not isinstance(greeting, str):
        raise Fail('step "greet" returned no greeting', "no_greeting", retryable=False)
    return {"message": greeting.upper()}


HANDLERS = {"shop.greet": greet, "shop.shout": shout}


# ---- the protocol --------------------------------------------------------


class Unavailable(Exception):
    """The server could not be reached or said 502/503/504: try again later."""


class Stop(Exception):
    """Raised by the signal handler to abandon an open long-poll."""


stopping = threading.Event()
polling = False


def on_signal(signum, _frame):
    stopping.set()
    if polling:
        raise Stop()


def log(message):
    print(f"worker {WORKER_ID}: {message}", file=sys.stderr, flush=True)


def post(path, body, timeout=30.0):
    """POST a JSON body; returns (status, parsed reply or None)."""
    headers = {"Content-Type": "application/json"}
    if TOKEN:
        headers["Authorization"] = f"Bearer {TOKEN}"
    request = urllib.request.Request(
        SERVER + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            raw = reply.read()
            return reply.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        if error.code in (502, 503, 504):
            raise Unavailable(f"HTTP {error.code}") from error
        raw = error.read()
        return error.code, json.loads(raw) if raw else None
    except (urllib.error.URLError, OSError) as error:
        raise Unavailable(str(error)) from error


def retrying(call, give_up_after=None):
    """Runs call() until the server is available: backoff 0.2 s doubling to
    10 s. Returns None when stopping (or give_up_after seconds passed)."""
    started = time.monotonic()
    failures = 0
    while True:
        try:
            return call()
        except Unavailable as error:
            failures += 1
            delay = min(10.0, 0.2 * 2 ** (failures - 1))
            if give_up_after is not None and time.monotonic() - started + delay > give_up_after:
                log(f"giving up ({error}); the step comes back when its lease expires")
                return None
            log(f"server unavailable ({error}); retrying in {delay:.1f}s")
            if stopping.wait(delay) and give_up_after is None:
                return None


def heartbeat(step_id, lease, interval, done, lost):
    """Extends the lease every interval until done; sets lost when the
    server says the attempt is over (cancelled task, 409 lease code)."""
    while not done.wait(interval):
        try:
            status, reply = post(f"/v1/steps/{step_id}/heartbeat", lease, timeout=interval)
        except Unavailable as error:
            log(f"heartbeat failed: {error}")
            continue
        if status == 409 or (status == 200 and reply.get("cancelled")):
            lost.set()
            return


def run(step, heartbeat_interval):
    lease = {"attempt": step["lease"]["attempt"], "token": step["lease"]["token"]}
    step_id = step["lease"]["step_id"]
    label = f"{step['step_name']} (task {step['task_id']}, attempt {lease['attempt']})"
    done, lost = threading.Event(), threading.Event()
    beat = threading.Thread(
        target=heartbeat, args=(step_id, lease, heartbeat_interval, done, lost), daemon=True
    )
    beat.start()
    handler = HANDLERS.get(step["handler"])
    try:
        if handler is None:
            raise Fail(f"no handler {step['handler']!r} here", "handler_not_found", retryable=True)
        report = ("complete", {**lease, "result": handler(step)})
    except Fail as failure:
        report = ("fail", {**lease, "retryable": failure.retryable,
                           "error_type": failure.error_type, "message": str(failure)})
    except Exception as error:  # a bug in the handler: let a later attempt try
        report = ("fail", {**lease, "retryable": True, "error_type": "exception",
                           "message": repr(error)})
    finally:
        done.set()
        beat.join()
    if lost.is_set():
        log(f"{label}: the server ended this attempt; nothing to report")
        return
    kind, body = report
    sent = retrying(lambda: post(f"/v1/steps/{step_id}/{kind}", body), give_up_after=60)
    if sent is not None:
        status, reply = sent
        outcome = "recorded" if status == 200 else f"refused: HTTP {status} {reply}"
        log(f"{label}: {kind} {outcome}")


def main():
    global polling
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    registration = {"worker_id": WORKER_ID, "namespaces": NAMESPACES,
                    "handlers": sorted(HANDLERS), "concurrency": 1, "version": "python example"}

    def register():
        status, reply = post("/v1/workers/register", registration)
        if status != 200:
            sys.exit(f"registration refused: HTTP {status} {reply}")
        return reply

    reply = retrying(register)
    if reply is None:
        return
    heartbeat_interval = reply["heartbeat_interval_ms"] / 1000
    wait_ms = min(20000, reply["max_poll_wait_ms"] or 20000)
    log(f"taking steps of {', '.join(NAMESPACES)} from {SERVER}; ctrl-c to stop")

    def poll():
        status, reply = post(f"/v1/workers/{WORKER_ID}/poll",
                             {"namespaces": NAMESPACES, "max": 1, "wait_ms": wait_ms},
                             timeout=wait_ms / 1000 + 10)
        if status != 200:
            raise Unavailable(f"poll refused: HTTP {status} {reply}")
        return reply["steps"]

    while not stopping.is_set():
        try:
            polling = True
            steps = retrying(poll)
        except Stop:
            break  # an abandoned poll's steps come back when their leases expire
        finally:
            polling = False
        for step in steps or []:
            run(step, heartbeat_interval)
    log("stopped")


if __name__ == "__main__":
    main()
