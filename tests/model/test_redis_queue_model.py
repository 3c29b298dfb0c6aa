"""The queue state machine against ``RedisQueue`` on the test session's redis-server."""

from __future__ import annotations

import secrets

import pytest
import redis
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from tests.backends import BatchQueue
from tests.model.test_queue_model import QueueMachine


@pytest.mark.redis
def test_redis_queue_matches_the_model(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)

    class RedisQueueMachine(QueueMachine):
        """The model against ``RedisQueue``, a fresh key prefix per example."""

        def make_queue(self, clock: ManualClock) -> BatchQueue:
            return RedisQueue(client, prefix=f"m{secrets.token_hex(6)}", clock=clock)

    run_state_machine_as_test(
        RedisQueueMachine,
        settings=settings(max_examples=40, stateful_step_count=40, deadline=None),
    )
