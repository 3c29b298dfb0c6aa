"""The Redis queue's batches (``BatchPort``): dispatch in one ``batch`` function call (its
jobs through enqueue's own body), cancel in one ``batch_cancel`` call, and the records read
with plain pipelined reads (the calls and reads built by ``BatchPlan``). The key table in
``lua/_head.lua`` and the batch part of ``lua/_queue.lua`` say what each key holds; the
counting and the callbacks happen inside the functions that end jobs, in the same call as the
end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from foundry.adapters.redis.batch_plan import BatchPlan, batch_record, first_id
from foundry.adapters.redis.broken import refusing
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.epochs import Epochs
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import KeyLayout
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.runner import FunctionRunner, call
from foundry.domain import Job
from foundry.domain.batch import Batch
from foundry.ports.batches import BatchRecord
from foundry.ports.inspection import JobRecord


class RedisBatches:
    """``BatchPort`` over the queue's parts."""

    def __init__(
        self,
        runner: FunctionRunner,
        keys: KeyLayout,
        *,
        clock: QueueClock,
        records: RecordCodec,
        epochs: Epochs,
        completed_ttl: timedelta,
        queues: Callable[[], list[str]],
    ) -> None:
        self._runner = runner
        self._client = runner.client
        self._keys = keys
        self._clock = clock
        self._epochs = epochs
        self._plan = BatchPlan(keys, clock, records, epochs, completed_ttl)
        self._queues = queues

    def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """One ``batch`` call: everything encoded first, so bad input writes nothing."""
        if not items:
            return
        keys, args = self._plan.call(items)
        with guard("enqueue_batches", first_id(items)), refusing(self._client, keys):
            self._epochs.register(keys.queue)
            reply = self._runner.call("batch", keys.first, args)
        self._plan.stored(keys.queue, reply)

    def batch(self, batch_id: str, queue: str | None) -> BatchRecord | None:
        """One pipelined read over the candidate queues (every known one without ``queue``)."""
        candidates = [queue] if queue is not None else self._queues()
        if not candidates:
            return None
        with guard("batch"):
            pipe = self._client.pipeline(transaction=False)
            for read in self._plan.reads(candidates, batch_id):
                call(pipe, *read)
            replies = pipe.execute()
            now = self._clock.read(self._client)
        return self._plan.found(batch_id, candidates, replies, now)

    def cancel_batch(self, batch_id: str, queue: str | None, reason: str) -> BatchRecord | None:
        """One ``batch_cancel`` call in the batch's queue, then its record."""
        found = self.batch(batch_id, queue)
        if found is None:
            return None
        keys = self._keys.queue(found.queue)
        with guard("cancel_batch"), refusing(self._client, keys):
            self._runner.call("batch_cancel", keys.first, self._plan.cancel_args(batch_id, reason))
        return self.batch(batch_id, found.queue)

    def members(self, batch_id: str, queue: str) -> list[str] | None:
        """One ``LRANGE`` of the batch's member list."""
        with guard("members"):
            return self._plan.members(call(self._client, *self._plan.members_read(batch_id, queue)))

    def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """One pipelined read: ``TIME``, then seven reads per 1,000 ids (``BatchPlan``)."""
        if not job_ids:
            return []
        keys = self._keys.queue(queue)
        with guard("job_records", job_ids[0]), refusing(self._client, keys):
            pipe = self._client.pipeline(transaction=False)
            for read in self._plan.job_reads(job_ids, queue):
                call(pipe, *read)
            replies = pipe.execute()
        return self._plan.job_records(job_ids, queue, replies)

    def batches(self, queue: str, offset: int, limit: int) -> list[BatchRecord]:
        """The index newest first, then the records in one pipeline."""
        keys = self._keys.queue(queue)
        if limit <= 0 or offset < 0:
            return []
        with guard("batches"):
            ids = call(self._client, "ZREVRANGE", keys.named("batches"), offset, offset + limit - 1)
            if not ids:
                return []
            pipe = self._client.pipeline(transaction=False)
            for raw in ids:
                call(pipe, "HGETALL", keys.named(f"b:{raw.decode()}"))
            replies = pipe.execute()
            now = self._clock.read(self._client)
        found = (
            batch_record(raw.decode(), queue, fields, now)
            for raw, fields in zip(ids, replies, strict=True)
        )
        return [record for record in found if record is not None]
