"""A producer's pooled connections across a PostgreSQL restart: the connections the restart
cut are found and replaced, so dispatch fails at most once per process, and not at all for
connections that idled through it (as the Redis adapter's health check does); and a result
wait in progress waits the restart out."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from datetime import timedelta
from functools import partial

import pytest

from foundry.adapters.clock import SystemClock
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, open_pool
from foundry.adapters.postgres.migrator import Migrator
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.application.dispatcher import Dispatcher
from foundry.domain import FoundryError, QueueUnavailable
from foundry.ports import ClaimRequest
from tests.e2e.apps import add, registry
from tests.faults.postgres_cluster import PostgresCluster

pytestmark = pytest.mark.postgres

POOL = 4


def _queue(cluster: PostgresCluster, idle_check: timedelta | None = None) -> PostgresQueue:
    settings = PostgresSettings(cluster.url, pool_size=POOL)
    Migrator(partial(connect, settings), settings.schema).migrate()
    options = {} if idle_check is None else {"idle_check": idle_check}
    pool = open_pool(settings, **options)
    pool.open(wait=True)
    with ExitStack() as stack:  # every connection of the pool opened, then idle in it
        for _ in range(POOL):
            stack.enter_context(pool.connection())
    assert pool.get_stats()["pool_size"] == POOL
    return PostgresQueue(pool, settings)


def _dispatches(queue: PostgresQueue, times: int) -> list[str]:
    dispatcher = Dispatcher(queue, registry, SystemClock())
    outcomes = []
    for _ in range(times):
        try:
            dispatcher.dispatch(add, {"a": 1, "b": 2})
            outcomes.append("stored")
        except QueueUnavailable:
            outcomes.append("unavailable")
    return outcomes


def test_after_a_server_restart_at_most_one_dispatch_of_a_process_fails(
    cluster: PostgresCluster,
) -> None:
    queue = _queue(cluster)
    try:
        cluster.stop("fast")
        cluster.start()

        outcomes = _dispatches(queue, POOL)
    finally:
        queue.close()

    assert outcomes.count("unavailable") <= 1, outcomes
    assert outcomes[-1] == "stored"


def test_connections_idle_through_a_server_restart_cost_no_dispatch(
    cluster: PostgresCluster,
) -> None:
    queue = _queue(cluster, idle_check=timedelta(0))  # every connection idle long enough
    try:
        cluster.stop("fast")
        cluster.start()

        outcomes = _dispatches(queue, POOL)
    finally:
        queue.close()

    assert outcomes == ["stored"] * POOL


def test_a_result_wait_outlasts_a_server_restart(cluster: PostgresCluster) -> None:
    queue = _queue(cluster)
    dispatcher = Dispatcher(queue, registry, SystemClock())
    outcome: list[object] = []

    def wait() -> None:
        try:
            outcome.append(dispatcher.result(job_id, timeout=30))
        except FoundryError as error:
            outcome.append(error)

    try:
        job_id = dispatcher.dispatch(add, {"a": 1, "b": 2})
        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.2)  # it waits for the job's end
        cluster.stop("fast")
        time.sleep(1)  # the wait finds the server gone
        cluster.start()
        [lease] = queue.claim(ClaimRequest(("e2e",), lease=timedelta(seconds=30)))
        queue.complete(lease, result=3)
        waiter.join(timeout=30)
    finally:
        queue.close()

    assert outcome == [3]
