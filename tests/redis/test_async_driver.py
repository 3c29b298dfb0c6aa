"""What the asyncio pipe takes from redis-py's internals is where it expects, in the installed
redis-py: the transport of a connected connection, and its error-reply parser."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
from redis.exceptions import ReadOnlyError, ResponseError

from foundry.adapters.redis.async_driver import parse_error, transport_of
from foundry.domain import ConfigurationError

pytestmark = pytest.mark.redis


def test_a_connected_connection_shows_the_transport_to_its_server(redis_url: str) -> None:
    async def main() -> tuple[object, object]:
        client = redis.asyncio.Redis.from_url(redis_url)
        connection = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            transport = transport_of(connection)
            return transport.get_extra_info("peername")[1], connection.port
        finally:
            await client.connection_pool.release(connection)
            await client.aclose()

    port, server_port = asyncio.run(main())

    assert port == server_port


def test_a_connection_without_its_transport_is_a_configuration_error_naming_redis_py() -> None:
    unconnected = redis.asyncio.Connection()

    with pytest.raises(ConfigurationError, match=r"redis-py \S+ no longer shows"):
        transport_of(unconnected)


def test_error_replies_parse_into_the_exceptions_the_runner_tells_apart() -> None:
    read_only = parse_error("READONLY You can't write against a read only replica.")
    unloaded = parse_error("ERR Function not found")

    assert isinstance(read_only, ReadOnlyError)
    assert type(unloaded) is ResponseError
    assert str(unloaded) == "Function not found"
