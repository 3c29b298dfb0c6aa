"""Cache operations from one process: get, set, and 100-key get_many/set_many.

Targets: ``get`` and ``set`` >= 10,000 ops/s each on Redis over loopback, and
``get_many``/``set_many`` of 100 keys >= 200,000 keys/s. PostgreSQL: the same calls on the
throwaway database, and the floor of a bare primary-key ``SELECT`` through the same pool.
``python -m bench.cache_ops`` runs just this workload (own redis-server, median and min-max
of the runs, a markdown table).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import orjson

from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate, stopwatch
from foundry.adapters.clock import SystemClock
from foundry.adapters.memory.cache import MemoryCache
from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.ports.cache import CachePort

VALUE = {"id": 12345, "name": "Ada Lovelace", "roles": ["admin", "author"], "active": True}
KEYS = [f"user:{i}" for i in range(1000)]
BATCH = 100
BATCHES = [KEYS[i : i + BATCH] for i in range(0, len(KEYS), BATCH)]


def _cache(env: Env, backend: str) -> tuple[CachePort, Callable[[], None]]:
    """A cache, and what closes it (its read counts written first, on PostgreSQL)."""
    if backend == "memory":
        return MemoryCache(SystemClock(), max_entries=len(KEYS) * 2), lambda: None
    if backend == "postgres":
        from foundry.adapters.postgres.cache import PostgresCache  # noqa: PLC0415
        from foundry.adapters.postgres.config import PostgresSettings  # noqa: PLC0415
        from foundry.adapters.postgres.connection import open_pool  # noqa: PLC0415

        settings = PostgresSettings(url=env.postgres_url)
        pool = open_pool(settings, "foundry-bench")
        cache = PostgresCache(pool, settings, env.unique("c"))

        def close() -> None:
            cache.stats()
            pool.close()

        return cache, close
    client = connect(RedisSettings(url=env.redis_url, client_name="foundry-bench"))
    return RedisCache(client, env.unique("bench-cache")), client.close


def _singles(cache: CachePort, calls: int) -> tuple[float, float]:
    with stopwatch() as elapsed:
        for i in range(calls):
            cache.set(KEYS[i % len(KEYS)], VALUE, 600)
    sets = rate(calls, elapsed())
    with stopwatch() as elapsed:
        for i in range(calls):
            cache.get(KEYS[i % len(KEYS)])
    return sets, rate(calls, elapsed())


def _batches(cache: CachePort, calls: int) -> tuple[float, float]:
    mappings = [dict.fromkeys(batch, VALUE) for batch in BATCHES]
    with stopwatch() as elapsed:
        for i in range(calls):
            cache.set_many(mappings[i % len(mappings)], 600)
    sets = rate(calls * BATCH, elapsed())
    with stopwatch() as elapsed:
        for i in range(calls):
            cache.get_many(BATCHES[i % len(BATCHES)])
    return sets, rate(calls * BATCH, elapsed())


def _floor(env: Env, calls: int, batches: int) -> dict[str, float]:
    """The same loops as plain redis-py GET/SET/MGET/MSET: what the machine allows right now."""
    client = connect(RedisSettings(url=env.redis_url, client_name="foundry-bench"))
    keys = [f"{env.unique('bench-floor')}:{key}" for key in KEYS]
    blob = b"0:" + orjson.dumps(VALUE)
    client.set(keys[0], blob)
    with stopwatch() as elapsed:
        for i in range(calls):
            client.get(keys[i % len(keys)])
    get_rate = rate(calls, elapsed())
    with stopwatch() as elapsed:
        for i in range(batches):
            client.mget(keys[(i % 10) * BATCH : (i % 10 + 1) * BATCH])
    mget_rate = rate(batches * BATCH, elapsed())
    client.delete(*keys)
    return {"floor_get": get_rate, "floor_mget": mget_rate}


def _postgres_floor(cache: CachePort, calls: int) -> dict[str, float]:
    """The same single reads as a bare SELECT by primary key on a pooled connection."""
    from foundry.adapters.postgres.cache import PostgresCache  # noqa: PLC0415

    assert isinstance(cache, PostgresCache)
    core = cache._c
    statement = (
        f'SELECT value FROM "{core.settings.schema}".cache_values WHERE prefix = %s AND key = %s'
    )
    with stopwatch() as elapsed:
        for i in range(calls):
            with core.pool.connection() as conn:
                conn.execute(statement, (core.prefix, ":" + KEYS[i % len(KEYS)])).fetchall()
    return {"floor_get": rate(calls, elapsed())}


def run_once(env: Env, backend: str) -> Sample:
    """One sample of each rate."""
    cache, close = _cache(env, backend)
    try:
        cache.set("warm-up", 1)  # connect and load the scripts outside the timed sections
        cache.get_many(["warm-up"])
        set_rate, get_rate = _singles(cache, env.scale(20_000, 5_000))
        set_many_rate, get_many_rate = _batches(cache, env.scale(1_000, 200))
        postgres = backend == "postgres"
        floor = _postgres_floor(cache, env.scale(20_000, 5_000)) if postgres else {}
        cache.clear()
    finally:
        close()
    sample = {
        "get": get_rate,
        "set": set_rate,
        "get_many": get_many_rate,
        "set_many": set_many_rate,
    }
    if backend == "redis":
        sample |= _floor(env, env.scale(20_000, 5_000), env.scale(1_000, 200))
    return sample | floor


WORKLOADS = (
    Workload(
        name="cache_ops",
        title="Cache from one process: get, set (one call each), get_many/set_many of 100 keys",
        backends=("redis", "postgres", "memory"),
        metrics=(
            Metric("get", "get", "ops/s", 10_000),
            Metric("set", "set (ttl)", "ops/s", 10_000),
            Metric("get_many", "get_many x100", "keys/s", 200_000),
            Metric("set_many", "set_many x100 (ttl)", "keys/s", 200_000),
            Metric("floor_get", "floor: redis-py GET / a pooled SELECT by key", "ops/s"),
            Metric("floor_mget", "floor: redis-py MGET x100", "keys/s"),
        ),
        run_once=run_once,
    ),
)


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--only", "cache_ops", *sys.argv[1:]]))
