"""MemoryCache beyond the shared contract: the LRU bound, the sweep, thread safety."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory.cache import MemoryCache
from foundry.domain import InvalidCacheKey, InvalidCacheValue


def test_the_least_recently_used_value_is_evicted_and_counted(clock: ManualClock) -> None:
    cache = MemoryCache(clock, max_entries=3)
    cache.set_many({"a": 1, "b": 2, "c": 3})
    cache.get("a")

    cache.set("d", 4)

    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "c": 3, "d": 4}
    assert cache.stats().evictions == 1
    cache.set_many({"e": 5, "f": 6})
    assert cache.stats().evictions == 3  # counted one by one


def test_the_sweep_drops_expired_values_nobody_reads(clock: ManualClock) -> None:
    cache = MemoryCache(clock, sweep_every=timedelta(seconds=60))
    cache.set_many({f"k{i}": i for i in range(100)}, ttl=10)
    clock.advance(60)

    cache.set("trigger", 1)

    assert len(cache._c.entries) == 1


def test_flushing_many_distinct_tags_keeps_the_tag_table_bounded_and_revives_nothing(
    clock: ManualClock,
) -> None:
    cache = MemoryCache(clock, max_entries=3)
    first = cache.tags("user:0")
    first.set("profile", "old")
    first.flush()

    for n in range(1, 1000):  # a web app flushing a tag per user
        cache.tags(f"user:{n}").flush()

    assert len(cache._c.tags) <= 3
    assert first.get("profile") is None
    first.set("profile", "new")
    assert first.get("profile") == "new"


def test_threads_incrementing_one_key_lose_nothing(clock: ManualClock) -> None:
    cache = MemoryCache(clock)

    def work() -> None:
        for _ in range(1000):
            cache.increment("n")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert cache.get("n") == 8000


def test_bad_settings_are_rejected(clock: ManualClock) -> None:
    with pytest.raises(InvalidCacheValue, match="max_entries"):
        MemoryCache(clock, max_entries=0)
    with pytest.raises(InvalidCacheKey, match="CACHE_PREFIX"):
        MemoryCache(clock, prefix="has space")
