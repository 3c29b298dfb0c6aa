"""The record codec: a job, its result and its errors as the functions store them, and a
stored job as inspection shows it (``JobRecord``, ``DeadLetter``).

The formats themselves are in ``records.py`` (and ``lua/_head.lua``'s table); the blob inside
a job record is ``blobs.py``'s. One ``Codec`` (cattrs, orjson) does the JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from foundry.adapters.codec import Codec
from foundry.adapters.queue_support import undecodable_job
from foundry.adapters.redis.blobs import JobBlobs
from foundry.adapters.redis.records import EPOCH, enqueued_at, from_ms, parse_state
from foundry.domain import ErrorInfo, Job, JobState, Progress, UndecodableJob

if TYPE_CHECKING:
    from foundry.ports.inspection import DeadLetter, JobRecord

_STATES = {
    "R": JobState.READY,
    "D": JobState.DELAYED,
    "A": JobState.ACTIVE,
    "C": JobState.COMPLETED,
    "X": JobState.DEAD,
    "N": JobState.CANCELLED,
    "W": JobState.WAITING,
}
#: The states whose record says why the job ended.
_WITH_REASON = (JobState.DEAD, JobState.CANCELLED)


class RecordCodec:
    """Encodes what the functions store and decodes what they return."""

    #: The job's blob; raises ``InvalidJob`` (a payload over the limit) before any write. The
    #: blobs' own method: a wrapper's frame was a hundredth of a dispatch's client work.
    encode_job: Callable[[Job], bytes]

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._blobs = JobBlobs(codec)
        self.encode_job = self._blobs.encode

    def decode_job(self, job_id: str, queue: str, value: bytes) -> Job:
        """The job in a stored record; raises ``UndecodableJob``."""
        return self._blobs.decode(job_id, queue, value)

    def encode_result(self, result: Any) -> bytes:
        """A result as stored ("" for none)."""
        return b"" if result is None else self.codec.encode_result(result)

    def encode_error(self, error: ErrorInfo) -> bytes:
        """One error of a job's history, as the functions append it."""
        return self.codec.encode(error)

    def errors(self, value: bytes | None) -> tuple[ErrorInfo, ...]:
        """An error history, or ``()``; one that cannot be read becomes one error saying so."""
        if not value:
            return ()
        try:
            return self.codec.decode_errors(value)
        except ValueError as error:
            return (ErrorInfo(type="UndecodableErrors", message=str(error)),)

    def shown_job(self, job_id: str, queue: str, value: bytes) -> Job:
        """The stored job, or a placeholder naming why it cannot be decoded."""
        try:
            return self.decode_job(job_id, queue, value)
        except UndecodableJob as error:
            return undecodable_job(job_id, queue, error.reason)

    def record(
        self,
        queue: str,
        job_id: str,
        found: list[Any],
        now: int,
        listed_as: JobState | None = None,
    ) -> JobRecord | None:
        """A ``JobRecord`` from the job's hash fields and scores (``None``: it has expired).

        Shows what a claim would see: a due delayed job as ready; an undecodable job (or one
        whose state is corrupt) as a placeholder naming why, in the state it is ``listed_as``
        (else the one its scores suggest).
        """
        from foundry.ports.inspection import JobRecord  # noqa: PLC0415 - inspection only

        value, state_value, errors, result, progress, run_at, expires = found
        if expires is not None and float(expires) <= now:
            return None
        try:
            state = parse_state(state_value)
        except ValueError as error:
            return self._corrupt_state(queue, job_id, found, str(error), listed_as)
        status = _STATES[state.letter]
        if status is JobState.DELAYED and run_at is not None and float(run_at) <= now:
            status = JobState.READY
        job = self.shown_job(job_id, queue, value)
        enqueued = enqueued_at(value)
        return JobRecord(
            job=job,
            state=status,
            attempts=state.attempts,
            enqueued_at=enqueued,
            run_at=_run_at(run_at, job, enqueued, errors, status),
            lease_deadline=from_ms(state.time_ms) if status is JobState.ACTIVE else None,
            errors=self.errors(errors),
            result=orjson.loads(result) if result else None,
            reason=(state.reason or None) if status in _WITH_REASON else None,
            finished_at=from_ms(state.time_ms) if status.is_final else None,
            worker=(state.worker or None) if status is JobState.ACTIVE else None,
            progress=_progress(progress),
        )

    def _corrupt_state(
        self, queue: str, job_id: str, found: list[Any], why: str, listed_as: JobState | None
    ) -> JobRecord:
        """A job whose state cannot be read: an undecodable placeholder, no attempts known."""
        from foundry.ports.inspection import JobRecord  # noqa: PLC0415 - inspection only

        value, _, errors, _, _, run_at, expires = found
        guessed = JobState.DELAYED if run_at is not None else JobState.READY
        if expires is not None:
            guessed = JobState.COMPLETED
        return JobRecord(
            job=undecodable_job(job_id, queue, why),
            state=listed_as or guessed,
            attempts=0,
            enqueued_at=enqueued_at(value),
            run_at=from_ms(run_at) if run_at is not None else None,
            errors=self.errors(errors),
        )

    @staticmethod
    def state_of(letter: bytes) -> JobState | None:
        """The state a function named by its letter (R2), ``None`` for "" (no such job)."""
        return _STATES[letter.decode()] if letter else None

    def letter(
        self, queue: str, job_id: str, value: bytes, state_value: bytes | None, errors: Any
    ) -> DeadLetter:
        """A ``DeadLetter``; an undecodable job is shown as a placeholder ``undecodable`` job."""
        from foundry.ports.inspection import DeadLetter  # noqa: PLC0415 - inspection only

        try:
            state = parse_state(state_value)
        except ValueError as error:
            job = undecodable_job(job_id, queue, str(error))
            return DeadLetter(job, str(error), 0, EPOCH, self.errors(errors))
        return DeadLetter(
            job=self.shown_job(job_id, queue, value),
            reason=state.reason,
            attempts=state.attempts,
            died_at=from_ms(state.time_ms),
            errors=self.errors(errors),
        )


def _run_at(
    score: Any, job: Job, enqueued_at: datetime, errors: Any, state: JobState
) -> datetime | None:
    """The job's run time: its score while it is in the delayed set; else, for a job that
    ended or never failed, the time its schedule gave at enqueue (kept by a release without
    delay and by lease recovery, as on the memory queue); a retry's time is not kept once it
    is due."""
    if score is not None:
        return from_ms(score)
    return None if errors and not state.is_final else job.run_at(enqueued_at)


def _progress(value: bytes | None) -> Progress | None:
    """A stored progress ("<fraction>[\x1f<note>]"), or ``None``."""
    if not value:
        return None
    fraction, _, note = value.decode().partition("\x1f")
    return Progress(float(fraction), note or None)
