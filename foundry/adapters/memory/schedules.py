"""The memory queue's ``SchedulePort``: schedules' state beside the jobs, under the same lock,
so a tick's enqueue and the schedule's step are one atomic change.

Costs: ``poll`` O(log n) per due schedule (a heap of next ticks per queue, invalidated
lazily); ``fire`` O(log n) per firing; ``schedule_states`` O(n).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import attrs

from foundry.adapters.memory.records import EntryCodec
from foundry.adapters.memory.store import MemoryStore
from foundry.domain import Job
from foundry.ports import Duplicate, EnqueueOutcome
from foundry.ports.schedule_types import (
    DueSchedule,
    Fired,
    Firing,
    Poll,
    ScheduleEntry,
    ScheduleListing,
    ScheduleState,
)


@attrs.define(slots=True, eq=False)
class _Record:
    definition: str
    next_at: datetime | None
    last_tick: datetime | None = None
    last_job_id: str | None = None
    paused: bool = False
    orphaned: bool = False

    @property
    def waiting(self) -> bool:
        return self.next_at is not None and not self.paused and not self.orphaned


@attrs.define(slots=True)
class _QueueSchedules:
    records: dict[str, _Record] = attrs.Factory(dict)
    heap: list[tuple[datetime, str]] = attrs.Factory(list)

    def wait(self, name: str, record: _Record, next_at: datetime) -> None:
        record.next_at = next_at
        heapq.heappush(self.heap, (next_at, name))

    def current(self, item: tuple[datetime, str]) -> _Record | None:
        record = self.records.get(item[1])
        if record is not None and record.waiting and record.next_at == item[0]:
            return record
        return None

    def due(self, now: datetime, limit: int) -> tuple[list[tuple[str, _Record]], datetime | None]:
        """Up to ``limit`` due schedules (left in the heap) and the next tick of the rest."""
        found: list[tuple[str, _Record]] = []
        kept: list[tuple[datetime, str]] = []
        next_at = None
        while self.heap:
            item = heapq.heappop(self.heap)
            record = self.current(item)
            if record is None or item in kept:
                continue  # stale (the schedule moved, paused or went) or a second copy
            kept.append(item)
            if item[0] > now or len(found) >= limit:
                next_at = item[0] if item[0] > now else None
                break
            found.append((item[1], record))
        for item in kept:
            heapq.heappush(self.heap, item)
        return found, next_at


#: Stores one encoded job at ``now`` as enqueue does (the caller holds the store's lock).
Put = Callable[[Job, bytes, datetime], EnqueueOutcome]


class MemorySchedules:
    """The memory queue's ``SchedulePort`` part: schedules' state under the store's lock."""

    def __init__(self, store: MemoryStore, records: EntryCodec, put: Put) -> None:
        self._store = store
        self._records = records
        self._put = put
        self._cond = store.cond
        self._scheduled: dict[str, _QueueSchedules] = {}

    def _in(self, queue: str) -> _QueueSchedules:
        book = self._scheduled.get(queue)
        if book is None:
            book = self._scheduled[queue] = _QueueSchedules()
        return book

    def sync_schedules(self, entries: Sequence[ScheduleEntry], *, redefine: bool) -> None:
        """Know every declared schedule (see ``SchedulePort.sync_schedules``)."""
        with self._cond:
            for entry in entries:
                book = self._in(entry.queue)
                record = book.records.get(entry.name)
                if record is None:
                    record = book.records[entry.name] = _Record(entry.definition, None)
                elif not (record.orphaned or (redefine and record.definition != entry.definition)):
                    continue
                record.definition, record.orphaned = entry.definition, False
                book.wait(entry.name, record, entry.first_at)

    def poll(self, queues: Sequence[str], limit: int, ahead: timedelta = timedelta(0)) -> Poll:
        """The clock's now and the schedules of ``queues`` due by now + ``ahead``."""
        with self._cond:
            now = self._store.tick()
            due: list[DueSchedule] = []
            wakes = []
            for queue in dict.fromkeys(queues):
                found, next_at = self._in(queue).due(now + ahead, limit - len(due))
                due += [_due(name, queue, record) for name, record in found]
                if next_at is not None:
                    wakes.append(next_at)
            return Poll(now, tuple(due), min(wakes, default=None))

    def fire(self, firings: Sequence[Firing]) -> list[Fired]:
        """Each firing with its enqueues, atomically (every job encoded before any write)."""
        blobs = [[self._records.encode_job(job) for _, job in firing.jobs] for firing in firings]
        with self._cond:
            now = self._store.tick()
            answers = [
                self._fire(firing, blob, now) for firing, blob in zip(firings, blobs, strict=True)
            ]
            self._cond.notify_all()
            return answers

    def _fire(self, firing: Firing, blobs: list[bytes], now: datetime) -> Fired:
        book = self._in(firing.queue)
        record = book.records.get(firing.name)
        if (
            record is None
            or not record.waiting
            or record.next_at != firing.due_from
            or record.definition != firing.definition
        ):
            return Fired(firing.name, applied=False)
        outcomes = []
        for (tick, job), blob in zip(firing.jobs, blobs, strict=True):
            outcome = self._put(job, blob, now)
            outcomes.append(outcome)
            record.last_tick = tick
            if not isinstance(outcome, Duplicate):
                record.last_job_id = job.id
        book.wait(firing.name, record, firing.next_at)
        return Fired(firing.name, applied=True, outcomes=tuple(outcomes))

    def orphan(self, queue: str, names: Sequence[str]) -> None:
        """Stop the named schedules being due; they stay listed as orphaned."""
        with self._cond:
            for name in names:
                record = self._in(queue).records.get(name)
                if record is not None:
                    record.orphaned = True

    def schedule_states(self) -> ScheduleListing:
        """Every schedule known, by name then queue (no queue is ever broken here)."""
        with self._cond:
            states = [
                _state(name, queue, record)
                for queue, book in self._scheduled.items()
                for name, record in book.records.items()
            ]
        return ScheduleListing(tuple(sorted(states, key=lambda state: (state.name, state.queue))))

    def pause_schedule(self, queue: str, name: str) -> bool:
        """Stop the schedule firing."""
        with self._cond:
            record = self._in(queue).records.get(name)
            if record is not None:
                record.paused = True
            return record is not None

    def resume_schedule(self, queue: str, name: str, next_at: datetime) -> bool | None:
        """Fire again from ``next_at``."""
        with self._cond:
            book = self._in(queue)
            record = book.records.get(name)
            if record is None:
                return None
            if not (record.paused or record.orphaned):
                return False
            record.paused = record.orphaned = False
            book.wait(name, record, next_at)
            return True

    def forget_schedule(self, queue: str, name: str) -> bool:
        """Remove the schedule's state."""
        with self._cond:
            return self._in(queue).records.pop(name, None) is not None


def _due(name: str, queue: str, record: _Record) -> DueSchedule:
    assert record.next_at is not None
    return DueSchedule(name, queue, record.definition, record.next_at)


def _state(name: str, queue: str, record: _Record) -> ScheduleState:
    return ScheduleState(
        name=name,
        queue=queue,
        definition=record.definition,
        next_at=record.next_at if record.waiting else None,
        last_tick=record.last_tick,
        last_job_id=record.last_job_id,
        paused=record.paused,
        orphaned=record.orphaned,
    )
