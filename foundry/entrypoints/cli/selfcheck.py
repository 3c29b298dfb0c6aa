"""The Redis self-check ``foundry check`` and ``foundry work`` run (no tables: ``work`` uses it)."""

from __future__ import annotations

from collections.abc import Callable

from foundry.adapters.redis.health import RedisReport, log_report
from foundry.domain import QueueUnavailable

__all__ = ["log_report", "self_check"]


def self_check(what: str, run: Callable[[], RedisReport]) -> RedisReport:
    """Run a backend's self-check (the container's ``queue_check`` / ``cache_check``);
    unreachable is exit 3."""
    try:
        return run()
    except QueueUnavailable as error:
        raise QueueUnavailable(
            f"the {what}'s Redis is unreachable ({error}); check REDIS_URL and that the server runs"
        ) from error
