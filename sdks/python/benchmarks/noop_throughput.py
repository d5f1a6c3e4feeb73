#!/usr/bin/env python3
"""Burn-down throughput of no-op handlers: the Python worker beside the Rust
one, on the same server, in one run.

Each round pre-creates N one-step tasks in a namespace of its own, then
starts W worker processes with C slots each (Python: `tasker-worker` with
benchmarks/noop_app.py; Rust: `tasker bench-worker`), waits until every task
is complete, and stops them. Steps per second are taken from the server's
own ``finished_at`` of the tasks (first to last), so process start-up does
not count. Rounds alternate Rust and Python.

    python benchmarks/noop_throughput.py --server http://127.0.0.1:8080 \\
        --tasker ../../target/release/tasker --tasks 3000 --workers 2 --concurrency 32

The server must run with auth off, or pass --token (admin and worker roles).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from tasker import Client  # noqa: E402


def template(namespace: str) -> Dict[str, object]:
    return {
        "namespace": namespace,
        "name": "noop",
        "version": "1",
        "steps": [{"name": "only", "handler": "bench.noop", "timeout": "1m"}],
    }


def create(client: Client, namespace: str, n: int) -> None:
    for start in range(0, n, 1000):
        batch = [{"namespace": namespace, "template": "noop"} for _ in range(min(1000, n - start))]
        results = client.create_tasks(batch)
        failed = [r for r in results if "error" in r]
        if failed:
            raise SystemExit(f"creating tasks failed: {failed[0]}")


def finished(client: Client, namespace: str) -> List[datetime]:
    times = []
    for task in client.iter_tasks(namespace=namespace, limit=500):
        if task["state"] != "complete":
            return []
        times.append(datetime.fromisoformat(task["finished_at"].replace("Z", "+00:00")))  # type: ignore[union-attr]
    return times


def workers(kind: str, args: argparse.Namespace, namespace: str) -> List[subprocess.Popen]:  # type: ignore[type-arg]
    env = dict(os.environ, TASKER_BENCH_NAMESPACE=namespace, PYTHONPATH=str(HERE.parent))
    if args.token:
        env["TASKER_TOKEN"] = args.token
    procs = []
    for i in range(args.workers):
        if kind == "rust":
            cmd = [args.tasker, "bench-worker", "--namespace", namespace,
                   "--concurrency", str(args.concurrency), "--server", args.server]
        else:
            exe = Path(sys.executable).with_name("tasker-worker")
            cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "tasker.cli"]),
                   "benchmarks.noop_app:app", "--server", args.server, "--concurrency", str(args.concurrency),
                   "--worker-id", f"pybench-{namespace}-{i}", "--log-level", "warning"]
        procs.append(subprocess.Popen(cmd, env=env, cwd=str(HERE.parent), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL if kind == "rust" else None))
    return procs


def cpu_seconds(pids: List[int]) -> float:
    """User + system CPU of processes (Linux /proc), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def round_(kind: str, args: argparse.Namespace, client: Client, label: str) -> Dict[str, float]:
    namespace = f"bench_{kind}_{label}"
    client.create_namespace(namespace)
    client.register_template(template(namespace))
    create(client, namespace, args.tasks)
    procs = workers(kind, args, namespace)
    started = time.monotonic()
    try:
        while True:
            time.sleep(0.5)
            times = finished(client, namespace)
            if times:
                break
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"{kind}: tasks not complete after {args.timeout}s")
        cpu = cpu_seconds([p.pid for p in procs])
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    span = (max(times) - min(times)).total_seconds()
    return {"steps_per_s": (len(times) - 1) / span if span > 0 else float("inf"),
            "seconds": span, "worker_cpu_ms_per_step": 1000 * cpu / len(times)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=os.environ.get("TASKER_SERVER", "http://127.0.0.1:8080"))
    p.add_argument("--token", default=os.environ.get("TASKER_TOKEN"))
    p.add_argument("--tasker", default=str(HERE.parents[2] / "target" / "release" / "tasker"),
                   help="the tasker binary whose bench-worker is the Rust side (default target/release/tasker)")
    p.add_argument("--tasks", type=int, default=3000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2, help="rounds of each kind, alternating (default 2)")
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    client = Client(args.server, args.token or "")
    run = secrets.token_hex(3)
    rows = []
    for r in range(args.rounds):
        order = ["rust", "python"] if r % 2 == 0 else ["python", "rust"]
        for kind in order:
            result = round_(kind, args, client, f"{run}_{r}")
            rows.append((kind, r + 1, result))
            print(f"{kind:6} round {r + 1}: {result['steps_per_s']:7.0f} steps/s "
                  f"({args.tasks} tasks in {result['seconds']:.2f}s; workers' CPU {result['worker_cpu_ms_per_step']:.3f} ms/step)",
                  flush=True)
    for kind in ("rust", "python"):
        rates = [res["steps_per_s"] for k, _, res in rows if k == kind]
        cpus = [res["worker_cpu_ms_per_step"] for k, _, res in rows if k == kind]
        print(f"{kind:6} mean: {sum(rates) / len(rates):7.0f} steps/s, workers' CPU {sum(cpus) / len(cpus):.3f} ms/step")


if __name__ == "__main__":
    main()
