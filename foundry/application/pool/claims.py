"""Claiming: how many jobs the pool asks for, when, and under which token.

``Claimer`` owns the claim timing (when the next claim may go out) and the claim tokens; the
supervisor hands the leases it returns to its children.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import attrs

from foundry.application.pool.config import PoolConfig
from foundry.application.pool.heartbeat import PoolCounters
from foundry.application.pool.leases import LeaseBook
from foundry.application.pool.outage import Outage
from foundry.application.pool.quarantine import Quarantine
from foundry.application.pool.settle import BATCH_MAX, Settler
from foundry.application.pool.slots import Slot, SlotState
from foundry.domain import FoundryError, QueueBroken
from foundry.ports import ClaimRequest, Lease

#: While some children are busy, an empty queue is polled this often (seconds).
BUSY_POLL_S = 0.05
#: The most jobs an adaptive prefetch holds ahead.
PREFETCH_MAX = 64

#: Bumped in a forked child: a copy of a ``ClaimTokens`` must not number its claims under the
#: prefix its parent numbers them under (a counter read per claim, not ``os.getpid``).
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class ClaimTokens:
    """The token for the next claim: the unanswered one while it may still be held, else new.

    A claim can be applied by the backend while its reply never arrives (Redis dies after
    writing its AOF, a connection resets). Claiming again with a fresh token would leave those
    jobs leased to nobody until their leases expire, each with an attempt spent and never
    started. Re-sending the lost claim's token returns the leases it still holds instead (Q8).

    Times are the caller's monotonic seconds. ``sent_at`` of a re-sent claim is the first
    send's, so lease deadlines computed from it are never later than the server's.

    A new token is a random prefix of this process's (72 bits, drawn again after a fork)
    and the claim's number in hex: unique across workers and restarts as a fresh random
    token would be, without reading the kernel's random source for every claim.
    """

    def __init__(self, lease_s: float) -> None:
        self._lease_s = lease_s
        self._unanswered: tuple[str, float] | None = None
        self._prefix = ""
        self._fork = -1
        self._count = 0

    def next(self, now: float) -> tuple[str, float]:
        """The token to send now and when its claim was first sent."""
        if self._unanswered is not None:
            token, sent_at = self._unanswered
            if now - sent_at < self._lease_s:
                return token, sent_at
        return self._new(), now

    def _new(self) -> str:
        if self._fork != _forks[0]:
            self._prefix, self._fork, self._count = secrets.token_urlsafe(9), _forks[0], 0
        self._count += 1
        return f"{self._prefix}{self._count:x}"

    def resending(self, now: float) -> bool:
        """Whether the claim sent now re-sends an unanswered one."""
        return self._unanswered is not None and now - self._unanswered[1] < self._lease_s

    def answered(self) -> None:
        """The claim got its reply: the next claim is a new one."""
        self._unanswered = None

    def unanswered(self, token: str, sent_at: float) -> None:
        """The claim failed (maybe applied, reply lost): send ``token`` again next time."""
        self._unanswered = (token, sent_at)


class Claimer:
    """Decides how many jobs to claim and when, and claims them (batched completions first)."""

    def __init__(
        self,
        settler: Settler,
        book: LeaseBook,
        outage: Outage,
        config: PoolConfig,
        *,
        counters: PoolCounters,
        worker: str,
        quarantine: Quarantine,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settler = settler
        self._monotonic = monotonic  # read again after a claim that failed (it may have blocked)
        self._book = book
        self._outage = outage
        self._quarantine = quarantine
        self._config = config
        self._counters = counters
        self._worker = worker
        self._tokens = ClaimTokens(config.lease.total_seconds())
        self._next_claim_at = 0.0  # no claim before (an idle wait ended, or claims failing)
        self._poll_at = 0.0  # no busy poll before (the queue was empty while children ran)
        self._window_s = config.prefetch_window.total_seconds()
        self._prefetch_of = (-1, config.prefetch)  # (jobs processed, the prefetch then)
        self._out: tuple[ClaimRequest, float] | None = None  # a child's claim, and when sent
        self._found_empty = False  # the last claim (or busy poll) brought nothing

    @property
    def found_empty(self) -> bool:
        """Whether the queues were found empty since the last claim that brought a job."""
        return self._found_empty

    @property
    def out(self) -> bool:
        """Whether a child is making the pool's claim (no other claim goes out meanwhile)."""
        return self._out is not None

    def wanted(self, slots: Sequence[Slot], buffered: int) -> int:
        """How many jobs to claim now: none while no child waits and the jobs held (the
        ``buffered`` ones and those queued in busy children) are over half the prefetch.

        Then as many as make up the prefetch again; a prefetch the window raised fills the
        buffer alone, the job each busy child holds queued on top, so its claims come in
        batches of about the whole prefetch, not half of it, while a refill still goes out
        with half of it held. Such a claim takes no more than ``BATCH_MAX`` for the busy
        children (the completions of the replies it waits for fit one batch), unless half
        the prefetch is more.
        """
        idle = queued = 0
        for slot in slots:  # (a loop, not two generators: it runs twice per turn)
            if slot.state is SlotState.IDLE:
                idle += 1
            if slot.queued is not None:
                queued += 1
        prefetch = self._prefetch()
        held = buffered + queued
        if not idle and held > prefetch // 2:
            return 0
        if prefetch <= self._config.prefetch:
            return idle + prefetch - held
        return idle + max(prefetch - held, min(prefetch - buffered, BATCH_MAX))

    def replies_to_refill(self, held: int) -> int:
        """How many more replies (each takes one of the ``held`` jobs) until the refill mark,
        where a claim goes out: at least the next one."""
        return max(held - self._prefetch() // 2, 1)

    def due(self, now: float, *, idle: bool) -> bool:
        """Whether a claim may go out now; the busy-poll pause holds only while children run.

        An idle pool blocks in claim at once, or a job sent now would sit out the pause (up to
        50 ms instead of ~1 ms).
        """
        if self._out is not None:
            return False
        return now >= self._next_claim_at and (idle or now >= self._poll_at)

    def next_wake(self, *, idle: bool) -> float:
        """When the next claim may go out: for an idle pool the busy-poll pause is over."""
        if self._out is not None:
            return float("inf")
        return self._next_claim_at if idle else max(self._next_claim_at, self._poll_at)

    def claim(self, limit: int, wait: float, now: float, *, ahead: int = 0) -> list[Lease]:
        """Claim up to ``limit`` jobs, the last ``ahead`` of them held ahead of need, waiting up
        to ``wait`` s for one; ``[]`` if none came (or the queue did not answer: then no claim
        goes out for ``idle_wait`` after the failed one returned, which may have blocked out
        a reply timeout). The starts of held jobs not reported yet go with it."""
        config = self._config
        queues = self._quarantine.serving(config.queues, now)
        if not queues:  # every queue is broken: claim again when one is tried again
            self._next_claim_at = self._quarantine.next_release()
            return []
        resending = self._tokens.resending(now)
        token, sent_at = self._tokens.next(now)
        settling = (lease.job_id for lease, _, _ in self._settler.batched)
        request = ClaimRequest(
            queues,
            lease=config.lease,
            limit=limit,
            wait=_seconds(wait),
            claim_token=token,
            worker=self._worker,
            ahead=ahead,
            started=self._book.unreported(but=settling),
        )
        if resending:
            # A re-sent claim goes alone, its completions written just before: a write the
            # replicas did not confirm in time (REDIS_WAIT_REPLICAS) fails the whole call,
            # and every such re-send would lose the leases it was sent to get back.
            self._settler.flush()
        try:
            # Batched completions go first: a job done here must not re-run because this
            # worker died holding its completion (a poison job claimed next may kill it).
            leases = self._settler.flush_and_claim(request)
        except FoundryError as error:
            self._failed(error, request, sent_at, now)
            return []
        return self._answered(request, leases, sent_at, now)

    def delegate(
        self, limit: int, wait: float, now: float, *, ahead: int = 0
    ) -> tuple[ClaimRequest, float] | None:
        """The claim an idle child makes for the pool (see ``child_claims``), as ``claim``
        would make it, and the self-fencing deadline of the leases it takes; ``None`` when
        the parent claims itself: a lost claim's token to send again, starts to report or
        completions to carry, or every queue broken."""
        queues = self._quarantine.serving(self._config.queues, now)
        if not queues or self._tokens.resending(now) or self._settler.batched:
            return None
        if self._book.unreported():
            return None
        token, sent_at = self._tokens.next(now)
        request = ClaimRequest(
            queues,
            lease=self._config.lease,
            limit=limit,
            wait=_seconds(wait),
            claim_token=token,
            worker=self._worker,
            ahead=ahead,
        )
        self._out = (request, sent_at)
        return request, self._book.child_deadline_from(sent_at + self._book.lease_s)

    def delegated(self, leases: list[Lease], now: float) -> tuple[list[Lease], float]:
        """The child's claim got ``leases``: held from when it was sent, that time."""
        assert self._out is not None, "no claim is out"
        (request, sent_at), self._out = self._out, None
        return self._answered(request, leases, sent_at, now), sent_at

    def delegation_failed(self, error: Exception, now: float) -> None:
        """The child's claim raised ``error`` (a ``FoundryError``, else re-raised: a bug)."""
        assert self._out is not None, "no claim is out"
        (request, sent_at), self._out = self._out, None
        if not isinstance(error, FoundryError):
            raise error
        self._failed(error, request, sent_at, now)

    def delegation_unsent(self) -> None:
        """The claim could not be sent to the child: the next claim is a new one."""
        self._out = None

    def recover(self, now: float) -> list[Lease]:
        """The child making the claim died before it told what it got: the leases its token
        holds, asked again at once (Q8), in the order the claim took them. ``[]`` if the queue
        does not answer: they lapse then (no job they hold ran twice under one attempt)."""
        assert self._out is not None, "no claim is out"
        (request, sent_at), self._out = self._out, None
        again = attrs.evolve(request, wait=timedelta(0))
        try:
            leases = self._settler.flush_and_claim(again)
        except FoundryError as error:
            self._outage.failed("claim", error, now)
            self._next_claim_at = self._pause()
            return []
        return self._answered(again, leases, sent_at, now)

    def _answered(
        self, request: ClaimRequest, leases: list[Lease], sent_at: float, now: float
    ) -> list[Lease]:
        self._tokens.answered()
        self._book.reported(request.started)
        self._outage.ok(now)
        self._quarantine.served(request.queues)
        self._book.hold(leases, sent_at)
        if leases:
            self._found_empty = False
        return leases

    def _failed(
        self, error: FoundryError, request: ClaimRequest, sent_at: float, now: float
    ) -> None:
        assert request.claim_token is not None
        self._tokens.unanswered(request.claim_token, sent_at)  # it may have been applied
        if isinstance(error, QueueBroken):  # not an outage: claim the other queues at once
            self._quarantine.add(error, now)
            self._next_claim_at = now if error.queue in request.queues else self._pause()
            return
        self._outage.failed("claim", error, now)
        self._next_claim_at = self._pause()

    def came_back_empty(self, now: float, *, idle: bool, wait: float) -> None:
        """A claim brought nothing: a busy pool polls again after ``BUSY_POLL_S``; an idle
        one waited ``wait`` in that claim already."""
        self._found_empty = True
        if idle:
            self._next_claim_at = max(self._next_claim_at, now + wait)
        else:
            self._poll_at = now + BUSY_POLL_S

    def _pause(self) -> float:
        """When a claim may follow one that failed: ``idle_wait`` after it returned, not
        after it was sent (a claim that waited out a reply timeout would be due at once)."""
        return self._monotonic() + self._config.idle_wait.total_seconds()

    def _prefetch(self) -> int:
        """The configured prefetch, or more for short jobs: as many as the children finish
        within ``prefetch_window`` at the mean run time so far, to the nearest whole job
        (none for jobs longer than the window per child; at most ``PREFETCH_MAX``). Not
        rounded down: a job's measured run time holds the handler's call around its work, so
        jobs of 10 ms in a 20 ms window, 2 children, would hold 3, each claim then bringing
        3 jobs, not 4."""
        counters = self._counters
        processed, prefetch = self._prefetch_of
        if processed == counters.processed:  # asked several times per reply: once per change
            return prefetch
        config, window = self._config, self._window_s
        prefetch = config.prefetch
        if window and counters.processed and counters.runtime_s:
            mean = counters.runtime_s / counters.processed
            finished = config.concurrency * window / mean
            if finished >= 1:
                prefetch = max(prefetch, min(PREFETCH_MAX, int(finished + 0.5)))
        self._prefetch_of = (counters.processed, prefetch)
        return prefetch


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
