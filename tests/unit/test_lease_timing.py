"""``LeaseTiming``: the lease and every timing that follows from it, owned in one place."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.redis.queue import RedisQueue
from foundry.application.pool.leases import LeaseBook
from foundry.domain import ConfigurationError, LeaseTiming
from foundry.entrypoints.container import build_container
from foundry.entrypoints.settings import Driver, Settings

S = timedelta(seconds=1)


def test_the_ratios_follow_the_lease() -> None:
    timing = LeaseTiming(30 * S)

    assert (timing.renew_every, timing.reply_timeout, timing.block_limit) == (
        10 * S,
        10 * S,
        5 * S,
    )
    assert timing.fence_margin == 5 * S


def test_the_reply_timeout_is_capped_and_the_block_limit_follows_it() -> None:
    timing = LeaseTiming(30 * S, reply_timeout_cap=4 * S)

    assert (timing.reply_timeout, timing.block_limit) == (4 * S, 2 * S)
    assert timing.renew_every == 10 * S


def test_a_lease_that_is_not_positive_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="lease"):
        LeaseTiming(timedelta(0))


def test_queue_timeout_reaches_the_pool_and_the_redis_client_through_one_timing() -> None:
    settings = Settings(queue_driver=Driver.REDIS, queue_timeout=3 * S)
    container = build_container(settings)
    timing = container.queue_timing()

    queue = container.queue()
    book = LeaseBook(timing.lease.total_seconds())

    assert timing == LeaseTiming(3 * S, settings.redis_socket_timeout)
    assert settings.queue_redis().socket_timeout == timing.reply_timeout == S
    assert isinstance(queue, RedisQueue)
    assert queue._claimer._block_limit_s == timing.block_limit.total_seconds() == 0.5
    assert book.every_s == timing.renew_every.total_seconds()
