"""A redis-py connection that loses chosen replies: the command runs, its reply is dropped.

``LossyConnection.for_plan(plan)`` makes a connection class bound to a ``LossPlan``; a client
built on it (``lossy_client``) behaves normally until ``plan.drop_next()``: the next reply read
is read (so the command did run on the server) and then a ``ConnectionError`` is raised, which
makes redis-py's retry disconnect and re-send the command.
"""

from __future__ import annotations

from typing import Any

import attrs
import redis

from foundry.adapters.redis.connection import RedisSettings, connection_retry


@attrs.define
class LossPlan:
    """How many of the next replies to drop, and how many were dropped."""

    pending: int = 0
    skip: int = 0
    dropped: int = 0

    def drop_next(self, count: int = 1, *, skip: int = 0) -> None:
        """Drop the next ``count`` replies, after letting ``skip`` replies through."""
        self.pending, self.skip = count, skip


class LossyConnection(redis.Connection):
    """A connection whose replies a ``LossPlan`` may drop after reading them."""

    plan: LossPlan = LossPlan()

    @classmethod
    def for_plan(cls, plan: LossPlan) -> type[LossyConnection]:
        """A subclass bound to ``plan``."""
        return type("BoundLossyConnection", (cls,), {"plan": plan})

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        """Read the reply; drop it if the plan says so."""
        response = super().read_response(*args, **kwargs)
        if self.plan.skip > 0:
            self.plan.skip -= 1
        elif self.plan.pending > 0:
            self.plan.pending -= 1
            self.plan.dropped += 1
            raise redis.ConnectionError("test: reply lost after the command ran")
        return response


def lossy_client(url: str, plan: LossPlan) -> redis.Redis:
    """A client with Foundry's retry policy whose replies ``plan`` may drop."""
    retry = connection_retry(RedisSettings(url=url))
    pool = redis.ConnectionPool.from_url(
        url,
        connection_class=LossyConnection.for_plan(plan),
        retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    return redis.Redis(connection_pool=pool)
