"""Effects once: children SIGKILLed right after a handler's effect re-run their jobs; the
effects guarded by ``foundry.idempotent`` still happened exactly once (counted in Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from foundry import JobState
from foundry.adapters.clock import SystemClock
from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.dispatcher import Dispatcher
from tests.e2e.test_demo import run_foundry, unique_prefix
from tests.faults.effects_app import QUEUE, build

pytestmark = [pytest.mark.redis, pytest.mark.slow]

GUARDED, UNGUARDED = 30, 3


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_guarded_effects_happen_once_though_their_children_were_killed_after_them(
    redis_url: str, client: redis.Redis
) -> None:
    prefix = unique_prefix()
    queue = RedisQueue(client, prefix=prefix)
    cache = RedisCache(client, prefix=f"{prefix}-cache")
    dispatcher = Dispatcher(queue, build(None), SystemClock())
    orders = [(n, n < GUARDED) for n in range(GUARDED + UNGUARDED)]
    ids = dispatcher.dispatch_many(
        [("effects.charge", {"order": n, "guarded": guarded}) for n, guarded in orders]
    )
    env = {
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": prefix,
        "CACHE_PREFIX": f"{prefix}-cache",
    }

    result = run_foundry(
        "work",
        "--app",
        "tests.faults.effects_app:build",
        "--burst",
        "--concurrency",
        "2",
        "--no-scheduler",
        env=env,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    records = [queue.get(job_id, QUEUE) for job_id in ids]
    assert [(r.state, r.attempts) if r else None for r in records] == [
        (JobState.COMPLETED, 2)
    ] * len(ids)  # every job's first child was killed: 33 kills, 33 re-runs
    counts = [cache.get(f"charged:{n}") for n, _ in orders]
    assert counts[:GUARDED] == [1] * GUARDED
    assert counts[GUARDED:] == [2] * UNGUARDED  # the control: an unguarded effect repeats
