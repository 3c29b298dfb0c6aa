"""Driver errors become ours at the adapters' edge: the queue's ``QueueUnavailable`` and the
cache's ``CacheError`` family, chained.

The adapters raise and do not log: whoever retries (the worker pool) logs an outage once when
it starts and once when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from foundry.domain import (
    CacheError,
    CacheUnavailable,
    InvalidCacheValue,
    QueueUnavailable,
    UndecodableValue,
)


@contextmanager
def guard(what: str, job_id: str | None = None) -> Iterator[None]:
    """Translate Redis errors raised inside into ``QueueUnavailable``, chained."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise QueueUnavailable(
            f"Redis unreachable during {what} after bounded retries ({error}); "
            "check REDIS_URL and the server, then retry (writes are idempotent)",
            job_id=job_id,
        ) from error
    except redis.RedisError as error:
        raise QueueUnavailable(f"Redis refused {what}: {error}", job_id=job_id) from error


def cache_error(error: redis.RedisError, label: str) -> CacheError:
    """Our error for a driver error met while working on the key (or lock) ``label``."""
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return CacheUnavailable(
            f"Redis cannot be reached ({error}) while working on {label!r}; "
            "check REDIS_URL and that redis-server is up (the operation may or may not have "
            "been applied)"
        )
    text = str(error)
    if "NOTINT" in text:
        return InvalidCacheValue(
            f"cannot increment {label!r}: it holds a value that is not an integer; "
            "delete it or use another key for the counter"
        )
    if "OVERFLOW" in text:
        return InvalidCacheValue(f"counter {label!r} would leave ±(2**53 - 1) (exact range)")
    if "UNDECODABLE" in text or "WRONGTYPE" in text:
        return UndecodableValue(label, f"it was not written by Foundry's cache ({text})")
    return CacheError(f"Redis refused the cache operation on {label!r}: {text}")
