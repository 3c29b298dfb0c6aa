"""The Redis self-check ``foundry check`` and ``foundry work`` run (no tables: ``work`` uses it),
and the wait of a worker started before its backend."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from foundry.adapters.redis.health import RedisReport, log_report
from foundry.domain import QueueUnavailable

__all__ = ["log_report", "self_check", "when_reachable"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The longest pause between two tries of an unreachable backend at startup.
_MOST_BETWEEN_TRIES_S = 5.0


def self_check(what: str, run: Callable[[], RedisReport]) -> RedisReport:
    """Run a backend's self-check (the container's ``queue_check`` / ``cache_check``);
    unreachable is exit 3."""
    try:
        return run()
    except QueueUnavailable as error:
        raise QueueUnavailable(
            f"the {what}'s Redis is unreachable ({error}); check REDIS_URL and that the server runs"
        ) from error


def when_reachable(check: Callable[[], T], patience: timedelta) -> T:
    """``check()``, tried again while its backend is unreachable (``QueueUnavailable``: a
    worker started with its Redis or database, which accepts connections a moment later) for
    up to ``patience``, with a warning per try; the last ``QueueUnavailable`` then propagates.
    Anything else (a refused password, an old schema) propagates at once."""
    give_up = time.monotonic() + patience.total_seconds()
    pause = 0.5
    while True:
        try:
            return check()
        except QueueUnavailable as error:
            left = give_up - time.monotonic()
            if left <= 0:
                raise
            log.warning(
                "waiting for the backend (%s more at most): %s",
                timedelta(seconds=math.ceil(left)),
                error,
            )
            time.sleep(min(pause, left))
            pause = min(pause * 2, _MOST_BETWEEN_TRIES_S)
