"""``foundry work --burst`` as a separate process drains jobs dispatched through the Dispatcher."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from foundry.adapters.clock import SystemClock
from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.dispatcher import Dispatcher
from foundry.entrypoints.apps import load_app
from tests.e2e.apps import QUEUE
from tests.e2e.burst_drain import drains_exactly_once
from tests.e2e.test_demo import run_foundry, unique_prefix
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def queue(redis_url: str, prefix: str) -> Iterator[RedisQueue]:
    client = redis.Redis.from_url(redis_url)
    yield RedisQueue(client, prefix=prefix)
    client.close()


@pytest.mark.parametrize("prefetch", ["0", "8"])
def test_work_burst_drains_dispatched_jobs_exactly_once(
    redis_url: str, prefix: str, queue: RedisQueue, tmp_path: Path, prefetch: str
) -> None:
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix}

    drains_exactly_once(queue, env, tmp_path, prefetch)


def test_work_on_redis_with_a_bad_queue_name_exits_2(redis_url: str, prefix: str) -> None:
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix}

    result = run_foundry(
        "work", "--app", "tests.e2e.apps:registry", "--burst", "--queues", "a,{b}", env=env
    )

    assert result.returncode == 2
    assert "queue" in result.stderr


def test_handlers_use_the_containers_cache_from_the_children(
    redis_url: str, prefix: str, queue: RedisQueue
) -> None:
    dispatcher = Dispatcher(queue, load_app("tests.e2e.apps:with_cache"), SystemClock())
    dispatcher.dispatch_many([("e2e.count", {}) for _ in range(20)])
    env = {
        "QUEUE_DRIVER": "redis",
        "CACHE_DRIVER": "redis",
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": prefix,
        "CACHE_PREFIX": f"{prefix}_cache",
    }

    result = run_foundry(
        "work", "--app", "tests.e2e.apps:with_cache", "--burst", "--concurrency", "2", env=env
    )

    assert result.returncode == 0, result.stdout + result.stderr
    cache = RedisCache(redis.Redis.from_url(redis_url), prefix=f"{prefix}_cache")
    assert cache.get("runs") == 20
    assert queue.stats(QUEUE).completed == 20


def test_work_against_an_unreachable_redis_exits_3_at_startup(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    server.kill()
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": server.url}

    result = run_foundry("work", "--app", "tests.e2e.apps:registry", "--burst", env=env)

    assert result.returncode == 3
    assert "check REDIS_URL" in result.stderr
