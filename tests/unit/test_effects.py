"""``foundry.idempotent``: an effect record keyed by the running job and fenced by its lease."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

import foundry
from foundry.adapters.clock import ManualClock
from foundry.adapters.memory.cache import MemoryCache
from foundry.application.context import JobContext, set_current
from foundry.domain import ConfigurationError, StaleEffect

DAY = timedelta(days=1)


@pytest.fixture
def cache() -> MemoryCache:
    return MemoryCache(ManualClock())


@pytest.fixture
def running() -> Iterator[None]:
    set_current(JobContext("job-1", "charge", "default", 1, {}, fence=4))
    yield
    set_current(None)


def test_the_record_is_keyed_by_the_running_job(cache: MemoryCache, running: None) -> None:
    with foundry.idempotent(cache, "charge", DAY) as effect:
        assert not effect.done

    with cache.idempotent("job-1:charge", DAY) as same, cache.idempotent("charge", DAY) as other:
        assert (same.done, other.done) == (True, False)


def test_the_record_is_fenced_by_the_running_attempt(cache: MemoryCache, running: None) -> None:
    cache.idempotent("job-1:charge", DAY, fence=5).__enter__()  # a newer attempt is acting

    with pytest.raises(StaleEffect), foundry.idempotent(cache, "charge", DAY):
        pass


def test_outside_a_job_it_needs_a_full_key(cache: MemoryCache) -> None:
    with pytest.raises(ConfigurationError, match="per_job=False"):
        foundry.idempotent(cache, "charge", DAY)

    with foundry.idempotent(cache, "charge-order-9", DAY, per_job=False) as effect:
        assert not effect.done
    with cache.idempotent("charge-order-9", DAY) as again:
        assert again.done
