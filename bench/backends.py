"""Queues and dispatchers for the workloads, built the way an application builds them: by the
Container, from ``Settings`` (what ``QUEUE_DRIVER``, ``REDIS_URL``, ``QUEUE_PREFIX`` give)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.app import registry
from bench.env import Env
from foundry.adapters.clock import SystemClock
from foundry.application.dispatcher import Dispatcher
from foundry.entrypoints.container import build_container
from foundry.entrypoints.settings import Driver, Settings
from foundry.ports import QueuePort

BATCH = 1_000  # jobs per dispatch_many call


@contextmanager
def open_queue(env: Env, backend: str, prefix: str) -> Iterator[QueuePort]:
    """A fresh queue: a new ``MemoryQueue``, or a ``RedisQueue`` under key ``prefix``."""
    if backend == "memory":
        settings = Settings(queue_driver=Driver.MEMORY)
    else:
        settings = Settings(queue_driver=Driver.REDIS, redis_url=env.redis_url, queue_prefix=prefix)
    container = build_container(settings)
    try:
        yield container.queue()
    finally:
        if backend != "memory":
            container.queue_client().close()


@contextmanager
def open_dispatcher(env: Env, backend: str, prefix: str) -> Iterator[Dispatcher]:
    """A ``Dispatcher`` over ``open_queue``, with the bench handlers registered."""
    with open_queue(env, backend, prefix) as queue:
        yield Dispatcher(queue, registry, SystemClock())
