"""``Connection.close()`` leaves no connection of Foundry's open: the clients' pools, and the
connection each thread's calls run on (opened outside the pool), on one server, behind
Sentinel and on a cluster; a call after ``close()`` connects again."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Protocol

import pytest
import redis

import foundry
from foundry import Job
from foundry.ports import ClaimRequest
from tests.redis_server import RedisServer
from tests.redis_topologies import RedisClusterGroup, SentinelGroup

pytestmark = pytest.mark.redis

#: The names Foundry's clients give their connections (``Settings.queue_redis`` and co); its
#: connections to the sentinels have none.
_NAMES = ("foundry-queue", "foundry-cache", "")


class _Server(Protocol):
    """A redis-server or a sentinel of the test's."""

    port: int

    def client(self) -> redis.Redis: ...


def _ours(servers: Sequence[_Server]) -> set[tuple[int, str]]:
    """Every connection that may be Foundry's open on ``servers`` now, by server and id."""
    found = set()
    for server in servers:
        with server.client() as admin:
            own = admin.client_id()
            for client in admin.client_list():
                if client["name"] in _NAMES and int(client["id"]) != own:
                    found.add((server.port, client["id"]))
    return found


@contextmanager
def _opened_by_this_test(servers: Sequence[_Server]) -> Iterator[set[tuple[int, str]]]:
    """The Foundry connections opened on ``servers`` inside the block (filled on leaving it):
    tests sharing a topology leave theirs, which are not counted."""
    before = _ours(servers)
    opened: set[tuple[int, str]] = set()
    yield opened
    opened.update(_ours(servers) - before)


def _use(connection: foundry.Connection) -> None:
    """Enqueue, claim, complete and use the cache, from this thread and from another."""
    queue_name = f"close-{uuid.uuid4().hex[:8]}"

    def work(n: int) -> None:
        connection.queue.enqueue(Job("t", id=f"{queue_name}-{n}", queue=queue_name))
        request = ClaimRequest((queue_name,), lease=timedelta(seconds=30))
        for lease in connection.queue.claim(request):
            connection.queue.complete(lease)
        connection.cache.set(f"{queue_name}:{n}", n)
        assert connection.cache.get(f"{queue_name}:{n}") == n

    work(0)
    other = threading.Thread(target=work, args=(1,))
    other.start()
    other.join(timeout=60)


def _closes_everything(url: str, servers: Sequence[_Server]) -> None:
    connection = foundry.connect(url)
    with _opened_by_this_test(servers) as opened:
        _use(connection)
    assert opened, "the test used no connection"

    connection.close()

    assert _ours(servers) & opened == set()
    # Closed is not broken: the next call connects again (and close() closes it again).
    _use(connection)
    connection.close()
    assert _ours(servers) & opened == set()


def test_close_leaves_no_connection_open_on_one_server(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()

    _closes_everything(server.url, [server])


def test_close_leaves_no_connection_open_behind_sentinel(redis_sentinel: SentinelGroup) -> None:
    servers = [redis_sentinel.master, redis_sentinel.replica, *redis_sentinel.sentinels]

    _closes_everything(redis_sentinel.url(), servers)


def test_close_leaves_no_connection_open_on_a_cluster(redis_cluster: RedisClusterGroup) -> None:
    _closes_everything(redis_cluster.url(), list(redis_cluster.nodes))


def _aclosed_leaves_nothing(url: str, servers: Sequence[_Server]) -> None:
    connection = foundry.connect(url)
    queue_name = f"aclose-{uuid.uuid4().hex[:8]}"

    async def use_and_aclose() -> None:
        await connection.async_queue.enqueue(Job("t", id=f"{queue_name}-0", queue=queue_name))
        _use(connection)
        opened.update(_ours(servers) - before)
        await connection.aclose()

    before = _ours(servers)
    opened: set[tuple[int, str]] = set()
    asyncio.run(use_and_aclose())

    assert opened, "the test used no connection"
    assert _ours(servers) & opened == set()


def test_aclose_leaves_no_connection_open_on_one_server(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()

    _aclosed_leaves_nothing(server.url, [server])


def test_aclose_leaves_no_connection_open_behind_sentinel(redis_sentinel: SentinelGroup) -> None:
    servers = [redis_sentinel.master, redis_sentinel.replica, *redis_sentinel.sentinels]

    _aclosed_leaves_nothing(redis_sentinel.url(), servers)


def test_aclose_leaves_no_connection_open_on_a_cluster(redis_cluster: RedisClusterGroup) -> None:
    _aclosed_leaves_nothing(redis_cluster.url(), list(redis_cluster.nodes))
