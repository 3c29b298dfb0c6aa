"""Workload 4: enqueue-to-start latency with 2 idle, warmed ``foundry work`` children.

The producer notes ``perf_counter_ns()`` just before each ``dispatch``; the handler notes it as
it starts (one CLOCK_MONOTONIC for every process). Jobs go one at a time, ``GAP_S`` apart, so
the workers are idle when each arrives.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench.app import read_log, stamp
from bench.backends import open_dispatcher
from bench.env import Env
from bench.harness import Metric, Sample, Workload, percentile
from bench.workers import foundry_work, fresh_log_dir

WARM = 20
GAP_S = 0.005


def wait_logged(log_dir: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    """Until the handlers logged ``count`` lines; ``RuntimeError`` if the worker dies first."""
    deadline = time.monotonic() + 60
    while len(read_log(log_dir)) < count:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"only {len(read_log(log_dir))} of {count} jobs started")
        time.sleep(0.01)


def run_once(env: Env, _backend: str) -> Sample:
    """Warm the workers, then send ``sends`` jobs one at a time and read when each started."""
    sends = env.scale(200, 100)
    env.flush()
    prefix, log_dir = env.unique("latency"), fresh_log_dir(env)
    sent: dict[int, int] = {}
    with (
        open_dispatcher(env, "redis", prefix) as dispatcher,
        foundry_work(env, prefix, log_dir) as process,
    ):
        for n in range(WARM):
            dispatcher.dispatch(stamp, {"n": -1 - n})
        wait_logged(log_dir, WARM, process)
        for n in range(sends):
            time.sleep(GAP_S)
            sent[n] = time.perf_counter_ns()
            dispatcher.dispatch(stamp, {"n": n})
        wait_logged(log_dir, WARM + sends, process)
    started = {n: at for n, at in read_log(log_dir) if n >= 0}
    waits = [(started[n] - at) / 1e6 for n, at in sent.items()]
    return {fraction: percentile(waits, q) for fraction, q in _QUANTILES.items()}


_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}

WORKLOADS = (
    Workload(
        name="latency",
        title="Enqueue-to-start latency, 2 idle warmed children, 200 jobs one at a time",
        backends=("redis",),
        metrics=(
            Metric("p50", "latency p50", "ms", 0.5, False),
            Metric("p90", "latency p90", "ms", higher_is_better=False),
            Metric("p99", "latency p99", "ms", 1.0, False),
        ),
        run_once=run_once,
    ),
)
