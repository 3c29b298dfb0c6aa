"""The scheduler: fires the registry's periodic schedules through the ``SchedulePort``.

Any number of schedulers may run at once, on any hosts: each reads the schedules due (by
the backend's clock), decides with the pure ``CatchUp.plan`` which ticks fire, and sends one
``Firing`` per schedule; the backend applies a firing only if the schedule still waits for
the tick that was read, enqueueing the ticks' jobs (ids derived from name and tick) in the
same atomic step. A scheduler that loses the race writes nothing.

A tick due within ``ahead`` (default five seconds) is fired early: its job is enqueued delayed
until the tick, so it is claimable at the tick itself however long a burst of ticks takes to
enqueue, and never runs early (Q3). Schedules with ``overlap='skip'`` are fired at their tick
only (their unique key must be checked then, not before).

A queue the backend refuses (``QueueBroken``) stops only its own schedules: the others fire,
and it is logged as ``BrokenQueues`` says, its schedules tried again at every step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from foundry.application.schedules.broken import BrokenQueues
from foundry.domain import (
    FoundryError,
    Job,
    Overlap,
    PeriodicSchedule,
    QueueBroken,
    QueuesBroken,
    RunAt,
    RunNow,
    UniqueSpec,
    UniqueUntil,
)
from foundry.ports.schedule_types import DueSchedule, Fired, Firing, ScheduleEntry
from foundry.ports.schedules import SchedulePort

log = logging.getLogger(__name__)

#: Schedules read and fired per step; a step that finds more runs again at once.
BATCH = 200
#: A scheduler reads the due schedules at least this often (seconds): it notices schedules
#: synced, resumed or fired by others within this time.
MAX_SLEEP_S = 1.0
#: Declared schedules are synced again this often (seconds): one that another release
#: orphaned, or that was forgotten, comes back.
RESYNC_EVERY_S = 60.0
#: After a backend failure, the next step waits this long (seconds).
RETRY_AFTER_S = 1.0
#: How long the job of a schedule with ``overlap='skip'`` blocks the next tick at most.
OVERLAP_TTL = timedelta(days=1)
#: How far ahead of its tick a tick's job is enqueued (delayed until the tick).
AHEAD = timedelta(seconds=5)
#: How long past its tick a schedule this scheduler does not declare, or declares otherwise,
#: may stay unfired before it is orphaned or given this scheduler's definition: while a
#: release that declares it so runs, that release fires it.
TAKEOVER_AFTER = timedelta(seconds=30)


class DispatchHooks(Protocol):
    """The registry's ``on_dispatch`` middleware hooks."""

    def dispatching(self, job: Job) -> Job:
        """``job`` with the metadata the hooks add; raises what a hook raises."""
        ...


class Registry(Protocol):
    """What the scheduler reads of a ``JobRegistry``: its schedules, jobs built by name, and
    the hooks every job dispatched goes through."""

    @property
    def hooks(self) -> DispatchHooks:
        """The middleware hooks (``on_dispatch`` runs for each tick's job)."""
        ...

    def schedules(self) -> list[PeriodicSchedule]:
        """Every declared schedule."""
        ...

    def make_job(
        self, name: str, payload: Mapping[str, Any] | None = None, **overrides: Any
    ) -> Job:
        """A checked job for handler ``name``."""
        ...


class Scheduler:
    """Fires ``registry``'s schedules; drive it with ``step`` (or ``tick`` from a loop's
    timers, or ``run_until``). Its intervals (resync, broken queues' logs) are measured in
    seconds of ``monotonic``; ``tick`` is given the loop's reading of it."""

    def __init__(
        self,
        port: SchedulePort,
        registry: Registry,
        *,
        batch: int = BATCH,
        ahead: timedelta = AHEAD,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._port = port
        self._monotonic = monotonic  # when to sync again and to log a broken queue again
        self._registry = registry
        self._schedules = {schedule.name: schedule for schedule in registry.schedules()}
        self._queues = sorted({schedule.queue for schedule in self._schedules.values()})
        self._batch = batch
        self._ahead = ahead
        self._synced_at: float | None = None
        self._wake_at = 0.0
        self._failing = False
        self._redefined: set[str] = set()
        self._broken = BrokenQueues()
        self._refusals: list[QueueBroken] = []  # this step's, by queue

    @property
    def idle(self) -> bool:
        """Whether there is nothing to schedule (no schedule declared)."""
        return not self._schedules

    # -- a loop's timer -----------------------------------------------------------------------

    def next_wake(self) -> float:
        """When (``monotonic()``) the next step is due; ``inf`` with no schedule."""
        return float("inf") if self.idle else self._wake_at

    def tick(self, now: float) -> None:
        """One step at ``now`` (``monotonic()``) if due (never raises: a backend failure is
        logged and retried)."""
        if self.idle or now < self._wake_at:
            return
        try:
            self._wake_at = now + self._guarded(now)
        except Exception:  # a bug here must not take the worker pool down with it
            log.exception("scheduler: the step failed; retrying in %s s", RETRY_AFTER_S)
            self._wake_at = now + RETRY_AFTER_S

    def run_until(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set (``foundry schedules run-forever``)."""
        while not stop.is_set():
            stop.wait(self.step())

    # -- one step -----------------------------------------------------------------------------

    def step(self) -> float:
        """Sync if due, fire what is due; seconds until the next step should run."""
        return self._guarded(self._monotonic())

    def _guarded(self, now: float) -> float:
        """``_step`` at ``now``; a backend failure is logged once and retried soon."""
        try:
            wait = self._step(now)
        except FoundryError as error:
            if not self._failing:
                log.warning("scheduler: the backend failed (%s); retrying", error)
            self._failing = True
            return RETRY_AFTER_S
        if self._failing:
            log.info("scheduler: the backend answers again")
        self._failing = False
        return wait

    def _step(self, now: float) -> float:
        self._refusals = []
        if self._synced_at is None or now - self._synced_at >= RESYNC_EVERY_S:
            self._refused_by(self.sync, redefine=self._synced_at is None)
            self._synced_at = now
        poll = self._port.poll(self._queues, self._batch, self._ahead)
        self._refusals += poll.broken
        firings, orphans, held = self._plan(poll.due, poll.now)
        for queue, names in orphans.items():
            log.warning("schedules %s of queue %s are not declared: orphaned", names, queue)
            self._port.orphan(queue, names)
        if firings:
            self._report(self._port.fire(firings), poll.now)
        self._broken.refused(self._refusals, now)
        self._broken.answered(set(self._queues) - {error.queue for error in self._refusals})
        if len(poll.due) >= self._batch and len(held) < len(poll.due):
            return 0.0  # more may be due, unless all it read waits for a later moment
        # The fired schedules' next ticks count too: one ticking faster than MAX_SLEEP_S is
        # stepped once per tick, and one held for its tick (overlap='skip') fires at it.
        early = [at for at in (poll.next_at, *(f.next_at for f in firings)) if at is not None]
        wakes = [at - self._ahead for at in early] + held
        if not wakes:
            return MAX_SLEEP_S
        until = (min(wakes) - poll.now).total_seconds()
        return min(max(until, 0.0), MAX_SLEEP_S)

    def sync(self, *, redefine: bool) -> None:
        """Tell the backend every declared schedule (see ``SchedulePort.sync_schedules``)."""
        if self.idle:
            return
        now = self._port.poll((), 0).now
        entries = [
            ScheduleEntry(s.name, s.queue, s.definition, s.first_tick(now))
            for s in self._schedules.values()
        ]
        self._port.sync_schedules(entries, redefine=redefine)

    def _plan(
        self, due: Sequence[DueSchedule], now: datetime
    ) -> tuple[list[Firing], dict[str, list[str]], list[datetime]]:
        """The firings, the orphans by queue, and the ticks of schedules held until then."""
        firings: list[Firing] = []
        orphans: dict[str, list[str]] = {}
        held: list[datetime] = []
        for item in due:
            schedule = self._schedules.get(item.name)
            if schedule is not None and schedule.queue != item.queue:
                schedule = None  # declared for another queue: this one is not
            if schedule is not None and schedule.definition == item.definition:
                if item.due_from <= now or schedule.overlap is not Overlap.SKIP:
                    firings.append(self._firing(schedule, item, now))
                else:
                    held.append(item.due_from)
            elif now - item.due_from < TAKEOVER_AFTER:
                # Another release declares it so: while it runs, it fires it.
                held.append(item.due_from + TAKEOVER_AFTER)
            elif schedule is None:
                orphans.setdefault(item.queue, []).append(item.name)
            else:
                self._redefine(schedule, now)
        return firings, orphans, held

    def _firing(self, schedule: PeriodicSchedule, item: DueSchedule, now: datetime) -> Firing:
        plan = schedule.plan(item.due_from, max(now, item.due_from))
        try:
            jobs = tuple((tick, self.tick_job(schedule, tick, now)) for tick in plan.fire)
        except FoundryError as error:
            log.error(
                "schedule %s: its job cannot be built (%s); tick skipped", schedule.name, error
            )
            jobs = ()
        except Exception as error:  # an on_dispatch hook's: the tick is skipped, as a dispatch
            log.exception(
                "schedule %s: its job cannot be built (%r); tick skipped", schedule.name, error
            )
            jobs = ()
        return Firing(
            schedule.name, schedule.queue, schedule.definition, item.due_from, plan.next_at, jobs
        )

    def _redefine(self, schedule: PeriodicSchedule, now: datetime) -> None:
        """The stored definition is another release's, and no scheduler of it fired its tick
        in time: this scheduler's code takes over."""
        if schedule.name not in self._redefined:
            log.warning(
                "schedule %s is stored with another definition; redefined as %s",
                schedule.name,
                schedule.definition,
            )
            self._redefined.add(schedule.name)
        entry = ScheduleEntry(
            schedule.name, schedule.queue, schedule.definition, schedule.first_tick(now)
        )
        self._refused_by(self._port.sync_schedules, [entry], redefine=True)

    def _refused_by(self, write: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """``write``, its queues' refusals kept for this step (the other queues' stand)."""
        try:
            write(*args, **kwargs)
        except QueuesBroken as error:
            self._refusals += error.broken

    def tick_job(self, schedule: PeriodicSchedule, tick: datetime, now: datetime) -> Job:
        """The job of ``schedule``'s ``tick``: the same id on every scheduler. It keeps the
        handler's unique key, but with ``overlap='skip'`` holds the schedule's instead, and
        has the metadata the ``on_dispatch`` hooks add, as a dispatched job does (a hook's
        exception reaches the caller)."""
        delay = schedule.delay_of(tick)
        overrides: dict[str, Any] = {}
        if schedule.overlap is Overlap.SKIP:
            overrides["unique"] = overlap_key(schedule)
        job = self._registry.make_job(
            schedule.handler,
            schedule.payload,
            id=schedule.job_id(tick),
            queue=schedule.queue,
            priority=schedule.priority,
            schedule=RunAt(tick + delay) if tick + delay > now else RunNow(),
            created_at=now,
            metadata={"schedule": schedule.name, "tick": tick.isoformat()},
            **overrides,
        )
        return self._registry.hooks.dispatching(job)

    def _report(self, answers: Sequence[Fired], now: datetime) -> None:
        for answer in answers:
            if answer.refused is not None:
                self._refusals.append(answer.refused)
            elif answer.applied and answer.outcomes:
                log.debug(
                    "schedule %s fired %s tick(s) at %s", answer.name, len(answer.outcomes), now
                )


def overlap_key(schedule: PeriodicSchedule) -> UniqueSpec:
    """The unique key a job of ``schedule`` holds, with ``overlap='skip'``, until it finishes."""
    return UniqueSpec(schedule.unique_key, OVERLAP_TTL, UniqueUntil.FINISHED)
