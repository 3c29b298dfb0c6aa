"""A server named by its IP address is connected to without the idna codec, which a str host
makes ``getaddrinfo`` import; a server named otherwise connects as redis-py connects."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis

from foundry.adapters.redis.connection import AddressConnection, RedisSettings, connect
from foundry.adapters.redis.tls import TlsConnection
from tests.process_support import python_lines


def test_a_server_named_by_address_answers_and_no_idna_codec_is_imported(redis_url: str) -> None:
    lines = python_lines(
        "import sys\n"
        "from foundry.adapters.redis.connection import RedisSettings, connect\n"
        f"client = connect(RedisSettings(url={redis_url!r}))\n"
        "print(client.ping(), 'encodings.idna' in sys.modules)\n"
        "print(client.connection_pool.connection_kwargs['host'])\n"
    )

    assert lines == ["True False", urlsplit(redis_url).hostname]


def test_only_a_plain_url_naming_an_address_gets_the_address_connection() -> None:
    def kind(url: str) -> type:
        return connect(RedisSettings(url=url)).connection_pool.connection_class  # type: ignore[no-any-return]

    assert kind("redis://127.0.0.1:6379/0") is AddressConnection
    assert kind("redis://[::1]:6379/0") is AddressConnection
    assert kind("redis://localhost:6379/0") is redis.Connection
    assert kind("rediss://127.0.0.1:6379/0") is TlsConnection
    assert kind("unix:///tmp/redis.sock") is redis.UnixDomainSocketConnection
