"""Contract: expiry is exact against the cache's clock; touch; counters keep their ttl."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import InvalidCacheValue
from foundry.ports.cache import CachePort
from tests.backends import MS, CacheBackend


@pytest.mark.parametrize("ttl", [10, 10.0, timedelta(seconds=10)])
def test_a_value_is_present_until_its_expiry_and_absent_from_it(
    cache: CachePort, clock: ManualClock, ttl: float | timedelta
) -> None:
    cache.set("k", "v", ttl)
    clock.advance(timedelta(seconds=10) - MS)

    before = cache.get("k")
    clock.advance(MS)
    at_expiry = cache.get("k")

    assert before == "v"
    assert at_expiry is None
    assert not cache.has("k")


@pytest.mark.parametrize("ttl", [16.1, 2.007, 0.161])
def test_a_ttl_in_decimal_seconds_expires_at_that_millisecond_not_one_later(
    cache: CachePort, clock: ManualClock, ttl: float
) -> None:
    cache.set("k", "v", ttl)
    clock.advance(timedelta(seconds=ttl) - MS)

    before = cache.get("k")
    clock.advance(MS)

    assert before == "v"
    assert cache.get("k") is None


def test_a_value_without_ttl_lives_forever(cache: CachePort, clock: ManualClock) -> None:
    cache.set("k", "v")
    cache.forever("f", "v")

    clock.advance(timedelta(days=3650))

    assert cache.get_many(["k", "f"]) == {"k": "v", "f": "v"}


def test_a_zero_ttl_stores_nothing_visible(cache: CachePort) -> None:
    cache.set("k", "v", 0)

    assert not cache.has("k")


def test_a_sub_millisecond_ttl_rounds_up_to_one_millisecond(
    cache: CachePort, clock: ManualClock
) -> None:
    cache.set("k", "v", 0.0001)

    present = cache.has("k")
    clock.advance(MS)

    assert present
    assert not cache.has("k")


def test_set_many_applies_one_ttl_to_every_key(cache: CachePort, clock: ManualClock) -> None:
    cache.set_many({"a": 1, "b": 2}, timedelta(seconds=5))
    clock.advance(timedelta(seconds=5))

    assert cache.get_many(["a", "b"]) == {}


def test_add_succeeds_once_the_old_value_expired(cache: CachePort, clock: ManualClock) -> None:
    cache.set("k", "old", 1)
    clock.advance(1)

    stored = cache.add("k", "new", 1)

    assert stored
    assert cache.get("k") == "new"


def test_an_expired_value_counts_as_absent_for_delete_and_pull(
    cache: CachePort, clock: ManualClock
) -> None:
    cache.set_many({"a": 1, "b": 2}, 1)
    clock.advance(1)

    assert cache.delete("a") is False
    assert cache.pull("b", "default") == "default"


def test_touch_resets_the_expiry_from_now(cache: CachePort, clock: ManualClock) -> None:
    cache.set("k", "v", 10)
    clock.advance(8)

    touched = cache.touch("k", 10)
    clock.advance(timedelta(seconds=10) - MS)
    still_there = cache.get("k")
    clock.advance(MS)

    assert touched
    assert still_there == "v"
    assert cache.get("k") is None


def test_touch_with_none_makes_a_value_permanent(cache: CachePort, clock: ManualClock) -> None:
    cache.set("k", "v", 1)

    cache.touch("k", None)
    clock.advance(timedelta(days=1))

    assert cache.get("k") == "v"


def test_touch_of_a_missing_or_expired_key_says_so(cache: CachePort, clock: ManualClock) -> None:
    cache.set("k", "v", 1)
    clock.advance(1)

    assert cache.touch("k", 10) is False
    assert cache.touch("never", 10) is False
    assert not cache.has("k")


def test_increment_creates_a_missing_key_and_counts(cache: CachePort) -> None:
    first = cache.increment("n")
    second = cache.increment("n", 10)
    third = cache.decrement("n", 4)

    assert (first, second, third) == (1, 11, 7)
    assert cache.get("n") == 7


def test_increment_keeps_the_ttl(cache: CachePort, clock: ManualClock) -> None:
    cache.set("n", 5, 10)
    clock.advance(9)

    value = cache.increment("n")
    clock.advance(1)

    assert value == 6
    assert cache.get("n") is None


def test_increment_of_an_expired_counter_starts_again_without_ttl(
    cache: CachePort, clock: ManualClock
) -> None:
    cache.set("n", 5, 10)
    clock.advance(10)

    value = cache.increment("n", 2)
    clock.advance(timedelta(days=1))

    assert value == 2
    assert cache.get("n") == 2


@pytest.mark.parametrize("stored", ["5", 1.5, True, None, [1], {"n": 1}])
def test_increment_of_a_non_integer_is_rejected_and_changes_nothing(
    cache: CachePort, stored: object
) -> None:
    cache.set("k", stored)

    with pytest.raises(InvalidCacheValue, match="'k'"):
        cache.increment("k")

    assert cache.get("k") == stored


@pytest.mark.parametrize("by", [1.5, "1", True, 2**60])
def test_a_bad_increment_step_is_rejected(cache: CachePort, by: object) -> None:
    with pytest.raises(InvalidCacheValue, match="step"):
        cache.increment("n", by)  # type: ignore[arg-type]

    assert not cache.has("n")


def test_a_counter_stays_within_the_exact_integer_range(cache: CachePort) -> None:
    cache.set("n", 2**53 - 2)

    last = cache.increment("n")

    assert last == 2**53 - 1
    with pytest.raises(InvalidCacheValue, match="'n'"):
        cache.increment("n")
    assert cache.get("n") == 2**53 - 1


@pytest.mark.parametrize(
    "start", [datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(2300, 1, 1, tzinfo=UTC)]
)
def test_expiry_is_exact_with_clocks_far_from_today(
    cache_backend: CacheBackend, request: pytest.FixtureRequest, start: datetime
) -> None:
    clock = ManualClock(start)
    cache = cache_backend.build(request.getfixturevalue, clock)
    cache.set_many({"a": 1, "b": 2}, 5)
    cache.set("forever", 3)
    clock.advance(timedelta(seconds=5) - MS)

    before = cache.get_many(["a", "b", "forever"])
    clock.advance(MS)

    assert before == {"a": 1, "b": 2, "forever": 3}
    assert cache.get_many(["a", "b", "forever"]) == {"forever": 3}
    assert cache.get("a") is None


def test_the_longest_timedelta_is_a_ttl_every_backend_stores(
    cache: CachePort, clock: ManualClock
) -> None:
    cache.set("k", "v", timedelta.max)
    cache.set_many({"m": 1}, timedelta.max.total_seconds())
    cache.set("t", "v")
    cache.touch("t", timedelta.max)

    clock.advance(timedelta(days=365_000))

    assert cache.get_many(["k", "m", "t"]) == {"k": "v", "m": 1, "t": "v"}


@pytest.mark.parametrize("ttl", [10**20, 1e300])
def test_a_ttl_longer_than_the_longest_timedelta_is_rejected_and_nothing_is_written(
    cache: CachePort, ttl: float
) -> None:
    cache.set("kept", "v", 10)

    for write in (
        lambda: cache.set("k", 1, ttl),
        lambda: cache.add("k", 1, ttl),
        lambda: cache.set_many({"k": 1}, ttl),
        lambda: cache.touch("kept", ttl),
        lambda: cache.remember("k", ttl, lambda: 1),
    ):
        with pytest.raises(InvalidCacheValue, match="None for forever"):
            write()

    assert not cache.has("k")
    assert cache.get("kept") == "v"
