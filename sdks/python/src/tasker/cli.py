"""``tasker-worker module:app``: runs a worker application.

``app`` names a :class:`~tasker.Worker` in ``module`` (or a function
returning one); without ``:app`` the module's ``app``, else ``worker``, is
used. The server and token come from ``--server``/``--token``, else
``TASKER_SERVER``/``TASKER_TOKEN``. Logs go to stderr as JSON lines (or
text with ``--log-format text``).

Exit codes: 0 after a clean drain, 1 when the server refused the worker
(a 4xx retrying cannot fix), 2 for a bad command line or application.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from .client import DEFAULT_SERVER, Client
from .errors import ApiError
from .log_format import configure
from .worker import Worker

__all__ = ["main", "load_app"]


def load_app(spec: str) -> Worker:
    """The :class:`Worker` named by ``module:attribute``."""
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    names = [attribute] if attribute else ["app", "worker"]
    for name in names:
        target = module
        try:
            for part in name.split("."):
                target = getattr(target, part)
        except AttributeError:
            continue
        if not isinstance(target, Worker) and callable(target):
            target = target()
        if isinstance(target, Worker):
            return target
        raise TypeError(f"{module_name}:{name} is {type(target).__name__}, not a tasker.Worker")
    raise AttributeError(f"module {module_name!r} has no {' or '.join(names)}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tasker-worker",
        description="Run a Tasker worker application: its handlers take steps until SIGTERM or ctrl-c, then it drains.",
    )
    p.add_argument("app", help="module:attribute of a tasker.Worker (or of a function returning one)")
    p.add_argument("--server", default=os.environ.get("TASKER_SERVER") or DEFAULT_SERVER,
                   help="server or load balancer URL (env TASKER_SERVER; default %(default)s)")
    p.add_argument("--token", default=os.environ.get("TASKER_TOKEN") or None,
                   help="worker or admin bearer token (env TASKER_TOKEN)")
    p.add_argument("--concurrency", type=int, help="steps run at once (default: the application's, 4 unless it says)")
    p.add_argument("--namespace", action="append", dest="namespaces", metavar="NAMESPACE",
                   help="poll only this namespace (repeat for several; default: every namespace of the handlers)")
    p.add_argument("--worker-id", help="unique id of this process (default <hostname>-<pid>)")
    p.add_argument("--shutdown-grace", type=float, metavar="SECONDS",
                   help="how long running steps may finish after SIGTERM before they are released (default 30)")
    p.add_argument("--log-format", choices=["json", "text"], default="json")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    configure(args.log_format, args.log_level)
    try:
        worker = load_app(args.app)
    except (ImportError, AttributeError, TypeError) as error:
        print(f"tasker-worker: cannot load {args.app!r}: {error}", file=sys.stderr)
        return 2
    if args.concurrency is not None:
        if args.concurrency < 1:
            print("tasker-worker: --concurrency must be at least 1", file=sys.stderr)
            return 2
        worker.concurrency = args.concurrency
    if args.namespaces:
        worker.namespaces = args.namespaces
    if args.worker_id:
        worker.worker_id = args.worker_id
    if args.shutdown_grace is not None:
        worker.shutdown_grace = args.shutdown_grace
    if not worker.active_namespaces:
        print(f"tasker-worker: {args.app} has no handlers in namespaces {', '.join(args.namespaces or [])}",
              file=sys.stderr)
        return 2
    try:
        client = Client(args.server, args.token)
    except ValueError as error:
        print(f"tasker-worker: {error}", file=sys.stderr)
        return 2
    try:
        worker.run(client=client)
    except ApiError as error:
        print(f"tasker-worker: the server refused this worker: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
