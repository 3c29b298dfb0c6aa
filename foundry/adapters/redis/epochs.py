"""The queue registry and the epoch watch: which queues this process registered, and the
epoch each queue's ``meta`` had when this process last saw it.

A queue's epoch is set by its first enqueue; if it changes (or disappears) under a running
process, Redis lost that queue's data, which is logged as critical.
"""

from __future__ import annotations

import secrets

import redis
from loguru import logger

from foundry.adapters.redis.keys import KeyLayout
from foundry.adapters.redis.runner import call


class Epochs:
    """Registers each queue once per process and compares each epoch seen with the last."""

    def __init__(self, client: redis.Redis, keys: KeyLayout) -> None:
        self._client = client
        self._keys = keys
        self.candidate = secrets.token_hex(8)  # what enqueue sets when a queue has no epoch
        self._registered: set[str] = set()
        self._seen: dict[str, bytes] = {}

    def register(self, queue: str) -> None:
        """Add ``queue`` to the registry unless this process did already (or lost it since)."""
        if queue not in self._registered:
            call(self._client, "SADD", self._keys.registry, queue)
            self._registered.add(queue)

    def see(self, queue: str, epoch: bytes) -> None:
        """Compare the queue's epoch with the one seen before: a change means lost data."""
        known = self._seen.get(queue)
        if known == epoch or (not epoch and known is None):
            return
        if known is not None:
            logger.critical(
                "Redis lost the data of queue {} (epoch {} is now {}): jobs stored before may be "
                "gone; enable appendonly and maxmemory-policy noeviction",
                queue,
                known.decode(),
                epoch.decode() or "missing",
            )
            self._registered.discard(queue)
        if epoch:
            self._seen[queue] = epoch
