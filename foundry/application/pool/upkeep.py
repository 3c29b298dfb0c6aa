"""The pool's periodic duties toward the queue: renewing its leases and reaping others'.

Owns when to reap next. The leases and their renew cadence are the ``LeaseBook``'s, the outage
log the ``Outage``'s; what a lost lease costs its child is the supervisor's to apply.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import attrs

from foundry.application.pool.leases import LeaseBook
from foundry.application.pool.outage import Outage
from foundry.application.pool.quarantine import Quarantine
from foundry.domain import FoundryError, QueueBroken
from foundry.ports import Lease, QueuePort

log = logging.getLogger(__name__)

#: Expired leases (of workers that died) are recovered at least this often (seconds).
REAP_EVERY_S = 5.0


@attrs.frozen
class Renewed:
    """A batched renew that the queue answered: the leases it no longer holds for us."""

    lost: tuple[Lease, ...]
    kept: int = 0


class Upkeep:
    """Renews every held lease in one batch when due; reaps expired leases regularly."""

    def __init__(
        self,
        queue: QueuePort,
        book: LeaseBook,
        outage: Outage,
        lease: timedelta,
        quarantine: Quarantine,
    ) -> None:
        self._queue = queue
        self._book = book
        self._outage = outage
        self._quarantine = quarantine
        self._lease = lease
        self.next_reap_at = 0.0

    def renew(self, now: float) -> Renewed | None:
        """One batched renew if due; ``None`` if none was due or the queue did not answer.

        The leases it lost must be forgotten, and the children running the others told their
        new deadline (``LeaseBook.child_deadline``).
        """
        book = self._book
        if not book.renew_due(now):
            return None
        leases = book.to_renew()
        try:
            results = self._queue.renew(leases, self._lease)
        except FoundryError as error:
            self._outage.failed(f"renewing {len(leases)} lease(s)", error, now)
            book.renew_failed(now)
            return None
        self._outage.ok(now)
        lost = tuple(book.renewed(leases, results, now))
        return Renewed(lost, kept=len(leases) - len(lost))

    def reap(self, now: float) -> None:
        """Recover expired leases (any worker's) every min(lease/3, ``REAP_EVERY_S``)."""
        if now < self.next_reap_at:
            return
        self.next_reap_at = now + min(self._book.every_s, REAP_EVERY_S)
        try:
            recovered = self._queue.reap()
        except QueueBroken as error:  # the others were reaped; not an outage
            self._quarantine.add(error, now)
            return
        except FoundryError as error:
            self._outage.failed("reap", error, now)
            return
        self._outage.ok(now)
        if recovered:
            log.info("recovered %s job(s) whose leases had expired", recovered)
