"""The queue and cache state machines against Foundry on the session's 3-master Redis Cluster
(fewer examples than on one server: every step crosses the cluster client)."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.adapters.redis.queue import RedisQueue
from foundry.ports.cache import CachePort
from tests.backends import Queue, redis_cache
from tests.model.test_cache_model import CacheMachine
from tests.model.test_queue_model import QueueMachine

pytestmark = pytest.mark.redis


def test_the_queue_on_a_cluster_matches_the_model(redis_cluster_url: str) -> None:
    client = connect(RedisSettings(url=redis_cluster_url))

    class ClusterQueueMachine(QueueMachine):
        """The model against ``RedisQueue`` on a cluster, a fresh key prefix per example."""

        def make_queue(self, clock: ManualClock) -> Queue:
            return RedisQueue(client, prefix=f"m{secrets.token_hex(6)}", clock=clock)

    try:
        run_state_machine_as_test(
            ClusterQueueMachine,
            settings=settings(max_examples=20, stateful_step_count=40, deadline=None),
        )
    finally:
        client.close()  # hypothesis keeps the machine's class, and so this client, alive


def test_the_cache_on_a_cluster_agrees_with_the_model(redis_cluster_url: str) -> None:
    class ClusterCacheMachine(CacheMachine):
        def make_cache(self, clock: ManualClock) -> CachePort:
            return redis_cache(redis_cluster_url, clock)

    run_state_machine_as_test(
        ClusterCacheMachine,
        settings=settings(max_examples=20, stateful_step_count=40, deadline=None),
    )
