"""The pool's periodic duties toward the queue: renewing its leases and reaping others'.

Owns when to reap next. The leases and their renew cadence are the ``LeaseBook``'s, the outage
log the ``Outage``'s; what a lost lease costs its child is the supervisor's to apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import NamedTuple

from foundry.application.pool.leases import LeaseBook
from foundry.application.pool.outage import Outage
from foundry.application.pool.quarantine import Quarantine
from foundry.domain import FoundryError, QueuesBroken
from foundry.ports import Lease, QueuePort

log = logging.getLogger(__name__)

#: Expired leases (of workers that died) are recovered at least this often (seconds).
REAP_EVERY_S = 5.0


class Renewed(NamedTuple):
    """A batched renew that the queue answered: the leases it no longer holds for us."""

    lost: tuple[Lease, ...]
    kept: int = 0
    stopped: tuple[Lease, ...] = ()  # kept leases whose jobs a cancel asked to stop


class Upkeep:
    """Renews every held lease in one batch when due; reaps expired leases regularly."""

    def __init__(
        self,
        queue: QueuePort,
        book: LeaseBook,
        outage: Outage,
        lease: timedelta,
        quarantine: Quarantine,
        *,
        served: Sequence[str],
        cancel_check: timedelta | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._monotonic = monotonic  # read again after a renew, which may block
        self._book = book
        self._outage = outage
        self._quarantine = quarantine
        self._served = frozenset(served)  # the queues this pool claims from
        self._lease = lease
        self.next_reap_at = 0.0
        self._poll_every = float("inf") if cancel_check is None else cancel_check.total_seconds()
        self._poll_at = float("inf") if cancel_check is None else 0.0

    def renew(self, now: float, *, force: bool = False) -> Renewed | None:
        """One batched renew if due (the book's cadence, or ``cancel_check`` since the last) or
        ``force``d; ``None`` if none was due or the queue did not answer.

        The leases it lost must be forgotten, the jobs of ``stopped`` ones stopped, and the
        children running the others told their new deadline (``LeaseBook.child_deadline``).

        The next renew is timed from when this one returned: one that failed after blocking
        (a reply timeout while the backend is down) is not due again at once.
        """
        book = self._book
        if not (force or book.renew_due(now) or (len(book) and now >= self._poll_at)):
            return None
        leases = book.to_renew()
        try:
            results = self._queue.renew(leases, self._lease)
        except FoundryError as error:
            self._renew_failed(len(leases), error, now)
            return None
        except Exception as error:  # a reply it could not read, an adapter's bug: not fatal
            log.error(
                "renewing %s lease(s) raised %s: %s; they stay held, and the renew is tried "
                "again (a lease it cannot renew is fenced before it lapses)",
                len(leases),
                type(error).__name__,
                error,
                exc_info=error,
            )
            self._renew_failed(len(leases), error, now)
            return None
        self._poll_at = self._monotonic() + self._poll_every
        self._outage.ok(now)
        self._outage.confirmed()
        lost = tuple(book.renewed(leases, results, now))
        stopped = tuple(lease for lease in results if lease is not None and lease.stop)
        return Renewed(lost, kept=len(leases) - len(lost), stopped=stopped)

    def _renew_failed(self, count: int, error: Exception, now: float) -> None:
        """The renew of ``count`` leases sent at ``now`` raised ``error``: as an outage, since
        the queue's answer is not known (the leases keep their deadlines; held jobs wait for a
        renew that confirms them), and tried again soon after it returned."""
        after = self._monotonic()
        self._poll_at = after + self._poll_every
        self._outage.failed(f"renewing {count} lease(s)", error, now)
        self._book.renew_failed(after)

    def due_at(self, at: float) -> None:
        """The next reap, and cancel poll, at ``at``."""
        self.next_reap_at = at
        if self._poll_every != float("inf"):
            self._poll_at = at

    def next_poll(self) -> float:
        """When the next renew is due to learn of cancels (``inf`` while no lease is held)."""
        return self._poll_at if len(self._book) else float("inf")

    def reap(self, now: float) -> None:
        """Recover expired leases (any worker's) every min(lease/3, ``REAP_EVERY_S``)."""
        if now < self.next_reap_at:
            return
        self.next_reap_at = now + min(self._book.every_s, REAP_EVERY_S)
        try:
            recovered = self._queue.reap()
        except QueuesBroken as error:  # the others were reaped; not an outage
            for refused in error.broken:
                if refused.queue in self._served:  # another worker's queue is not ours to log
                    self._quarantine.add(refused, now)
            recovered = error.done
        except FoundryError as error:
            self._outage.failed("reap", error, now)
            return
        except Exception as error:  # a reply it could not read, an adapter's bug: not fatal
            log.error(
                "the reap raised %s: %s; it runs again at its next turn (expired leases wait)",
                type(error).__name__,
                error,
                exc_info=error,
            )
            return
        self._outage.ok(now)
        if recovered:
            log.info("recovered %s job(s) whose leases had expired", recovered)
