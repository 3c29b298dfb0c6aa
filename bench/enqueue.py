"""Workload 1: enqueue no-op jobs from one process, one ``dispatch`` at a time and in batches."""

from __future__ import annotations

from bench.app import noop
from bench.backends import BATCH, open_dispatcher
from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate, stopwatch


def run_once(env: Env, backend: str) -> Sample:
    """Time ``count`` single dispatches, then ``count`` jobs in batches of ``BATCH``."""
    count = env.scale(20_000, 5_000)
    if backend == "redis":
        env.flush()
    with open_dispatcher(env, backend, env.unique("enqueue")) as dispatcher:
        dispatcher.dispatch(noop)  # connect and load scripts outside the timed section
        with stopwatch() as elapsed:
            for _ in range(count):
                dispatcher.dispatch(noop)
        single = rate(count, elapsed())
        with stopwatch() as elapsed:
            for start in range(0, count, BATCH):
                dispatcher.dispatch_many([(noop, None)] * min(BATCH, count - start))
        batch = rate(count, elapsed())
    return {"single": single, "batch": batch}


WORKLOADS = (
    Workload(
        name="enqueue",
        title="Enqueue no-op jobs from one process: dispatch() and dispatch_many() of 1,000",
        backends=("redis", "memory"),
        metrics=(
            Metric("single", "enqueue, single dispatch", "jobs/s", target=8_000),
            Metric("batch", "enqueue, batch of 1,000", "jobs/s", target=50_000),
        ),
        run_once=run_once,
    ),
)
