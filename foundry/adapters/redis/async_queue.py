"""AsyncRedisQueue: the asyncio adapter of ``AsyncQueuePort`` and ``AsyncBatchPort`` over
``redis.asyncio``.

It sends the same function calls as ``RedisQueue`` (built by the same ``EnqueuePlan`` and
``BatchPlan``), so a job or batch has the same id, record and promises whichever client stored
it, and a worker of either kind serves it. Concurrent calls share one connection and one write
(see ``async_runner``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

import redis
import redis.asyncio

from foundry.adapters.codec import Codec
from foundry.adapters.redis.admin import found_record, record_reads
from foundry.adapters.redis.batch_plan import BatchPlan, first_id
from foundry.adapters.redis.broken import checked_keys, queue_broken, wrong_types
from foundry.adapters.redis.byte_replies import bytes_replies
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.cluster_runner import async_function_runner
from foundry.adapters.redis.durability import Durability
from foundry.adapters.redis.enqueuing import EnqueuePlan
from foundry.adapters.redis.epochs import EpochWatch
from foundry.adapters.redis.errors import guard, translated
from foundry.adapters.redis.keys import KeyLayout, QueueKeys
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import ceil_ms
from foundry.adapters.redis.runner import Arg
from foundry.adapters.redis.waiting import BLOCK_S
from foundry.domain import (
    MAX_PAYLOAD_BYTES,
    Batch,
    ConfigurationError,
    Job,
    JobState,
    QueueUnavailable,
)
from foundry.domain.given import given_ids, given_queue
from foundry.ports.batches import BatchRecord
from foundry.ports.clock import Clock
from foundry.ports.inspection import JobRecord
from foundry.ports.queue_types import EnqueueOutcome


class AsyncRedisQueue:
    """Jobs into Redis from an event loop: one pipelined function call per job.

    ``clock=None`` (production) lets the functions read the Redis server's ``TIME``; tests
    pass a ``ManualClock``. ``prefix`` must be the workers' (``QUEUE_PREFIX``).
    ``durability`` (``REDIS_WAIT_REPLICAS``) makes an enqueue wait for replicas before it
    returns, as the sync queue's does. ``completed_ttl``: how long a cancelled job and an
    ended batch are kept (the sync queue's).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "foundry",
        clock: Clock | None = None,
        codec: Codec | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        durability: Durability | None = None,
        completed_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        client = bytes_replies(client, "the asyncio queue")
        if not 0 < max_payload_bytes <= MAX_PAYLOAD_BYTES:
            raise ConfigurationError(
                f"max_payload_bytes must be 1-{MAX_PAYLOAD_BYTES}, got {max_payload_bytes}"
            )
        self._runner = async_function_runner(client, durability)
        self._durability = durability or Durability()
        self._keys = KeyLayout(prefix)
        self._clock = QueueClock(clock)
        self._epochs = EpochWatch(self._clock)
        self._records = RecordCodec(codec or Codec(max_payload_bytes))
        self._plan = EnqueuePlan(self._keys, self._clock, self._records, self._epochs)
        self._batches = BatchPlan(
            self._keys, self._clock, self._records, self._epochs, completed_ttl
        )
        self._ttl_ms = ceil_ms(completed_ttl)

    async def enqueue(self, job: Job) -> EnqueueOutcome:
        """One pipelined call (a second the first time this process uses the queue)."""
        keys, args = self._plan.one(job)
        # guard() written out, as in the sync Enqueuer: a generator context manager was a
        # twentieth of an awaited dispatch's work.
        try:
            if self._epochs.unregistered(job.queue):  # the checks inline: no coroutine each
                await self._register([job.queue])
            reply = await self._runner.call("enqueue", keys.first, args)
            if self._durability.replicas:
                await self._replicated()
        except redis.ResponseError as error:
            raise await self._broken(keys, error) from error
        except redis.RedisError as error:
            raise translated("enqueue", error, job.id) from error
        return self._plan.outcome(job, reply)

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """One call per queue and 1,000 jobs, sent together."""
        calls, order = self._plan.many(jobs)
        if not calls:
            return []
        with guard("enqueue_many", jobs[0].id):
            await self._register([keys.queue for keys, _ in calls])
            replies = await self._runner.call_many(
                [("enqueue", keys.first, args) for keys, args in calls], errors_in_place=True
            )
            await self._replicated()
        for (keys, _), reply in zip(calls, replies, strict=True):
            # A refusal is its queue's own: the other queues' jobs are stored (re-sending the
            # whole batch is accepted, Q8).
            if isinstance(reply, redis.ResponseError):
                raise await self._broken(keys, reply) from reply
        return self._plan.outcomes(jobs, calls, replies, order)

    async def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The reads ``RedisQueue.get`` makes, pipelined: one round trip (two without
        ``queue``: the registry first)."""
        with guard("get", job_id):
            candidates = [queue] if queue is not None else await self._queues()
            reads = record_reads(self._keys, candidates, job_id)
            replies = await asyncio.gather(*(self._runner.command(*read) for read in reads))
        return found_record(self._clock, self._records, candidates, job_id, replies)

    async def wait(
        self, job_id: str, timeout: timedelta, queue: str | None = None
    ) -> JobRecord | None:
        """As ``RedisQueue.wait`` (``waiting.py``): the ``watch`` function marks the job as
        waited for, then a BLMOVE on the job's notification list, on a connection of the
        client's pool (the pipelined one never blocks), at most a second at a time; waiters
        beyond the pool's size take turns (``_blocked``)."""
        give_up = time.monotonic() + timeout.total_seconds()
        record = await self.get(job_id, queue)
        if record is None or record.state.is_final or timeout <= timedelta(0):
            return record
        keys = self._keys.queue(record.job.queue)
        notified = keys.base + "n:" + job_id
        while True:
            with guard("wait", job_id):
                seen = await self._runner.call("watch", keys.first, [self._clock.arg(), job_id])
            if seen != b"W" or give_up <= time.monotonic():
                return await self.get(job_id, keys.queue)
            await self._blocked(job_id, notified, give_up)

    async def _blocked(self, job_id: str, notified: str, give_up: float) -> None:
        """One BLMOVE of at most a second, once a connection of the pool is free: waiters
        beyond the pool's size take their turn (a second away at most) instead of failing
        with redis-py's "Too many connections"."""
        slots = self._runner.slots()
        try:
            await asyncio.wait_for(slots.acquire(), max(give_up - time.monotonic(), 0))
        except TimeoutError:
            return
        try:
            seconds = max(min(give_up - time.monotonic(), BLOCK_S), 0.001)
            with guard("wait", job_id):
                await self._runner.client.execute_command(  # type: ignore[no-untyped-call]
                    "BLMOVE", notified, notified, "RIGHT", "LEFT", f"{seconds:.3f}"
                )
        finally:
            slots.release()

    async def cancel(
        self, job_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState | None:
        """As ``RedisQueue.cancel``: one function call (after a search of every queue without
        ``queue``)."""
        if queue is None:
            record = await self.get(job_id)
            if record is None:
                return None
            queue = record.job.queue
        args: list[Arg] = [self._clock.arg(), job_id, reason, self._ttl_ms]
        with guard("cancel", job_id):
            letter = await self._runner.call("cancel", self._keys.queue(queue).first, args)
        return RecordCodec.state_of(letter)

    async def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """As ``RedisQueue.enqueue_batches``: one ``batch`` call, everything encoded first."""
        if not items:
            return
        keys, args = self._batches.call(items)
        with guard("enqueue_batches", first_id(items)):
            await self._register([keys.queue])
            try:
                reply = await self._runner.call("batch", keys.first, args)
            except redis.ResponseError as error:
                raise await self._broken(keys, error) from error
        self._batches.stored(keys.queue, reply)

    async def batch(self, batch_id: str, queue: str | None = None) -> BatchRecord | None:
        """As ``RedisQueue.batch``: one round trip (two without ``queue``)."""
        with guard("batch"):
            candidates = [queue] if queue is not None else await self._queues()
            reads: list[list[Arg]] = [["TIME"], *self._batches.reads(candidates, batch_id)]
            replies = await asyncio.gather(*(self._runner.command(*read) for read in reads))
        now = self._clock.from_time(replies[0])
        return self._batches.found(batch_id, candidates, replies[1:], now)

    async def members(self, batch_id: str, queue: str) -> list[str] | None:
        """As ``RedisQueue.members``: one ``LRANGE``."""
        with guard("members"):
            reply = await self._runner.command(*self._batches.members_read(batch_id, queue))
        return self._batches.members(reply)

    async def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """As ``RedisQueue.job_records``: the same reads, pipelined, one round trip."""
        ids = given_ids(job_ids) or []
        if not ids:
            return []
        with guard("job_records", ids[0]):
            reads = self._batches.job_reads(ids, given_queue(queue))
            replies = await asyncio.gather(*(self._runner.command(*read) for read in reads))
        return self._batches.job_records(ids, queue, replies)

    async def cancel_batch(
        self, batch_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord | None:
        """As ``RedisQueue.cancel_batch``: the record read, one ``batch_cancel`` call, the
        record read again."""
        found = await self.batch(batch_id, queue)
        if found is None:
            return None
        keys = self._keys.queue(found.queue)
        with guard("cancel_batch"):
            args = self._batches.cancel_args(batch_id, reason)
            try:
                await self._runner.call("batch_cancel", keys.first, args)
            except redis.ResponseError as error:
                raise await self._broken(keys, error) from error
        return await self.batch(batch_id, found.queue)

    async def aclose(self) -> None:
        """Close this queue's connection (the client's own pool is the caller's to close)."""
        await self._runner.aclose()

    async def _queues(self) -> list[str]:
        names = await self._runner.command("SMEMBERS", self._keys.registry)
        return sorted(name.decode() for name in names)

    async def _replicated(self) -> None:
        """``REDIS_WAIT_REPLICAS``: wait until the replicas hold what this connection wrote
        (unless the runner's calls waited already)."""
        wait = self._durability.wait_command()
        if wait is not None and not self._runner.waits_for_replicas:
            self._durability.check(await self._runner.command(*wait))

    async def _register(self, queues: list[str]) -> None:
        for queue in dict.fromkeys(queues):
            if self._epochs.unregistered(queue):
                await self._runner.command("SADD", self._keys.registry, queue)
                self._epochs.registered(queue)

    async def _broken(
        self, keys: QueueKeys, error: redis.ResponseError
    ) -> QueueUnavailable | ConfigurationError:
        try:
            types = await asyncio.gather(
                *(self._runner.command("TYPE", key) for key in checked_keys(keys))
            )
        except redis.RedisError:
            types = []
        return queue_broken(keys, wrong_types(keys, types) if types else [], error)
