"""The queue's key layout: every key of one queue under one hash tag, so each function touches
one slot (the key table at the head of ``lua/_head.lua`` says what each holds).

``<prefix>:{<queue>}:<name>``; queue names cannot hold braces (the domain rejects them), so
the tag is exactly the queue name. Keys outside any queue (the queue registry, workers) use
their own tags and are never touched by a queue function.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from foundry.domain import ConfigurationError, validate_queue_name

#: The fixed KEYS order every queue function expects (the key table in lua/_head.lua).
QUEUE_KEY_NAMES = (
    "jobs",
    "state",
    "errors",
    "results",
    "ready",
    "delayed",
    "leases",
    "dead",
    "done",
    "meta",
    "wake",
)
_PREFIX = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if usable as ``QUEUE_PREFIX``, else raise ``ConfigurationError``."""
    if not _PREFIX.fullmatch(prefix):
        raise ConfigurationError(
            f"QUEUE_PREFIX {prefix!r} must be 1-64 letters, digits or '_.:-' (no braces)"
        )
    return prefix


class QueueKeys(NamedTuple):
    """The Redis keys of one queue (a named tuple: a fifth of an attrs class's cost to define,
    and every process defines it at start)."""

    queue: str
    base: str
    all: tuple[str, ...]
    #: The jobs key alone: what a function needs (bind names the others from it), where the
    #: eleven cost Redis a tenth of a plain enqueue to parse and hand to Lua.
    first: tuple[str, ...]

    @classmethod
    def of(cls, prefix: str, queue: str) -> QueueKeys:
        """The keys of ``queue`` under ``prefix``; raises ``InvalidQueueName`` for a bad name."""
        base = f"{prefix}:{{{validate_queue_name(queue)}}}:"
        names = tuple(base + name for name in QUEUE_KEY_NAMES)
        return cls(queue, base, names, names[:1])

    def named(self, name: str) -> str:
        """One of the ``QUEUE_KEY_NAMES`` keys."""
        return self.base + name


class KeyLayout:
    """Every key of one ``QUEUE_PREFIX``: each queue's keys (made once per queue), the queue
    registry and the worker registry's."""

    def __init__(self, prefix: str) -> None:
        self.prefix = validate_prefix(prefix)
        self.registry = f"{prefix}:{{registry}}:queues"  # every queue that held a job or was paused
        self.workers = f"{prefix}:{{workers}}:index"  # worker ids by heartbeat expiry
        self._queues: dict[str, QueueKeys] = {}

    def queue(self, name: str) -> QueueKeys:
        """The keys of queue ``name``; raises ``InvalidQueueName`` for a bad name."""
        keys = self._queues.get(name)
        if keys is None:
            keys = self._queues[name] = QueueKeys.of(self.prefix, name)
        return keys

    def worker(self, worker_id: str) -> str:
        """One worker's published info."""
        return f"{self.prefix}:{{workers}}:w:{worker_id}"
