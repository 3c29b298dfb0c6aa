"""What a stored entry shows through the port: its job (or a placeholder when it cannot be
decoded), its ``JobRecord``, its ``DeadLetter``, and the error a lost lease leaves.

Entries hold jobs codec-encoded, so the memory queue accepts and rejects exactly what the
Redis queue does; they are decoded here, on claim and inspection.
"""

from __future__ import annotations

from datetime import datetime

import orjson

from foundry.adapters.codec import Codec
from foundry.adapters.memory.store import Entry
from foundry.adapters.queue_support import undecodable_job
from foundry.domain import ErrorInfo, Job, JobState, UndecodableJob
from foundry.ports import DeadLetter, JobRecord


class EntryCodec:
    """Encodes jobs and results for entries, and shows entries as the port's values."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def encode_job(self, job: Job) -> bytes:
        """The job as stored; raises ``InvalidJob`` (e.g. a payload over the limit)."""
        return self.codec.encode_job(job)

    def encode_result(self, result: object) -> bytes:
        """A result as stored."""
        return self.codec.encode_result(result)

    def job(self, entry: Entry) -> Job:
        """The stored job; raises ``UndecodableJob``."""
        return self.codec.decode_job(entry.blob, entry.job_id)

    def shown_job(self, entry: Entry) -> Job:
        """The stored job, or a placeholder naming why it cannot be decoded."""
        try:
            return self.job(entry)
        except UndecodableJob as error:
            return undecodable_job(entry.job_id, entry.queue, error.reason, entry.priority)

    def record(self, entry: Entry) -> JobRecord:
        """Everything known about the entry's job."""
        job = self.shown_job(entry)
        return JobRecord(
            job=job,
            state=entry.state,
            attempts=entry.attempts,
            enqueued_at=entry.enqueued_at,
            run_at=job.run_at(entry.enqueued_at) if entry.state.is_final else entry.run_at,
            lease_deadline=entry.deadline,
            errors=tuple(entry.errors),
            result=None if entry.result is None else orjson.loads(entry.result),
            reason=entry.reason,
            finished_at=entry.finished_at,
            worker=(entry.worker or None) if entry.state is JobState.ACTIVE else None,
            progress=entry.progress,
        )

    def letter(self, entry: Entry) -> DeadLetter:
        """The entry as a dead letter."""
        return DeadLetter(
            job=self.shown_job(entry),
            reason=entry.reason or "",
            attempts=entry.attempts,
            died_at=entry.finished_at or entry.enqueued_at,
            errors=tuple(entry.errors),
        )


def lost_error(entry: Entry, now: datetime) -> ErrorInfo:
    """The error a lease that expired leaves in its job's history."""
    return ErrorInfo(
        type="LeaseLost",
        message="the lease expired before the job finished (its worker died or stalled)",
        attempt=entry.attempts,
        at=now,
        worker=entry.worker,
    )
