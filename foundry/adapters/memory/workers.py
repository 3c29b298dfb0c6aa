"""The memory queue's worker registry: each worker's info until its heartbeat expires."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from foundry.ports import Clock, WorkerInfo


class MemoryWorkers:
    """``WorkerRegistry`` in one process; expiry on the queue's ``Clock``."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._workers: dict[str, tuple[WorkerInfo, datetime]] = {}

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """Publish ``info`` until now + ``ttl``."""
        with self._lock:
            self._workers[info.id] = (info, self._clock.now() + ttl)

    def workers(self) -> list[WorkerInfo]:
        """Workers whose heartbeat has not expired, by id."""
        with self._lock:
            now = self._clock.now()
            for worker_id, (_, expires_at) in list(self._workers.items()):
                if expires_at <= now:
                    del self._workers[worker_id]
            return [self._workers[worker_id][0] for worker_id in sorted(self._workers)]

    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker now."""
        with self._lock:
            self._workers.pop(worker_id, None)
