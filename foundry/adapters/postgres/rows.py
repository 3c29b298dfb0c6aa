"""What the PostgreSQL queue's rows show through the port: records, dead letters, leases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from foundry.adapters.codec import Codec
from foundry.adapters.queue_support import undecodable_job
from foundry.domain import ErrorInfo, Job, JobState, Progress, UndecodableJob
from foundry.ports import DeadLetter, JobRecord

#: The columns every record query selects, in this order (statements.py).
Row = tuple[Any, ...]

#: Job fields a row keeps in columns, not in its blob.
_IN_COLUMNS = ("id", "queue")


class RowCodec:
    """Encodes what the queue stores and decodes its rows into the port's values."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def encode_job(self, job: Job) -> bytes:
        """The blob stored for ``job``: the codec's form without ``id`` and ``queue``, which
        the row's columns hold (``InvalidJob`` as ``Codec.encode_job``)."""
        return self.codec.encode_job(job, omit=_IN_COLUMNS)

    def decode_job(self, queue: str, job_id: str, blob: bytes) -> Job:
        """The job of a stored blob, with or without its id and queue (rows written before
        migration 0008 have them). Raises ``UndecodableJob``."""
        return self.codec.decode_job(blob, job_id, {"id": job_id, "queue": queue})

    def job(self, queue: str, job_id: str, blob: bytes, priority: int = 0) -> Job:
        """The stored job, or a placeholder naming why it cannot be decoded."""
        try:
            return self.decode_job(queue, job_id, blob)
        except UndecodableJob as error:
            return undecodable_job(job_id, queue, error.reason, priority)

    def errors(self, blobs: Sequence[bytes] | None) -> tuple[ErrorInfo, ...]:
        """An error history from its stored entries (NULL: none yet)."""
        return tuple(self.codec.decode(blob, ErrorInfo) for blob in blobs or ())

    def progress(self, blob: bytes | None) -> Progress | None:
        """A stored progress report."""
        return None if blob is None else self.codec.decode(blob, Progress)

    def record(self, row: Row, now: datetime) -> JobRecord:
        """A ``JobRecord`` from a row of the record columns (a delayed job whose run time
        has come by ``now`` is ready)."""
        (queue, job_id, state, priority, attempts, enqueued_at, run_at, deadline, blob,
         errors, result, reason, finished_at, worker, progress) = row  # fmt: skip
        shown = JobState(state)
        if shown is JobState.DELAYED and run_at <= now:
            shown = JobState.READY
        job = self.job(queue, job_id, bytes(blob), priority)
        return JobRecord(
            job=job,
            state=shown,
            attempts=attempts,
            enqueued_at=enqueued_at,
            run_at=job.run_at(enqueued_at) if shown.is_final else run_at,
            lease_deadline=deadline,
            errors=self.errors(errors),
            result=None if result is None else orjson.loads(result),
            reason=reason,
            finished_at=finished_at,
            worker=(worker or None) if shown is JobState.ACTIVE else None,
            progress=self.progress(progress),
        )

    def letter(self, row: Row, now: datetime) -> DeadLetter:
        """A ``DeadLetter`` from a row of the record columns."""
        record = self.record(row, now)
        return DeadLetter(
            job=record.job,
            reason=record.reason or "",
            attempts=record.attempts,
            died_at=record.finished_at or record.enqueued_at,
            errors=record.errors,
        )


def lost_error(attempts: int, worker: str | None, now: datetime) -> ErrorInfo:
    """The error a lease that expired leaves in its job's history."""
    return ErrorInfo(
        type="LeaseLost",
        message="the lease expired before the job finished (its worker died or stalled)",
        attempt=attempts,
        at=now,
        worker=worker or "",
    )
