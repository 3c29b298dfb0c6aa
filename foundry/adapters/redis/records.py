"""The stored forms of a job (the record and the state), times in ms, and the arguments a job
takes to the enqueue function; the table in ``lua/_head.lua`` has every format.

A job is stored as one immutable record, ``"<enqueued ms, base 36> <priority> <max attempts>
<unique length> <unique><blob>"`` (the blob: see ``blobs.py``), plus, once it exists, a small
mutable state,
``"<state>,<attempts>,<seq>,<lease token>,<time ms>,<outcome>,<last token>,<worker>,<reason>"``
(the last ended lease's token and outcome recognise a re-sent complete/fail/release).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from foundry.domain import Job, RunAfter, RunAt, UniqueUntil

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch (rounded down)."""
    return (moment - EPOCH) // MS


def ceil_ms(delta: timedelta) -> int:
    """A duration in whole milliseconds, rounded up (a job never runs early, Q3)."""
    return -(-delta // MS)


def from_ms(ms: float | bytes | str) -> datetime:
    """The moment ``ms`` milliseconds after the epoch; a stored value outside what a datetime
    holds (written by hand, or before run times were bounded) reads as the nearest end."""
    value = float(ms)  # a sorted set's score may read "1e+300" or "inf"
    try:
        return EPOCH + timedelta(milliseconds=int(value))
    except (OverflowError, ValueError):
        return _LATEST if value > 0 else _EARLIEST


def job_args(job: Job, blob: bytes) -> list[str | bytes]:
    """The seven enqueue-script arguments of one job."""
    at = after = 0
    schedule = job.schedule
    if isinstance(schedule, RunAt):
        at = -(-(schedule.at - EPOCH) // MS)
    elif isinstance(schedule, RunAfter):
        after = ceil_ms(schedule.delay)
    unique = ""
    if job.unique is not None:
        until = "S" if job.unique.until is UniqueUntil.STARTED else "F"
        unique = f"{max(ceil_ms(job.unique.ttl), 1)} {until}{job.unique.key}"
    return [job.id, blob, str(job.priority), str(job.max_attempts), str(at), str(after), unique]


# The two parsed forms are named tuples, not attrs classes: read-only records with nothing to
# validate, they cost a fifth of an attrs class to define (each process defines them at start).


class Stored(NamedTuple):
    """The immutable record, split."""

    enqueued_ms: int
    blob: bytes


def split_record(value: bytes) -> Stored:
    """Split a stored record into its header and the codec blob."""
    enq, _prio, _max, ulen, rest = value.split(b" ", 4)
    return Stored(int(enq, 36), rest[int(ulen) :])


def header_intact(value: bytes) -> bool:
    """Whether a stored record's header can be read (else its job shows as undecodable)."""
    try:
        split_record(value)
    except ValueError:
        return False
    return True


def enqueued_at(value: bytes) -> datetime:
    """When the job in a stored record was enqueued; the epoch for a record whose header is
    corrupt (its job shows as undecodable: the header cannot be trusted)."""
    try:
        return from_ms(split_record(value).enqueued_ms)
    except ValueError:
        return EPOCH


class State(NamedTuple):
    """The mutable part of a job, parsed."""

    letter: str = "R"
    attempts: int = 0
    seq: int = 0
    token: str = ""
    time_ms: int = 0
    outcome: str = ""
    last_token: str = ""
    worker: str = ""
    reason: str = ""


#: The letters a stored state begins with (see ``lua/_head.lua``).
STATE_LETTERS = frozenset("RDACXNW")


def parse_state(value: bytes | None) -> State:
    """Parse a stored state (a missing one is a fresh ready job); ``ValueError`` naming what
    is wrong for one that is corrupt."""
    if value is None:
        return State()
    try:
        letter, attempts, seq, token, time_ms, outcome, last, worker, reason = value.decode().split(
            ",", 8
        )
        state = State(
            letter, int(attempts), int(seq), token, int(time_ms), outcome, last, worker, reason
        )
    except ValueError as error:  # UnicodeDecodeError too
        raise ValueError(f"its stored state is corrupt ({error})") from error
    if state.letter not in STATE_LETTERS:
        raise ValueError(f"its stored state is corrupt (unknown state {state.letter[:8]!r})")
    return state


def state_or_none(value: bytes | None) -> State | None:
    """``parse_state``, or ``None`` for a corrupt state (for listings, which show the job
    as undecodable rather than fail)."""
    try:
        return parse_state(value)
    except ValueError:
        return None


def stored_priority(value: bytes) -> int | None:
    """The priority in a stored record's header, ``None`` when the header is corrupt."""
    try:
        return int(value.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def request_id() -> str:
    """A fresh id for one counting admin call (``r:<id>``), so its re-send gets the first reply."""
    return secrets.token_urlsafe(9)
