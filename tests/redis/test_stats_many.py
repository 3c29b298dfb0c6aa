"""Every queue's stats at once on Redis: on the server's clock when no test clock is given,
answered (the dashboard too) while Redis refuses writes for want of memory, and the same
whichever protocol the client speaks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from starlette.testclient import TestClient

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Dead, ErrorInfo, Job, QueueUnavailable, RunAfter
from foundry.entrypoints.dashboard.app import DashboardConfig, create_app
from foundry.entrypoints.dashboard.security import GuardConfig
from foundry.ports import ClaimRequest
from tests.backends import unique_prefix
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

NAMES = ["a", "b", "c"]


def _filled(url: str, prefix: str) -> None:
    """Jobs in ``a`` and ``b`` enqueued an hour ago by a test clock: in ``a`` one ready, one
    due since, one due in an hour; in ``b`` one dead and one running."""
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=1))
    queue = RedisQueue(redis.Redis.from_url(url), prefix=prefix, clock=clock)
    queue.enqueue(Job("t", queue="a"))
    queue.enqueue(Job("t", queue="a", schedule=RunAfter(timedelta(minutes=1))))
    queue.enqueue(Job("t", queue="a", schedule=RunAfter(timedelta(hours=2))))
    queue.enqueue_many([Job("t", queue="b"), Job("t", queue="b")])
    [lease] = queue.claim(ClaimRequest(["b"], lease=timedelta(hours=2)))
    queue.fail(lease, ErrorInfo("Boom"), Dead("boom"))
    queue.claim(ClaimRequest(["b"], lease=timedelta(hours=2)))


def test_stats_many_on_the_servers_clock_counts_due_delayed_jobs_as_ready(
    redis_url: str,
) -> None:
    prefix = unique_prefix("statsmany")
    _filled(redis_url, prefix)
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix)

    many = queue.stats_many(NAMES)

    assert many == [queue.stats(name) for name in NAMES]
    assert [(s.ready, s.delayed, s.active, s.dead, s.failed) for s in many] == [
        (2, 1, 0, 0, 0),
        (0, 0, 1, 1, 1),
        (0, 0, 0, 0, 0),
    ]


@pytest.mark.parametrize("protocol", [2, 3])
def test_the_readings_are_the_same_whichever_protocol_the_client_speaks(
    redis_url: str, clock: ManualClock, protocol: int
) -> None:
    prefix = unique_prefix("protocols")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    queue.enqueue(Job("t", queue="a", priority=-5))
    clock.advance(timedelta(seconds=10))
    queue.enqueue_many([Job("t", queue="a", priority=7), Job("t", queue="b")])
    queue.enqueue(Job("t", queue="b", schedule=RunAfter(timedelta(seconds=5))))
    clock.advance(timedelta(seconds=20))
    speaking = RedisQueue(
        redis.Redis.from_url(redis_url, protocol=protocol), prefix=prefix, clock=clock
    )

    ages = speaking.oldest_ready_age(NAMES)

    assert ages == queue.oldest_ready_age(NAMES)
    assert ages == [timedelta(seconds=30), timedelta(seconds=20), None]
    assert speaking.stats_many(NAMES) == queue.stats_many(NAMES)


def test_the_stats_answer_while_redis_refuses_writes_for_want_of_memory(
    redis_server_factory: Callable[..., RedisServer], clock: ManualClock
) -> None:
    server = redis_server_factory()
    queue = RedisQueue(redis.Redis.from_url(server.url), prefix="full", clock=clock)
    queue.enqueue(Job("t", queue="a"))
    server.client().config_set("maxmemory", 1)  # over it already: noeviction refuses writes
    with pytest.raises(QueueUnavailable, match="maxmemory"):
        queue.enqueue(Job("t", queue="a"))

    many = queue.stats_many(NAMES)
    one = queue.stats("a")

    assert [s.ready for s in many] == [1, 0, 0]
    assert one == many[0]


def test_the_queues_page_shows_the_queues_while_redis_refuses_writes_for_want_of_memory(
    redis_server_factory: Callable[..., RedisServer], clock: ManualClock
) -> None:
    server = redis_server_factory()
    queue = RedisQueue(redis.Redis.from_url(server.url), prefix="full", clock=clock)
    queue.enqueue(Job("t", queue="a"))
    server.client().config_set("maxmemory", 1)
    config = DashboardConfig(GuardConfig(token=None), background=False)

    app = create_app(queue, queue, queue, clock, config)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        listed = client.get("/api/queues")

    assert listed.status_code == 200, listed.text
    assert [(row["queue"], row["ready"]) for row in listed.json()["queues"]] == [("a", 1)]
