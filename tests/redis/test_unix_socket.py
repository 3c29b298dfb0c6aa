"""A ``unix://`` REDIS_URL: the queue, the cache and the asyncio queue talk to the server over
its socket file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import foundry
from tests.redis_server import RedisServer


@pytest.fixture(scope="module")
def socket_url() -> Iterator[str]:
    server = RedisServer()
    path = Path(server.dir) / "redis.sock"
    server.start(unixsocket=str(path), unixsocketperm="700")
    try:
        yield f"unix://{path}"
    finally:
        server.close()


def test_a_unix_socket_url_serves_the_queue_and_the_cache(socket_url: str) -> None:
    with foundry.connect(foundry.Settings(redis_url=socket_url)) as fx:
        fx.queue.enqueue(foundry.Job("add", queue="unix", id="over-the-socket"))
        fx.cache.set("greeting", "hello")

        claimed = fx.queue.claim(foundry.ClaimRequest(["unix"], lease=timedelta(seconds=30)))

        assert [lease.job_id for lease in claimed] == ["over-the-socket"]
        assert fx.cache.get("greeting") == "hello"


def test_a_unix_socket_url_serves_the_asyncio_queue(socket_url: str) -> None:
    async def stored() -> bool:
        with foundry.connect(foundry.Settings(redis_url=socket_url)) as fx:
            queue = fx.async_queue
            await queue.enqueue(foundry.Job("add", queue="unix-async", id="async-one"))
            return (await queue.get("async-one")) is not None

    assert asyncio.run(stored())
