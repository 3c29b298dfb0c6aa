"""A redis-py client that decodes replies to text (``decode_responses=True``, a common app
default) is refused by the queues when they are built, naming the fix, instead of failing
with a bare ``AttributeError`` at the first call."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from foundry.adapters.redis.async_queue import AsyncRedisQueue
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import ConfigurationError

pytestmark = pytest.mark.redis


def test_the_queue_refuses_a_client_that_decodes_replies_to_text(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisQueue(client)
    client.close()


def test_the_asyncio_queue_refuses_a_client_that_decodes_replies_to_text(redis_url: str) -> None:
    async def build() -> None:
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        try:
            with pytest.raises(ConfigurationError, match="decode_responses=False"):
                AsyncRedisQueue(client)
        finally:
            await client.aclose()

    asyncio.run(build())
