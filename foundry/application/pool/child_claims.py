"""An idle pool's claim, made by one of its children: the frames, and the child's side.

While every child is idle the pool's next claim blocks until a job arrives. When the queue
can be claimed from a forked process (``QueuePort.claims_from_forks``), the parent sends
that claim to an idle child (``CLAIM``: the request, and the self-fencing deadline of the
leases it takes). The child makes it and runs the first job it got itself when it may
(``runs_here``): the job starts without a hop through the parent. It tells the parent every
lease it got (``CLAIMED``): at once when it runs none or got several (the others are for
idle children, or held ahead), else before any other frame about the job (its end, its
progress) and at the latest when its watchdog next looks (``WATCH_EVERY_S``), so that the
write and its wake-up of the parent come after the job's start. A child that dies
before it told leaves the parent its claim's token: the parent asks the queue again by that
token (Q8), gets the same leases, and fails the first as its dead child's job if the child had
started it (the child's count of started tasks says so). A claim that raises is sent back as
``CLAIM_FAILED``, for the parent to treat as its own claim's failure.
"""

from __future__ import annotations

import operator
import pickle
from collections.abc import Callable
from typing import Any

import attrs

from foundry.domain import FoundryError, Job, QueueBroken, QueueUnavailable
from foundry.ports import ClaimRequest, Lease, QueuePort

CLAIM = b"C"  # parent to child
CLAIMED = b"L"  # child to parent
CLAIM_FAILED = b"F"  # child to parent
_PROTOCOL = pickle.HIGHEST_PROTOCOL

# A claimed job crosses as its field values, a field left at its (shared) default as
# ``...``: pickling the attrs objects themselves (a job, its retry policy, its schedule) took
# most of the time between the claim's reply and the job's start.
_JOB_NAMES = tuple(field.name for field in attrs.fields(Job))
_JOB_DEFAULTS = tuple(field.default for field in attrs.fields(Job))
_job_values = operator.attrgetter(*_JOB_NAMES)


class ClaimCrashed(RuntimeError):
    """A child's claim raised an error that is no ``FoundryError``: a bug, as it would be in
    the parent's own claim."""


def encode_claim(request: ClaimRequest, fence_at: float) -> bytes:
    """Ask a child to make ``request``; the jobs it runs are fenced at ``fence_at``."""
    return CLAIM + pickle.dumps((request, fence_at), _PROTOCOL)


def decode_claim(frame: bytes) -> tuple[ClaimRequest, float]:
    """The request and the fencing deadline of a ``CLAIM`` frame."""
    request, fence_at = pickle.loads(memoryview(frame)[1:])
    return request, fence_at


def encode_claimed(leases: list[Lease], started: float | None) -> bytes:
    """The leases a child's claim got, and when it started the first (monotonic seconds;
    ``None``: it runs none)."""
    fields = [_lease_fields(lease) for lease in leases]
    return CLAIMED + pickle.dumps((fields, started), _PROTOCOL)


def decode_claimed(frame: bytes) -> tuple[list[Lease], float | None]:
    """The leases and the start time of a ``CLAIMED`` frame."""
    fields, started = pickle.loads(memoryview(frame)[1:])
    return [_lease(*lease) for lease in fields], started


def _lease_fields(lease: Lease) -> tuple[Any, ...]:
    job = tuple(
        ... if value is default else value
        for value, default in zip(_job_values(lease.job), _JOB_DEFAULTS, strict=True)
    )
    return (job, lease.token, lease.attempt, lease.deadline, lease.fence, lease.stop,
            lease.progress, lease.ahead, lease.lapses)  # fmt: skip


def _lease(job: tuple[Any, ...], *rest: Any) -> Lease:
    kept = {name: value for name, value in zip(_JOB_NAMES, job, strict=True) if value is not ...}
    return Lease(Job(**kept), *rest)


def encode_claim_failed(error: Exception) -> bytes:
    """Why a child's claim failed (errors are sent by their fields: an exception whose
    constructor takes other arguments than its message does not unpickle)."""
    if isinstance(error, QueueBroken):
        fields = ("broken", error.queue, error.reason)
    elif isinstance(error, FoundryError):
        fields = ("unavailable", "", str(error))
    else:
        fields = ("crashed", "", f"{type(error).__name__}: {error}")
    return CLAIM_FAILED + pickle.dumps(fields, _PROTOCOL)


def decode_claim_failed(frame: bytes) -> Exception:
    """The error a ``CLAIM_FAILED`` frame carries, as the parent's own claim would raise it."""
    kind, queue, message = pickle.loads(memoryview(frame)[1:])
    if kind == "broken":
        return QueueBroken(queue, message)
    if kind == "unavailable":
        return QueueUnavailable(message)
    return ClaimCrashed(f"a child's claim failed: {message}")


def claim_for_pool(
    queue: QueuePort,
    frame: bytes,
    runs_here: Callable[[Lease], bool],
    send: Callable[[bytes], None],
) -> tuple[list[Lease], float] | None:
    """Make the claim ``frame`` asks for. When the first job it got runs here: the leases
    (the caller tells the parent of them) and their fencing deadline; else ``None``, the
    parent told."""
    request, fence_at = decode_claim(frame)
    try:
        leases = queue.claim(request)
    except Exception as error:  # the parent decides, as for its own claim
        send(encode_claim_failed(error))
        return None
    if leases and runs_here(leases[0]):
        return leases, fence_at
    send(encode_claimed(leases, None))
    return None
