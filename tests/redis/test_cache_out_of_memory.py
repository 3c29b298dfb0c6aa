"""The Redis cache on a Redis out of memory (used memory above ``maxmemory``, policy
``noeviction``): every call that may write is refused before it runs, an outage
(``CacheUnavailable``) naming the cause and the fix; the same cache works once memory is freed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.domain import CacheUnavailable, FoundryError
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


def _calls(cache: RedisCache) -> dict[str, Callable[[], object]]:
    """Every cache call that may write, on keys written before memory ran out."""
    return {
        "get": lambda: cache.get("k"),
        "get of a missing key": lambda: cache.get("missing"),
        "has": lambda: cache.has("k"),
        "set": lambda: cache.set("k", 2),
        "forever": lambda: cache.forever("k", 2),
        "add": lambda: cache.add("new", 2),
        "delete": lambda: cache.delete("k"),
        "pull": lambda: cache.pull("k"),
        "touch": lambda: cache.touch("k", 10),
        "get_many": lambda: cache.get_many(["k", "n"]),
        "set_many": lambda: cache.set_many({"a": 1, "b": 2}),
        "delete_many": lambda: cache.delete_many(["k", "n"]),
        "increment": lambda: cache.increment("n"),
        "decrement": lambda: cache.decrement("n"),
        "remember": lambda: cache.remember("r", 10, lambda: 3),
        "a tagged get": lambda: cache.tags("t").get("x"),
        "a tagged set under a new tag": lambda: cache.tags("new").set("x", 1),
        "a tag flush": lambda: cache.tags("t").flush(),
        "a lock": lambda: cache.lock("l", 10).acquire(blocking=False),
        "an effect": lambda: cache.idempotent("e", 10).__enter__(),
    }


def test_every_cache_call_refused_for_memory_is_an_outage_naming_the_cause_and_the_fix(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    client = connect(RedisSettings(url=server.url, retries=1, backoff_base=timedelta(0)))
    cache = RedisCache(client, "oom")
    cache.set_many({"k": 1, "n": 5})
    cache.tags("t").set("x", 1)
    server.fill_past_maxmemory()

    refusals: dict[str, BaseException | None] = {}
    for name, call in _calls(cache).items():
        try:
            call()
            refusals[name] = None
        except FoundryError as error:
            refusals[name] = error
    stats = cache.stats()  # reads only: still served
    server.client().config_set("maxmemory", "0")
    for call in _calls(cache).values():  # the same cache, once memory is freed
        call()

    wrong = {name: repr(error) for name, error in refusals.items() if not _names_oom(error)}
    assert wrong == {}
    assert stats.writes == 3
    assert cache.get("a") == 1


def _names_oom(error: BaseException | None) -> bool:
    """Whether ``error`` is an outage naming memory as its cause, and the fix."""
    text = str(error)
    return (
        isinstance(error, CacheUnavailable)
        and "Redis is out of memory" in text
        and "did not run" in text
        and "Raise maxmemory" in text
        and "cannot be reached" not in text
    )
