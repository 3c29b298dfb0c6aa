"""One queue's data broken (a key of the wrong type) does not take the dashboard or the
backend metrics down: the other queues are shown, the broken one is named with its key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, QueueBroken
from tests.backends import unique_prefix

pytestmark = pytest.mark.redis


@pytest.fixture
def broken_b(redis_url: str, clock: ManualClock) -> Iterator[RedisQueue]:
    """A Redis queue with a job in each of ``b`` and ``c``, ``b``'s ready set a string."""
    prefix = unique_prefix("brokenview")
    client = redis.Redis.from_url(redis_url)
    queue = RedisQueue(client, prefix=prefix, clock=clock)
    queue.enqueue_many([Job("t", queue="b", priority=1), Job("t", queue="c")])
    client.set(f"{prefix}:{{b}}:ready", "x")
    yield queue
    client.close()


def test_reading_every_queue_at_once_names_the_broken_one(broken_b: RedisQueue) -> None:
    with pytest.raises(QueueBroken, match=r"\{b\}:ready is a string, not a zset") as raised:
        broken_b.stats_many(["b", "c"])

    assert raised.value.queue == "b"
