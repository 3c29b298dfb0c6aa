"""Limits across three ``foundry work`` processes on Redis: concurrency per key measured by
the ledger's overlap count, and a rate checked on the claims' times on the Redis server."""

from __future__ import annotations

import bisect
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from foundry.adapters.clock import SystemClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.dispatcher import Dispatcher
from tests.e2e.limits_app import LEDGER, QUEUE, TICK_RATE, hold, registry, stuck, tick
from tests.e2e.test_demo import ROOT, unique_prefix

pytestmark = [pytest.mark.redis, pytest.mark.slow]

# 300 intervals of 50 ms: 15 s at 20/s.
TICKS = 301
#: One turn of the ticks' rate, in milliseconds.
INTERVAL_MS = 1000 // TICK_RATE


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _overlap(lines: list[list[str]], key: str) -> int:
    """The most runs of ``key`` that were running at one moment."""
    events = sorted(
        (float(at), 1 if what == "start" else -1)
        for what, who, at in lines
        if who == key and what in ("start", "end")
    )
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def _too_close(claims_ms: list[int]) -> list[tuple[int, int]]:
    """The claims (by index, in time order) closer than the rate allows: any ``m + 1``
    consecutive starts span at least ``m - 1`` intervals."""
    return [
        (first, later)
        for first, later in itertools.combinations(range(len(claims_ms)), 2)
        if claims_ms[later] - claims_ms[first] < (later - first - 1) * INTERVAL_MS
    ]


def _busiest_second(claims_ms: list[int]) -> int:
    """The most claims in one window of a second."""
    return max(bisect.bisect_left(claims_ms, at + 1000) - i for i, at in enumerate(claims_ms))


def _worker(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    command = "from foundry.entrypoints.cli import main; main()"
    args = ["work", "--app", "tests.e2e.limits_app:registry", "--no-scheduler", *extra]
    return subprocess.Popen(
        [sys.executable, "-c", command, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_three_workers_keep_each_key_within_its_concurrency_and_rate(
    redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    ledger.touch()
    prefix = unique_prefix()
    queue = RedisQueue(client, prefix=prefix)
    dispatcher = Dispatcher(queue, registry, SystemClock())
    # Long enough that a tenant's runs overlap although the workers come up seconds apart on
    # a loaded machine (the first one up takes the jobs a, b, a, b for its four children).
    dispatcher.dispatch_many(
        [(hold, {"tenant": tenant, "ms": 1000}) for _ in range(20) for tenant in ("a", "b")]
    )
    dispatcher.dispatch_many([(tick, {"n": n}) for n in range(TICKS)])
    env = {**os.environ, "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, LEDGER: str(ledger)}

    workers = [_worker(env, "--burst", "--concurrency", "4") for _ in range(3)]
    errors = [worker.communicate(timeout=120)[1].decode() for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0, 0], errors
    lines = [line.split() for line in ledger.read_text().splitlines()]
    assert sum(1 for what, _, _ in lines if what == "end") == 40
    assert 3 <= _overlap(lines, "a") <= 5
    assert 3 <= _overlap(lines, "b") <= 5
    assert sum(1 for what, _, _ in lines if what == "tick") == TICKS  # every tick ran
    # The rate holds where the queue applies it, at the claims (the children start their
    # handlers later, each after its own delay on a busy machine); no speed is asserted.
    claims = sorted(round(float(at) * 1000) for what, _, at in lines if what == "claim")
    assert len(claims) == TICKS
    assert _too_close(claims) == [], _busiest_second(claims)
    assert _busiest_second(claims) <= TICK_RATE + 1
    stats = queue.stats(QUEUE)
    assert (stats.pending, stats.active, stats.dead) == (0, 0, 0)


def test_the_slots_a_killed_worker_held_come_back_when_its_leases_lapse(
    redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    ledger.touch()
    prefix = unique_prefix()
    queue = RedisQueue(client, prefix=prefix)
    Dispatcher(queue, registry, SystemClock()).dispatch_many([(stuck, {"n": n}) for n in range(4)])
    env = {**os.environ, "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, LEDGER: str(ledger)}
    env["QUEUE_TIMEOUT"] = "2"
    doomed = _worker({**env, "FOUNDRY_E2E_STUCK": "1"}, "--concurrency", "4")
    while ledger.read_text().count("start") < 2:  # both slots taken, the other two parked
        time.sleep(0.05)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)

    survivor = _worker(env, "--concurrency", "4", "--burst")
    _, errors = survivor.communicate(timeout=60)

    assert survivor.returncode == 0, errors.decode()
    lines = [line.split() for line in ledger.read_text().splitlines()]
    assert sum(1 for what, _, _ in lines if what == "end") == 4  # the killed runs never ended
    assert _overlap(lines[2:], "stuck") <= 2
    stats = queue.stats(QUEUE)
    assert (stats.completed, stats.pending, stats.active, stats.dead) == (4, 0, 0, 0)
