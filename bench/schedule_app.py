"""The app of the schedules workload: ``$FOUNDRY_BENCH_SCHEDULES`` schedules of one no-op
handler, every ``$FOUNDRY_BENCH_EVERY`` seconds (all ticking at the same instants)."""

from __future__ import annotations

import os

from foundry.application.registry import JobRegistry

QUEUE = "bench-schedules"
COUNT = "FOUNDRY_BENCH_SCHEDULES"
EVERY = "FOUNDRY_BENCH_EVERY"

registry = JobRegistry()


@registry.job(name="bench.tick", queue=QUEUE)
def tick(n: int = 0) -> None:
    """Nothing: the workload measures the scheduler, not the handler."""


for _n in range(int(os.environ.get(COUNT, "0"))):
    registry.schedule(f"s{_n:05d}", tick, every=int(os.environ.get(EVERY, "60")), payload={"n": _n})
