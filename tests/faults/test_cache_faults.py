"""RedisCache through a misbehaving loopback proxy: reconnects, and never counts twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.domain import CacheUnavailable
from tests.backends import redis_cache, unique_prefix
from tests.faults.proxy import FaultProxy
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])
    proxy = FaultProxy(port).start()
    yield proxy
    proxy.close()


def _through(proxy: FaultProxy, prefix: str) -> RedisCache:
    settings = RedisSettings(url=proxy.url, retries=3, socket_timeout=timedelta(seconds=1))
    cache = RedisCache(connect(settings), prefix)
    cache.get("warm-up")  # connected: later commands reach Redis even when replies are lost
    return cache


def _lose_one_reply(proxy: FaultProxy) -> None:
    """Drop replies until one is lost, then heal, so a re-send would get through."""
    proxy.drop_replies = True

    def heal_after_a_loss() -> None:
        deadline = time.monotonic() + 10
        while proxy.dropped_bytes == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        proxy.heal()

    threading.Thread(target=heal_after_a_loss, daemon=True).start()


def test_a_reset_connection_is_reopened_without_the_caller_noticing(proxy: FaultProxy) -> None:
    cache = _through(proxy, unique_prefix())
    cache.set("k", "v")

    proxy.reset()

    assert cache.get("k") == "v"
    assert cache.increment("n") == 1


def test_an_increment_whose_reply_is_lost_is_reported_not_applied_twice(
    proxy: FaultProxy, redis_url: str
) -> None:
    prefix = unique_prefix()
    cache = _through(proxy, prefix)
    cache.set("n", 5)
    _lose_one_reply(proxy)

    with pytest.raises(CacheUnavailable, match="may or may not"):
        cache.increment("n")

    assert redis_cache(redis_url, None, prefix).get("n") == 6


def test_a_set_whose_reply_is_lost_is_re_sent_and_succeeds(
    proxy: FaultProxy, redis_url: str
) -> None:
    prefix = unique_prefix()
    cache = _through(proxy, prefix)
    _lose_one_reply(proxy)

    cache.set("k", "v")

    assert proxy.dropped_bytes > 0
    assert redis_cache(redis_url, None, prefix).get("k") == "v"


def test_the_cache_keeps_working_across_a_redis_restart(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="always")
    cache = redis_cache(server.url, None)
    cache.set("kept", "v")
    cache.increment("n")

    server.restart()

    assert cache.increment("n") == 2  # not re-sendable: the closed connection is reopened first
    assert cache.get("kept") == "v"  # scripts loaded again after NOSCRIPT
