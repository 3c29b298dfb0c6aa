"""The Redis queue's batch calls and reads, built and read without I/O, so the sync
``RedisBatches`` and the asyncio queue send the same ``batch`` and ``batch_cancel`` calls and
read the same records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.enqueuing import dependencies, refuse_unknown_dependency
from foundry.adapters.redis.epochs import EpochWatch
from foundry.adapters.redis.keys import KeyLayout, QueueKeys
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import ceil_ms, from_ms, job_args
from foundry.adapters.redis.runner import Arg
from foundry.domain import InvalidJob, Job
from foundry.domain.batch import Batch, BatchProgress, Callback, one_queue
from foundry.ports.batches import BatchRecord
from foundry.ports.inspection import JobRecord

_CALLBACKS = (Callback.THEN, Callback.CATCH, Callback.FINALLY)
_LETTERS = {"c": Callback.CATCH, "t": Callback.THEN, "f": Callback.FINALLY}
#: The hashes holding a job's record, in the order ``RecordCodec.record`` reads them.
_RECORD_HASHES = ("jobs", "state", "errors", "results", "progress")
#: How many ids one command of ``job_reads`` names (each chunk's commands are sent together).
_CHUNK = 1000


class BatchPlan:
    """The ``batch`` and ``batch_cancel`` calls for batches, and the records their reads say."""

    def __init__(
        self,
        keys: KeyLayout,
        clock: QueueClock,
        records: RecordCodec,
        epochs: EpochWatch,
        completed_ttl: timedelta,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._records = records
        self._epochs = epochs
        self._ttl_ms = ceil_ms(completed_ttl)

    def call(self, items: Sequence[Job | Batch]) -> tuple[QueueKeys, list[Arg]]:
        """The ``batch`` call storing ``items`` (one queue's): everything encoded first, so
        bad input raises ``InvalidJob`` before any write."""
        keys = self._keys.queue(one_queue(items))
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
        return keys, [*args, *head, *jobs]

    def stored(self, queue: str, reply: Any) -> None:
        """Check the ``batch`` call's reply (``InvalidJob`` for a batch id that is a job's,
        an id that is a pending callback's, or a dependency the queue does not hold: nothing
        was written) and note the epoch."""
        if reply and reply[0] == b"!b":
            raise InvalidJob("batch_id", f"{reply[1].decode()!r} is a job's id; pick another")
        refuse_unknown_dependency(queue, reply)
        self._epochs.see(queue, reply[0])

    def cancel_args(self, batch_id: str, reason: str) -> list[Arg]:
        """The ``batch_cancel`` call's arguments."""
        return [self._clock.arg(), batch_id, reason, self._ttl_ms]

    def reads(self, candidates: Sequence[str], batch_id: str) -> list[list[Arg]]:
        """The reads that find the batch in the ``candidates`` queues (for ``found``)."""
        return [["HGETALL", self._keys.queue(name).named(f"b:{batch_id}")] for name in candidates]

    def members_read(self, batch_id: str, queue: str) -> list[Arg]:
        """The read of the batch's member list (``members`` reads its reply)."""
        return ["LRANGE", self._keys.queue(queue).named(f"bm:{batch_id}"), 0, -1]

    @staticmethod
    def members(reply: Sequence[bytes]) -> list[str] | None:
        """The member ids ``members_read``'s reply holds (``None``: no such batch)."""
        return [raw.decode() for raw in reply] if reply else None

    def job_reads(self, job_ids: Sequence[str], queue: str) -> list[list[Arg]]:
        """The reads of ``job_ids``' records in ``queue`` (for ``job_records``): ``TIME``,
        then per chunk of ids one ``HMGET`` of each record hash and one ``ZMSCORE`` of
        ``delayed`` and ``done``, the fields ``get`` reads one job at a time."""
        named = self._keys.queue(queue).named
        reads: list[list[Arg]] = [["TIME"]]
        for start in range(0, len(job_ids), _CHUNK):
            chunk = job_ids[start : start + _CHUNK]
            reads += [["HMGET", named(key), *chunk] for key in _RECORD_HASHES]
            reads += [["ZMSCORE", named(key), *chunk] for key in ("delayed", "done")]
        return reads

    def job_records(
        self, job_ids: Sequence[str], queue: str, replies: Sequence[Any]
    ) -> list[JobRecord | None]:
        """The records ``job_reads``' replies hold, in the ids' order (``None``: unknown)."""
        now = self._clock.from_time(replies[0])
        width = len(_RECORD_HASHES) + 2
        found: list[JobRecord | None] = []
        for chunk, start in enumerate(range(0, len(job_ids), _CHUNK)):
            columns = replies[1 + chunk * width : 1 + (chunk + 1) * width]
            for index, job_id in enumerate(job_ids[start : start + _CHUNK]):
                fields = [column[index] for column in columns]
                stored = fields[0] is not None
                found.append(self._records.record(queue, job_id, fields, now) if stored else None)
        return found

    def found(
        self, batch_id: str, candidates: Sequence[str], replies: Sequence[Any], now: int
    ) -> BatchRecord | None:
        """The record ``reads``' replies hold, from the first queue that has the batch."""
        for name, fields in zip(candidates, replies, strict=True):
            record = batch_record(batch_id, name, fields, now)
            if record is not None:
                return record
        return None

    def _callback(self, job: Job | None) -> list[Arg]:
        if job is None:
            return ["", "", "", "", "", ""]
        return list(job_args(job, self._records.encode_job(job))[:6])


def batch_record(
    batch_id: str, queue: str, raw: dict[bytes, bytes], now: int
) -> BatchRecord | None:
    """The batch's record from its hash (``None``: no such batch, or expired)."""
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


def first_id(items: Sequence[Job | Batch]) -> str:
    """The id an error about ``items`` names: the first job's."""
    first = items[0]
    return first.jobs[0].id if isinstance(first, Batch) else first.id
