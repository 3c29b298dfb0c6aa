"""A TLS URL naming a port without TLS is a setting to fix, said at once (no retries) with the
fix: ``ConfigurationError`` naming the address that did not speak TLS, on one server, behind
Sentinel and on a cluster, from the sync queue, the cache and the asyncio queue. A TLS server
that does not answer in time is still an outage, retried as any other."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta

import attrs
import pytest

import foundry
from foundry import Job
from foundry.domain import ConfigurationError, QueueUnavailable
from tests.redis.test_connection_refusals import connections_received, foundry_cli
from tests.redis_server import RedisServer
from tests.redis_topologies import MASTER_NAME, RedisClusterGroup, SentinelGroup

pytestmark = pytest.mark.redis

#: The ways a producer meets the server: the sync queue, the cache, the asyncio queue.
_USES: dict[str, Callable[[foundry.Connection], object]] = {
    "queue": lambda fx: fx.queue.enqueue(Job("t")),
    "cache": lambda fx: fx.cache.set("k", 1),
    "async_queue": lambda fx: asyncio.run(_enqueue_and_aclose(fx)),
}


async def _enqueue_and_aclose(fx: foundry.Connection) -> None:
    try:
        await fx.async_queue.enqueue(Job("t"))
    finally:
        await fx.aclose()


def _refused(url: str, use: str) -> ConfigurationError:
    """The error ``use`` of a connection to ``url`` raises (a ``ConfigurationError``)."""
    fx = foundry.connect(url)
    try:
        with pytest.raises(ConfigurationError) as refused:
            _USES[use](fx)
    finally:
        fx.close()
    return refused.value


def _says_no_tls_and_the_fix(error: Exception, addresses: Sequence[str]) -> None:
    text = str(error)
    assert any(f"the server did not speak TLS on {where}" in text for where in addresses), text
    assert "use redis:// for a server without TLS" in text
    assert "tls-port" in text


def _received(servers: Sequence[RedisServer]) -> int:
    total = 0
    for server in servers:
        with server.client() as watcher:
            total += connections_received(watcher)
    return total


@pytest.mark.parametrize("use", list(_USES))
def test_rediss_to_a_plain_port_is_refused_at_once_naming_it_and_the_fix(
    redis_server_factory: Callable[..., RedisServer], use: str
) -> None:
    plain = redis_server_factory()
    before = _received([plain])

    refused = _refused(f"rediss://127.0.0.1:{plain.port}/0", use)

    _says_no_tls_and_the_fix(refused, [f"127.0.0.1:{plain.port}"])
    # The handshake and the plain PING that told it, then no retry (the watcher's own is 1).
    assert _received([plain]) - before <= 3


@pytest.mark.parametrize("use", list(_USES))
def test_rediss_sentinel_to_plain_sentinels_is_refused_naming_one_and_the_fix(
    redis_sentinel: SentinelGroup, use: str
) -> None:
    url = redis_sentinel.url().replace("redis+sentinel://", "rediss+sentinel://")

    refused = _refused(url, use)

    sentinels = redis_sentinel.sentinels
    _says_no_tls_and_the_fix(refused, [f"127.0.0.1:{sentinel.port}" for sentinel in sentinels])


@pytest.mark.parametrize("use", list(_USES))
def test_rediss_sentinel_to_ports_without_tls_asks_one_and_no_more(
    redis_server_factory: Callable[..., RedisServer], use: str
) -> None:
    # Plain servers where the sentinels would be: the handshake fails before any Sentinel
    # command, and nothing else connects to them, so every connection they count is ours.
    plain = [redis_server_factory() for _ in range(3)]
    hosts = ",".join(f"127.0.0.1:{server.port}" for server in plain)
    before = _received(plain)

    refused = _refused(f"rediss+sentinel://{hosts}/{MASTER_NAME}/0", use)

    _says_no_tls_and_the_fix(refused, [f"127.0.0.1:{plain[0].port}"])
    # The first one's handshake and PING (twice at most: the pool asks before the connection
    # does), no other asked, no retry; the watchers' own are 3.
    assert _received(plain) - before <= 3 + 4


@pytest.mark.parametrize("use", list(_USES))
def test_rediss_cluster_to_a_plain_cluster_is_refused_at_once_naming_a_node(
    redis_cluster: RedisClusterGroup, use: str
) -> None:
    url = redis_cluster.url().replace("redis+cluster://", "rediss+cluster://")
    nodes = redis_cluster.nodes
    before = _received(nodes)

    refused = _refused(url, use)

    _says_no_tls_and_the_fix(refused, redis_cluster.addresses())
    assert "Redis Cluster cannot be connected" not in str(refused)
    # Each node tried once (its handshake and PING), then no retry; the watchers' own are 3.
    assert _received(nodes) - before <= 3 + 2 * len(nodes)


def test_rediss_to_a_plain_port_from_the_cli_is_exit_2_naming_it_and_the_fix(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    plain = redis_server_factory()
    env = {"REDIS_URL": f"rediss://127.0.0.1:{plain.port}/0", "REDIS_CONNECT_TIMEOUT": "0.2"}

    done = foundry_cli("stats", env=env)

    assert done.returncode == 2, done.stderr
    assert f"TLS handshake with 127.0.0.1:{plain.port} failed" in done.stderr
    assert f"the server did not speak TLS on 127.0.0.1:{plain.port}" in done.stderr
    assert "use redis:// for a server without TLS" in done.stderr
    assert "Timeout connecting" not in done.stderr


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a TLS server that hangs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=10)
    for held in accepted:
        held.close()
    listener.close()


def test_a_tls_port_that_does_not_answer_is_retried_as_an_outage(silent_port: int) -> None:
    settings = foundry.Settings().on(f"rediss://127.0.0.1:{silent_port}/0")
    quick = attrs.evolve(settings, redis_connect_timeout=timedelta(seconds=0.05))

    with foundry.connect(quick) as fx, pytest.raises(QueueUnavailable) as unavailable:
        fx.queue.enqueue(Job("t"))

    assert "the server may not speak TLS on this port" in str(unavailable.value)
    assert "after bounded retries" in str(unavailable.value)
