"""RedisCache under real processes on the throwaway redis-server: atomic, single flight, exclusive.

Children are forked (explicitly) and build their own client; the outcome is checked in Redis.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable
from multiprocessing.process import BaseProcess
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from foundry.adapters.postgres.cache import PostgresCache
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import open_pool
from foundry.ports.cache import CachePort
from tests.backends import redis_cache, unique_prefix

pytestmark = pytest.mark.redis

CTX = multiprocessing.get_context("fork")
WORKERS = 8


def _run_all(target: Callable[..., None], args: Iterable[Any]) -> None:
    processes = [CTX.Process(target=target, args=tuple(args)) for _ in range(WORKERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * WORKERS


def _increment(url: str, prefix: str, barrier: Any) -> None:
    cache = redis_cache(url, None, prefix)
    barrier.wait(30)
    for _ in range(1000):
        cache.increment("hits")


def test_eight_processes_incrementing_one_key_count_exactly(redis_url: str) -> None:
    prefix = unique_prefix()

    _run_all(_increment, (redis_url, prefix, CTX.Barrier(WORKERS)))

    assert redis_cache(redis_url, None, prefix).get("hits") == WORKERS * 1000


def _remember(url: str, prefix: str, barrier: Any, results: Any) -> None:
    cache = redis_cache(url, None, prefix)
    witness = cache._c.client

    def compute() -> dict[str, int]:
        witness.incr(f"{prefix}:computations")
        time.sleep(0.3)  # a slow computation: the others arrive while it runs
        return {"pid": os.getpid()}

    barrier.wait(30)
    results.put(cache.remember("cold", 60, compute, wait=30))


def test_eight_processes_remembering_one_cold_key_compute_it_once(redis_url: str) -> None:
    prefix, results = unique_prefix(), CTX.Queue()

    _run_all(_remember, (redis_url, prefix, CTX.Barrier(WORKERS), results))

    values = [results.get(timeout=10) for _ in range(WORKERS)]
    witness = redis_cache(redis_url, None, prefix)._c.client
    assert witness.get(f"{prefix}:computations") == b"1"
    assert all(value == values[0] for value in values)


def _critical_sections(url: str, prefix: str, barrier: Any) -> None:
    cache = redis_cache(url, None, prefix)
    raw = cache._c.client
    barrier.wait(30)
    for _ in range(25):
        with cache.lock("critical", 30, timeout=60):
            if raw.incr(f"{prefix}:inside") != 1:
                raw.incr(f"{prefix}:overlaps")
            count = int(raw.get(f"{prefix}:count") or 0)
            time.sleep(0.001)  # widen the window a second holder would need
            raw.set(f"{prefix}:count", count + 1)
            raw.decr(f"{prefix}:inside")


def test_a_lock_under_contention_admits_one_process_at_a_time(redis_url: str) -> None:
    prefix = unique_prefix()

    _run_all(_critical_sections, (redis_url, prefix, CTX.Barrier(WORKERS)))

    raw = redis_cache(redis_url, None, prefix)._c.client
    assert raw.get(f"{prefix}:overlaps") is None
    assert raw.get(f"{prefix}:count") == str(WORKERS * 25).encode()


def _die_computing(make_cache: Callable[[], CachePort], started: Any) -> None:
    def compute() -> str:
        started.set()
        time.sleep(60)
        return "never"

    make_cache().remember("k", 60, compute, wait=1)


def _remember_after_the_computer_is_killed(
    child_cache: Callable[[], CachePort], cache: CachePort
) -> object:
    """What ``cache.remember`` gives once a process computing the key (on the cache
    ``child_cache`` builds there) was SIGKILLed mid-way."""
    started = CTX.Event()
    doomed: BaseProcess = CTX.Process(target=_die_computing, args=(child_cache, started))
    doomed.start()
    assert started.wait(30)
    os.kill(doomed.pid or 0, signal.SIGKILL)
    doomed.join(10)

    value = cache.remember("k", 60, lambda: "second", wait=30)

    assert doomed.exitcode == -signal.SIGKILL
    return value


def test_when_the_computing_process_is_killed_another_computes(redis_url: str) -> None:
    prefix = unique_prefix()

    value = _remember_after_the_computer_is_killed(
        lambda: redis_cache(redis_url, None, prefix), redis_cache(redis_url, None, prefix)
    )

    assert value == "second"


@pytest.mark.postgres
def test_when_the_computing_process_is_killed_another_computes_on_postgres(
    postgres_cache_pool: tuple[ConnectionPool, PostgresSettings],
) -> None:
    pool, settings = postgres_cache_pool
    prefix = unique_prefix("c")

    value = _remember_after_the_computer_is_killed(
        lambda: PostgresCache(open_pool(settings, "foundry-tests"), settings, prefix),
        PostgresCache(pool, settings, prefix),
    )

    assert value == "second"


def _read_own_key(cache: Any, key: str) -> int:
    """How many of 500 reads of ``key`` saw another key's value (a shared socket would)."""
    return sum(cache.get(key) != key for _ in range(500))


def _child_reads(cache: Any) -> None:
    raise SystemExit(min(_read_own_key(cache, "child"), 1))


def test_a_cache_used_before_fork_gives_parent_and_child_their_own_connection(
    redis_url: str,
) -> None:
    cache = redis_cache(redis_url, None, unique_prefix())
    cache.set_many({"parent": "parent", "child": "child"})  # connection open before the fork
    child = CTX.Process(target=_child_reads, args=(cache,))

    child.start()
    crossed = _read_own_key(cache, "parent")
    child.join(60)

    assert (crossed, child.exitcode) == (0, 0)


def _release_restored(make_cache: Callable[[], CachePort], owner: str) -> None:
    """In a process of its own (a queued job): release the lock another process took."""
    make_cache().restore_lock("report", owner).release()


def _released_by_another_process(
    child_cache: Callable[[], CachePort], cache: CachePort
) -> tuple[int | None, bool]:
    """Take a lock on ``cache``, have a child release it by its owner token on the cache
    ``child_cache`` builds there; the child's exit code and whether the lock is free again."""
    lock = cache.lock("report", 60)
    assert lock.acquire(blocking=False)
    child: BaseProcess = CTX.Process(target=_release_restored, args=(child_cache, lock.owner))
    child.start()
    child.join(60)
    return child.exitcode, cache.lock("report", 60).acquire(blocking=False)


def test_a_lock_taken_in_one_process_is_released_in_another_by_its_owner(
    redis_url: str,
) -> None:
    prefix = unique_prefix()

    outcome = _released_by_another_process(
        lambda: redis_cache(redis_url, None, prefix), redis_cache(redis_url, None, prefix)
    )

    assert outcome == (0, True)


@pytest.mark.postgres
def test_a_lock_taken_in_one_process_is_released_in_another_on_postgres(
    postgres_cache_pool: tuple[ConnectionPool, PostgresSettings],
) -> None:
    pool, settings = postgres_cache_pool
    prefix = unique_prefix("c")

    outcome = _released_by_another_process(
        lambda: PostgresCache(open_pool(settings, "foundry-tests"), settings, prefix),
        PostgresCache(pool, settings, prefix),
    )

    assert outcome == (0, True)
