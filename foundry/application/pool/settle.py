"""Turning the end of an attempt into the queue write it calls for, and reporting it.

A write the backend cannot take now (``QueueUnavailable``) waits in an outbox and is retried;
its lease stays held (and renewed), so the job is neither re-run nor lost meanwhile. A write
the backend refuses as stale means the lease lapsed: the job is back in the queue.

A write that fails for a reason of its job's own (an unexpected error writing it, or a
refusal of a broken queue for ``REFUSED_FOR_S``; not an outage) ends that job, never the
pool: a completion fails the attempt, dead with a reason naming the error (``UNWRITABLE``);
a failure or release that cannot be written either is abandoned to the queue's recovery of
its lease (Q5, its attempt counted, so it cannot loop).

A write that failed may yet have been applied (refused after the fact: ``WAIT`` found the
replicas behind), which ends its lease: a lease found lost while its write waits in the outbox
is let go, and the write kept. Its re-send (accepted once applied, Q8) says how the attempt
ended; a re-send refused as stale leaves that unknown, and is reported as such.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from random import Random
from typing import Any

import attrs

from foundry.application.hooks import Observers
from foundry.application.outcome import Outcome, OutcomeKind
from foundry.application.pool.heartbeat import PoolCounters
from foundry.application.pool.leases import LeaseBook
from foundry.application.pool.outage import Outage
from foundry.domain import (
    Cancel,
    Dead,
    Decision,
    ErrorInfo,
    FoundryError,
    InvalidResult,
    QueueBroken,
    QueueUnavailable,
    Retry,
    StaleLease,
    WriteNotReplicated,
)
from foundry.ports import ClaimRequest, Clock, Lease, QueuePort

log = logging.getLogger(__name__)

#: A batch of completions this large is written even while children keep answering.
BATCH_MAX = 32
#: Batched completions wait this long (seconds) for a claim to carry them, unless the pool
#: expects one sooner than ``CARRY_MAX_S`` (``CompletionWait``).
FLUSH_AFTER_S = 0.002
#: The longest batched completions wait for a claim the pool expects to carry them (seconds).
CARRY_MAX_S = 0.02
#: Seconds between retries of a write the backend could not take.
OUTBOX_RETRY_S = 0.5
#: A write the queue refuses (``QueueBroken``: it answers, but will not take it) is retried
#: for this long (seconds), then the job ends as one whose end cannot be written.
REFUSED_FOR_S = 10.0
#: Why a write refused as stale ends its attempt abandoned.
STALE = "stale lease"
#: The same, for a write sent before, whose earlier send the queue may have applied (then
#: ended the job's later lease too): how the attempt ended is not known.
UNCONFIRMED = "stale lease: an earlier send of its write, not confirmed, may have been applied"
#: Why a job whose end the queue could not be told of ends dead (or, if that cannot be
#: written either, abandoned), followed by the error.
UNWRITABLE = "the worker could not write how its attempt ended"
_REASON_MAX = 500
#: Why a write still in the outbox when a stop gives up on it ends its attempt abandoned.
UNSENT_AT_STOP = (
    "shutdown: its write was never confirmed, so how the attempt ended is unknown; the queue"
    " returns the job only if the write was not applied"
)


@attrs.define(eq=False)
class Pending:
    """A write that failed for want of the backend, to be retried."""

    lease: Lease
    write: Callable[[Lease], object]
    outcome: Outcome
    runtime_s: float
    refused_at: float | None = None  # since when the queue refuses it (``QueueBroken``)


class Settler:
    """Completes, fails, releases and abandons jobs through the port, then tells the observers.

    ``before_write`` runs before every write to the queue (any of them may block: one waiting
    for lagging replicas takes the ``WAIT`` timeout); the pool renews its leases there when
    due. It may abandon leases (``abandon``): each write picks what it sends after it ran, and
    writes nothing for a lease it abandoned.
    """

    def __init__(
        self,
        queue: QueuePort,
        *,
        clock: Clock,
        book: LeaseBook,
        counters: PoolCounters,
        observers: Observers,
        rng: Random,
        before_write: Callable[[], None] = lambda: None,
        outage: Outage,
        monotonic: Callable[[], float],
    ) -> None:
        self._queue = queue
        self._clock = clock
        self._book = book
        self.counters = counters
        self._observers = observers
        self._rng = rng
        self._before_write = before_write
        self._outage = outage
        self._monotonic = monotonic
        self.outbox: list[Pending] = []
        self._resending: Pending | None = None  # the outbox write being sent again
        self._retry_at = 0.0
        self.batched: list[tuple[Lease, Any, float]] = []
        self._batched_at = 0.0  # when the oldest batched completion came in

    def complete(self, lease: Lease, result: Any, runtime_s: float, now: float) -> None:
        """The handler returned ``result`` at ``now`` (monotonic seconds); written with the
        next claim or at the next ``flush``, whichever comes first."""
        if not self.batched:
            self._batched_at = now
        self.batched.append((lease, result, runtime_s))

    @property
    def full(self) -> bool:
        """Whether enough completions wait to be worth a round trip even while busy."""
        return len(self.batched) >= BATCH_MAX

    def flush_due(self, now: float, wait: float = FLUSH_AFTER_S) -> bool:
        """Whether the batched completions should be written now rather than wait for a claim
        to carry them: there are ``BATCH_MAX``, or the oldest waited ``wait`` seconds."""
        return bool(self.batched) and (self.full or now - self._batched_at >= wait)

    def flush(self) -> None:
        """Write the batched completions in one round trip (their leases stay held till then).

        The pool calls this when it has nothing else to do, or when the batch is ``full``.
        """
        if not self.batched:
            return
        self._before_write()
        batch, self.batched = self.batched, []
        if not batch:  # every one abandoned just now
            return
        latest = self._book.latest
        leases = [latest(lease) for lease, _, _ in batch]
        try:
            applied = self._queue.complete_many(leases, [result for _, result, _ in batch])
        except QueueUnavailable as error:
            self._postpone(batch, error)
            return
        except InvalidResult:
            self._answered()
            self._one_by_one(batch)
            return
        except FoundryError:  # the pool's own trouble (a refused password): it stops
            raise
        except Exception:  # one job's result, maybe: each written alone ends only its own job
            self._one_by_one(batch)
            return
        self._answered()
        self._settled(batch, applied)

    def flush_and_claim(self, request: ClaimRequest) -> list[Lease]:
        """Write the batched completions, then claim (``QueuePort.complete_and_claim``).

        Raises what ``claim`` raises; completions it could not write wait in the outbox, and
        so do those their queue refused (retried for ``REFUSED_FOR_S``, as a write alone is)
        while the claim's leases are returned.
        """
        self._before_write()
        if not self.batched:
            return self._queue.claim(request)
        batch, self.batched = self.batched, []
        latest = self._book.latest
        leases = [latest(lease) for lease, _, _ in batch]
        results = [result for _, result, _ in batch]
        try:
            applied, claimed = self._queue.complete_and_claim(leases, results, request)
        except QueueUnavailable as error:
            self._postpone(batch, error)
            raise
        except InvalidResult:  # refused before anything was written
            self._answered()
            self._one_by_one(batch)
            self._before_write()
            return self._queue.claim(request)
        except FoundryError:
            self.batched = batch + self.batched
            raise
        except Exception:  # one job's result, maybe: each written alone ends only its own job
            self._one_by_one(batch)  # (any applied already are accepted again: Q8)
            self._before_write()
            return self._queue.claim(request)
        except BaseException:
            self.batched = batch + self.batched
            raise
        self._answered()
        self._settled(batch, applied)
        return claimed

    def _one_by_one(self, batch: list[tuple[Lease, Any, float]]) -> None:
        """A result in ``batch`` cannot be stored: complete each job alone, so that one fails
        its attempt (``InvalidResult``) and the others complete."""
        for lease, result, runtime_s in batch:
            if self._book.holds(lease):  # else a write before abandoned it
                self._write(lease, _completion(self._queue, result), _COMPLETED, runtime_s)

    def _postpone(self, batch: list[tuple[Lease, Any, float]], error: QueueUnavailable) -> None:
        self._unavailable(f"completing {len(batch)} job(s)", error)
        refused_at = self._refused_since(error, None)
        if refused_at is None:
            log.error("queue unavailable, will retry %s completions: %s", len(batch), error)
        else:
            log.error(
                "the queue refused writing %s completion(s), retried for %g s: %s",
                *(len(batch), REFUSED_FOR_S, error),
            )
        for lease, result, runtime_s in batch:
            write = _completion(self._queue, result)
            self.outbox.append(Pending(lease, write, _COMPLETED, runtime_s, refused_at))

    def _settled(
        self, batch: list[tuple[Lease, Any, float]], applied: Sequence[bool | QueueBroken]
    ) -> None:
        for (lease, result, runtime_s), done in zip(batch, applied, strict=True):
            if isinstance(done, QueueBroken):  # its queue's refusal: retried a while, as alone
                pending = Pending(lease, _completion(self._queue, result), _COMPLETED, runtime_s)
                self._not_taken(pending, done, resent=False, last_resort=False)
                continue
            self._book.let_go(lease)
            if not done:  # logged as a completion written alone and refused is
                log.warning("%s", StaleLease(lease.job_id, lease.token))
            self.finish(lease, _COMPLETED if done else Outcome.abandoned(STALE), runtime_s)

    def fail(
        self, lease: Lease, error: ErrorInfo, runtime_s: float, decision: Decision | None = None
    ) -> None:
        """The attempt failed with ``error``; the job's retry policy decides unless told."""
        self._fail(lease, error, runtime_s, decision)

    def _fail(
        self,
        lease: Lease,
        error: ErrorInfo,
        runtime_s: float,
        decision: Decision | None,
        *,
        last_resort: bool = False,
    ) -> None:
        error = attrs.evolve(error, attempt=lease.attempt, at=self._clock.now())
        if decision is None:
            decision = lease.job.retry.decide(lease.attempt, error, self._rng)
        match decision:
            case Retry(delay):
                outcome = Outcome.retried(delay, error)
            case Dead(reason):
                outcome = Outcome.dead(reason, error)
            case Cancel(reason):
                outcome = Outcome.cancelled(reason, error)
        self._log_failure(lease, error, outcome)
        self._write(
            lease,
            lambda held: self._queue.fail(held, error, decision),
            outcome,
            runtime_s,
            last_resort=last_resort,
        )

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """Give the job back without spending the attempt (claimable again after ``delay``)."""
        if not delay:
            self._write(lease, self._queue.release, _RELEASED, 0.0)
            return
        self._write(lease, lambda held: self._queue.release(held, delay), _RELEASED, 0.0)

    def lost(self, lease: Lease, reason: str) -> None:
        """The pool gives up ``lease`` (the queue no longer holds it for the pool, or it is
        about to lapse): its job is abandoned, unless a write of its end was sent and not
        confirmed (it waits in the outbox, or is being sent again). That write may be why the
        lease is gone: it is kept, the lease no longer renewed, and its outcome reported once
        the queue answers it."""
        if self._sent(lease):
            self._book.let_go(lease)
            log.info(
                "job %s: %s; its unconfirmed write is sent again",
                lease.job_id,
                reason,
                extra={"job_id": lease.job_id, "attempt": lease.attempt, "queue": lease.queue},
            )
            return
        self.abandon(lease, reason)

    def abandon(self, lease: Lease, reason: str, runtime_s: float = 0.0) -> None:
        """Stop caring about a job whose lease is lost; the queue recovers it."""
        self.outbox = [pending for pending in self.outbox if not _same(pending.lease, lease)]
        self.batched = [entry for entry in self.batched if not _same(entry[0], lease)]
        self._book.let_go(lease)
        log.warning(
            "abandoned job %s (%s): the queue will return it",
            lease.job_id,
            reason,
            extra={"job_id": lease.job_id, "attempt": lease.attempt, "queue": lease.queue},
        )
        self.finish(lease, Outcome.abandoned(reason), runtime_s)

    def give_up_outbox(self) -> None:
        """Stop retrying the outbox (a stop's grace is over): each of its writes failed and
        may yet have been applied, so its attempt is reported abandoned with
        ``UNSENT_AT_STOP``, not as returned to the queue."""
        outbox, self.outbox = self.outbox, []
        for pending in outbox:
            lease = pending.lease
            self._book.let_go(lease)
            log.warning(
                "job %s: %s",
                lease.job_id,
                UNSENT_AT_STOP,
                extra={"job_id": lease.job_id, "attempt": lease.attempt, "queue": lease.queue},
            )
            self.finish(lease, Outcome.abandoned(UNSENT_AT_STOP), pending.runtime_s)

    def retry_outbox(self, now: float) -> None:
        """Retry the writes that failed, at most every ``OUTBOX_RETRY_S``; once one fails
        again the others wait for the next retry.

        A refused write can take long (a ``WAIT`` for replicas runs out its timeout): trying
        them all in one turn would keep the pool from renewing its leases for as many
        timeouts, and they would lapse while the queue answers.
        """
        if not self.outbox or now < self._retry_at:
            return
        self._retry_at = now + OUTBOX_RETRY_S
        for _ in range(len(self.outbox)):  # taken one at a time: a write may abandon others
            if not self.outbox:
                return
            pending = self._resending = self.outbox.pop(0)
            try:
                written = self._write(
                    pending.lease,
                    pending.write,
                    pending.outcome,
                    pending.runtime_s,
                    resent=True,
                    refused_at=pending.refused_at,
                )
            finally:
                self._resending = None
            if not written:
                self.outbox.insert(0, self.outbox.pop())  # the backend still cannot take it
                return

    def next_wake(self, wait: float = FLUSH_AFTER_S) -> float:
        """When the outbox should next be retried or the batch written, its oldest completion
        waiting ``wait`` seconds for a claim (``inf``: never)."""
        retry = self._retry_at if self.outbox else float("inf")
        batch = self._batched_at + wait if self.batched else float("inf")
        return min(retry, batch)

    def finish(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        """Count the outcome and tell the observers (whose errors never reach the pool)."""
        self.counters.record(outcome, runtime_s)
        self._observers.job_finished(lease, outcome, runtime_s)

    def started(self, lease: Lease, child_pid: int, started_at: datetime) -> None:
        """Tell the observers a job started."""
        self._observers.job_started(lease, child_pid, started_at)

    def recycled(self, child_pid: int, reason: str) -> None:
        """Tell the observers a child is replaced for reaching a limit."""
        self._observers.child_recycled(child_pid, reason)

    def renewed(self, kept: int, lost: int) -> None:
        """Tell the observers how a batched renew went."""
        self._observers.leases_renewed(kept, lost)

    def _write(
        self,
        lease: Lease,
        write: Callable[[Lease], object],
        outcome: Outcome,
        runtime_s: float,
        *,
        resent: bool = False,
        refused_at: float | None = None,
        last_resort: bool = False,
    ) -> bool:
        """Write and report ``lease``'s end (``resent``: again, after it failed, refused as
        broken since ``refused_at``); ``False`` if it waits in the outbox. ``last_resort``:
        the write that ends a job whose end could not be written (``_unwritable``); if it
        cannot be written either, the job is abandoned."""
        held = self._book.holds(lease)
        self._before_write()
        if held and not resent and not self._book.holds(lease):  # abandoned just now
            return True
        try:
            write(self._book.latest(lease))
        except StaleLease as error:
            self._answered()
            self._book.let_go(lease)
            log.warning("%s", error)
            self.finish(lease, Outcome.abandoned(UNCONFIRMED if resent else STALE), runtime_s)
        except InvalidResult as error:  # a completion the queue refused: the attempt failed
            self._answered()
            self.fail(lease, ErrorInfo.from_exception(error), runtime_s)
        except QueueUnavailable as error:
            pending = Pending(lease, write, outcome, runtime_s, refused_at)
            return self._not_taken(pending, error, resent=resent, last_resort=last_resort)
        except FoundryError:  # the pool's own trouble (a refused password): it stops
            raise
        except Exception as error:  # about this job (its data, a bug): the job ends, not the pool
            self._unwritable(lease, error, outcome, runtime_s, last_resort=last_resort)
        else:
            self._answered()
            self._book.let_go(lease)
            self.finish(lease, outcome, runtime_s)
        return True

    def _not_taken(
        self, pending: Pending, error: QueueUnavailable, *, resent: bool, last_resort: bool
    ) -> bool:
        """The queue did not take ``pending``'s write: it waits in the outbox (``False``),
        unless the queue refused it as broken for ``REFUSED_FOR_S`` (or it was the
        ``last_resort``): then the job ends as one whose end cannot be written (``True``)."""
        lease = pending.lease
        refused_at = pending.refused_at = self._refused_since(error, pending.refused_at)
        if refused_at is not None and (last_resort or self._given_up(refused_at)):
            self._unwritable(
                lease, error, pending.outcome, pending.runtime_s, last_resort=last_resort
            )
            return True
        self._unavailable(f"writing job {lease.job_id}", error)
        if refused_at is not None and not resent:
            log.error(
                "the queue refused writing job %s, retried for %g s: %s",
                *(lease.job_id, REFUSED_FOR_S, error),
                extra={"job_id": lease.job_id, "attempt": lease.attempt, "queue": lease.queue},
            )
        elif not (resent or self.outbox):  # else logged when it first failed
            log.error("queue unavailable, will retry writing job %s: %s", lease.job_id, error)
        self.outbox.append(pending)
        return False

    def _refused_since(self, error: QueueUnavailable, since: float | None) -> float | None:
        """Since when the queue refuses a write it answered with ``error`` (a broken queue:
        a key of the wrong type, a script error), ``since`` if it did before; ``None`` for an
        outage (unreachable, replicas behind), which is waited out however long it lasts."""
        if not isinstance(error, QueueBroken):
            return None
        return self._monotonic() if since is None else since

    def _given_up(self, refused_at: float) -> bool:
        """Whether a write refused since ``refused_at`` is given up (``REFUSED_FOR_S``)."""
        return self._monotonic() - refused_at >= REFUSED_FOR_S

    def _unwritable(
        self,
        lease: Lease,
        error: Exception,
        outcome: Outcome,
        runtime_s: float,
        *,
        last_resort: bool,
    ) -> None:
        """Writing ``lease``'s end (``outcome``) raised ``error``, no outage: the attempt fails,
        dead with ``UNWRITABLE`` and the error (the failure it had, if any, in the message);
        a release, or that failure when it cannot be written either, is abandoned."""
        described = f"{type(error).__name__}: {_text_of(error)}"
        reason = f"{UNWRITABLE}: {described}"[:_REASON_MAX]
        log.error(
            "job %s: %s",
            lease.job_id,
            reason,
            exc_info=error,
            extra={"job_id": lease.job_id, "attempt": lease.attempt, "queue": lease.queue},
        )
        if last_resort or outcome.kind is OutcomeKind.RELEASED:
            self.abandon(lease, reason, runtime_s)
            return
        formatted = "".join(traceback.format_exception(error))
        info = ErrorInfo.from_exception(error, traceback=formatted)
        if outcome.error is not None:
            failed = outcome.error
            info = attrs.evolve(
                info,
                message=f"{info.message}; the attempt had failed with "
                f"{failed.type}: {failed.message}",
            )
        self._fail(lease, info, runtime_s, Dead(reason), last_resort=True)

    def _unavailable(self, what: str, error: QueueUnavailable) -> None:
        """A write found the queue unreachable: the pool's outage starts (so held jobs wait,
        their starts could not be reported). Replicas behind or a broken queue is no outage."""
        if not isinstance(error, WriteNotReplicated | QueueBroken):
            self._outage.failed(what, error, self._monotonic())

    def _answered(self) -> None:
        """The queue answered a write: an outage the pool was in has ended."""
        if self._outage.down:
            self._outage.ok(self._monotonic())

    def _sent(self, lease: Lease) -> bool:
        """Whether a write of ``lease``'s end was sent and waits for the queue's answer."""
        resending = self._resending
        if resending is not None and _same(resending.lease, lease):
            return True
        return any(_same(pending.lease, lease) for pending in self.outbox)

    def _log_failure(self, lease: Lease, error: ErrorInfo, outcome: Outcome) -> None:
        if outcome.kind is OutcomeKind.CANCELLED:  # asked for: no failure to alert on
            log.info(
                "job %s was cancelled while it ran: %s",
                lease.job_id,
                outcome.reason,
                extra={"job_id": lease.job_id, "attempt": lease.attempt, "queue": lease.queue},
            )
        elif outcome.reason is not None:
            log.error(
                "job %s is dead: %s",
                lease.job_id,
                outcome.reason,
                extra={"job_id": lease.job_id, "attempt": lease.attempt, "queue": lease.queue},
            )
        else:
            log.warning(
                "job %s failed (%s: %s); retry in %s",
                lease.job_id,
                error.type,
                error.message,
                outcome.delay,
                extra={"job_id": lease.job_id, "attempt": lease.attempt, "queue": lease.queue},
            )


def _text_of(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ must not hide the failure
        return "<unprintable>"


def _same(one: Lease, other: Lease) -> bool:
    return one.job_id == other.job_id and one.token == other.token


def _completion(queue: QueuePort, result: Any) -> Callable[[Lease], object]:
    return lambda held: queue.complete(held, result)


_COMPLETED = Outcome.completed()
_RELEASED = Outcome.released()
