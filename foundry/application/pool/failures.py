"""The pool's hard cases: dead children, time limits, fencing and unknown handlers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
from loguru import logger

from foundry.application.errors import TimeLimitExceeded, WorkerLost
from foundry.application.pool.slots import Running, Slot, SlotState
from foundry.domain import Dead, ErrorInfo, UnknownHandler
from foundry.ports import Lease

if TYPE_CHECKING:
    from foundry.application.pool.supervisor import Supervisor

#: While an unknown handler's grace lasts, its job is given back for this long (seconds).
UNKNOWN_RETRY_S = 5.0


class Failures:
    """Decides what a failure costs the job, and makes sure no job runs twice at once."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor

    def child_exited(self, slot: Slot, exitcode: int | None, now: float) -> None:
        """Fail the job a dead child was running: time limit if it was told to die, else lost."""
        running, slot.job = slot.job, None
        if running is None:
            if slot.state in (SlotState.IDLE, SlotState.BUSY):
                logger.warning("child {} died while idle (exit code {})", slot.pid, exitcode)
            return
        lease = running.lease
        if running.term_at is not None:
            error = ErrorInfo.from_exception(TimeLimitExceeded(lease.job.timeout.total_seconds()))
        else:
            error = _worker_lost(exitcode)
        error = attrs.evolve(error, worker=f"{self._sup.heartbeat.host}:{slot.pid}")
        self._sup.settler.fail(lease, error, now - running.started)

    def fence(self, now: float) -> None:
        """Kill the children whose leases may lapse before the next renew can land."""
        for lease in self._sup.book.fenced(now):
            self.forget(lease, "fenced: its lease could not be renewed before the deadline")

    def forget(self, lease: Lease, reason: str) -> None:
        """Kill whoever runs ``lease``'s job, then abandon it to the queue's recovery."""
        for slot in self._sup.slots:
            if slot.job is not None and slot.job.lease.job_id == lease.job_id:
                self._sup.workforce.kill(slot.index)
                slot.job, slot.state, slot.kill_at = None, SlotState.DYING, float("inf")
        buffer = self._sup.buffer
        if lease in buffer:
            buffer.remove(lease)
        self._sup.settler.abandon(lease, reason)

    def enforce_limits(self, now: float) -> None:
        """Hard time limits (SIGTERM, then SIGKILL) and children that will not exit."""
        term_grace = self._sup.config.term_grace.total_seconds()
        workforce = self._sup.workforce
        for slot in self._sup.slots:
            running = slot.job
            if running is None:
                if now >= slot.kill_at:
                    logger.warning("child {} did not exit when asked; killing it", slot.pid)
                    workforce.kill(slot.index)
                    slot.kill_at = float("inf")
            elif running.term_at is None and now >= running.hard_at:
                self._hard_limit(slot, running, now)
            elif running.term_at is not None and not running.killed:
                self._escalate(slot, running, now - term_grace)

    def _escalate(self, slot: Slot, running: Running, termed_before: float) -> None:
        assert running.term_at is not None
        if running.term_at <= termed_before:
            self._sup.workforce.kill(slot.index)
            running.killed = True

    def _hard_limit(self, slot: Slot, running: Running, now: float) -> None:
        lease = running.lease
        with logger.contextualize(job_id=lease.job_id, attempt=lease.attempt, queue=lease.queue):
            logger.warning(
                "job {} passed its hard time limit of {}; terminating child {}",
                lease.job_id,
                lease.job.timeout,
                slot.pid,
            )
        self._sup.workforce.terminate(slot.index)
        running.term_at = now

    def next_wake(self) -> float:
        """The next time limit, kill escalation or overdue exit."""
        term_grace = self._sup.config.term_grace.total_seconds()
        wake = float("inf")
        for slot in self._sup.slots:
            running = slot.job
            if running is None:
                wake = min(wake, slot.kill_at)
            elif running.term_at is None:
                wake = min(wake, running.hard_at)
            elif not running.killed:
                wake = min(wake, running.term_at + term_grace)
        return wake

    def unknown_handler(self, lease: Lease) -> None:
        """Give back a job naming no handler while it is young (rolling deploys) without
        spending its attempt, so it keeps its whole budget for when the handler is deployed;
        bury it once the grace is over."""
        sup = self._sup
        job = lease.job
        grace = sup.config.unknown_handler_grace
        born = job.created_at or sup.heartbeat.started_at
        remaining = (born + grace - sup.clock.now()).total_seconds()
        if remaining > 0:
            delay = timedelta(seconds=min(remaining, UNKNOWN_RETRY_S))
            with logger.contextualize(job_id=job.id, attempt=lease.attempt, queue=job.queue):
                logger.warning(
                    "job {} names no registered handler {!r}; given back for {} (grace {})",
                    job.id,
                    job.name,
                    delay,
                    grace,
                )
            sup.settler.release(lease, delay)
            return
        reason = (
            f"unknown handler {job.name!r}: still not registered {grace} after the job was "
            "created; deploy the handler, then requeue the dead letter"
        )
        error = ErrorInfo.from_exception(UnknownHandler(job.name))
        sup.settler.fail(lease, error, 0.0, Dead(reason))


def _worker_lost(exitcode: int | None) -> ErrorInfo:
    if exitcode is not None and exitcode < 0:
        error = ErrorInfo.from_exception(WorkerLost(signal=-exitcode))
        return attrs.evolve(error, signal=-exitcode)
    return attrs.evolve(
        ErrorInfo.from_exception(WorkerLost(exit_code=exitcode)), exit_code=exitcode
    )
