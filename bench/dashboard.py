"""The dashboard and the backend metrics over a big backend: 100 queues, 1,000,000 pending jobs.

* ``page_ms``: the queues page, server side (the app called in process through Starlette's
  test client, so a little client time is included), p50 of 20 renders, each reading every
  queue afresh (the sampler's snapshot dropped first); ``page_warm_ms`` reuses the snapshot,
  as every page after the first in a refresh interval does.
* ``poll_redis_ms``: Redis time (its main thread's CPU, INFO cpu) per refresh per open page,
  with one page open polling once per interval (the worst case: that page pays for the whole
  sweep); ``poll_redis_5_ms`` with five pages open. 100 refreshes each: the kernel counts a
  thread's CPU time by scheduler ticks, so the 20 of before (about 25 ms) were mostly noise.
* ``scrape_ms``: ``GET /metrics`` of ``foundry metrics`` over HTTP, p50 of 20.

The backlog (10,000 jobs per queue, a tenth of them delayed, a few dead letters; one queue in
ten uses three priorities, the others one) is written once per session and kept for every
run. The sampler holds an hour of history, as after an hour of running, when pages are timed.
"""

from __future__ import annotations

import statistics
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import redis
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from bench.env import Env
from bench.harness import Metric, Sample, Workload
from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Dead, ErrorInfo, Job, RunAfter, RunNow
from foundry.entrypoints.dashboard.app import DashboardConfig, create_app
from foundry.entrypoints.dashboard.history import Sampler, Snapshot
from foundry.entrypoints.dashboard.security import GuardConfig
from foundry.entrypoints.metrics.backend import BackendCollector
from foundry.entrypoints.metrics.server import MetricsServer
from foundry.entrypoints.overview import read_queues
from foundry.ports import ClaimRequest

QUEUES = 100
RENDERS = 20
POLLS = 100
EVERY = timedelta(seconds=5)
_filled: dict[str, str] = {}


def _fill(env: Env) -> str:
    """The backlog's key prefix, writing it on first use."""
    total = env.scale(1_000_000, 100_000)
    key = f"{env.redis_url} {total}"
    if key in _filled:
        return _filled[key]
    prefix = env.unique("dash")
    queue = RedisQueue(redis.Redis.from_url(env.redis_url), prefix=prefix)
    per_queue = total // QUEUES
    started = time.perf_counter()
    for index in range(QUEUES):
        name = f"queue-{index:03d}"
        jobs = [
            Job(
                "noop",
                queue=name,
                priority=(n % 3) - 1 if index % 10 == 0 else 0,
                schedule=RunAfter(timedelta(hours=1)) if n % 10 == 0 else RunNow(),
            )
            for n in range(per_queue)
        ]
        for start in range(0, per_queue, 1_000):
            queue.enqueue_many(jobs[start : start + 1_000])
        _bury(queue, name, 3)
    print(f"   backlog of {total:,} jobs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    _filled[key] = prefix
    return prefix


def _bury(queue: RedisQueue, name: str, count: int) -> None:
    leases = queue.claim(ClaimRequest([name], lease=timedelta(minutes=5), limit=count))
    for lease in leases:
        queue.fail(lease, ErrorInfo("builtins.ValueError", "bench"), Dead("bench"))


def _redis_cpu_ms(admin: redis.Redis) -> float:
    """CPU time of Redis's main thread so far (INFO cpu), in ms: everything it did for us,
    parsing and replies included (commandstats would count a MULTI block's reads twice)."""
    cpu: dict[str, Any] = admin.info("cpu")
    return 1000 * (float(cpu["used_cpu_sys_main_thread"]) + float(cpu["used_cpu_user_main_thread"]))


def _page(env: Env, prefix: str) -> tuple[float, float, float, float]:
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=1))  # the backlog's own time
    queue = RedisQueue(redis.Redis.from_url(env.redis_url), prefix=prefix, clock=clock)
    sampler = Sampler(queue, clock, EVERY)
    _an_hour_of(sampler, clock)
    config = DashboardConfig(GuardConfig(token=None), every=EVERY, background=False)
    app = create_app(queue, queue, queue, clock, config, sampler=sampler)
    with TestClient(app, base_url="http://127.0.0.1") as client, env.client() as admin:
        assert client.get("/queues").status_code == 200
        cold, warm = [], []
        for _ in range(RENDERS):
            sampler.invalidate()
            cold.append(_timed(client))
            warm.append(_timed(client))
        one = _polling(client, clock, admin, pages=1)
        five = _polling(client, clock, admin, pages=5)
    return statistics.median(cold), statistics.median(warm), one, five


def _an_hour_of(sampler: Sampler, clock: ManualClock) -> None:
    """An hour of samples in the history (the counts are made up, the shape is real)."""
    overview = read_queues(sampler.queue)
    rows, ages = overview.rows, overview.ages
    start = clock.now()
    for step in range(int(timedelta(hours=1) / EVERY)):
        at = start + step * EVERY
        moved = tuple(attrs.evolve(row, completed=row.completed + 7 * step) for row in rows)
        sampler.history.add(Snapshot(at, moved, tuple(ages)))
    clock.advance(timedelta(hours=1))


def _timed(client: TestClient) -> float:
    started = time.perf_counter()
    answer = client.get("/queues?partial=1")
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200
    assert "queue-099" in answer.text
    return elapsed


def _polling(client: TestClient, clock: ManualClock, admin: redis.Redis, pages: int) -> float:
    """Redis ms per refresh per page: ``pages`` pages poll once per interval, ``POLLS`` times."""
    before = _redis_cpu_ms(admin)
    for _ in range(POLLS):
        clock.advance(EVERY)
        for _ in range(pages):
            assert client.get("/queues?partial=1").status_code == 200
    return (_redis_cpu_ms(admin) - before) / (POLLS * pages)


def _scrape(env: Env, prefix: str) -> float:
    queue = RedisQueue(redis.Redis.from_url(env.redis_url), prefix=prefix)
    registry = CollectorRegistry()
    registry.register(BackendCollector(queue, queue))
    server = MetricsServer(registry, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    times = []
    try:
        for _ in range(RENDERS):
            started = time.perf_counter()
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = answer.read()
            times.append((time.perf_counter() - started) * 1000)
            assert b'queue="queue-099"' in body
    finally:
        server.stop()
    return statistics.median(times)


def run_once(env: Env, _backend: str) -> Sample:
    """One run: 20 renders each way, the polling costs, 20 scrapes."""
    prefix = _fill(env)
    cold, warm, one, five = _page(env, prefix)
    return {
        "page_ms": cold,
        "page_warm_ms": warm,
        "poll_redis_ms": one,
        "poll_redis_5_ms": five,
        "scrape_ms": _scrape(env, prefix),
    }


WORKLOADS = (
    Workload(
        name="dashboard",
        title="Dashboard and metrics over 100 queues, 1,000,000 pending jobs",
        backends=("redis",),
        metrics=(
            Metric("page_ms", "queues page, fresh read (p50 of 20)", "ms", 200, False),
            Metric("page_warm_ms", "queues page, shared snapshot (p50 of 20)", "ms", None, False),
            Metric("poll_redis_ms", "Redis time per refresh, 1 page open", "ms", 1, False),
            Metric("poll_redis_5_ms", "Redis time per refresh per page, 5 open", "ms", 1, False),
            Metric("scrape_ms", "GET /metrics, foundry metrics (p50 of 20)", "ms", 50, False),
        ),
        run_once=run_once,
    ),
)
