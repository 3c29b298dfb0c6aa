"""Contract: owner-token locks - exclusion, expiry on the clock, safe release, waiting."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import CacheError, InvalidCacheKey, InvalidCacheValue, LockNotOwned
from foundry.ports.cache import CachePort, Lock
from tests.backends import MS, run_while_advancing


def test_a_held_lock_excludes_another_owner_until_released(cache: CachePort) -> None:
    mine, theirs = cache.lock("job", 10), cache.lock("job", 10)
    mine.acquire(blocking=False)

    blocked = theirs.acquire(blocking=False)
    mine.release()
    after_release = theirs.acquire(blocking=False)

    assert (blocked, after_release) == (False, True)
    assert theirs.owned()
    assert not mine.owned()


def test_only_the_owner_can_release_or_extend(cache: CachePort) -> None:
    mine, theirs = cache.lock("job", 10), cache.lock("job", 10)
    mine.acquire(blocking=False)

    with pytest.raises(LockNotOwned):
        theirs.release()
    with pytest.raises(LockNotOwned):
        theirs.extend(60)

    assert mine.owned()


def _in_another_thread(action: Callable[[], object]) -> object:
    """What ``action`` returns, or raises, when run in a thread of its own."""
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


def test_threads_sharing_one_lock_object_are_separate_owners(cache: CachePort) -> None:
    lock = cache.lock("job", 10)  # a module-level lock, used by a threaded web server
    lock.acquire(blocking=False)

    taken_elsewhere = _in_another_thread(lambda: lock.acquire(blocking=False))
    owned_elsewhere = _in_another_thread(lock.owned)
    released_elsewhere = _in_another_thread(lock.release)

    assert (taken_elsewhere, owned_elsewhere) == (False, False)
    assert isinstance(released_elsewhere, LockNotOwned)
    assert lock.owned()
    lock.release()
    assert _in_another_thread(lambda: lock.acquire(blocking=False)) is True


def test_releasing_twice_is_an_error(cache: CachePort) -> None:
    lock = cache.lock("job", 10)
    lock.acquire(blocking=False)
    lock.release()

    with pytest.raises(LockNotOwned):
        lock.release()


def test_a_lock_expires_after_its_ttl_on_the_clock(cache: CachePort, clock: ManualClock) -> None:
    mine, theirs = cache.lock("job", 10), cache.lock("job", 10)
    mine.acquire(blocking=False)
    clock.advance(timedelta(seconds=10) - MS)
    still_held = not theirs.acquire(blocking=False)

    clock.advance(MS)

    assert still_held
    assert not mine.owned()
    assert theirs.acquire(blocking=False)
    with pytest.raises(LockNotOwned):
        mine.release()


def test_extend_holds_the_lock_for_the_new_ttl_from_now(
    cache: CachePort, clock: ManualClock
) -> None:
    lock = cache.lock("job", 10)
    lock.acquire(blocking=False)
    clock.advance(9)

    lock.extend(10)
    clock.advance(timedelta(seconds=10) - MS)

    assert lock.owned()
    clock.advance(MS)
    assert not lock.owned()


def test_acquiring_a_lock_already_held_by_its_owner_refreshes_it(
    cache: CachePort, clock: ManualClock
) -> None:
    lock = cache.lock("job", 10)
    lock.acquire(blocking=False)
    clock.advance(9)

    again = lock.acquire(blocking=False)
    clock.advance(9)

    assert again
    assert lock.owned()


def test_the_context_manager_holds_the_lock_for_the_block(cache: CachePort) -> None:
    with cache.lock("job", 10) as held:
        inside = held.owned()
        blocked = not cache.lock("job", 10).acquire(blocking=False)

    assert (inside, blocked) == (True, True)
    assert not held.owned()
    assert cache.lock("job", 10).acquire(blocking=False)


def test_the_context_manager_releases_when_the_block_raises(cache: CachePort) -> None:
    lock = cache.lock("job", 10)

    with pytest.raises(RuntimeError, match="boom"), lock:
        raise RuntimeError("boom")

    assert not lock.owned()
    assert cache.lock("job", 10).acquire(blocking=False)


def test_a_blocking_acquire_gives_up_after_its_timeout_on_the_clock(
    cache: CachePort, clock: ManualClock
) -> None:
    cache.lock("job", 3600).acquire(blocking=False)
    waiter = cache.lock("job", 10)
    start = clock.now()

    taken = run_while_advancing(clock, lambda: waiter.acquire(timeout=5))

    assert taken is False
    assert clock.now() - start >= timedelta(seconds=5)


def test_a_blocking_acquire_gets_the_lock_when_the_holder_s_expires(
    cache: CachePort, clock: ManualClock
) -> None:
    cache.lock("job", 5).acquire(blocking=False)
    waiter = cache.lock("job", 10)

    taken, owned = run_while_advancing(clock, lambda: (waiter.acquire(timeout=60), waiter.owned()))

    assert (taken, owned) == (True, True)


def test_the_context_manager_raises_when_its_timeout_passes(
    cache: CachePort, clock: ManualClock
) -> None:
    cache.lock("job", 3600).acquire(blocking=False)

    def enter() -> None:
        with cache.lock("job", 10, timeout=5):
            pass

    with pytest.raises(CacheError, match="timed out"):
        run_while_advancing(clock, enter)


def test_clearing_the_cache_does_not_release_locks(cache: CachePort) -> None:
    lock = cache.lock("job", 10)
    lock.acquire(blocking=False)

    cache.clear()

    assert lock.owned()
    assert not cache.lock("job", 10).acquire(blocking=False)


def test_locks_and_values_do_not_share_names(cache: CachePort) -> None:
    cache.set("job", "value")

    taken = cache.lock("job", 10).acquire(blocking=False)

    assert taken
    assert cache.get("job") == "value"


@pytest.mark.parametrize("ttl", [0, None, -1])
def test_a_lock_needs_a_positive_ttl(cache: CachePort, ttl: float | None) -> None:
    with pytest.raises(InvalidCacheValue, match="lock ttl"):
        cache.lock("job", ttl)


@pytest.mark.parametrize("ttl", [0, None, -1])
def test_extending_a_held_lock_needs_a_positive_ttl_and_keeps_it_held(
    cache: CachePort, ttl: float | None
) -> None:
    lock = cache.lock("job", 10)
    lock.acquire(blocking=False)

    with pytest.raises(InvalidCacheValue, match="lock ttl"):
        lock.extend(ttl)

    assert lock.owned()


def test_a_non_blocking_acquire_refuses_a_timeout_it_would_not_wait_for(
    cache: CachePort,
) -> None:
    lock = cache.lock("job", 10)

    with pytest.raises(InvalidCacheValue, match="blocking=False"):
        lock.acquire(blocking=False, timeout=5)

    assert not lock.owned()


def test_a_lock_name_follows_the_key_rules(cache: CachePort) -> None:
    with pytest.raises(InvalidCacheKey, match="lock name"):
        cache.lock("bad\nname", 10)


def test_a_lock_satisfies_the_lock_protocol(cache: CachePort) -> None:
    assert isinstance(cache.lock("job", 10), Lock)
    assert cache.lock("job", 10).name == "job"


def test_leaving_a_block_whose_lock_expired_inside_it_raises(
    cache: CachePort, clock: ManualClock
) -> None:
    def hold_past_expiry() -> None:
        with cache.lock("job", 10):
            clock.advance(10)
            cache.lock("job", 10).acquire(blocking=False)

    with pytest.raises(LockNotOwned):
        hold_past_expiry()


def test_a_blocking_acquire_waits_up_to_the_timeout_the_lock_was_made_with(
    cache: CachePort, clock: ManualClock
) -> None:
    cache.lock("job", 3600).acquire(blocking=False)
    waiter = cache.lock("job", 10, timeout=5)
    start = clock.now()

    taken = run_while_advancing(clock, waiter.acquire, max_steps=60)

    assert taken is False
    assert clock.now() - start >= timedelta(seconds=5)
