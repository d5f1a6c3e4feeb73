"""The Python side of benchmarks/noop_throughput.py: one no-op handler,
``bench.noop`` (the name `tasker bench-worker` serves too), in the
namespace named by ``TASKER_BENCH_NAMESPACE``."""

import os
from typing import Any

from tasker import StepContext, Worker

app = Worker(concurrency=32, version="python bench")


def noop(ctx: StepContext) -> Any:
    return None


app.add_handler(os.environ.get("TASKER_BENCH_NAMESPACE", "pybench"), "bench.noop", noop)
