"""Driver errors become ours at the adapter's edge; outages are logged once each way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from loguru import logger

from foundry.domain import QueueUnavailable


class Outage:
    """Remembers whether Redis is down, so "Redis down" and "Redis back" are logged once each."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.down = False
        self._lock = threading.Lock()

    def failed(self, error: BaseException) -> None:
        """Record a failed call; logs the first failure of an outage."""
        with self._lock:
            if self.down:
                return
            self.down = True
        logger.error("Redis down ({}): {}: {}", self.where, type(error).__name__, error)

    def recovered(self) -> None:
        """Record a successful call after an outage; logs once."""
        with self._lock:
            if not self.down:
                return
            self.down = False
        logger.warning("Redis back ({})", self.where)

    @contextmanager
    def guard(self, what: str, job_id: str | None = None) -> Iterator[None]:
        """Translate Redis errors raised inside into ``QueueUnavailable``, chained."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as error:
            self.failed(error)
            raise QueueUnavailable(
                f"Redis unreachable during {what} after bounded retries ({error}); "
                "check REDIS_URL and the server, then retry (writes are idempotent)",
                job_id=job_id,
            ) from error
        except redis.RedisError as error:
            raise QueueUnavailable(f"Redis refused {what}: {error}", job_id=job_id) from error
        if self.down:
            self.recovered()
