"""The pool's periodic duties toward the queue: renewing its leases and reaping others'."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from foundry.domain import FoundryError

if TYPE_CHECKING:
    from foundry.application.pool.supervisor import Supervisor

#: Expired leases (of workers that died) are recovered at least this often (seconds).
REAP_EVERY_S = 5.0


class Upkeep:
    """Renews every held lease in one batch when due; reaps expired leases regularly."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor
        self.next_reap_at = 0.0

    def renew(self, now: float) -> None:
        """One batched renew if due; lost leases are fenced, children told their new deadline."""
        sup = self._sup
        book = sup.book
        if not book.renew_due(now):
            return
        leases = book.to_renew()
        try:
            results = sup.queue.renew(leases, sup.config.lease)
        except FoundryError as error:
            sup.outage.failed(f"renewing {len(leases)} lease(s)", error, now)
            book.renew_failed(now)
            return
        sup.outage.ok(now)
        for lost in book.renewed(leases, results, now):
            sup.failures.forget(lost, "lease lost: the queue no longer holds it for this worker")
        for slot in sup.slots:
            if slot.job is not None:
                sup.workforce.fence(slot.index, book.child_deadline(slot.job.lease.job_id))

    def reap(self, now: float) -> None:
        """Recover expired leases (any worker's) every min(lease/3, ``REAP_EVERY_S``)."""
        sup = self._sup
        if now < self.next_reap_at:
            return
        self.next_reap_at = now + min(sup.book.every_s, REAP_EVERY_S)
        try:
            recovered = sup.queue.reap()
        except FoundryError as error:
            sup.outage.failed("reap", error, now)
            return
        sup.outage.ok(now)
        if recovered:
            logger.info("recovered {} job(s) whose leases had expired", recovered)
