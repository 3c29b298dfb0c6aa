"""Key layout: every key of one queue under one hash tag, so each script touches one slot.

``<prefix>:{<queue>}:<name>``; queue names cannot hold braces (the domain rejects them), so
the tag is exactly the queue name. Keys outside any queue (the queue registry, workers) use
their own tags and are never touched by a queue script.
"""

from __future__ import annotations

import re

import attrs

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


@attrs.frozen
class QueueKeys:
    """The Redis keys of one queue."""

    queue: str
    base: str
    all: tuple[str, ...]

    @classmethod
    def of(cls, prefix: str, queue: str) -> QueueKeys:
        """The keys of ``queue`` under ``prefix``; raises ``InvalidQueueName`` for a bad name."""
        base = f"{prefix}:{{{validate_queue_name(queue)}}}:"
        return cls(queue, base, tuple(base + name for name in QUEUE_KEY_NAMES))

    def named(self, name: str) -> str:
        """One of the ``QUEUE_KEY_NAMES`` keys."""
        return self.base + name


def registry_key(prefix: str) -> str:
    """The set of every queue name that has held a job."""
    return f"{prefix}:{{registry}}:queues"


def workers_key(prefix: str) -> str:
    """The sorted set of worker ids by heartbeat expiry."""
    return f"{prefix}:{{workers}}:index"


def worker_key(prefix: str, worker_id: str) -> str:
    """One worker's published info."""
    return f"{prefix}:{{workers}}:w:{worker_id}"
