"""The cost of limits at the claim: a drain where every job has a concurrency limit over
1,000 distinct keys, against the same drain without limits (adapter level, one process).

``python -m bench.limits`` runs it alone. Jobs are claimed 100 at a time in enqueue order, so
100 consecutive jobs hold 100 different keys and no job is ever parked: the figures are the
bookkeeping's cost (reading each job's limit, the slot taken and given back), not waiting.
"""

from __future__ import annotations

import sys

from bench.env import Env
from bench.harness import Metric, Sample, Workload
from bench.queue_ops import BATCH, CLAIM, LEASE, QUEUE, Costs, _queue
from foundry.domain import Job, Limit
from foundry.ports import ClaimRequest

KEYS = 1_000


def _jobs(count: int, limited: bool) -> list[Job]:
    return [
        Job(
            "noop",
            queue=QUEUE,
            limit=Limit(f"tenant:{n % KEYS}", concurrency=5) if limited else None,
        )
        for n in range(count)
    ]


def _drain(env: Env, count: int, *, limited: bool) -> Costs:
    queue = _queue(env)
    jobs = _jobs(count, limited)
    for start in range(0, count, BATCH):
        queue.enqueue_many(jobs[start : start + BATCH])
    done = 0
    with Costs(env, count) as costs:
        while leases := queue.claim(ClaimRequest([QUEUE], lease=LEASE, limit=CLAIM)):
            queue.complete_many(leases)
            done += len(leases)
    assert done == count, f"drained {done} of {count}"
    return costs


def run_once(env: Env, _backend: str) -> Sample:
    """One sample: the unlimited drain, then the limited one."""
    count = env.scale(20_000, 5_000)
    env.flush()
    free = _drain(env, count, limited=False)
    env.flush()
    limited = _drain(env, count, limited=True)
    return {
        "free": free.rate,
        "limited": limited.rate,
        "ratio": limited.rate / free.rate,
        "free_server": free.server_us,
        "limited_server": limited.server_us,
    }


WORKLOADS = (
    Workload(
        name="limits",
        title="Claim 100 + complete_many with a concurrency limit on every job (1,000 keys)",
        backends=("redis",),
        metrics=(
            Metric("free", "drain without limits", "jobs/s"),
            Metric("limited", "drain, every job limited", "jobs/s"),
            Metric("ratio", "limited / unlimited", "x", target=0.8),
            Metric("free_server", "Redis script time, no limits", "us/job", higher_is_better=False),
            Metric(
                "limited_server", "Redis script time, limited", "us/job", higher_is_better=False
            ),
        ),
        run_once=run_once,
    ),
)


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--only", "limits", *sys.argv[1:]]))
