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
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import attrs

from foundry.domain import FoundryError
from foundry.ports import Clock, QueuePort, QueueStats

MINUTE = timedelta(minutes=1)


@attrs.frozen
class Snapshot:
    """Every queue's stats and oldest wait, read at ``at``."""

    at: datetime
    rows: tuple[QueueStats, ...]
    ages: tuple[timedelta | None, ...]

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
    wait_s: float


@attrs.define
class _Minute:
    completed: int = 0
    failed: int = 0
    covered_s: float = 0.0
    wait_s: float | None = None

    def rate(self, count: int) -> float | None:
        return count * 60 / self.covered_s if self.covered_s else None


class History:
    """Samples per queue over the last ``span``, folded into per-minute points."""

    def __init__(self, span: timedelta = timedelta(hours=1)) -> None:
        self._span = span
        self._samples: dict[str, deque[_Sample]] = {}

    def add(self, snapshot: Snapshot) -> None:
        """Record a snapshot; samples older than the span are dropped."""
        horizon = snapshot.at - self._span - MINUTE
        for row, age in zip(snapshot.rows, snapshot.ages, strict=True):
            samples = self._samples.setdefault(row.queue, deque())
            wait = age.total_seconds() if age is not None else 0.0
            samples.append(_Sample(snapshot.at, row.completed, row.failed, wait))
            while samples and samples[0].at < horizon:
                samples.popleft()

    def minutes(self, queues: Sequence[str] | None, now: datetime) -> list[MinutePoint]:
        """The last ``span`` as one point per minute, oldest first, for ``queues`` together
        (``None``: every queue): their rates add up, the longest wait wins."""
        first = _floor(now) - self._span + MINUTE
        points: list[MinutePoint] = []
        folded = [
            _fold(self._samples.get(name, ()), first, int(self._span / MINUTE))
            for name in (self._samples if queues is None else queues)
        ]
        for index in range(int(self._span / MINUTE)):
            minutes = [one[index] for one in folded]
            points.append(
                MinutePoint(
                    first + index * MINUTE,
                    _total(minute.rate(minute.completed) for minute in minutes),
                    _total(minute.rate(minute.failed) for minute in minutes),
                    max((m.wait_s for m in minutes if m.wait_s is not None), default=None),
                )
            )
        return points


def _floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _total(rates: Iterable[float | None]) -> float | None:
    known = [rate for rate in rates if rate is not None]
    return sum(known) if known else None


def _fold(samples: Iterable[_Sample], first: datetime, count: int) -> list[_Minute]:
    """One queue's samples as minutes: each pair of consecutive samples counts its
    difference, and the time between them, in the later one's minute (a total that fell,
    e.g. after a Redis restart, counts as 0)."""
    minutes = [_Minute() for _ in range(count)]
    previous: _Sample | None = None
    for sample in samples:
        index = (_floor(sample.at) - first) // MINUTE
        if 0 <= index < count:
            minute = minutes[index]
            minute.wait_s = max(minute.wait_s or 0.0, sample.wait_s)
            if previous is not None:
                minute.completed += max(sample.completed - previous.completed, 0)
                minute.failed += max(sample.failed - previous.failed, 0)
                minute.covered_s += (sample.at - previous.at).total_seconds()
        previous = sample
    return minutes


class Sampler:
    """Reads every queue's stats and oldest wait through the port, and keeps the history.

    ``snapshot()`` returns the latest reading while it is younger than ``every``, else reads
    now; ``run`` reads every ``every`` in the background so the history has no holes while no
    page is open.
    """

    def __init__(self, queue: QueuePort, clock: Clock, every: timedelta) -> None:
        self._queue = queue
        self._clock = clock
        self.every = every
        self.history = History()
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None

    def sample(self) -> Snapshot:
        """Read the backend now (one ``stats`` per queue, one ``oldest_ready_age``)."""
        with self._lock:
            names = self._queue.queues()
            rows = tuple(self._queue.stats(name) for name in names)
            ages = tuple(self._queue.oldest_ready_age(names))
            snapshot = Snapshot(self._clock.now(), rows, ages)
            self.history.add(snapshot)
            self._latest = snapshot
            return snapshot

    def snapshot(self) -> Snapshot:
        """The latest reading if younger than ``every``, else a fresh one."""
        latest = self._latest
        if latest is not None and self._clock.now() - latest.at < self.every:
            return latest
        return self.sample()

    def invalidate(self) -> None:
        """Forget the latest reading (after an action changed the queues)."""
        self._latest = None

    def run(self, stop: threading.Event) -> None:
        """Sample every ``every`` until ``stop`` is set; backend errors wait for the next."""
        while not stop.is_set():
            with contextlib.suppress(FoundryError):  # the pages show it; the next tick retries
                self.sample()
            stop.wait(self.every.total_seconds())
