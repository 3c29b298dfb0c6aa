"""Workload 2: drain pre-enqueued no-op jobs with 2 children, from spawn to the last completion.

Redis: a real ``foundry work`` process. Memory: the pool in this process (burst mode), timed by
its observer.
"""

from __future__ import annotations

from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate
from bench.workers import PREFETCHED, DrainClock, Items, drain


def summarise(clock: DrainClock, count: int) -> Sample:
    """Jobs/s with and without startup, and the startup itself."""
    return {
        "with_startup": rate(count, clock.last - clock.spawned),
        "steady": rate(count - clock.done_at_first, clock.last - clock.first),
        "startup": clock.first - clock.spawned,
    }


def run_once(env: Env, backend: str) -> Sample:
    """One drain of ``count`` no-op jobs."""
    count = env.scale(20_000, 4_000)
    items: Items = [("bench.noop", None)] * count
    clock, _ = drain(env, backend, items)
    return summarise(clock, count)


WORKLOADS = (
    Workload(
        name="drain",
        title="Drain 20,000 pre-enqueued no-op jobs with 2 children (foundry work)",
        backends=("redis", PREFETCHED, "memory"),
        metrics=(
            Metric("with_startup", "drain no-op, incl. startup", "jobs/s", target=8_000),
            Metric("steady", "drain no-op, after startup", "jobs/s"),
            Metric("startup", "worker startup (spawn to 1st done)", "s", 0.3, False),
        ),
        run_once=run_once,
    ),
)
