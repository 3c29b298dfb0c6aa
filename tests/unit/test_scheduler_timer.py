"""The scheduler as a timer of the pool's loop: when it wants to run, and that a failing step
never escapes into the pool."""

from __future__ import annotations

from datetime import timedelta

import foundry
from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.schedules.scheduler import MAX_SLEEP_S, RETRY_AFTER_S, Scheduler


def app() -> foundry.JobRegistry:
    registry = foundry.JobRegistry()
    registry.schedule("beat", registry.job(name="beat")(lambda: None), every=60)
    return registry


def test_a_scheduler_without_schedules_never_wakes() -> None:
    scheduler = Scheduler(MemoryQueue(ManualClock()), foundry.JobRegistry())

    scheduler.tick(0.0)

    assert scheduler.idle
    assert scheduler.next_wake() == float("inf")


def test_a_timer_steps_when_due_and_fires_the_tick_within_ahead_once() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    scheduler = Scheduler(queue, app(), ahead=timedelta(seconds=5))
    clock.advance(timedelta(seconds=55, milliseconds=500))

    scheduler.tick(10.0)
    scheduler.tick(10.2)  # not due again yet: nothing happens

    assert scheduler.next_wake() == 10.0 + MAX_SLEEP_S
    assert queue.stats("default").delayed == 1


def test_a_failing_step_is_logged_and_retried_without_raising() -> None:
    scheduler = Scheduler(MemoryQueue(ManualClock()), app())
    scheduler._port = None  # type: ignore[assignment]  # stands for any bug inside a step

    scheduler.tick(100.0)

    assert scheduler.next_wake() == 100.0 + RETRY_AFTER_S
