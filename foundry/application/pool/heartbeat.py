"""A pool's running totals, and their publication as a ``WorkerInfo`` heartbeat."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta

from foundry.application.outcome import Outcome, OutcomeKind
from foundry.domain import FoundryError
from foundry.ports import Clock, WorkerInfo, WorkerRegistry

log = logging.getLogger(__name__)


class PoolCounters:
    """Attempts that ended, by outcome, and their total run time.

    ``processed`` counts finished attempts (completed or failed), ``failed`` the failed ones,
    split into ``retried`` and ``dead``. Released and abandoned jobs count in none of them.
    """

    __slots__ = ("dead", "failed", "processed", "retried", "runtime_s")

    def __init__(self) -> None:
        self.processed = 0
        self.failed = 0
        self.retried = 0
        self.dead = 0
        self.runtime_s = 0.0

    def record(self, outcome: Outcome, runtime_s: float) -> None:
        """Count one ended attempt."""
        kind = outcome.kind
        if kind is OutcomeKind.RELEASED or kind is OutcomeKind.ABANDONED:
            return
        self.processed += 1
        self.runtime_s += runtime_s
        if kind is OutcomeKind.RETRIED:
            self.failed += 1
            self.retried += 1
        elif kind is OutcomeKind.DEAD:
            self.failed += 1
            self.dead += 1

    @property
    def mean_runtime_ms(self) -> float:
        """Mean run time of the processed attempts, in milliseconds."""
        return 1000 * self.runtime_s / self.processed if self.processed else 0.0


class Heartbeat:
    """Publishes this pool's ``WorkerInfo`` every ``every``, for ``3 * every``."""

    def __init__(
        self,
        workers: WorkerRegistry | None,
        clock: Clock,
        queues: Sequence[str],
        concurrency: int,
        every: timedelta,
    ) -> None:
        self._workers = workers
        self._clock = clock
        self._every_s = every.total_seconds()
        self._ttl = every * 3
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{secrets.token_hex(3)}"
        self._queues = tuple(queues)
        self._concurrency = concurrency
        self._started_at = clock.now()
        self._next = 0.0
        self._failing = False

    def next_wake(self) -> float:
        """When the next heartbeat is due (``inf`` without a registry)."""
        return self._next if self._workers is not None else float("inf")

    def beat(self, now: float, counters: PoolCounters) -> None:
        """Publish if due; a backend failure is logged once and retried next time."""
        if self._workers is None or now < self._next:
            return
        self._next = now + self._every_s
        try:
            self._workers.heartbeat(self.info(counters), self._ttl)
        except FoundryError as error:
            if not self._failing:
                log.warning("heartbeat of worker %s failed: %s", self.id, error)
            self._failing = True
        else:
            self._failing = False

    def info(self, counters: PoolCounters) -> WorkerInfo:
        """What this pool looks like now."""
        return WorkerInfo(
            id=self.id,
            host=self.host,
            pid=self.pid,
            queues=self._queues,
            concurrency=self._concurrency,
            started_at=self._started_at,
            seen_at=self._clock.now(),
            processed=counters.processed,
            failed=counters.failed,
            retried=counters.retried,
            dead=counters.dead,
            mean_runtime_ms=counters.mean_runtime_ms,
        )

    def forget(self) -> None:
        """Remove this worker from the registry (clean exit)."""
        if self._workers is None:
            return
        try:
            self._workers.forget_worker(self.id)
        except FoundryError as error:
            log.warning("could not unregister worker %s: %s", self.id, error)

    @property
    def started_at(self) -> datetime:
        """When this pool started (clock time)."""
        return self._started_at
