"""The Redis self-check ``foundry check`` and ``foundry work`` run (no tables: ``work`` uses it)."""

from __future__ import annotations

import redis

from foundry.adapters.redis.health import RedisReport, inspect_redis
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import QueueUnavailable


def self_check(what: str, probe: object) -> RedisReport:
    """Run the Redis self-check on a ``RedisQueue`` or a client; unreachable is exit 3."""
    try:
        if isinstance(probe, RedisQueue):
            return probe.check()
        assert isinstance(probe, redis.Redis)
        return inspect_redis(probe)
    except QueueUnavailable as error:
        raise QueueUnavailable(
            f"the {what}'s Redis is unreachable ({error}); check REDIS_URL and that the server runs"
        ) from error
