"""The epoch a plain enqueue reports, which the library remembers per queue between calls:
every process that enqueues sees a queue's meta lost and made again, whoever made it, and a
meta that kept its epoch is never given another."""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs
import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.keys import QueueKeys
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job
from tests.backends import unique_prefix
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


@attrs.frozen
class Two:
    """Two processes' queues (each with its own epoch candidate) on one Redis."""

    client: redis.Redis
    first: RedisQueue
    second: RedisQueue
    meta: str

    def epoch(self) -> bytes | None:
        return self.client.hget(self.meta, "epoch")  # type: ignore[return-value]


def _two(client: redis.Redis) -> Two:
    prefix = unique_prefix()
    first, second = (RedisQueue(client, prefix=prefix, clock=ManualClock()) for _ in range(2))
    return Two(client, first, second, QueueKeys.of(prefix, "q").named("meta"))


@pytest.fixture
def two(redis_url: str) -> Two:
    return _two(redis.Redis.from_url(redis_url))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="foundry")
    return caplog


def _lost(logs: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in logs.records if r.levelno == logging.CRITICAL]


def _enqueue(queue: RedisQueue, job_id: str) -> None:
    queue.enqueue(Job("t", id=job_id, queue="q"))


def test_each_process_sees_the_meta_another_one_made_after_a_loss(
    two: Two, logs: pytest.LogCaptureFixture
) -> None:
    _enqueue(two.first, "a")
    _enqueue(two.second, "b")
    two.client.delete(two.meta)

    _enqueue(two.second, "c")  # the second's candidate is the new epoch
    _enqueue(two.first, "d")

    assert len(_lost(logs)) == 2


def test_a_meta_made_again_elsewhere_is_read_whatever_its_seq(
    two: Two, logs: pytest.LogCaptureFixture
) -> None:
    _enqueue(two.first, "a")
    two.client.delete(two.meta)
    # As another release's library leaves it, having stored five jobs since.
    two.client.hset(two.meta, mapping={"epoch": "elsewhere", "seq": 5})

    _enqueue(two.first, "b")

    assert len(_lost(logs)) == 1
    assert "elsewhere" in _lost(logs)[0]
    assert two.epoch() == b"elsewhere"


def test_a_meta_that_kept_its_epoch_but_not_its_seq_keeps_the_epoch(
    two: Two, logs: pytest.LogCaptureFixture
) -> None:
    _enqueue(two.first, "a")
    epoch = two.epoch()
    two.client.hdel(two.meta, "seq")

    _enqueue(two.second, "b")
    _enqueue(two.first, "c")

    assert two.epoch() == epoch
    assert _lost(logs) == []


def test_the_epoch_and_the_seq_carry_on_after_the_library_is_loaded_again(
    redis_server_factory: Callable[..., RedisServer], logs: pytest.LogCaptureFixture
) -> None:
    two = _two(redis.Redis.from_url(redis_server_factory().url))
    _enqueue(two.first, "a")
    epoch = two.epoch()
    two.client.function_flush()

    _enqueue(two.second, "b")
    _enqueue(two.first, "c")

    assert two.epoch() == epoch
    assert two.client.hget(two.meta, "seq") == b"3"
    assert _lost(logs) == []
