"""The Redis queue's batches (``BatchPort``): dispatch in one ``batch`` function call (its
jobs through enqueue's own body), cancel in one ``batch_cancel`` call, and the records read
with plain pipelined reads. The key table in ``lua/_head.lua`` and the batch part of
``lua/_queue.lua`` say what each key holds; the counting and the callbacks happen inside the
functions that end jobs, in the same call as the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from foundry.adapters.redis.broken import refusing
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.enqueuing import dependencies, refuse_unknown_dependency
from foundry.adapters.redis.epochs import Epochs
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import KeyLayout
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import ceil_ms, from_ms, job_args
from foundry.adapters.redis.runner import Arg, FunctionRunner, call
from foundry.domain import InvalidJob, Job
from foundry.domain.batch import Batch, BatchProgress, Callback, one_queue
from foundry.ports.batches import BatchRecord

_CALLBACKS = (Callback.THEN, Callback.CATCH, Callback.FINALLY)
_LETTERS = {"c": Callback.CATCH, "t": Callback.THEN, "f": Callback.FINALLY}


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
        self._records = records
        self._epochs = epochs
        self._ttl_ms = ceil_ms(completed_ttl)
        self._queues = queues

    def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """One ``batch`` call: everything encoded first, so bad input writes nothing."""
        if not items:
            return
        queue = one_queue(items)
        keys = self._keys.queue(queue)
        head: list[Arg] = []
        jobs: list[Arg] = []
        count = 0
        for item in items:
            members = item.jobs if isinstance(item, Batch) else (item,)
            if isinstance(item, Batch):
                head += [item.id, "1" if item.allow_failures else "0", count, len(members)]
                for which in _CALLBACKS:
                    head += self._callback(item.callbacks.get(which))
            for job in members:
                jobs += [*job_args(job, self._records.encode_job(job)), dependencies(job)]
            count += len(members)
        nb = len(head) // 22
        args: list[Arg] = [self._clock.arg(), self._epochs.candidate, self._ttl_ms, nb]
        with guard("enqueue_batches", _first_id(items)), refusing(self._client, keys):
            self._epochs.register(queue)
            reply = self._runner.call("batch", keys.first, [*args, *head, *jobs])
        if reply and reply[0] == b"!b":
            raise InvalidJob("batch_id", f"{reply[1].decode()!r} is a job's id; pick another")
        refuse_unknown_dependency(queue, reply)
        self._epochs.see(queue, reply[0])

    def batch(self, batch_id: str, queue: str | None) -> BatchRecord | None:
        """One pipelined read over the candidate queues (every known one without ``queue``)."""
        candidates = [queue] if queue is not None else self._queues()
        if not candidates:
            return None
        with guard("batch"):
            pipe = self._client.pipeline(transaction=False)
            for name in candidates:
                call(pipe, "HGETALL", self._keys.queue(name).named(f"b:{batch_id}"))
            replies = pipe.execute()
            now = self._clock.read(self._client)
        for name, fields in zip(candidates, replies, strict=True):
            record = _record(batch_id, name, fields, now)
            if record is not None:
                return record
        return None

    def cancel_batch(self, batch_id: str, queue: str | None, reason: str) -> BatchRecord | None:
        """One ``batch_cancel`` call in the batch's queue, then its record."""
        found = self.batch(batch_id, queue)
        if found is None:
            return None
        keys = self._keys.queue(found.queue)
        with guard("cancel_batch"), refusing(self._client, keys):
            args: list[Arg] = [self._clock.arg(), batch_id, reason, self._ttl_ms]
            self._runner.call("batch_cancel", keys.first, args)
        return self.batch(batch_id, found.queue)

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
            _record(raw.decode(), queue, fields, now)
            for raw, fields in zip(ids, replies, strict=True)
        )
        return [record for record in found if record is not None]

    def _callback(self, job: Job | None) -> list[Arg]:
        if job is None:
            return ["", "", "", "", "", ""]
        return list(job_args(job, self._records.encode_job(job))[:6])


def _record(batch_id: str, queue: str, raw: dict[bytes, bytes], now: int) -> BatchRecord | None:
    fields = {key.decode(): value.decode(errors="replace") for key, value in raw.items()}
    if "t" not in fields:
        return None
    if "ex" in fields and int(fields["ex"]) <= now:
        return None
    progress = BatchProgress(
        total=int(fields["t"]),
        completed=int(fields["c"]),
        failed=int(fields["f"]),
        cancelled=int(fields["x"]),
        allow_failures=fields.get("af") == "1",
        cancel_requested=fields.get("cx") == "1",
        caught=fields.get("k") == "1",
    )
    return BatchRecord(
        id=batch_id,
        queue=queue,
        progress=progress,
        created_at=from_ms(fields["ca"]),
        finished_at=from_ms(fields["fa"]) if "fa" in fields else None,
        callbacks={w: fields[f"{w.value}:id"] for w in _CALLBACKS if f"{w.value}:id" in fields},
        fired=frozenset(_LETTERS[letter] for letter in fields.get("fd", "")),
        reason=fields.get("r"),
    )


def _first_id(items: Sequence[Job | Batch]) -> str:
    first = items[0]
    return first.jobs[0].id if isinstance(first, Batch) else first.id
