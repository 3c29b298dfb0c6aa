"""RedisQueue's own operations, measured at the adapter (no Dispatcher, jobs built beforehand).

``python -m bench.queue_ops`` runs these alone (3 runs, a markdown table); ``./dev bench``
runs them with the rest. Workloads: single ``enqueue``, ``enqueue_many`` of 1,000, claim of
100 + ``complete_many`` (one round trip each), claim of 100 + ``complete`` one by one (the
port alone), and Redis bytes per pending no-op job (``INFO used_memory`` delta over 10k).
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import redis

from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job
from foundry.ports import ClaimRequest

BATCH = 1_000
CLAIM = 100
LEASE = timedelta(minutes=5)
QUEUE = "bench"


def _jobs(count: int) -> list[Job]:
    return [Job("noop", queue=QUEUE) for _ in range(count)]


def _queue(env: Env) -> RedisQueue:
    return RedisQueue(redis.Redis.from_url(env.redis_url), prefix=env.unique("ops"))


class Costs:
    """Wall rate, client CPU and Redis script time (INFO commandstats) of one timed section.

    The two CPU figures say what bounds a rate on a busy machine: ``1e6 / (client + server)``
    jobs/s is what one process would reach with both CPUs to itself.
    """

    def __init__(self, env: Env, count: int) -> None:
        self.env, self.count = env, count
        self.rate = self.client_us = self.server_us = 0.0

    def _script_usec(self) -> int:
        with self.env.client() as admin:
            stats = admin.info("commandstats")
        return sum(int(v["usec"]) for k, v in stats.items() if k in _SCRIPT_COMMANDS)

    def __enter__(self) -> Costs:
        self._usec, self._cpu = self._script_usec(), time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        self.rate = rate(self.count, wall)
        self.client_us = cpu * 1e6 / self.count
        self.server_us = (self._script_usec() - self._usec) / self.count


_SCRIPT_COMMANDS = {
    "cmdstat_fcall",
    "cmdstat_function|load",
    "cmdstat_evalsha",
    "cmdstat_eval",
    "cmdstat_script|load",
}


def _enqueue(env: Env, count: int) -> tuple[Costs, Costs]:
    queue = _queue(env)
    queue.enqueue(Job("noop", queue=QUEUE))  # connect, register, load the script
    jobs = _jobs(count)
    with Costs(env, count) as single:
        for job in jobs:
            queue.enqueue(job)
    jobs = _jobs(count)
    with Costs(env, count) as many:
        for start in range(0, count, BATCH):
            queue.enqueue_many(jobs[start : start + BATCH])
    return single, many


def _drain(env: Env, count: int, *, batched: bool) -> Costs:
    queue = _queue(env)
    for start in range(0, count, BATCH):
        queue.enqueue_many(_jobs(min(BATCH, count - start)))
    done = 0
    with Costs(env, count) as costs:
        while leases := queue.claim(ClaimRequest([QUEUE], lease=LEASE, limit=CLAIM)):
            if batched:
                queue.complete_many(leases)
            else:
                for lease in leases:
                    queue.complete(lease)
            done += len(leases)
    assert done == count, f"drained {done} of {count}"
    return costs


def _bytes(env: Env, count: int) -> float:
    env.flush()
    queue = _queue(env)
    queue.enqueue(Job("noop", queue=QUEUE))  # the queue's own keys exist before the baseline
    with env.client() as admin:
        before = int(admin.info("memory")["used_memory"])
        for start in range(0, count, BATCH):
            queue.enqueue_many(_jobs(min(BATCH, count - start)))
        after = int(admin.info("memory")["used_memory"])
    return (after - before) / count


def run_once(env: Env, _backend: str) -> Sample:
    """One sample of every metric."""
    count = env.scale(20_000, 5_000)
    env.flush()
    single, many = _enqueue(env, count)
    env.flush()
    batched = _drain(env, count, batched=True)
    env.flush()
    one_by_one = _drain(env, env.scale(5_000, 2_000), batched=False)
    sample = {"bytes": _bytes(env, env.scale(10_000, 5_000))}
    for name, costs in (
        ("enqueue", single),
        ("enqueue_many", many),
        ("claim_complete_many", batched),
        ("claim_complete", one_by_one),
    ):
        sample[name] = costs.rate
        sample[f"{name}_client"] = costs.client_us
        sample[f"{name}_server"] = costs.server_us
    return sample


def _cpu_metrics(name: str, label: str) -> tuple[Metric, Metric]:
    return (
        Metric(f"{name}_client", f"{label}: client CPU", "us/job", higher_is_better=False),
        Metric(f"{name}_server", f"{label}: Redis script time", "us/job", higher_is_better=False),
    )


WORKLOADS = (
    Workload(
        name="queue_ops",
        title="RedisQueue operations from one process (adapter level, jobs built beforehand)",
        backends=("redis",),
        metrics=(
            Metric("enqueue", "enqueue, one call per job", "jobs/s", target=8_000),
            Metric("enqueue_many", "enqueue_many of 1,000", "jobs/s", target=50_000),
            Metric("claim_complete_many", "claim 100 + complete_many", "jobs/s", target=20_000),
            Metric("claim_complete", "claim 100 + complete one by one", "jobs/s"),
            Metric("bytes", "Redis bytes per pending no-op job", "B", 256, False),
            *_cpu_metrics("enqueue", "enqueue"),
            *_cpu_metrics("enqueue_many", "enqueue_many"),
            *_cpu_metrics("claim_complete_many", "claim + complete_many"),
            *_cpu_metrics("claim_complete", "claim + complete"),
        ),
        run_once=run_once,
    ),
)


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--only", "queue_ops", *sys.argv[1:]]))
