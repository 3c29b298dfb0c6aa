"""What a Foundry client tells the server about itself (CLIENT SETINFO on Redis >= 7.2):
redis-py's name and version, the version given to redis-py rather than read from its installed
metadata on a process's first connection. Clients connect lazily: none connects here."""

from __future__ import annotations

from importlib.metadata import version

from foundry.adapters.redis.connection import RedisSettings, connect, connect_async


def test_a_client_reports_redis_py_at_its_installed_version() -> None:
    client = connect(RedisSettings(url="redis://127.0.0.1:6379/0"))

    given = client.connection_pool.connection_kwargs["driver_info"]

    assert (given.formatted_name, given.lib_version) == ("redis-py", version("redis"))


def test_an_asyncio_client_reports_redis_py_at_its_installed_version() -> None:
    client = connect_async(RedisSettings(url="redis://127.0.0.1:6379/0"))

    given = client.connection_pool.connection_kwargs["driver_info"]

    assert (given.formatted_name, given.lib_version) == ("redis-py", version("redis"))
