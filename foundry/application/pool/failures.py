"""The pool's hard cases: dead children, time limits and unknown handlers.

Decides what a failure costs the job (settled through the ``Settler``), which child must be
signalled when (``Signal`` values the supervisor applies), and when children that keep dying
before they are ready must stop the pool. It owns only that count; the slots are the
supervisor's, read here.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import attrs

from foundry.application.errors import TimeLimitExceeded, WorkerLost
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.settle import Settler
from foundry.application.pool.slots import Running, Slot, SlotState
from foundry.domain import Cancel, Dead, ErrorInfo, JobCancelled, UnknownHandler
from foundry.domain.durations import spoken
from foundry.ports import Clock, Lease

log = logging.getLogger(__name__)

#: A child that dies this many times in a row before reporting ready stops the pool.
MAX_START_FAILURES = 3
#: While an unknown handler's grace lasts, its job is given back for this long (seconds).
UNKNOWN_RETRY_S = 5.0


class Act(enum.Enum):
    """What a child is sent, and why."""

    TERMINATE = "terminate"  # its job passed the hard time limit: SIGTERM
    KILL = "kill"  # still running ``term_grace`` after SIGTERM: SIGKILL
    KILL_STUCK = "kill stuck"  # asked to exit and still there: SIGKILL, stop waiting for it


class Signal(NamedTuple):
    """A signal the supervisor sends to the child of ``slot`` now."""

    slot: int
    act: Act


class Failures:
    """Decides what a failure costs the job, and makes sure no job runs past its limits."""

    def __init__(
        self,
        settler: Settler,
        config: PoolConfig,
        *,
        clock: Clock,
        host: str,
        started_at: datetime,
    ) -> None:
        self._settler = settler
        self._clock = clock
        self._host = host
        self._started_at = started_at
        self._term_grace = config.term_grace.total_seconds()
        self._unknown_grace = config.unknown_handler_grace
        self.start_failures = 0  # children in a row that died before they were ready

    def child_ready(self) -> None:
        """A child finished its start-up: the start-up failures in a row are over."""
        self.start_failures = 0

    def child_exited(
        self, slot: Slot, running: Running | None, exitcode: int | None, now: float
    ) -> bool:
        """Fail the job a dead child was running (``running``, now taken off its slot): time
        limit if it was told to die, else lost. Whether the pool must stop: its children keep
        dying before they are ready (said, and so logged, once)."""
        if slot.state is SlotState.STARTING:
            self.start_failures += 1
        if running is not None:
            self._lost(slot, running, exitcode, now)
        elif slot.state in (SlotState.IDLE, SlotState.CLAIMING, SlotState.BUSY):
            log.warning("child %s died while idle (exit code %s)", slot.pid, exitcode)
        if self.start_failures != MAX_START_FAILURES:  # past it, the pool is stopping already
            return False
        log.error(
            "%s children in a row died before they were ready (exit code %s); check "
            "child_init, the middleware's after_fork hooks and the handlers' imports. "
            "Stopping the pool",
            self.start_failures,
            exitcode,
        )
        return True

    def _lost(self, slot: Slot, running: Running, exitcode: int | None, now: float) -> None:
        lease = running.lease
        if running.stop is not None:
            error = ErrorInfo.from_exception(JobCancelled(lease.job_id, running.stop))
        elif running.term_at is not None:
            error = ErrorInfo.from_exception(TimeLimitExceeded(lease.job.timeout.total_seconds()))
        else:
            error = _worker_lost(exitcode)
        error = attrs.evolve(error, worker=f"{self._host}:{slot.pid}")
        stop = None if running.stop is None else Cancel(running.stop)
        self._settler.fail(lease, error, now - running.started, stop)

    def limits(self, slots: Sequence[Slot], now: float) -> list[Signal]:
        """Hard time limits (SIGTERM, then SIGKILL) and children that will not exit."""
        signals = []
        for slot in slots:
            act = self._act(slot, now)
            if act is not None:
                signals.append(Signal(slot.index, act))
        return signals

    def _act(self, slot: Slot, now: float) -> Act | None:
        running = slot.job
        if running is None:
            if now < slot.kill_at:
                return None
            log.warning("child %s did not exit when asked; killing it", slot.pid)
            return Act.KILL_STUCK
        if running.term_at is None:
            if now < running.hard_at:
                return None
            _log_hard_limit(slot, running.lease)
            return Act.TERMINATE
        if not running.killed and running.term_at <= now - self._term_grace:
            return Act.KILL
        return None

    def next_wake(self, slots: Sequence[Slot]) -> float:
        """The next time limit, kill escalation or overdue exit."""
        wake = float("inf")
        for slot in slots:
            running = slot.job
            if running is None:
                wake = min(wake, slot.kill_at)
            elif running.term_at is None:
                wake = min(wake, running.hard_at)
            elif not running.killed:
                wake = min(wake, running.term_at + self._term_grace)
        return wake

    def unknown_handler(self, lease: Lease) -> None:
        """Give back a job naming no handler while it is young (rolling deploys) without
        spending its attempt, so it keeps its whole budget for when the handler is deployed;
        bury it once the grace is over."""
        job = lease.job
        grace = self._unknown_grace
        born = job.created_at or self._started_at
        remaining = (born + grace - self._clock.now()).total_seconds()
        if remaining > 0:
            delay = timedelta(seconds=min(remaining, UNKNOWN_RETRY_S))
            log.warning(
                "job %s names no registered handler %r; given back for %s (grace %s)",
                job.id,
                job.name,
                delay,
                grace,
                extra={"job_id": job.id, "attempt": lease.attempt, "queue": job.queue},
            )
            self._settler.release(lease, delay)
            return
        reason = (
            f"unknown handler {job.name!r}: still not registered {spoken(grace)} after the job "
            "was "
            "created; deploy the handler, then requeue the dead letter"
        )
        error = ErrorInfo.from_exception(UnknownHandler(job.name))
        self._settler.fail(lease, error, 0.0, Dead(reason))


def _log_hard_limit(slot: Slot, lease: Lease) -> None:
    log.warning(
        "job %s passed its hard time limit of %s; terminating child %s",
        lease.job_id,
        lease.job.timeout,
        slot.pid,
        extra={"job_id": lease.job_id, "attempt": lease.attempt, "queue": lease.queue},
    )


def _worker_lost(exitcode: int | None) -> ErrorInfo:
    if exitcode is not None and exitcode < 0:
        error = ErrorInfo.from_exception(WorkerLost(signal=-exitcode))
        return attrs.evolve(error, signal=-exitcode)
    return attrs.evolve(
        ErrorInfo.from_exception(WorkerLost(exit_code=exitcode)), exit_code=exitcode
    )
