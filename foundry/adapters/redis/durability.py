"""``REDIS_WAIT_REPLICAS``: an acknowledged write that survives the loss of the master.

With ``replicas`` above 0 the runner sends ``WAIT replicas timeout`` behind every call of a
function whose write a caller is told about (enqueue, complete, fail, a schedule's firing), in
the same write and on the same connection: Redis answers it once that many replicas hold every
earlier write of the connection. Fewer within the timeout is ``ReplicasBehind``: the write is
on the master and may be lost with it, and sending it again is safe (every write is).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeGuard

import attrs
import redis
from redis.exceptions import OutOfMemoryError

#: The functions whose writes wait for the replicas.
DURABLE = frozenset({"enqueue", "complete", "fail", "schedule_fire", "batch"})


class ReplicasBehind(redis.RedisError):
    """Fewer replicas than ``REDIS_WAIT_REPLICAS`` acknowledged a write in time."""


class WritesRefused(redis.ConnectionError):
    """The master refused a write for now, so the write did not run: fewer replicas in sync
    than its ``min-replicas-to-write`` (``NOREPLICAS``), or its memory full (``OOM``: used
    memory above ``maxmemory`` under the ``noeviction`` policy; Redis refuses a function that
    may write before it runs, so none stops halfway). An outage, not a broken queue: it
    passes (a failover, a replica back, memory freed), and the write is sent again (on a new
    connection, which asks Sentinel where the master is)."""

    def __init__(self, reply: redis.ResponseError) -> None:
        if out_of_memory(reply):
            super().__init__(
                f"Redis is out of memory: its used memory is above maxmemory and its policy "
                f"(noeviction) refuses writes (OOM {reply}); the write did not run and is sent "
                "again. Raise maxmemory (CONFIG SET maxmemory, and in redis.conf), or free "
                "memory: purge dead letters (foundry failed purge) or delete keys Foundry "
                "does not own (INFO memory shows what is used)"
            )
            return
        super().__init__(
            f"the master refuses writes while fewer replicas than its min-replicas-to-write "
            f"are in sync ({reply}): a failover may be under way or a replica is down; the "
            "write did not run and is sent again. Start or reconnect the replicas (INFO "
            "replication), or lower min-replicas-to-write"
        )


def out_of_memory(reply: object) -> TypeGuard[redis.ResponseError]:
    """Whether an error reply says Redis refuses writes while its memory is full (``OOM``)."""
    return isinstance(reply, OutOfMemoryError) or (
        isinstance(reply, redis.ResponseError) and str(reply).startswith("OOM ")
    )


def refused_for_now(reply: object) -> bool:
    """Whether an error reply says the master refuses writes for now (``NOREPLICAS``, or
    ``OOM``: out of memory)."""
    return out_of_memory(reply) or (
        isinstance(reply, redis.ResponseError) and str(reply).startswith("NOREPLICAS")
    )


@attrs.frozen
class Durability:
    """How many replicas must hold a write before it is acknowledged (0: none, no ``WAIT``),
    and how long to wait for them."""

    replicas: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    timeout: timedelta = timedelta(seconds=1)

    def wait_command(self) -> list[str | int] | None:
        """The ``WAIT`` to send behind a durable write (``None`` when off)."""
        if not self.replicas:
            return None
        return ["WAIT", self.replicas, max(int(self.timeout.total_seconds() * 1000), 1)]

    def check(self, acknowledged: int) -> None:
        """Raise ``ReplicasBehind`` unless ``acknowledged`` replicas are enough."""
        if acknowledged < self.replicas:
            raise ReplicasBehind(
                f"held by {acknowledged} of {self.replicas} "
                f"replica(s) after {self.timeout.total_seconds():g} s (REDIS_WAIT_REPLICAS="
                f"{self.replicas}): it may be lost if the master fails now; sending it again is "
                "safe. Check the replicas (INFO replication), or lower REDIS_WAIT_REPLICAS"
            )
