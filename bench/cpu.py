"""Workload 3: drain CPU-bound jobs of ~10 ms with 2 children; parallel efficiency.

Efficiency = N * t_job / (2 * wall), t_job measured inside the jobs: 1.0 means the two children
never waited for the parent. "Incl. startup" takes the wall from worker spawn to the last
completion; "steady" from the first job's start to the last job's end.
"""

from __future__ import annotations

from bench.app import read_log
from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate
from bench.workers import PREFETCHED, Items, drain

JOB_MS = 10.0


def run_once(env: Env, backend: str) -> Sample:
    """One drain of ``count`` spin jobs."""
    count = env.scale(400, 200)
    items: Items = [("bench.spin", {"ms": JOB_MS})] * count
    clock, log_dir = drain(env, backend, items)
    spans = read_log(log_dir)
    if len(spans) != count:
        raise RuntimeError(f"{len(spans)} of {count} spin jobs logged their time")
    busy = sum(end - start for start, end in spans) / 1e9
    span = (max(end for _, end in spans) - min(start for start, _ in spans)) / 1e9
    wall = clock.last - clock.spawned
    return {
        "rate": rate(count, wall),
        "efficiency": busy / (2 * wall),
        "steady": busy / (2 * span),
        "t_job": busy / count * 1e3,
    }


WORKLOADS = (
    Workload(
        name="cpu",
        title="Drain 400 CPU-bound ~10 ms jobs with 2 children: parallel efficiency",
        backends=("redis", PREFETCHED, "memory"),
        metrics=(
            Metric("rate", "CPU-bound drain, incl. startup", "jobs/s"),
            Metric("efficiency", "parallel efficiency, incl. startup", "", 0.85),
            Metric("steady", "parallel efficiency, steady", "", 0.95),
            Metric("t_job", "t_job measured in the job", "ms", higher_is_better=False),
        ),
        run_once=run_once,
    ),
)
