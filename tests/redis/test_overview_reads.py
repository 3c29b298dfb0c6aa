"""The reads behind every queue's stats and oldest wait, on the runner's own connection: sent
again when the server closed it, and packed commands kept within their bound."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis import overview
from foundry.adapters.redis.overview import PackedReads
from foundry.adapters.redis.queue import RedisQueue
from foundry.adapters.redis.runner import FunctionRunner
from foundry.domain import Job
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


def test_the_readings_are_sent_again_on_a_connection_the_server_closed(
    redis_server_factory: Callable[..., RedisServer], clock: ManualClock
) -> None:
    server = redis_server_factory()
    queue = RedisQueue(redis.Redis.from_url(server.url), prefix="closed", clock=clock)
    queue.enqueue(Job("t", queue="a"))
    clock.advance(timedelta(seconds=5))
    assert [s.ready for s in queue.stats_many(["a"])] == [1]  # the reading's connection opens
    admin = server.client()
    admin.client_kill_filter(_type="normal", skipme=True)  # every connection but this one

    many = queue.stats_many(["a"])
    ages = queue.oldest_ready_age(["a"])

    assert [s.ready for s in many] == [1]
    assert ages == [timedelta(seconds=5)]


def test_packed_reads_answer_in_order_and_keep_at_most_their_bound(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(overview, "_KEPT", 4)
    reads = PackedReads(FunctionRunner(redis.Redis.from_url(redis_url)))
    commands = [("ECHO", f"reading-{index}") for index in range(10)]

    first = reads(commands)
    again = reads(commands[:3])

    assert first == [f"reading-{index}".encode() for index in range(10)]
    assert again == first[:3]
    assert len(reads._kept) <= 4
