"""The dashboard's history and charts: per-minute rates from samples of running totals."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.domain import Job, RunAfter
from foundry.entrypoints.dashboard.charts import chart, path
from foundry.entrypoints.dashboard.history import History, Sampler, Snapshot
from foundry.ports import ClaimRequest, QueueStats

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def snap(at: datetime, **completed: int) -> Snapshot:
    rows = tuple(QueueStats(name, completed=count) for name, count in completed.items())
    return Snapshot(at, rows, tuple(timedelta(seconds=count % 7) for count in completed.values()))


def test_rates_are_per_minute_whatever_the_sampling_pace_and_queues_add_up() -> None:
    history = History()
    history.add(snap(START, a=0, b=100))
    history.add(snap(START + 20 * S, a=10, b=100))
    history.add(snap(START + 40 * S, a=20, b=110))
    history.add(snap(START + 70 * S, a=50, b=110))

    a = history.minutes(["a"], START + 70 * S)
    both = history.minutes(None, START + 70 * S)

    assert [p.completed for p in a[-2:]] == [30.0, 60.0]
    assert [p.completed for p in both[-2:]] == [45.0, 60.0]
    assert a[0].completed is None  # the dashboard was not sampling an hour ago
    assert len(a) == 60


def test_a_total_that_falls_counts_as_nothing_and_old_samples_go() -> None:
    history = History()
    history.add(snap(START, a=500))
    history.add(snap(START + 30 * S, a=3))  # Redis restarted without its data
    history.add(snap(START + 2 * timedelta(hours=1), a=3))

    recent = history.minutes(["a"], START + 2 * timedelta(hours=1))

    assert [p.completed for p in recent if p.completed is not None] == []
    assert [p.wait_s for p in recent if p.wait_s is not None] == [3.0]


def test_a_chart_scales_to_a_round_top_and_breaks_its_line_at_gaps() -> None:
    drawn = chart("t", [("c", "completed", [None, 3.0, 7.0, None, 1.0])], "jobs/min", 40, 10)

    assert drawn.top == 10.0
    assert drawn.lines[0].path == "M10.0,7.0 L20.0,3.0 M40.0,9.0"
    assert chart("t", [("c", "c", [None])], "s").empty
    assert path([0.0, 250.0], 10, 10, 100.0) == "M0.0,10.0 L10.0,0.0"


def test_the_sampler_reads_a_wait_again_at_the_third_sample_once_its_queue_moved() -> None:
    clock = ManualClock(START)
    queue = MemoryQueue(clock)
    sampler = Sampler(queue, clock, 5 * S)
    queue.enqueue(Job("a", id="old", queue="q"))
    clock.advance(10 * S)
    queue.enqueue(Job("a", id="young", queue="q"))
    waits = [sampler.sample().ages[0]]  # read: "old" waited 10 s
    queue.claim(ClaimRequest(["q"], lease=30 * S))  # takes "old"
    for _ in range(3):
        clock.advance(5 * S)
        waits.append(sampler.sample().ages[0])
    queue.enqueue(Job("a", queue="new"))
    fresh = sampler.sample()

    assert waits == [10 * S, 15 * S, 20 * S, 15 * S]  # carried twice, then read: "young"
    assert fresh.row("new") == (queue.stats("new"), timedelta(0))


def test_a_queue_whose_counts_stay_still_has_its_wait_read_every_twelfth_sample() -> None:
    clock = ManualClock(START)
    queue = MemoryQueue(clock)
    sampler = Sampler(queue, clock, 5 * S)
    queue.enqueue(Job("a", id="old", queue="q"))
    clock.advance(10 * S)
    queue.enqueue(Job("a", id="young", queue="q"))
    waits = [sampler.sample().ages[0]]  # read: "old" waited 10 s
    assert queue.delete("q", "old")  # an admin's delete moves no count but ready...
    queue.enqueue(Job("a", queue="q"))  # ...which a new job makes up for
    for _ in range(12):
        clock.advance(5 * S)
        waits.append(sampler.sample().ages[0])

    carried = [10 * S + n * 5 * S for n in range(12)]
    assert waits == [*carried, 60 * S]  # read again at the twelfth: "young" waited 60 s


class _CountingWaits:
    """A memory queue that counts the oldest-wait readings asked of it."""

    def __init__(self, queue: MemoryQueue) -> None:
        self.queue = queue
        self.readings = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.queue, name)

    def oldest_ready_age(self, queues: list[str]) -> list[timedelta | None]:
        self.readings += 1
        return self.queue.oldest_ready_age(queues)


def test_delayed_jobs_coming_due_leave_the_wait_carried_and_exact() -> None:
    clock = ManualClock(START)
    memory = MemoryQueue(clock)
    counting = _CountingWaits(memory)
    sampler = Sampler(counting, clock, 5 * S)  # type: ignore[arg-type]
    memory.enqueue(Job("a", id="old", queue="q"))
    memory.enqueue_many([Job("a", queue="q", schedule=RunAfter(n * 4 * S)) for n in (3, 4, 5)])
    clock.advance(10 * S)
    waits = [sampler.sample().ages[0]]  # read: "old" waited 10 s
    for _ in range(3):  # the delayed jobs come due at 12, 16 and 20 s
        clock.advance(5 * S)
        waits.append(sampler.sample().ages[0])

    assert waits == [10 * S, 15 * S, 20 * S, 25 * S]
    assert waits[-1] == memory.oldest_ready_age(["q"])[0]
    assert counting.readings == 1


class _GatedQueue:
    """A memory queue whose ``stats_many`` waits while ``open`` is clear, counting calls."""

    def __init__(self, queue: MemoryQueue) -> None:
        self._queue = queue
        self.open = threading.Event()
        self.open.set()
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)

    def stats_many(self, queues: Sequence[str]) -> list[QueueStats]:
        self.reads += 1
        self.open.wait(timeout=30)
        return self._queue.stats_many(queues)


class _WatchedClock(ManualClock):
    """A clock that sets ``all_asked`` once ``expected`` threads other than the test's have
    read it."""

    def __init__(self, expected: int) -> None:
        super().__init__(START)
        self._askers: set[int] = set()
        self._expected = expected
        self.all_asked = threading.Event()

    def now(self) -> datetime:
        if threading.current_thread() is not threading.main_thread():
            self._askers.add(threading.get_ident())
            if len(self._askers) >= self._expected:
                self.all_asked.set()
        return super().now()


def test_pages_asking_while_a_sample_is_read_share_it_rather_than_each_reading_again() -> None:
    pages = 4
    clock = _WatchedClock(pages)
    queue = _GatedQueue(MemoryQueue(clock))
    queue.enqueue(Job("a"))
    sampler = Sampler(queue, clock, 5 * S)  # type: ignore[arg-type]
    sampler.sample()
    clock.advance(6 * S)  # the snapshot is stale: the next page to ask reads the backend
    queue.open.clear()
    queue.reads = 0
    threads = [threading.Thread(target=sampler.snapshot) for _ in range(pages)]

    for thread in threads:
        thread.start()
    clock.all_asked.wait(timeout=30)  # every page found no fresh snapshot, then asked
    queue.open.set()
    for thread in threads:
        thread.join(timeout=30)

    assert queue.reads == 1
