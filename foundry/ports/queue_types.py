"""Value types that cross the queue port on a worker's and a dispatcher's path.

The inspection types (``JobRecord``, ``DeadLetter``, ``QueueStats``) live in
``foundry.ports.inspection``, loaded by the code that inspects; they are importable from here
too, imported at first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from foundry.domain import InvalidJob, Job, Progress, validate_queue_name
from foundry.domain.durations import as_duration, shown
from foundry.domain.exports import lazy_exports

if TYPE_CHECKING:  # re-exported: the ``as`` marks them public for the type checker
    from foundry.ports.inspection import DeadLetter as DeadLetter  # noqa: PLC0414
    from foundry.ports.inspection import JobRecord as JobRecord  # noqa: PLC0414
    from foundry.ports.inspection import QueueStats as QueueStats  # noqa: PLC0414

_INSPECTION = "foundry.ports.inspection"
_LATER = {"DeadLetter": _INSPECTION, "JobRecord": _INSPECTION, "QueueStats": _INSPECTION}
__getattr__, __dir__ = lazy_exports(__name__, _LATER, _LATER)

_CLAIM_TOKEN = re.compile(r"[A-Za-z0-9_\-]{1,64}")

#: A job whose leases lapsed this many times while it was held ahead and unstarted has its
#: later claims counted at once, held ahead or not: the bound on the attempts a worker that
#: dies before reporting a start can give back (so a job that kills its worker before its
#: start is reported still ends dead, after at most ``max_attempts`` + this many runs).
UNSTARTED_LAPSES_MAX = 2


def _queue_names(queues: Sequence[str]) -> tuple[str, ...]:
    if isinstance(queues, str):
        raise TypeError(f"claim takes a list of queue names, got the string {queues!r}")
    names = tuple(queues)
    if not names:
        raise ValueError("claim takes at least one queue name, got none")
    for name in names:
        validate_queue_name(name)
    return names


def _positive(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValueError(
            f"{attribute.name} must be a positive duration (seconds or a timedelta), "
            f"got {shown(value)}"
        )


def _not_negative(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ValueError(
            f"{attribute.name} must be a duration of 0 or more (seconds or a timedelta), "
            f"got {shown(value)}"
        )


def _at_least_one(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _not_negative_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def _leases(value: Iterable[Lease]) -> tuple[Lease, ...]:
    return tuple(value)


def _claim_token(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not _CLAIM_TOKEN.fullmatch(value):
        raise InvalidJob("claim_token", f"{value!r} must be 1-64 letters, digits, '_' or '-'")


@attrs.frozen
class ClaimRequest:
    """What one claim asks for, checked once when it is made (before anything is sent).

    * ``queues``: taken in this order (Q2); at least one valid name. A bare string raises
      ``TypeError`` (it would be read as one queue per letter); a bad name raises
      ``InvalidQueueName``.
    * ``lease``: how long each claimed job is held (> 0, else ``ValueError``).
    * ``limit``: the most jobs to lease (>= 1). ``wait``: how long to wait for a job when none
      is ready (>= 0; 0 returns at once).
    * ``claim_token``: re-sending a claim with the same token returns the leases it still
      holds instead of claiming more (Q8); 1-64 of ``[A-Za-z0-9_-]`` (else ``InvalidJob``), or
      ``None`` for a claim that will not be re-sent.
    * ``worker``: who claims, kept with the job (shown when its lease is lost).
    * ``ahead``: how many of the ``limit`` jobs, the last ones taken, are claimed ahead of
      need (held until a child is free): their attempt is spent only once their start is
      reported (``started``, a renew of the lease with ``ahead`` unset, or the job settled);
      a lease that lapses first gives the job back with the attempt unspent, at most
      ``UNSTARTED_LAPSES_MAX`` times per job, after which its claims count at once.
    * ``started``: leases claimed ahead whose jobs have started since the last report:
      reported before anything is claimed, in the same round trip (a lease that no longer
      holds its job changes nothing).
    """

    queues: tuple[str, ...] = attrs.field(converter=_queue_names)
    lease: timedelta = attrs.field(kw_only=True, converter=as_duration, validator=_positive)
    limit: int = attrs.field(default=1, kw_only=True, validator=_at_least_one)
    wait: timedelta = attrs.field(
        default=timedelta(0), kw_only=True, converter=as_duration, validator=_not_negative
    )
    claim_token: str | None = attrs.field(default=None, kw_only=True, validator=_claim_token)
    worker: str = attrs.field(default="", kw_only=True)
    ahead: int = attrs.field(default=0, kw_only=True, validator=_not_negative_int)
    started: tuple[Lease, ...] = attrs.field(default=(), kw_only=True, converter=_leases)


@attrs.frozen
class Lease:
    """A claimed job, held by one worker until ``deadline`` unless renewed.

    ``attempt`` is 1-based and counts starts: the first claim is attempt 1.
    ``token`` identifies this lease; only it may complete, fail, release or renew the job.
    ``fence`` is a fencing token: every claim of a job gives a greater one than the claims
    before it (a release does not spend an attempt, but the next claim still gets a greater
    fence), so a store guarded by it can refuse a write from an older attempt.
    ``stop`` is set by ``renew`` when a cancel asked the running job to stop: its reason.
    ``progress``, when set on a lease given to ``renew``, is stored as the job's progress.
    ``ahead``: claimed ahead of need and not started yet, so its attempt is given back if the
    lease lapses (``ClaimRequest.ahead``); renewing it with ``ahead`` unset reports its start.
    ``lapses``: for a lease held ahead, how many of its job's leases lapsed so before (a
    worker that died holding it, or that ran it without reporting the start: a pool reports
    the start of such a job before running it, so a job that kills its worker spends its
    attempts).
    """

    job: Job
    token: str
    attempt: int
    deadline: datetime
    fence: int = 0
    stop: str | None = None
    progress: Progress | None = None
    ahead: bool = False
    lapses: int = 0

    @property
    def job_id(self) -> str:
        """The leased job's id."""
        return self.job.id

    @property
    def queue(self) -> str:
        """The queue the job was claimed from."""
        return self.job.queue


@attrs.frozen
class Enqueued:
    """The job is stored (or already was: a re-sent enqueue of the same id)."""

    job_id: str


@attrs.frozen
class Duplicate:
    """Refused: a job holding the same unique key, ``existing_id``, is still pending/running."""

    job_id: str
    existing_id: str


EnqueueOutcome = Enqueued | Duplicate


@attrs.frozen
class DeadLetterRetention:
    """How long dead letters are kept: at most ``max_count`` per queue, at most ``max_age`` old.

    ``None`` means no limit. Trimmed letters are counted in ``QueueStats.dead_trimmed``.
    """

    max_count: int | None = attrs.field(default=10_000)
    max_age: timedelta | None = timedelta(days=7)

    @max_count.validator
    def _max_count(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"max_count must be at least 1 or None, got {value}")


@attrs.frozen
class WorkerInfo:
    """A live worker pool, as published by its heartbeat."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: datetime
    seen_at: datetime
    processed: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    mean_runtime_ms: float = 0.0
