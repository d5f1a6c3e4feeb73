#!/usr/bin/env python3
"""Client-side CPU per request of the HTTP clients a Python worker could
use, against a running server (`GET /health`, and a JSON `POST` like a
worker's register), one connection kept alive where the client can:

* the SDK's transport (``http.client``, one keep-alive connection per thread)
* ``urllib.request`` (a new connection per request)
* ``httpx.Client`` (keep-alive pool), when httpx is installed

    python benchmarks/http_client_cpu.py --server http://127.0.0.1:8080 --requests 2000

CPU is ``time.process_time()`` of this process (user + system), so the
server's share is not counted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tasker.transport import Transport  # noqa: E402

BODY = {"worker_id": "cpu-bench", "namespaces": ["default"], "handlers": [], "concurrency": 1, "version": None}


def measure(name: str, get: Callable[[], None], post: Callable[[], None], n: int) -> Dict[str, float]:
    for _ in range(50):  # warm up, connect
        get()
    figures = {}
    for kind, call in (("GET", get), ("POST", post)):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            call()
        figures[kind] = (time.process_time() - cpu) / n * 1e6
        figures[kind + "_wall"] = (time.perf_counter() - wall) / n * 1e6
    print(f"{name:28} GET {figures['GET']:6.0f} µs CPU ({figures['GET_wall']:6.0f} µs wall)   "
          f"POST {figures['POST']:6.0f} µs CPU ({figures['POST_wall']:6.0f} µs wall)", flush=True)
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="http://127.0.0.1:8080")
    p.add_argument("--requests", type=int, default=2000)
    args = p.parse_args()
    base = args.server.rstrip("/")

    transport = Transport(base)
    measure("http.client (SDK transport)", lambda: transport.request("GET", "/health") and None,
            lambda: transport.request("POST", "/v1/workers/register", BODY) and None, args.requests)

    def urllib_get() -> None:
        with urllib.request.urlopen(base + "/health") as reply:
            reply.read()

    def urllib_post() -> None:
        request = urllib.request.Request(base + "/v1/workers/register", data=json.dumps(BODY).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request) as reply:
            reply.read()

    measure("urllib.request (no keep-alive)", urllib_get, urllib_post, args.requests)

    try:
        import httpx
    except ImportError:
        print("httpx is not installed: skipped")
        return
    with httpx.Client(base_url=base) as client:
        measure(f"httpx {httpx.__version__} Client", lambda: client.get("/health").read() and None,
                lambda: client.post("/v1/workers/register", json=BODY).read() and None, args.requests)


if __name__ == "__main__":
    main()
