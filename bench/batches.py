"""Batches against plain jobs: 10,000 no-op jobs dispatched as one batch (``Dispatcher.batch``,
one function call) and as ``dispatch_many`` (one write of ten calls), then drained by claims
of 100 + ``complete_many``, each member's end counted in its batch.

``python -m bench.batches`` runs it alone. The dispatch figures include building the jobs
from (handler, payload) pairs, as an application pays them.
"""

from __future__ import annotations

import sys
import time

from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate
from bench.queue_ops import CLAIM, LEASE, QUEUE, Costs, _queue
from foundry.adapters.clock import SystemClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.ports import ClaimRequest

registry = JobRegistry()


@registry.job(name="noop", queue=QUEUE)
def noop() -> None:
    """Nothing."""


def _dispatch(queue: RedisQueue, count: int, *, batched: bool) -> float:
    dispatcher = Dispatcher(queue, registry, SystemClock(), batches=queue)
    items = [(noop, None)] * count
    dispatcher.dispatch(noop)  # connect, register the queue, load the library
    started = time.perf_counter()
    if batched:
        dispatcher.batch(items, finally_=noop)
    else:
        dispatcher.dispatch_many(items)
    return rate(count, time.perf_counter() - started)


def _drain(env: Env, queue: RedisQueue, count: int) -> Costs:
    done = 0
    with Costs(env, count) as costs:
        while leases := queue.claim(ClaimRequest([QUEUE], lease=LEASE, limit=CLAIM)):
            queue.complete_many(leases)
            done += len(leases)
    assert done >= count, f"drained {done} of {count}"
    return costs


def run_once(env: Env, _backend: str) -> Sample:
    """One sample: plain jobs dispatched and drained, then the same as a batch."""
    count = env.scale(10_000, 2_000)
    env.flush()
    plain_queue = _queue(env)
    plain_dispatch = _dispatch(plain_queue, count, batched=False)
    plain = _drain(env, plain_queue, count)
    env.flush()
    batch_queue = _queue(env)
    batch_dispatch = _dispatch(batch_queue, count, batched=True)
    batched = _drain(env, batch_queue, count)
    return {
        "plain_dispatch": plain_dispatch,
        "batch_dispatch": batch_dispatch,
        "dispatch_ratio": batch_dispatch / plain_dispatch,
        "plain_drain": plain.rate,
        "batch_drain": batched.rate,
        "drain_ratio": batched.rate / plain.rate,
        "plain_server": plain.server_us,
        "batch_server": batched.server_us,
    }


WORKLOADS = (
    Workload(
        name="batches",
        title="10,000 no-op jobs as one batch against dispatch_many; claim 100 + complete_many",
        backends=("redis",),
        metrics=(
            Metric("plain_dispatch", "dispatch_many", "jobs/s"),
            Metric("batch_dispatch", "Dispatcher.batch", "jobs/s"),
            Metric("dispatch_ratio", "batch / plain dispatch", "x", target=0.85),
            Metric("plain_drain", "drain of plain jobs", "jobs/s"),
            Metric("batch_drain", "drain of a batch", "jobs/s"),
            Metric("drain_ratio", "batch / plain drain", "x", target=0.85),
            Metric("plain_server", "Redis script time, plain", "us/job", higher_is_better=False),
            Metric("batch_server", "Redis script time, batch", "us/job", higher_is_better=False),
        ),
        run_once=run_once,
    ),
)


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--only", "batches", *sys.argv[1:]]))
