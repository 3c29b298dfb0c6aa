"""``CACHE_DRIVER=postgres`` end to end: handlers in a real pool use the container's cache."""

from __future__ import annotations

import pytest
import redis
from psycopg_pool import ConnectionPool

from foundry.adapters.clock import SystemClock
from foundry.adapters.postgres.cache import PostgresCache
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.dispatcher import Dispatcher
from foundry.entrypoints.apps import load_app
from tests.e2e.apps import QUEUE
from tests.e2e.test_demo import run_foundry, unique_prefix

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_children_count_in_the_postgres_cache_each_through_its_own_pool(
    redis_url: str, postgres_cache_pool: tuple[ConnectionPool, PostgresSettings]
) -> None:
    pool, settings = postgres_cache_pool
    prefix = unique_prefix()
    client = redis.Redis.from_url(redis_url)
    queue = RedisQueue(client, prefix=prefix)
    dispatcher = Dispatcher(queue, load_app("tests.e2e.apps:with_cache"), SystemClock())
    dispatcher.dispatch_many([("e2e.count", {}) for _ in range(20)])
    env = {
        "QUEUE_DRIVER": "redis",
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": prefix,
        "CACHE_DRIVER": "postgres",
        "DATABASE_URL": settings.url,
        "CACHE_PREFIX": f"{prefix}_cache",
    }

    result = run_foundry(
        "work", "--app", "tests.e2e.apps:with_cache", "--burst", "--concurrency", "2", env=env
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert PostgresCache(pool, settings, f"{prefix}_cache").get("runs") == 20
    assert queue.stats(QUEUE).completed == 20
    client.close()
