"""Driver errors become ours at the adapter's edge: ``QueueUnavailable``, chained.

The adapter raises and does not log: whoever retries (the worker pool) logs an outage once
when it starts and once when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from foundry.domain import QueueUnavailable


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
