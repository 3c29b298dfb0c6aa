"""The queue registry and the epoch watch: which queues this process registered, and the
epoch each queue's ``meta`` had when this process last saw it.

A queue's epoch is set by its first enqueue; if it changes (or disappears) under a running
process, Redis lost that queue's data, which is logged as critical.
"""

from __future__ import annotations

import logging
import secrets

import redis

from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.cluster import is_cluster, scan_masters
from foundry.adapters.redis.errors import guard, translated
from foundry.adapters.redis.keys import KeyLayout
from foundry.adapters.redis.runner import call
from foundry.domain import InvalidQueueName, QueuesUnlisted, QueueUnavailable, validate_queue_name

log = logging.getLogger(__name__)

#: While a queue's data stays lost, the critical line is repeated this often (ms), not at
#: every claim.
LOST_REMINDER_MS = 60_000


class EpochWatch:
    """Which queues this process registered, and each queue's epoch as last seen.

    Lost data is logged when it is first seen, then at most once a minute while the queue has
    no epoch (on the queue's clock); a new epoch ends it, logged once. Registering is the
    caller's round trip (sync or async): ``unregistered`` says when one is due.
    """

    def __init__(self, clock: QueueClock) -> None:
        self._clock = clock
        self.candidate = secrets.token_hex(8)  # what enqueue sets when a queue has no epoch
        self._registered: set[str] = set()
        self._seen: dict[str, bytes] = {}  # b"": its epoch vanished (data lost, none since)
        self._reminded: dict[str, int] = {}

    def unregistered(self, queue: str) -> bool:
        """Whether ``queue`` must be added to the registry (first use, or lost since)."""
        return queue not in self._registered

    def registered(self, queue: str) -> None:
        """The registry holds ``queue`` now."""
        self._registered.add(queue)

    def see(self, queue: str, epoch: bytes) -> None:
        """Compare the queue's epoch with the one seen before: a change means lost data."""
        known = self._seen.get(queue)
        if known is None and not epoch:
            return
        if known == epoch:
            if not epoch:
                self._remind(queue)
            return
        self._seen[queue] = epoch
        if known is None:
            return
        if not known:
            log.warning("queue %s holds data again (epoch %s)", queue, epoch.decode())
            return
        self._lost(queue, f"epoch {known.decode()} is now {epoch.decode() or 'missing'}")
        self._registered.discard(queue)

    def _remind(self, queue: str) -> None:
        if self._clock.local_ms() - self._reminded.get(queue, 0) >= LOST_REMINDER_MS:
            self._lost(queue, "its epoch is still missing")

    def _lost(self, queue: str, how: str) -> None:
        self._reminded[queue] = self._clock.local_ms()
        log.critical(
            "Redis lost the data of queue %s (%s): jobs stored before may be gone; enable "
            "appendonly and maxmemory-policy noeviction",
            queue,
            how,
        )


class Epochs(EpochWatch):
    """The epoch watch of a sync client, which registers each queue itself."""

    def __init__(self, client: redis.Redis, keys: KeyLayout, clock: QueueClock) -> None:
        super().__init__(clock)
        self._client = client
        self._keys = keys

    def register(self, queue: str) -> None:
        """Add ``queue`` to the registry unless this process did already (or lost it since)."""
        if queue not in self._registered:  # unregistered(), inline: called per enqueue
            call(self._client, "SADD", self._keys.registry, queue)
            self.registered(queue)


def registered_queues(client: redis.Redis, keys: KeyLayout, *, search: bool = True) -> list[str]:
    """Every queue that has held a job or been paused, sorted (the registry set; no KEYS,
    no SCAN). On Redis Cluster, if the registry's master cannot be reached and ``search``:
    ``QueuesUnlisted`` with the queues a SCAN of the other masters finds (each queue's
    ``meta`` hash; a sweep of their every key, for those who show the queues)."""
    with guard("queues"):
        try:
            names = call(client, "SMEMBERS", keys.registry)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            if not (search and is_cluster(client)):
                raise
            raise _searched(client, keys, translated("queues", error)) from error
    return sorted(name.decode() for name in names)


def _searched(client: redis.Redis, keys: KeyLayout, error: Exception) -> Exception:
    """``QueuesUnlisted``: ``error`` (the registry unread), and the queues found on the
    cluster's masters that answer a SCAN, naming those that did not."""
    if not isinstance(error, QueueUnavailable):
        return error  # a refused login: no search answers
    start, end = f"{keys.prefix}:{{", "}:meta"
    found, unreached = scan_masters(client, f"{start}*{end}", "hash")
    names = [name for key in found if _is_queue(name := key.decode()[len(start) : -len(end)])]
    missing = f"; not searched: {', '.join(unreached)}, whose queues are missing"
    return QueuesUnlisted(
        f"{error}; the masters that answered were searched instead: {len(set(names))} "
        f"queue(s) found{missing if unreached else ''}",
        set(names),
    )


def _is_queue(name: str) -> bool:
    try:
        validate_queue_name(name)
    except InvalidQueueName:
        return False
    return True
