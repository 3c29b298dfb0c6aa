"""Throughput and waits over the last hour, sampled by the dashboard while it runs.

The queue keeps running totals (``QueueStats.completed``/``failed``) and current sizes, not a
history; the dashboard reads them every few seconds and keeps an hour of samples in memory, so
its charts start empty when it starts and nothing is written on the job path. Prometheus
(``foundry metrics``) keeps the long history.

One sampler serves every open page: pages read its latest snapshot, so the backend's cost
does not grow with the number of viewers (see ``Sampler.snapshot``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import attrs

from foundry.domain import FoundryError, QueueBroken
from foundry.entrypoints.overview import read_ages, read_stats
from foundry.ports import Clock, QueuePort, QueueStats

MINUTE = timedelta(minutes=1)
T = TypeVar("T")


@attrs.frozen
class Snapshot:
    """Every queue's stats and oldest wait, read at ``at``, and the queues whose data the
    backend refuses to read (a key of the wrong type)."""

    at: datetime
    rows: tuple[QueueStats, ...]
    ages: tuple[timedelta | None, ...]
    broken: tuple[QueueBroken, ...] = ()

    def row(self, queue: str) -> tuple[QueueStats, timedelta | None] | None:
        """One queue's stats and oldest wait, if it was in the snapshot."""
        for row, age in zip(self.rows, self.ages, strict=True):
            if row.queue == queue:
                return row, age
        return None


@attrs.frozen
class MinutePoint:
    """One minute of one queue (or of several together): jobs completed and attempts failed
    per minute, from the samples that ended in it, and the longest wait seen; ``None`` where
    the dashboard was not sampling."""

    start: datetime
    completed: float | None
    failed: float | None
    wait_s: float | None


@attrs.frozen
class _Sample:
    at: datetime
    completed: int
    failed: int


@attrs.define
class _Minute:
    """What the samples ending in one minute added up to."""

    completed: int = 0
    failed: int = 0
    covered_s: float = 0.0
    wait_s: float | None = None


class History:
    """Per-minute sums for each queue over the last ``span``, updated as samples arrive.

    Each sample adds the difference from the queue's previous one (a total that fell, e.g.
    after a Redis restart, counts as 0) and the time between them to its own minute (if the
    previous one is at most a minute older than that minute's start), so a minute's rate is
    right whatever the sampling pace.
    """

    def __init__(self, span: timedelta = timedelta(hours=1)) -> None:
        self._span = span
        self._last: dict[str, _Sample] = {}
        self._minutes: dict[str, dict[datetime, _Minute]] = {}
        self._cache: dict[tuple[tuple[str, ...] | None, datetime], list[MinutePoint]] = {}
        self._derived: dict[Hashable, Any] = {}

    def add(self, snapshot: Snapshot) -> None:
        """Fold a snapshot in; minutes older than the span are dropped."""
        self._cache.clear()
        self._derived.clear()
        start = _floor(snapshot.at)
        for row, age in zip(snapshot.rows, snapshot.ages, strict=True):
            minutes = self._minutes.setdefault(row.queue, {})
            minute = minutes.get(start)
            if minute is None:
                minute = minutes[start] = _Minute()
                for old in [m for m in minutes if m <= start - self._span]:
                    del minutes[old]
            wait = age.total_seconds() if age is not None else 0.0
            minute.wait_s = max(minute.wait_s or 0.0, wait)
            sample = _Sample(snapshot.at, row.completed, row.failed)
            previous = self._last.get(row.queue)
            # A pair spanning more than the minute before (sampling failed meanwhile) would
            # spread unknown traffic over one minute: it only restarts the counting.
            if previous is not None and start - MINUTE <= previous.at < sample.at:
                minute.completed += max(sample.completed - previous.completed, 0)
                minute.failed += max(sample.failed - previous.failed, 0)
                minute.covered_s += (sample.at - previous.at).total_seconds()
            self._last[row.queue] = sample

    def minutes(self, queues: Sequence[str] | None, now: datetime) -> list[MinutePoint]:
        """The last ``span`` as one point per minute, oldest first, for ``queues`` together
        (``None``: every queue): their rates add up, the longest wait wins. Kept until the
        next ``add``, so every page between two samples shares the work."""
        key = (None if queues is None else tuple(queues), _floor(now))
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._fold(queues, key[1])
        return cached

    def derived(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, kept under ``key`` until the next ``add`` (what pages draw from it)."""
        if key not in self._derived:
            self._derived[key] = make()
        return cast(T, self._derived[key])

    def _fold(self, queues: Sequence[str] | None, now: datetime) -> list[MinutePoint]:
        count = int(self._span / MINUTE)
        first = now - (count - 1) * MINUTE
        completed: list[float | None] = [None] * count
        failed: list[float | None] = [None] * count
        waits: list[float | None] = [None] * count
        for name in self._minutes if queues is None else queues:
            for start, minute in self._minutes.get(name, {}).items():
                index = (start - first) // MINUTE
                if not 0 <= index < count:
                    continue
                if minute.covered_s:
                    scale = 60 / minute.covered_s
                    completed[index] = (completed[index] or 0.0) + minute.completed * scale
                    failed[index] = (failed[index] or 0.0) + minute.failed * scale
                if minute.wait_s is not None:
                    waits[index] = max(waits[index] or 0.0, minute.wait_s)
        return [
            MinutePoint(first + index * MINUTE, completed[index], failed[index], waits[index])
            for index in range(count)
        ]


def _floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


#: The oldest waits cost Redis about three times what the counts do (several reads per
#: queue), so a queue's wait is read again only where its head may have moved: at most every
#: ``WAITS_EVERY``-th sample for a queue whose counts show a claim, a finish or a due job since
#: its last reading, and every ``ALL_WAITS_EVERY``-th sample for every queue (see ``Sampler``).
WAITS_EVERY = 3
ALL_WAITS_EVERY = 12


def _moves(row: QueueStats) -> tuple[int, ...]:
    """The counts that change when a queue's head may change: a claim (active), a finish
    (completed, failed, dead), a refused write. Not a delayed job coming due: it waits from
    its run time, after the reading, so it is never older than the wait read then (and a
    queue without a wait has it read as soon as it has ready jobs)."""
    return (row.active, row.completed, row.failed, row.dead, row.stale_rejected)


@attrs.frozen
class _Wait:
    """A queue's oldest wait as read at ``at``, with the counts it was read beside."""

    at: datetime
    age: timedelta
    moves: tuple[int, ...]
    ready: int

    def moved(self, row: QueueStats) -> bool:
        """Whether the head may have changed since: jobs were taken, finished or went (new
        ready jobs, and delayed ones coming due, queue behind it and leave the oldest wait as
        it was)."""
        return _moves(row) != self.moves or row.ready < self.ready


class Sampler:
    """Reads every queue's stats and oldest wait through the port, and keeps the history.

    ``snapshot()`` returns the latest reading while it is younger than ``every`` (one and a
    half times that while the background thread runs, so its timing jitter never makes a
    page read again), else reads now; ``run`` reads every ``every`` so the history has no
    holes while no page is open.

    Counts are read at every sample. A queue's oldest wait is read when it gains ready jobs,
    at the next ``WAITS_EVERY``-th sample once its counts moved (see ``_Wait.moved``), and at
    every ``ALL_WAITS_EVERY``-th sample whatever happened (an admin's delete moves no count).
    In between, a queue that still has ready jobs is shown as having waited that much longer:
    exact while its oldest job is not taken, which the counts would show.
    """

    def __init__(self, queue: QueuePort, clock: Clock, every: timedelta) -> None:
        self.queue = queue
        self._clock = clock
        self.every = every
        self.history = History()
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._fresh_for = every
        self._samples = 0
        self._waits: dict[str, _Wait] = {}

    def sample(self) -> Snapshot:
        """Read the backend now: ``queues``, ``stats_many`` (each queue alone when one's data
        is broken), and ``oldest_ready_age`` of the queues with ready jobs whose wait is due a
        reading (see the class)."""
        with self._lock:
            return self._sample()

    def _sample(self) -> Snapshot:
        """``sample`` under the lock the caller holds."""
        rows, broken = read_stats(self.queue, self.queue.queues())
        now = self._clock.now()
        unreadable = self._read_waits(rows, now)
        if unreadable:
            gone = {error.queue for error in unreadable}
            rows = [row for row in rows if row.queue not in gone]
            broken = sorted([*broken, *unreadable], key=lambda error: error.queue)
        ages = self._ages(rows, now)
        snapshot = Snapshot(now, tuple(rows), tuple(ages), tuple(broken))
        self.history.add(snapshot)
        self._latest = snapshot
        return snapshot

    def _read_waits(self, rows: list[QueueStats], now: datetime) -> list[QueueBroken]:
        """Read the oldest wait of the queues due a reading (see the class); the queues
        whose data is broken are returned, the others read."""
        asked = [row for row in rows if row.ready and self._due(row)]
        self._samples += 1
        read, broken = read_ages(self.queue, [row.queue for row in asked])
        for row in asked:
            if row.queue in read:
                age = read[row.queue] or timedelta(0)
                self._waits[row.queue] = _Wait(now, age, _moves(row), row.ready)
        return broken

    def _ages(self, rows: list[QueueStats], now: datetime) -> list[timedelta | None]:
        waiting = [row for row in rows if row.ready]
        self._waits = {row.queue: self._waits[row.queue] for row in waiting}
        return [self._carried(row.queue, now) for row in rows]

    def _carried(self, queue: str, now: datetime) -> timedelta | None:
        wait = self._waits.get(queue)
        return None if wait is None else wait.age + (now - wait.at)

    def _due(self, row: QueueStats) -> bool:
        """Whether this sample reads the queue's oldest wait (see the class)."""
        wait = self._waits.get(row.queue)
        if wait is None or self._samples % ALL_WAITS_EVERY == 0:
            return True
        return self._samples % WAITS_EVERY == 0 and wait.moved(row)

    def snapshot(self) -> Snapshot:
        """The latest reading if fresh enough, else a new one: pages asking while a reading
        is under way wait for it and share it, rather than each reading again."""
        latest = self._fresh()
        if latest is not None:
            return latest
        with self._lock:
            return self._fresh() or self._sample()

    def _fresh(self) -> Snapshot | None:
        latest = self._latest
        if latest is not None and self._clock.now() - latest.at < self._fresh_for:
            return latest
        return None

    def invalidate(self) -> None:
        """Forget the latest reading (after an action changed the queues)."""
        self._latest = None

    def run(self, stop: threading.Event) -> None:
        """Sample every ``every`` until ``stop`` is set; backend errors wait for the next."""
        self._fresh_for = self.every * 3 / 2
        while not stop.is_set():
            with contextlib.suppress(FoundryError):  # the pages show it; the next tick retries
                self.sample()
            stop.wait(self.every.total_seconds())
