"""Where queue adapters join the suites: one factory per backend, and helpers the suites share.

Adding a backend = one factory (and a way to corrupt a stored job) + one entry in
``QUEUE_BACKENDS``. The contract suite and the fixtures in ``conftest.py`` pick it up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

import attrs
import pytest

from adapters.clock import ManualClock
from adapters.memory import MemoryQueue
from domain import Job, JobState
from ports import DeadLetterRetention, QueuePort, WorkerRegistry


class Queue(QueuePort, WorkerRegistry, Protocol):
    """What the suites drive: the queue port and the worker registry of one backend."""


#: Resolves a pytest fixture by name, lazily (``request.getfixturevalue``), so a memory-only
#: run never starts a redis-server.
FixtureLookup = Callable[[str], Any]


@attrs.frozen
class QueueOptions:
    """Adapter settings a contract test may change."""

    retention: DeadLetterRetention = attrs.Factory(DeadLetterRetention)
    completed_ttl: timedelta = timedelta(hours=1)


@attrs.frozen
class QueueBackend:
    """How to build one adapter for a test, and how to damage a job it stores.

    ``build(fixture, clock, options)`` returns a fresh, empty queue private to the test (for a
    shared server: a unique key prefix) whose time is ``clock``'s. ``corrupt(queue, queue_name,
    job_id)`` overwrites the stored job with bytes the codec cannot decode.
    """

    build: Callable[[FixtureLookup, ManualClock, QueueOptions], Queue]
    corrupt: Callable[[Queue, str, str], None]
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _build_memory(_: FixtureLookup, clock: ManualClock, options: QueueOptions) -> Queue:
    return MemoryQueue(clock, retention=options.retention, completed_ttl=options.completed_ttl)


def _corrupt_memory(queue: Queue, queue_name: str, job_id: str) -> None:
    assert isinstance(queue, MemoryQueue)
    # Reaching into the store is the memory twin of writing garbage into a Redis key.
    queue._queues[queue_name].jobs[job_id].blob = b"\x00 not a job"


QUEUE_BACKENDS: dict[str, QueueBackend] = {
    "memory": QueueBackend(_build_memory, _corrupt_memory),
}


# -- helpers the suites share -----------------------------------------------------------------

LEASE = timedelta(seconds=30)
MS = timedelta(milliseconds=1)


def job(name: str = "task", **fields: Any) -> Job:
    """A job with defaults a test does not care about."""
    return Job(name, **fields)


def state_of(queue: Queue, job_id: str) -> JobState | None:
    """The job's state, or None if the queue does not know it."""
    record = queue.get(job_id)
    return None if record is None else record.state
