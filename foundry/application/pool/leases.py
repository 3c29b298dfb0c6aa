"""The leases a pool holds: when to renew them, and when to give up on them (fencing).

Times are seconds on a monotonic clock. A lease's *local deadline* is the time its last
successful claim or renew was **sent** plus the lease length: the server's deadline can only
be later, so acting before the local deadline is always in time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

import attrs

from foundry.domain import LeaseTiming, Progress
from foundry.ports import Lease

#: After a failed renew, try again this soon (seconds), bounded by the lease itself.
RENEW_RETRY_S = 0.5
#: Why a lease within the safety margin of its local deadline is given up.
FENCED = "fenced: its lease could not be renewed before the deadline"


def marked(lease: Lease, *, ahead: bool) -> Lease:
    """``attrs.evolve(lease, ahead=ahead)`` without its walk over the fields (it runs once
    for every job handed out)."""
    return Lease(
        lease.job,
        lease.token,
        lease.attempt,
        lease.deadline,
        lease.fence,
        lease.stop,
        lease.progress,
        ahead,
        lease.lapses,
    )


class Held:
    """One lease and the local deadline by which its job must be finished or abandoned."""

    __slots__ = ("deadline", "lease")

    def __init__(self, lease: Lease, deadline: float) -> None:
        self.lease = lease
        self.deadline = deadline


class LeaseBook:
    """Every lease the pool holds, renewed together every ``LeaseTiming.renew_every``.

    ``fenced(now)`` names the leases whose local deadline is within ``margin_s`` (by default
    ``LeaseTiming.fence_margin``): their children must be killed and their jobs forgotten,
    since the server may hand them to another worker at its deadline.

    Leases are keyed by ``lease.job.id``, read so (not through the ``job_id`` property) in
    every method given a lease: they run per job, and the property is a call more each.
    """

    def __init__(self, lease_s: float, margin_s: float | None = None) -> None:
        timing = LeaseTiming(timedelta(seconds=lease_s))
        self.lease_s = lease_s
        self.every_s = timing.renew_every.total_seconds()
        self.margin_s = timing.fence_margin.total_seconds() if margin_s is None else margin_s
        self._held: dict[str, Held] = {}
        self._unreported: set[str] = set()  # held-ahead jobs started, their start not sent
        self._renew_at = 0.0
        # No lease is fenced before this (a bound: the earliest deadline less the margin, or
        # earlier), so the check the pool makes before each write is mostly one comparison.
        self._fence_from = float("inf")

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._held

    def hold(self, leases: Iterable[Lease], sent_at: float) -> None:
        """Start tracking leases claimed by a request sent at ``sent_at``."""
        if not self._held:
            self._renew_at = sent_at + self.every_s
        deadline = sent_at + self.lease_s
        for lease in leases:
            self._held[lease.job.id] = Held(lease, deadline)
        self._fence_from = min(self._fence_from, deadline - self.margin_s)

    def holds(self, lease: Lease) -> bool:
        """Whether the book holds ``lease`` itself: its job, under its token (not a later
        lease of the same job, claimed again after this one ended)."""
        held = self._held.get(lease.job.id)
        return held is not None and held.lease.token == lease.token

    def latest(self, lease: Lease) -> Lease:
        """``lease`` as last renewed (same token, later deadline) while the book holds it,
        else ``lease`` itself (never a later lease of its job)."""
        held = self._held.get(lease.job.id)
        return held.lease if held is not None and held.lease.token == lease.token else lease

    def let_go(self, lease: Lease) -> None:
        """Stop renewing ``lease`` if the book holds it (a later lease of its job, claimed
        again while a write of this one waited in the outbox, stays held)."""
        job_id = lease.job.id
        held = self._held.get(job_id)
        if held is not None and held.lease.token == lease.token:
            del self._held[job_id]
            self._unreported.discard(job_id)

    def drop(self, job_id: str) -> None:
        """Stop tracking a lease (its job was settled or abandoned)."""
        self._held.pop(job_id, None)
        self._unreported.discard(job_id)

    def started(self, job_id: str) -> None:
        """The job of a lease held ahead went to a child: its lease is marked started, and
        the start goes to the queue with the next claim (``unreported``) or renew."""
        held = self._held.get(job_id)
        if held is not None and held.lease.ahead:
            held.lease = marked(held.lease, ahead=False)
            self._unreported.add(job_id)

    def unreported(self, but: Iterable[str] = ()) -> list[Lease]:
        """The started leases whose start the queue has not been told of (but those of
        ``but``, whose settlement tells it)."""
        skip = set(but)
        return [self._held[i].lease for i in self._unreported if i not in skip]

    def unstarted(self, job_id: str) -> None:
        """A job marked ``started`` did not start after all (its child skipped it): held
        ahead again, unless its start was reported already (then its attempt is spent)."""
        held = self._held.get(job_id)
        if held is not None and job_id in self._unreported:
            self._unreported.discard(job_id)
            held.lease = marked(held.lease, ahead=True)

    def reported(self, leases: Iterable[Lease]) -> None:
        """The queue was told these leases' jobs started."""
        self._unreported.difference_update(lease.job.id for lease in leases)

    def report(self, job_id: str, progress: Progress) -> None:
        """The job's latest progress, sent with the next renew."""
        held = self._held.get(job_id)
        if held is not None:
            held.lease = attrs.evolve(held.lease, progress=progress)

    def child_deadline(self, job_id: str) -> float:
        """When a child still running ``job_id`` must kill itself: half the safety margin
        later than the parent would fence it, still before the server's deadline (``inf``
        for a job whose lease the book no longer holds)."""
        held = self._held.get(job_id)
        return float("inf") if held is None else self.child_deadline_from(held.deadline)

    def child_deadline_from(self, deadline: float) -> float:
        """``child_deadline`` of a lease whose local deadline is ``deadline``."""
        return deadline - self.margin_s / 2

    def start_by(self, job_id: str) -> float:
        """Until when a child may start ``job_id``: when the parent would fence its lease
        (``lapsing``)."""
        return self._held[job_id].deadline - self.margin_s

    def renew_due(self, now: float) -> bool:
        """Whether a batched renew should be sent now."""
        return bool(self._held) and now >= self._renew_at

    def to_renew(self) -> list[Lease]:
        """Every held lease, for one batched renew."""
        return [held.lease for held in self._held.values()]

    def renewed(
        self, sent: Sequence[Lease], results: Sequence[Lease | None], sent_at: float
    ) -> list[Lease]:
        """Record a renew sent at ``sent_at``; returns the leases the server says are lost."""
        self._renew_at = sent_at + self.every_s
        self._fence_from = min(self._fence_from, sent_at + self.lease_s - self.margin_s)
        self.reported(lease for lease in sent if not lease.ahead)
        lost: list[Lease] = []
        for old, new in zip(sent, results, strict=True):
            held = self._held.get(old.job.id)
            if held is None or held.lease.token != old.token:
                continue
            if new is None:
                lost.append(old)
            else:
                newer = held.lease.progress if held.lease.progress is not old.progress else None
                held.lease = attrs.evolve(new, progress=newer, stop=None)
                held.deadline = sent_at + self.lease_s
        return lost

    def renew_failed(self, now: float) -> None:
        """A renew failed, returning at ``now`` (it may have blocked): try again soon after
        that, well before any deadline, and not at once."""
        self._renew_at = now + min(RENEW_RETRY_S, self.every_s)

    def fenced(self, now: float) -> list[Lease]:
        """Leases whose local deadline is within the safety margin of ``now``."""
        if now < self._fence_from:
            return []
        limit = now + self.margin_s
        fenced = [held.lease for held in self._held.values() if held.deadline <= limit]
        earliest = min((held.deadline for held in self._held.values()), default=float("inf"))
        self._fence_from = earliest - self.margin_s
        return fenced

    def lapsing(self, job_id: str, now: float) -> bool:
        """Whether ``job_id``'s lease is within the safety margin of its local deadline (a
        job held ahead must not start then: ``fenced`` names it)."""
        return self._held[job_id].deadline <= now + self.margin_s

    def next_wake(self) -> float:
        """When the book next needs attention (renew or fence), or ``inf`` if it holds nothing."""
        if not self._held:
            return float("inf")
        earliest = min([held.deadline for held in self._held.values()])  # (once per turn)
        return min(self._renew_at, earliest - self.margin_s)
