"""Contract: a lock's owner token, restoring a lock by it elsewhere, and forcing a release."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import InvalidCacheKey, InvalidCacheValue, LockNotOwned
from foundry.ports.cache import CachePort, Lock
from tests.backends import MS


def _held(cache: CachePort, name: str = "report", ttl: float = 60) -> Lock:
    lock = cache.lock(name, ttl)
    assert lock.acquire(blocking=False)
    return lock


def _in_another_thread(action: Callable[[], object]) -> object:
    """What ``action`` returns, or the ``LockNotOwned`` it raises, run in a thread of its own."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(action())
        except LockNotOwned as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return outcome[0]


def test_a_lock_restored_by_its_owner_token_releases_it(cache: CachePort) -> None:
    taken = _held(cache)

    cache.restore_lock("report", taken.owner).release()

    assert not taken.owned()
    assert cache.lock("report", 60).acquire(blocking=False)


def test_a_restored_lock_is_owned_and_can_be_extended(cache: CachePort, clock: ManualClock) -> None:
    taken = _held(cache, ttl=10)
    restored = cache.restore_lock("report", taken.owner)

    owned = restored.owned()
    restored.extend(30)
    clock.advance(timedelta(seconds=30) - MS)

    assert owned
    assert taken.owned()
    clock.advance(MS)
    assert not restored.owned()


def test_a_lock_restored_with_another_owner_cannot_release_it(cache: CachePort) -> None:
    taken = _held(cache)
    stranger = cache.restore_lock("report", "not-the-owner")

    with pytest.raises(LockNotOwned):
        stranger.release()
    with pytest.raises(LockNotOwned):
        stranger.extend(60)

    assert not stranger.owned()
    assert taken.owned()


def test_a_restored_lock_cannot_release_a_lock_that_expired_and_was_taken_again(
    cache: CachePort, clock: ManualClock
) -> None:
    first = _held(cache, ttl=10)
    clock.advance(10)
    second = _held(cache)

    with pytest.raises(LockNotOwned):
        cache.restore_lock("report", first.owner).release()

    assert second.owned()


def test_a_restored_lock_is_its_owner_in_every_thread(cache: CachePort) -> None:
    taken = _held(cache)
    restored = cache.restore_lock("report", taken.owner)

    released_elsewhere = _in_another_thread(restored.release)

    assert released_elsewhere is None
    assert not taken.owned()


def test_the_owner_is_one_token_per_lock_object_and_thread(cache: CachePort) -> None:
    lock, other = cache.lock("report", 60), cache.lock("report", 60)

    mine = lock.owner
    elsewhere = _in_another_thread(lambda: lock.owner)

    assert isinstance(mine, str)
    assert mine
    assert lock.owner == mine
    assert len({mine, other.owner, elsewhere}) == 3
    assert cache.restore_lock("report", mine).owner == mine


def test_the_owner_read_before_acquiring_is_the_one_that_holds_it(cache: CachePort) -> None:
    lock = cache.lock("report", 60)
    owner = lock.owner

    lock.acquire(blocking=False)

    assert cache.restore_lock("report", owner).owned()


def test_a_restored_lock_with_a_ttl_is_refreshed_by_acquiring_it(
    cache: CachePort, clock: ManualClock
) -> None:
    taken = _held(cache, ttl=10)
    restored = cache.restore_lock("report", taken.owner, 30)

    again = restored.acquire(blocking=False)
    clock.advance(timedelta(seconds=30) - MS)

    assert again
    assert taken.owned()


def test_acquiring_a_lock_restored_without_a_ttl_says_to_give_one(cache: CachePort) -> None:
    restored = cache.restore_lock("report", "someone")

    with pytest.raises(InvalidCacheValue, match="restore_lock"):
        restored.acquire(blocking=False)

    assert not restored.owned()


def test_force_release_frees_a_lock_whoever_holds_it(cache: CachePort) -> None:
    taken = _held(cache)

    cache.lock("report", 60).force_release()

    assert not taken.owned()
    assert cache.lock("report", 60).acquire(blocking=False)


def test_force_release_of_a_free_lock_does_nothing(cache: CachePort) -> None:
    cache.restore_lock("report", "someone").force_release()

    assert cache.lock("report", 60).acquire(blocking=False)


def test_force_release_frees_only_its_own_name(cache: CachePort) -> None:
    other = _held(cache, "other")
    _held(cache)

    cache.restore_lock("report", "someone").force_release()

    assert other.owned()


@pytest.mark.parametrize("owner", ["", "bad\nowner", 7, None])
def test_a_restored_lock_needs_a_usable_owner(cache: CachePort, owner: object) -> None:
    with pytest.raises(InvalidCacheKey, match="lock owner"):
        cache.restore_lock("report", owner)  # type: ignore[arg-type]


def test_a_restored_lock_name_follows_the_key_rules(cache: CachePort) -> None:
    with pytest.raises(InvalidCacheKey, match="lock name"):
        cache.restore_lock("bad\nname", "someone")


@pytest.mark.parametrize("ttl", [0, -1])
def test_a_restored_lock_s_ttl_if_given_is_positive(cache: CachePort, ttl: float) -> None:
    with pytest.raises(InvalidCacheValue, match="lock ttl"):
        cache.restore_lock("report", "someone", ttl)


def test_a_restored_lock_satisfies_the_lock_protocol(cache: CachePort) -> None:
    restored = cache.restore_lock("report", "someone")

    assert isinstance(restored, Lock)
    assert (restored.name, restored.owner) == ("report", "someone")
