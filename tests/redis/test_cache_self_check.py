"""`foundry check` on the cache's Redis: an eviction policy that can drop held locks and effect
records, or persistence that loses them if Redis stops, is a warning naming the fix, on a
throwaway redis-server configured that way."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.connection import RedisSettings, connect
from tests.redis.test_selfcheck_output import _foundry
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

#: The cache alone on the server: every warning is the cache's.
CACHE_ONLY = {"CACHE_DRIVER": "redis", "QUEUE_DRIVER": "memory"}


def _evicting(factory: Callable[..., RedisServer], policy: str) -> RedisServer:
    server = factory(appendonly=True)
    server.client().config_set("maxmemory-policy", policy)
    return server


@pytest.mark.parametrize(
    "policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-ttl"]
)
def test_check_warns_that_the_cache_s_redis_may_evict_held_locks(
    redis_server_factory: Callable[..., RedisServer], policy: str
) -> None:
    server = _evicting(redis_server_factory, policy)

    done = _foundry(server.url, "check", env={**CACHE_ONLY, "COLUMNS": "300"})

    assert done.returncode == 0, done.stderr
    [warning] = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert f"'{policy}'" in warning
    assert "locks and effect records" in warning
    assert "set maxmemory-policy noeviction" in warning
    assert "jobs" not in warning


def test_check_strict_names_the_setting_that_keeps_the_cache_s_locks(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = _evicting(redis_server_factory, "allkeys-lru")

    done = _foundry(server.url, "check", "--strict", env=CACHE_ONLY)

    assert done.returncode == 1
    assert "set maxmemory-policy noeviction" in done.stderr.strip().splitlines()[-1]


def test_check_of_a_cache_on_a_noeviction_redis_has_no_warning(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(appendonly=True)

    done = _foundry(server.url, "check", env=CACHE_ONLY)

    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr


def test_a_volatile_policy_evicts_a_held_lock_as_the_warning_says(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = _evicting(redis_server_factory, "volatile-lru")
    client = connect(RedisSettings(url=server.url))
    lock = RedisCache(client, prefix="c").lock("held", 3600)
    assert lock.acquire(blocking=False)
    raw = server.client()
    raw.config_set("maxmemory", int(raw.info("memory")["used_memory"]) + 1_000_000)

    for batch in range(40):  # 4 MB of values with an expiry into a 1 MB margin
        pipe = raw.pipeline(transaction=False)
        for n in range(1000):
            pipe.set(f"filler:{batch}:{n}", "x" * 100, ex=3600)
        pipe.execute()

    assert int(raw.info("stats")["evicted_keys"]) > 0
    assert not lock.owned()


def test_check_warns_that_the_cache_s_redis_without_appendonly_loses_held_locks_if_it_stops(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()  # appendonly off, as a stock redis-server

    done = _foundry(server.url, "check", env={**CACHE_ONLY, "COLUMNS": "300"})

    assert done.returncode == 0, done.stderr
    [warning] = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert "appendonly is off" in warning
    assert "held locks, effect records and values" in warning
    assert "set appendonly yes" in warning
