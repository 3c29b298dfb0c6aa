"""The fault proxy does what the scenarios rely on: forward, reset, delay, drop replies, heal."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.faults.proxy import FaultProxy
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory()


@pytest.fixture
def proxy(server: RedisServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(server.port).start()
    yield proxy
    proxy.close()


def client(proxy: FaultProxy, timeout: float = 0.5) -> redis.Redis:
    """A client with no retry, so each fault shows as the error it causes."""
    return redis.Redis(port=proxy.port, socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


def test_the_proxy_forwards_commands_and_replies(proxy: FaultProxy, server: RedisServer) -> None:
    through = client(proxy)

    through.set("k", "v")

    assert server.client().get("k") == b"v"
    assert through.get("k") == b"v"


def test_reset_aborts_open_connections_and_new_ones_work(proxy: FaultProxy) -> None:
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    raw.sendall(b"PING\r\n")
    assert raw.recv(64) == b"+PONG\r\n"

    proxy.reset()

    with pytest.raises(ConnectionResetError):
        raw.recv(64)
    assert client(proxy).ping()
    assert proxy.resets >= 1


def test_refuse_resets_every_new_connection_until_healed(proxy: FaultProxy) -> None:
    proxy.refuse = True

    with pytest.raises(redis.ConnectionError):
        client(proxy).ping()
    proxy.heal()

    assert client(proxy).ping()


def test_a_dropped_reply_times_out_although_the_command_was_applied(
    proxy: FaultProxy, server: RedisServer
) -> None:
    through = client(proxy, timeout=0.3)
    through.ping()
    proxy.drop_replies = True

    with pytest.raises(redis.TimeoutError):
        through.incr("counter")

    assert server.client().get("counter") == b"1"
    assert proxy.dropped_bytes > 0


def test_latency_holds_every_exchange_back(proxy: FaultProxy) -> None:
    through = client(proxy, timeout=2)
    through.ping()
    proxy.latency = 0.2

    began = time.monotonic()
    through.ping()
    elapsed = time.monotonic() - began

    assert elapsed >= 0.2 * 2  # the request and the reply are each held
