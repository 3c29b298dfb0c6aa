"""Contract: effect records (``CachePort.idempotent``) - once done, skipped; fenced; kept."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import CacheError, InvalidCacheValue, StaleEffect
from foundry.ports.cache import CachePort

DAY = timedelta(days=1)


def _act(cache: CachePort, key: str = "charge:1", fence: int = 0) -> bool:
    """Run the effect under its record; whether it acted."""
    with cache.idempotent(key, DAY, fence=fence) as effect:
        if effect.done:
            return False
    return True


def test_an_effect_recorded_done_is_skipped_by_every_later_run(cache: CachePort) -> None:
    assert _act(cache) is True
    assert _act(cache) is False
    assert _act(cache, fence=5) is False


def test_an_effect_whose_block_raised_is_not_recorded_and_acts_again(cache: CachePort) -> None:
    with pytest.raises(ConnectionError), cache.idempotent("charge:1", DAY, fence=1):
        raise ConnectionError("gateway down")

    assert _act(cache, fence=2) is True


def test_an_older_attempt_cannot_act_while_a_newer_one_holds_the_record(
    cache: CachePort,
) -> None:
    newer = cache.idempotent("charge:1", DAY, fence=7)
    newer.__enter__()

    with pytest.raises(StaleEffect, match="fence 6"), cache.idempotent("charge:1", DAY, fence=6):
        pass
    newer.__exit__(None, None, None)

    assert _act(cache, fence=8) is False


def test_an_older_attempt_cannot_record_after_a_newer_one_took_the_record(
    cache: CachePort,
) -> None:
    older = cache.idempotent("charge:1", DAY, fence=3)
    older.__enter__()
    newer = cache.idempotent("charge:1", DAY, fence=4)
    newer.__enter__()

    with pytest.raises(StaleEffect):
        older.__exit__(None, None, None)
    newer.__exit__(None, None, None)

    assert _act(cache, fence=5) is False


def test_a_newer_attempt_takes_over_the_record_of_an_attempt_that_died_acting(
    cache: CachePort,
) -> None:
    cache.idempotent("charge:1", DAY, fence=1).__enter__()  # never left: its process died

    assert _act(cache, fence=2) is True
    assert _act(cache, fence=3) is False


def test_the_record_expires_after_its_ttl_on_the_clock(
    cache: CachePort, clock: ManualClock
) -> None:
    _act(cache)
    clock.advance(DAY - timedelta(seconds=1))
    assert _act(cache) is False

    clock.advance(timedelta(seconds=1))

    assert _act(cache) is True


def test_clearing_the_cache_keeps_effect_records(cache: CachePort) -> None:
    _act(cache)

    cache.clear()

    assert _act(cache) is False
    assert cache.get("charge:1") is None  # records and values do not share names


@pytest.mark.parametrize("ttl", [0, -1, None])
def test_an_effect_record_needs_a_positive_ttl(cache: CachePort, ttl: float | None) -> None:
    with pytest.raises(InvalidCacheValue, match="ttl"):
        cache.idempotent("charge:1", ttl)


@pytest.mark.parametrize("fence", ["3", 2.5, True, None, -1, 2**53])
def test_a_fence_that_is_not_a_job_s_fencing_token_is_rejected(
    cache: CachePort, fence: object
) -> None:
    with pytest.raises(InvalidCacheValue, match="fence"):
        cache.idempotent("charge:1", DAY, fence=fence)  # type: ignore[arg-type]

    assert _act(cache) is True


def test_reading_done_outside_the_block_is_an_error_not_a_silent_false(cache: CachePort) -> None:
    _act(cache)
    effect = cache.idempotent("charge:1", DAY)

    with pytest.raises(CacheError, match="with "):
        _ = effect.done

    with effect:
        assert effect.done
