"""The cache state machine: random call sequences against each adapter and the pure model.

``CacheMachine`` holds the rules; ``make_cache`` builds the adapter. The Redis variant needs
the ``redis_url`` fixture, so it runs inside a test with ``run_state_machine_as_test``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from psycopg_pool import ConnectionPool

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory.cache import MemoryCache
from foundry.adapters.postgres.cache import PostgresCache
from foundry.adapters.postgres.config import PostgresSettings
from foundry.domain import InvalidCacheValue
from foundry.ports.cache import CachePort, CacheStats, CacheStore
from tests.backends import redis_cache, unique_prefix
from tests.model.cache_model import MISSING, CacheModel, View

VIEWS: list[View] = [(), (), ("a",), ("a", "b"), ("b",)]
#: ttl as given to the adapter -> the same ttl in ms for the model.
TTLS: dict[Any, int | None] = {None: None, 0: 0, 0.0004: 1, 1: 1000, 2.5: 2500}

views = st.sampled_from(VIEWS)
keys = st.sampled_from(["x", "y", "z"])
values = st.one_of(
    st.integers(-3, 3),
    st.text("ab", max_size=2),
    st.none(),
    st.lists(st.integers(0, 2), max_size=2),
)
ttls = st.sampled_from(list(TTLS))
steps = st.sampled_from([1, 400, 1000, 3000])


class CacheMachine(RuleBasedStateMachine):
    """Every rule calls the adapter and the model and compares their answers."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.cache = self.make_cache(self.clock)
        self.model = CacheModel()

    def make_cache(self, clock: ManualClock) -> CachePort:
        """The adapter under test, on ``clock``."""
        raise NotImplementedError

    def view(self, names: View) -> CacheStore:
        return self.cache.tags(*names) if names else self.cache

    @rule(view=views, key=keys, value=values, ttl=ttls)
    def set(self, view: View, key: str, value: Any, ttl: Any) -> None:
        self.view(view).set(key, value, ttl)
        self.model.set(view, key, value, TTLS[ttl])

    @rule(view=views, key=keys)
    def get(self, view: View, key: str) -> None:
        assert self.view(view).get(key, MISSING) == self.model.get(view, key)

    @rule(view=views, key=keys, value=values, ttl=ttls)
    def add(self, view: View, key: str, value: Any, ttl: Any) -> None:
        assert self.view(view).add(key, value, ttl) == self.model.add(view, key, value, TTLS[ttl])

    @rule(view=views, key=keys)
    def delete(self, view: View, key: str) -> None:
        assert self.view(view).delete(key) == self.model.delete(view, key)

    @rule(view=views, key=keys)
    def pull(self, view: View, key: str) -> None:
        expected = self.model.get(view, key)
        if expected != MISSING:
            self.model.delete(view, key)
        assert self.view(view).pull(key, MISSING) == expected

    @rule(view=views, key=keys, ttl=ttls)
    def touch(self, view: View, key: str, ttl: Any) -> None:
        assert self.view(view).touch(key, ttl) == self.model.touch(view, key, TTLS[ttl])

    @rule(view=views, key=keys, by=st.integers(-3, 3))
    def increment(self, view: View, key: str, by: int) -> None:
        expected = self.model.increment(view, key, by)
        if expected is None:
            with pytest.raises(InvalidCacheValue):
                self.view(view).increment(key, by)
        else:
            assert self.view(view).increment(key, by) == expected

    @rule(view=views, chosen=st.lists(keys, max_size=3))
    def get_many(self, view: View, chosen: list[str]) -> None:
        expected = {k: v for k in chosen if (v := self.model.get(view, k)) != MISSING}
        assert self.view(view).get_many(chosen) == expected

    @rule(view=views, mapping=st.dictionaries(keys, values, max_size=3), ttl=ttls)
    def set_many(self, view: View, mapping: dict[str, Any], ttl: Any) -> None:
        self.view(view).set_many(mapping, ttl)
        for key, value in mapping.items():
            self.model.set(view, key, value, TTLS[ttl])

    @rule(view=views, key=keys, value=values, ttl=ttls)
    def remember(self, view: View, key: str, value: Any, ttl: Any) -> None:
        expected = self.model.get(view, key)
        if expected == MISSING:
            expected = value
            self.model.set(view, key, value, TTLS[ttl])
        assert self.view(view).remember(key, ttl, lambda: value) == expected

    @rule(view=views, key=keys)
    def has(self, view: View, key: str) -> None:
        assert self.view(view).has(key) == self.model.live(view, key)[0]

    @rule(view=views, chosen=st.lists(keys, max_size=3, unique=True))
    def delete_many(self, view: View, chosen: list[str]) -> None:
        expected = sum(self.model.delete(view, key) for key in chosen)
        assert self.view(view).delete_many(chosen) == expected

    @rule(tag=st.sampled_from(["a", "b"]))
    def flush(self, tag: str) -> None:
        self.cache.tags(tag).flush()
        self.model.flush(tag)

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        self.model.clear()

    @rule(ms=steps)
    def advance(self, ms: int) -> None:
        self.clock.advance(timedelta(milliseconds=ms))
        self.model.now += ms

    @invariant()
    def stats_agree(self) -> None:
        m = self.model
        assert self.cache.stats() == CacheStats(m.hits, m.misses, m.writes, m.deletes)


class MemoryCacheMachine(CacheMachine):
    """The model against ``MemoryCache``."""

    def make_cache(self, clock: ManualClock) -> CachePort:
        """A fresh memory cache."""
        return MemoryCache(clock)


TestMemoryCacheModel = MemoryCacheMachine.TestCase
TestMemoryCacheModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


@pytest.mark.redis
def test_redis_cache_agrees_with_the_model(redis_url: str) -> None:
    class RedisCacheMachine(CacheMachine):
        def make_cache(self, clock: ManualClock) -> CachePort:
            return redis_cache(redis_url, clock)

    run_state_machine_as_test(
        RedisCacheMachine, settings=settings(max_examples=40, stateful_step_count=40, deadline=None)
    )


@pytest.mark.postgres
def test_postgres_cache_agrees_with_the_model(
    postgres_cache_pool: tuple[ConnectionPool, PostgresSettings],
) -> None:
    pool, database = postgres_cache_pool

    class PostgresCacheMachine(CacheMachine):
        def make_cache(self, clock: ManualClock) -> CachePort:
            return PostgresCache(pool, database, unique_prefix("c"), clock=clock)

    run_state_machine_as_test(
        PostgresCacheMachine,
        settings=settings(max_examples=40, stateful_step_count=40, deadline=None),
    )
