"""Contract: remember - compute on a miss, single flight, bounded wait, nothing cached on error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import CacheError, InvalidCacheValue
from foundry.ports.cache import CachePort
from tests.backends import run_while_advancing


def test_remember_computes_on_a_miss_and_then_serves_the_stored_value(
    cache: CachePort, clock: ManualClock
) -> None:
    calls: list[int] = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    first = cache.remember("k", 10, compute)
    second = cache.remember("k", 10, compute)
    clock.advance(10)
    third = cache.remember("k", 10, compute)

    assert (first, second, third) == ({"n": 1}, {"n": 1}, {"n": 2})


@attrs.frozen
class Profile:
    name: str
    roles: tuple[str, ...]


@pytest.mark.parametrize("ttl", [60, 0])
def test_remember_gives_the_computer_the_value_as_every_later_hit_reads_it(
    cache: CachePort, ttl: int
) -> None:
    computed = cache.remember("k", ttl, lambda: Profile("Ada", ("admin",)))
    served = cache.remember("k", ttl, lambda: Profile("Ada", ("admin",)))

    assert computed == served == {"name": "Ada", "roles": ["admin"]}


def test_a_remember_that_raises_caches_nothing_and_lets_the_next_caller_compute(
    cache: CachePort,
) -> None:
    def fail() -> str:
        raise RuntimeError("backend down")

    with pytest.raises(RuntimeError, match="backend down"):
        cache.remember("k", 10, fail)

    assert not cache.has("k")
    assert cache.remember("k", 10, lambda: "ok") == "ok"


def test_a_remembered_value_that_cannot_be_encoded_is_an_error_and_caches_nothing(
    cache: CachePort,
) -> None:
    with pytest.raises(InvalidCacheValue):
        cache.remember("k", 10, object)

    assert not cache.has("k")
    assert cache.remember("k", 10, lambda: 1) == 1


@pytest.mark.parametrize("wait", [0, None, -1])
def test_remember_needs_a_positive_wait(cache: CachePort, wait: float | None) -> None:
    with pytest.raises(InvalidCacheValue, match="wait"):
        cache.remember("k", 10, lambda: 1, wait=wait)


def test_concurrent_callers_of_a_cold_key_compute_it_once(cache: CachePort) -> None:
    calls: list[int] = []
    release = threading.Event()
    results: list[object] = []

    def compute() -> str:
        calls.append(1)
        release.wait(10)
        return "value"

    threads = [
        threading.Thread(target=lambda: results.append(cache.remember("k", 60, compute)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # let every thread reach remember(); correctness does not depend on it
    release.set()
    for thread in threads:
        thread.join(10)

    assert len(calls) == 1
    assert results == ["value"] * 8


class _Holder:
    """A caller stuck computing ``key`` (as if hung or dead) until told to finish."""

    def __init__(self, cache: CachePort, key: str, wait: float) -> None:
        self.started, self.finish = threading.Event(), threading.Event()
        self.thread = threading.Thread(
            target=lambda: cache.remember(key, 600, self._compute, wait=wait), daemon=True
        )
        self.thread.start()
        assert self.started.wait(10)

    def _compute(self) -> str:
        self.started.set()
        self.finish.wait(30)
        return "holder's"

    def done(self) -> None:
        self.finish.set()
        self.thread.join(10)


def test_a_waiter_gives_up_after_its_wait_on_the_clock(
    cache: CachePort, clock: ManualClock
) -> None:
    holder = _Holder(cache, "k", wait=3600)
    start = clock.now()

    with pytest.raises(CacheError, match="gave up"):
        run_while_advancing(clock, lambda: cache.remember("k", 60, lambda: "mine", wait=5))

    assert clock.now() - start >= timedelta(seconds=5)
    assert not cache.has("k")
    holder.done()
    assert cache.get("k") == "holder's"


def test_a_computation_longer_than_its_wait_runs_once(cache: CachePort, clock: ManualClock) -> None:
    computed: list[str] = []
    done_at = clock.now() + timedelta(seconds=15)

    def slow(name: str) -> Callable[[], str]:
        def compute() -> str:
            computed.append(name)
            while clock.now() < done_at:  # three times its wait, on the cache's clock
                time.sleep(0.001)
            return name

        return compute

    holder = threading.Thread(target=lambda: cache.remember("k", 600, slow("first"), wait=5))
    holder.start()
    while not computed:
        time.sleep(0.001)

    # Small steps: the clock outruns real time, and a loaded machine may pause the renewing
    # thread a while; the lock lasts 100 steps of at least 5 ms, renewed after a third of them.
    second = run_while_advancing(
        clock, lambda: cache.remember("k", 600, slow("second"), wait=60), timedelta(seconds=0.05)
    )
    holder.join(10)

    assert computed == ["first"]
    assert second == "first"


def test_a_waiter_gets_the_value_the_computer_stores(cache: CachePort) -> None:
    holder = _Holder(cache, "k", wait=60)
    threading.Timer(0.1, holder.finish.set).start()

    result = cache.remember("k", 600, lambda: "mine", wait=60)

    assert result == "holder's"
    holder.done()


def test_a_computation_that_remembers_its_own_key_fails_at_once_naming_it(
    cache: CachePort, clock: ManualClock
) -> None:
    def profile() -> object:  # a helper that caches under the same key as its caller
        return cache.remember("profile:7", 60, lambda: "inner", wait=5)

    with pytest.raises(CacheError, match="its own computation"):
        run_while_advancing(clock, lambda: cache.remember("profile:7", 60, profile, wait=5))

    assert not cache.has("profile:7")
    assert cache.remember("profile:7", 60, lambda: "outer") == "outer"
