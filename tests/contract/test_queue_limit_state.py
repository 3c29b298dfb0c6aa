"""Contract: a limit key's state goes once it decides nothing, so keys per user or tenant do
not pile up (each backend is looked at where it keeps that state)."""

from __future__ import annotations

from datetime import timedelta

import attrs

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Limit, Rate
from foundry.ports import ClaimRequest
from tests.backends import LEASE, Queue, job

ALL = ClaimRequest(["default"], lease=LEASE, limit=100)
RATE = Rate(1, timedelta(seconds=1))
KEYS = [f"user:{n}" for n in range(20)]


def _drain(queue: Queue) -> None:
    for lease in queue.claim(ALL):
        queue.complete(lease)


def _memory_state(queue: MemoryQueue) -> dict[str, int]:
    limits = queue._store.queue("default").limits
    return {name: len(value) for name, value in attrs.asdict(limits, recurse=False).items()}


def _redis_state(queue: RedisQueue) -> dict[str, int]:
    """The queue's limit keys, with their time to live (ms; -1: none)."""
    client = queue._runner.client
    names = client.scan_iter(match=queue._keys.queue("default").named("lim:*"), count=1000)
    return {name.decode(): client.pttl(name) for name in names}


def _postgres_rows(queue: PostgresQueue) -> int:
    with queue._db.conn() as conn:
        schema = queue._db.settings.schema
        row = conn.execute(f'SELECT count(*) FROM "{schema}".limit_keys').fetchone()
    assert row is not None
    return int(row[0])


def test_a_limit_key_s_state_goes_once_it_decides_nothing(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue_many(
        [job(id=f"{key}-{n}", limit=Limit(key, 1, RATE)) for key in KEYS for n in range(2)]
        + [job(id=f"c{n}", limit=Limit("c", rate=Rate(1, timedelta(hours=1)))) for n in range(2)]
    )
    _drain(queue)  # the first of each key; the second is parked, then ready
    queue.cancel("c1")  # it held key c's next turn
    clock.advance(timedelta(seconds=1))
    _drain(queue)

    clock.advance(timedelta(hours=1))
    queue.reap()

    if isinstance(queue, MemoryQueue):
        assert set(_memory_state(queue).values()) == {0}
    elif isinstance(queue, RedisQueue):  # only each rate's next start, expiring after it
        kept = _redis_state(queue)
        assert all(":lim:rate:" in name for name in kept), kept
        assert all(0 < ttl <= 3_600_000 + 60_000 for ttl in kept.values()), kept
    else:
        assert isinstance(queue, PostgresQueue)
        assert _postgres_rows(queue) == 0
