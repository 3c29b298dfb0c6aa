"""The Redis queue's waiting claim: its next claim pipelined behind the BLPOP on the wake lists.

``complete_and_claim`` itself is in the contract suite (tests/contract/test_queue_completions.py).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.keys import QueueKeys
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job
from foundry.ports import ClaimRequest
from tests.backends import unique_prefix

LEASE = timedelta(seconds=30)

pytestmark = pytest.mark.redis


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def queue(redis_url: str, prefix: str) -> RedisQueue:
    return RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=ManualClock())


def test_a_waiting_claim_woken_by_a_hint_without_a_job_keeps_waiting(
    queue: RedisQueue, redis_url: str, prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    wake = QueueKeys.of(prefix, "default").named("wake")
    client.rpush(wake, "1", "1")  # two hints whose jobs someone else took

    def enqueue_once_the_hints_are_spent() -> None:
        give_up = time.monotonic() + 10  # a claim that returned early leaves a hint unspent
        while client.llen(wake) and time.monotonic() < give_up:
            time.sleep(0.001)
        queue.enqueue(Job("t", id="late"))

    producer = threading.Thread(target=enqueue_once_the_hints_are_spent)
    producer.start()
    claimed = queue.claim(ClaimRequest(["default"], lease=LEASE, wait=timedelta(seconds=30)))
    producer.join()

    assert [lease.job_id for lease in claimed] == ["late"]
