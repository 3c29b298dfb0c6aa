"""Workload: what ``REDIS_WAIT_REPLICAS=1`` costs an enqueue, against a master and a replica of
our own (both on this machine: the replica's acknowledgement is a loopback round trip)."""

from __future__ import annotations

import time

from bench.app import noop, registry
from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate, stopwatch
from foundry.adapters.clock import SystemClock
from foundry.application.dispatcher import Dispatcher
from foundry.entrypoints.container import build_container
from foundry.entrypoints.settings import Driver, Settings
from tests.redis_server import RedisServer

_BATCH = 1_000


def _pair() -> tuple[RedisServer, RedisServer]:
    master = RedisServer().start(**{"repl-diskless-sync-delay": "0"})
    replica = RedisServer().start(replicaof=f"127.0.0.1 {master.port}")
    while replica.client().info("replication").get("master_link_status") != "up":
        time.sleep(0.02)
    return master, replica


def _rates(env: Env, url: str, replicas: int, count: int) -> tuple[float, float]:
    settings = Settings(
        queue_driver=Driver.REDIS,
        redis_url=url,
        queue_prefix=env.unique("replicated"),
        redis_wait_replicas=replicas,
    )
    container = build_container(settings)
    dispatcher = Dispatcher(container.queue(), registry, SystemClock())
    try:
        dispatcher.dispatch(noop)  # connect and load the library outside the timed section
        with stopwatch() as elapsed:
            for _ in range(count):
                dispatcher.dispatch(noop)
        single = rate(count, elapsed())
        with stopwatch() as elapsed:
            for start in range(0, count, _BATCH):
                dispatcher.dispatch_many([(noop, None)] * min(_BATCH, count - start))
        return single, rate(count, elapsed())
    finally:
        container.queue_client().close()


def run_once(env: Env, backend: str) -> Sample:
    """``count`` single dispatches and ``count`` in batches, without and with the WAIT."""
    count = env.scale(10_000, 2_000)
    master, replica = _pair()
    try:
        plain = _rates(env, master.url, 0, count)
        waited = _rates(env, master.url, 1, count)
    finally:
        replica.close()
        master.close()
    return {
        "single": plain[0],
        "single_wait": waited[0],
        "batch": plain[1],
        "batch_wait": waited[1],
    }


WORKLOADS = (
    Workload(
        name="enqueue_replicated",
        title="Enqueue to a master with one replica, without and with REDIS_WAIT_REPLICAS=1",
        backends=("redis",),
        metrics=(
            Metric("single", "single dispatch, no WAIT", "jobs/s"),
            Metric("single_wait", "single dispatch, REDIS_WAIT_REPLICAS=1", "jobs/s"),
            Metric("batch", "batch of 1,000, no WAIT", "jobs/s"),
            Metric("batch_wait", "batch of 1,000, REDIS_WAIT_REPLICAS=1", "jobs/s"),
        ),
        run_once=run_once,
    ),
)
