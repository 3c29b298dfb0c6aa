"""Workload: a drain of no-op jobs over 6 queues on a Redis Cluster of 1 and of 3 masters (all
on this machine), at the adapter level: the jobs are enqueued first, then two drainer
processes claim 100 at a time from every queue and complete them in batches.

Figures: jobs/s, and the Redis time per job on each master (every command's ``usec`` in INFO
commandstats, before and after): the busiest master's and all masters' together; and the
busiest master's main-thread CPU per job (INFO cpu), which a busy machine does not inflate
(``usec`` is wall time inside a command, so it counts the time the server waited for a core).
The 6 queue names are chosen so that the 3-master cluster holds 2 queues on each master
(redis-cli gives each master a third of the slots).
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Sequence
from datetime import timedelta

from redis.crc import key_slot

from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate, stopwatch
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job
from foundry.ports import ClaimRequest
from tests.redis_server import RedisServer
from tests.redis_topologies import RedisClusterGroup, lone_cluster_node

QUEUES = 6
DRAINERS = 2
CLAIM = 100
BATCH = 1_000
LEASE = timedelta(minutes=5)


def _queue_names(masters: int) -> list[str]:
    """6 names whose slots lie evenly in the ``masters`` equal parts of the slot space (the
    parts ``redis-cli --cluster create`` gives the masters)."""
    per, found = QUEUES // masters, dict[int, list[str]]()
    for i in range(10_000):
        name = f"bench-{i}"
        part = key_slot(name.encode()) * masters // 16384
        if len(found.setdefault(part, [])) < per:
            found[part].append(name)
        if sum(len(names) for names in found.values()) == QUEUES:
            break
    return [name for part in sorted(found) for name in found[part]]


def _usec(nodes: Sequence[RedisServer]) -> list[tuple[int, int]]:
    """Each node's time in commands (us, every command's ``usec`` in INFO commandstats) and its
    main thread's CPU time (us, INFO cpu; not inflated when the machine is busy)."""
    totals = []
    for node in nodes:
        with node.client() as admin:
            stats, cpu = admin.info("commandstats"), admin.info("cpu")
        commands = sum(int(v["usec"]) for v in stats.values())
        main = cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"]
        totals.append((commands, int(main * 1e6)))
    return totals


def _drain(url: str, prefix: str, names: list[str], offset: int) -> None:
    queue = RedisQueue(connect(RedisSettings(url=url)), prefix=prefix)
    order = tuple(names[offset:] + names[:offset])
    while leases := queue.claim(ClaimRequest(order, lease=LEASE, limit=CLAIM)):
        queue.complete_many(leases)


def _run(env: Env, url: str, nodes: Sequence[RedisServer], names: list[str], count: int) -> Sample:
    prefix = env.unique("cluster")
    queue = RedisQueue(connect(RedisSettings(url=url)), prefix=prefix)
    jobs = [Job("noop", queue=names[n % len(names)]) for n in range(count)]
    for start in range(0, count, BATCH):
        queue.enqueue_many(jobs[start : start + BATCH])
    context = multiprocessing.get_context("fork")
    before = _usec(nodes)
    with stopwatch() as elapsed:
        drainers = [
            context.Process(target=_drain, args=(url, prefix, names, i * len(names) // DRAINERS))
            for i in range(DRAINERS)
        ]
        for drainer in drainers:
            drainer.start()
        for drainer in drainers:
            drainer.join()
    wall = elapsed()
    after = _usec(nodes)
    spent = [now[0] - then[0] for now, then in zip(after, before, strict=True)]
    cpu = [now[1] - then[1] for now, then in zip(after, before, strict=True)]
    left = sum(queue.stats(name).ready for name in names)
    assert left == 0, f"{left} jobs left"
    assert all(drainer.exitcode == 0 for drainer in drainers), "a drainer failed"
    return {
        "rate": rate(count, wall),
        "busiest": max(spent) / count,
        "all": sum(spent) / count,
        "cpu": max(cpu) / count,
    }


def run_once(env: Env, _backend: str) -> Sample:
    """One sample: the drain on a one-master cluster, then on a three-master one."""
    count = env.scale(20_000, 4_000)
    lone = lone_cluster_node()
    try:
        one = _run(env, f"redis+cluster://127.0.0.1:{lone.port}", [lone], _queue_names(1), count)
    finally:
        lone.close()
    group = RedisClusterGroup()
    try:
        three = _run(env, group.url(), group.nodes, _queue_names(3), count)
    finally:
        group.close()
    return {
        "one_rate": one["rate"],
        "three_rate": three["rate"],
        "one_redis": one["busiest"],
        "three_busiest": three["busiest"],
        "three_all": three["all"],
        "one_cpu": one["cpu"],
        "three_cpu": three["cpu"],
    }


WORKLOADS = (
    Workload(
        name="cluster_drain",
        title="Drain of no-op jobs over 6 queues, Redis Cluster of 1 vs 3 masters (2 drainers)",
        backends=("redis",),
        metrics=(
            Metric("one_rate", "1 master: drain", "jobs/s"),
            Metric("three_rate", "3 masters: drain", "jobs/s"),
            Metric("one_redis", "1 master: Redis time per job", "us/job", higher_is_better=False),
            Metric(
                "three_busiest",
                "3 masters: Redis time per job, busiest master",
                "us/job",
                higher_is_better=False,
            ),
            Metric(
                "three_all",
                "3 masters: Redis time per job, all masters",
                "us/job",
                higher_is_better=False,
            ),
            Metric("one_cpu", "1 master: Redis CPU per job", "us/job", higher_is_better=False),
            Metric(
                "three_cpu",
                "3 masters: Redis CPU per job, busiest master",
                "us/job",
                higher_is_better=False,
            ),
        ),
        run_once=run_once,
    ),
)


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--only", "cluster_drain", *sys.argv[1:]]))
