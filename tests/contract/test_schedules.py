"""Contract: periodic schedules on every backend, through the Scheduler and the SchedulePort.

Exactly one job per tick with several schedulers, catch-up after downtime, pause/resume,
orphans, overlap, jitter, redefinition, and firings that lost the race writing nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

import foundry
from foundry.adapters.clock import ManualClock
from foundry.application.schedules.scheduler import MAX_SLEEP_S, Scheduler
from foundry.domain import Batch, Job, JobState
from foundry.ports import ClaimRequest, Duplicate, Firing
from tests.backends import BatchQueue, Queue

MINUTE = timedelta(minutes=1)
START = datetime(2030, 1, 1, tzinfo=UTC)


def app(**options: object) -> foundry.JobRegistry:
    registry = foundry.JobRegistry()

    @registry.job(name="beat", queue="periodic")
    def beat(n: int = 0) -> None:
        return None

    registry.schedule("every-minute", "beat", every=MINUTE, **options)  # type: ignore[arg-type]
    return registry


def jobs_of(queue: Queue, schedule: foundry.PeriodicSchedule, ticks: list[datetime]) -> list[bool]:
    return [queue.get(schedule.job_id(tick), "periodic") is not None for tick in ticks]


def minutes(*offsets: int) -> list[datetime]:
    return [START + offset * MINUTE for offset in offsets]


def test_a_new_schedule_waits_for_its_first_tick_then_fires_it_once(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    scheduler = Scheduler(queue, registry)
    (schedule,) = registry.schedules()
    clock.advance(timedelta(seconds=30))

    wait = scheduler.step()
    clock.advance(timedelta(seconds=30))
    scheduler.step()
    scheduler.step()

    assert wait == MAX_SLEEP_S
    assert queue.stats("periodic").ready == 1
    record = queue.get(schedule.job_id(START + MINUTE), "periodic")
    assert record is not None
    assert record.job.metadata == {"schedule": "every-minute", "tick": "2030-01-01T00:01:00+00:00"}
    assert record.job.created_at == START + MINUTE


def test_a_running_batch_named_as_a_tick_job_does_not_stop_the_schedule(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    scheduler = Scheduler(queue, registry)
    (schedule,) = registry.schedules()
    scheduler.step()
    taken = schedule.job_id(START + MINUTE)
    batches = cast(BatchQueue, queue)
    batches.enqueue_batches([Batch([Job("beat", queue="periodic", id="m")], id=taken)])

    clock.advance(MINUTE)
    scheduler.step()

    [state] = queue.schedule_states().states
    assert (state.last_tick, state.next_at) == (START + MINUTE, START + 2 * MINUTE)
    assert jobs_of(queue, schedule, minutes(1)) == [True]


def steps_until_a_wait(scheduler: Scheduler) -> float:
    """Step while the scheduler wants to step again at once; the wait it then asks for."""
    for _ in range(100):
        wait = scheduler.step()
        if wait > 0:
            return wait
    raise AssertionError("the scheduler never waited")


def test_a_schedule_ticking_faster_than_a_step_a_second_fires_every_tick(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    quarter = timedelta(milliseconds=250)
    registry.schedule("fast", "beat", every=quarter)
    fast = next(s for s in registry.schedules() if s.name == "fast")
    scheduler = Scheduler(queue, registry)

    first_wait = steps_until_a_wait(scheduler)  # every tick within ahead (5 s) fired early
    clock.advance(timedelta(seconds=1))
    steps_until_a_wait(scheduler)

    ticks = [START + k * quarter for k in range(1, 25)]
    assert jobs_of(queue, fast, ticks) == [True] * 24
    assert first_wait == pytest.approx(0.25)  # the next tick's, not MAX_SLEEP_S


def test_a_schedule_held_for_its_tick_is_stepped_at_its_tick(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app(overlap="skip")
    (schedule,) = registry.schedules()
    scheduler = Scheduler(queue, registry)
    clock.advance(timedelta(seconds=59, milliseconds=700))

    wait = scheduler.step()  # the tick is within ahead, but overlap='skip' fires at it
    clock.advance(timedelta(milliseconds=300))
    scheduler.step()

    assert wait == pytest.approx(0.3)
    assert jobs_of(queue, schedule, minutes(1)) == [True]


def test_three_schedulers_enqueue_each_tick_exactly_once(queue: Queue, clock: ManualClock) -> None:
    registry = app()
    schedulers = [Scheduler(queue, registry) for _ in range(3)]
    (schedule,) = registry.schedules()

    for _ in range(5):
        for scheduler in schedulers:
            scheduler.step()
        clock.advance(MINUTE)
    for scheduler in schedulers:
        scheduler.step()

    assert queue.stats("periodic").ready == 5
    assert jobs_of(queue, schedule, minutes(1, 2, 3, 4, 5)) == [True] * 5


def test_a_firing_read_before_another_scheduler_stepped_writes_nothing(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    (schedule,) = registry.schedules()
    Scheduler(queue, registry).step()
    clock.advance(MINUTE)
    poll = queue.poll(["periodic"], 10)
    (due,) = poll.due
    late = Scheduler(queue, registry)
    job = late.tick_job(schedule, due.due_from, poll.now)
    firing = Firing(
        due.name,
        due.queue,
        due.definition,
        due.due_from,
        due.due_from + MINUTE,
        ((due.due_from, job),),
    )

    first, again = queue.fire([firing]), queue.fire([firing])

    assert first[0].applied
    assert not again[0].applied
    assert again[0].outcomes == ()
    assert queue.stats("periodic").ready == 1


def test_after_downtime_latest_fires_only_the_most_recent_missed_tick(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    (schedule,) = registry.schedules()
    Scheduler(queue, registry).step()

    clock.advance(10 * MINUTE + timedelta(seconds=5))
    Scheduler(queue, registry).step()

    assert queue.stats("periodic").ready == 1
    assert jobs_of(queue, schedule, minutes(1, 9, 10)) == [False, False, True]


def test_after_downtime_all_fires_the_missed_ticks_up_to_the_cap(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app(catch_up=foundry.CatchUp(mode="all", cap=3))
    (schedule,) = registry.schedules()
    Scheduler(queue, registry).step()

    clock.advance(10 * MINUTE)
    Scheduler(queue, registry).step()

    assert jobs_of(queue, schedule, minutes(7, 8, 9, 10)) == [False, True, True, True]
    assert queue.stats("periodic").ready == 3


def test_after_downtime_none_fires_nothing_late_then_keeps_the_pace(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app(catch_up=foundry.CatchUp(mode="none", grace=timedelta(seconds=10)))
    (schedule,) = registry.schedules()
    scheduler = Scheduler(queue, registry)
    scheduler.step()

    clock.advance(10 * MINUTE + timedelta(seconds=30))
    scheduler.step()
    clock.advance(timedelta(seconds=30))
    scheduler.step()

    assert jobs_of(queue, schedule, minutes(10, 11)) == [False, True]
    assert queue.stats("periodic").ready == 1


def test_a_paused_schedule_does_not_fire_and_resumes_without_catching_up(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    (schedule,) = registry.schedules()
    scheduler = Scheduler(queue, registry)
    scheduler.step()
    assert queue.pause_schedule("periodic", "every-minute")

    clock.advance(5 * MINUTE)
    scheduler.step()
    paused = queue.schedule_states().states[0]
    assert queue.resume_schedule("periodic", "every-minute", schedule.first_tick(clock.now()))
    scheduler.step()
    clock.advance(MINUTE)
    scheduler.step()

    assert paused.paused
    assert paused.next_at is None
    assert jobs_of(queue, schedule, minutes(5, 6)) == [False, True]
    assert queue.stats("periodic").ready == 1
    assert not queue.pause_schedule("periodic", "nothing-by-that-name")


def test_a_schedule_removed_from_the_code_is_listed_as_orphaned_and_never_fires(
    queue: Queue, clock: ManualClock
) -> None:
    Scheduler(queue, app()).step()
    others = foundry.JobRegistry()
    others.schedule("other", others.job(name="beat", queue="periodic")(lambda: None), cron="@daily")
    clock.advance(3 * MINUTE)

    Scheduler(queue, others).step()
    clock.advance(3 * MINUTE)
    Scheduler(queue, others).step()

    states = {state.name: state for state in queue.schedule_states().states}
    assert states["every-minute"].orphaned
    assert states["every-minute"].next_at is None
    assert not states["other"].orphaned
    assert queue.stats("periodic").ready == 0


def test_an_orphan_declared_again_comes_back_from_its_next_tick(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    (schedule,) = registry.schedules()
    queue.sync_schedules([], redefine=True)
    Scheduler(queue, registry).step()
    queue.orphan("periodic", ["every-minute"])

    clock.advance(2 * MINUTE + timedelta(seconds=1))
    Scheduler(queue, registry).step()
    clock.advance(MINUTE)
    Scheduler(queue, registry).step()

    assert not queue.schedule_states().states[0].orphaned
    assert jobs_of(queue, schedule, minutes(2, 3)) == [False, True]


def test_overlap_skip_skips_ticks_while_the_previous_job_is_pending(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app(overlap="skip")
    (schedule,) = registry.schedules()
    scheduler = Scheduler(queue, registry)
    scheduler.step()
    clock.advance(MINUTE)
    scheduler.step()
    first = schedule.job_id(START + MINUTE)

    clock.advance(MINUTE)
    poll = queue.poll(["periodic"], 10)
    (due,) = poll.due
    job = scheduler.tick_job(schedule, due.due_from, poll.now)
    (answer,) = queue.fire(
        [
            Firing(
                due.name,
                due.queue,
                due.definition,
                due.due_from,
                due.due_from + MINUTE,
                ((due.due_from, job),),
            )
        ]
    )
    (lease,) = queue.claim(ClaimRequest(["periodic"], lease=MINUTE))
    queue.complete(lease)
    clock.advance(MINUTE)
    scheduler.step()

    assert answer.outcomes == (Duplicate(job.id, first),)
    assert jobs_of(queue, schedule, minutes(2, 3)) == [False, True]
    state = queue.schedule_states().states[0]
    assert state.last_tick == START + 3 * MINUTE
    assert state.last_job_id == schedule.job_id(START + 3 * MINUTE)


def test_jitter_delays_a_ticks_job_by_the_same_amount_on_every_scheduler(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app(jitter=timedelta(seconds=20))
    (schedule,) = registry.schedules()
    Scheduler(queue, registry).step()
    clock.advance(MINUTE)

    Scheduler(queue, registry).step()

    record = queue.get(schedule.job_id(START + MINUTE), "periodic")
    assert record is not None
    delay = schedule.delay_of(START + MINUTE)
    assert timedelta(0) <= delay <= timedelta(seconds=20)
    assert record.run_at == START + MINUTE + delay
    assert record.state is (JobState.DELAYED if delay else JobState.READY)


def test_a_schedule_redefined_in_code_waits_for_its_new_first_tick(
    queue: Queue, clock: ManualClock
) -> None:
    Scheduler(queue, app()).step()
    hourly = foundry.JobRegistry()
    hourly.schedule(
        "every-minute", hourly.job(name="beat", queue="periodic")(lambda: None), cron="@hourly"
    )

    Scheduler(queue, hourly).step()
    clock.advance(2 * MINUTE)
    Scheduler(queue, hourly).step()

    (state,) = queue.schedule_states().states
    assert state.definition == "@hourly (UTC)"
    assert state.next_at == START + timedelta(hours=1)
    assert queue.stats("periodic").ready == 0


def test_poll_reads_only_what_is_due_and_the_next_tick_of_the_rest(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    registry.schedule("hourly", "beat", cron="@hourly")
    Scheduler(queue, registry).step()
    clock.advance(MINUTE)

    poll = queue.poll(["periodic"], 10)

    assert poll.now == START + MINUTE
    assert [item.name for item in poll.due] == ["every-minute"]
    assert poll.next_at == START + timedelta(hours=1)


@pytest.mark.parametrize("limit", [1, 2])
def test_a_scheduler_finding_a_full_batch_steps_again_at_once(
    queue: Queue, clock: ManualClock, limit: int
) -> None:
    registry = app()
    registry.schedule("second", "beat", every=MINUTE, payload={"n": 2})
    registry.schedule("third", "beat", every=MINUTE, payload={"n": 3})
    scheduler = Scheduler(queue, registry, batch=limit)
    scheduler.step()
    clock.advance(MINUTE)

    waits = [scheduler.step() for _ in range(4)]

    assert waits[0] == 0.0
    assert queue.stats("periodic").ready == 3


def test_a_listing_with_every_queue_read_names_no_broken_queue(queue: Queue) -> None:
    Scheduler(queue, app()).step()

    listing = queue.schedule_states()

    assert [(state.name, state.queue) for state in listing.states] == [("every-minute", "periodic")]
    assert listing.broken == ()


def test_forget_removes_a_schedules_state(queue: Queue) -> None:
    Scheduler(queue, app()).step()

    assert queue.forget_schedule("periodic", "every-minute")
    assert not queue.forget_schedule("periodic", "every-minute")
    assert queue.schedule_states().states == ()


def test_a_tick_within_ahead_is_enqueued_early_but_claimable_only_from_its_tick(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    (schedule,) = registry.schedules()
    scheduler = Scheduler(queue, registry, ahead=timedelta(seconds=1))
    scheduler.step()
    clock.advance(timedelta(seconds=59, milliseconds=500))

    wait = scheduler.step()
    early = queue.claim(ClaimRequest(["periodic"], lease=MINUTE))
    clock.advance(timedelta(milliseconds=500))
    on_time = queue.claim(ClaimRequest(["periodic"], lease=MINUTE))

    assert early == []
    assert [lease.job_id for lease in on_time] == [schedule.job_id(START + MINUTE)]
    assert wait == MAX_SLEEP_S
    assert queue.schedule_states().states[0].next_at == START + 2 * MINUTE


def test_a_schedule_skipping_overlaps_is_not_fired_ahead_of_its_tick(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app(overlap="skip")
    scheduler = Scheduler(queue, registry, ahead=timedelta(seconds=1))
    scheduler.step()
    clock.advance(timedelta(seconds=59, milliseconds=500))

    scheduler.step()
    before = queue.stats("periodic").pending
    clock.advance(timedelta(milliseconds=500))
    scheduler.step()

    assert before == 0
    assert queue.stats("periodic").ready == 1


def test_resuming_a_schedule_that_is_not_paused_keeps_the_tick_it_has_yet_to_fire(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    (schedule,) = registry.schedules()
    scheduler = Scheduler(queue, registry)
    scheduler.step()
    due = queue.schedule_states().states[0].next_at
    clock.advance(MINUTE + timedelta(seconds=30))  # its tick is due, no scheduler ran yet

    resumed = queue.resume_schedule("periodic", "every-minute", queue.poll((), 0).now)
    unknown = queue.resume_schedule("periodic", "nope", queue.poll((), 0).now)
    kept = queue.schedule_states().states[0]
    scheduler.step()

    assert (resumed, unknown) == (False, None)  # stored but not paused; not stored
    assert (kept.next_at, kept.paused) == (due, False)
    assert jobs_of(queue, schedule, minutes(1)) == [True]


def test_a_schedule_resumed_from_the_backends_now_skips_the_missed_ticks_and_keeps_its_pace(
    queue: Queue, clock: ManualClock
) -> None:
    # How the dashboard resumes: it has no recurrence, only the backend's now.
    registry = app()
    (schedule,) = registry.schedules()
    scheduler = Scheduler(queue, registry)
    scheduler.step()
    assert queue.pause_schedule("periodic", "every-minute")

    clock.advance(5 * MINUTE + timedelta(seconds=30))
    assert queue.resume_schedule("periodic", "every-minute", queue.poll((), 0).now) is True
    scheduler.step()
    waiting = queue.schedule_states().states[0]
    clock.advance(timedelta(seconds=30))
    scheduler.step()

    assert waiting.next_at == START + 6 * MINUTE
    assert jobs_of(queue, schedule, minutes(5, 6)) == [False, True]
    assert queue.stats("periodic").ready == 1


def test_a_handlers_unique_key_holds_for_the_jobs_of_its_schedule(
    queue: Queue, clock: ManualClock
) -> None:
    registry = foundry.JobRegistry()

    @registry.job(name="sync", queue="periodic", unique=foundry.UniqueSpec("sync"))
    def sync() -> None:
        return None

    registry.schedule("sync-often", "sync", every=MINUTE)
    (schedule,) = registry.schedules()
    scheduler = Scheduler(queue, registry)
    scheduler.step()
    pending = registry.make_job("sync")
    queue.enqueue(pending)

    clock.advance(MINUTE)
    scheduler.step()

    assert jobs_of(queue, schedule, minutes(1)) == [False]
    assert queue.stats("periodic").ready == 1
    assert queue.schedule_states().states[0].last_tick == START + MINUTE


def test_schedules_skipping_overlaps_with_long_names_sharing_a_start_do_not_block_each_other(
    queue: Queue, clock: ManualClock
) -> None:
    registry = app()
    stem = "tenant-sync-" + "x" * 186
    for name in (f"{stem}-a", f"{stem}-b"):
        registry.schedule(name, "beat", every=MINUTE, overlap="skip")
    scheduler = Scheduler(queue, registry)
    scheduler.step()

    clock.advance(MINUTE)
    scheduler.step()

    long_ones = [s for s in registry.schedules() if s.name.startswith(stem)]
    assert [jobs_of(queue, s, minutes(1)) for s in long_ones] == [[True], [True]]
    keys = {s.unique_key for s in long_ones}
    assert len(keys) == 2
    assert max(len(key) for key in keys) == 200


def release(definition: str) -> foundry.JobRegistry:
    """The app of one release: schedule 'report' with ``definition`` as its cron."""
    registry = foundry.JobRegistry()
    registry.job(name="beat", queue="periodic")(lambda: None)
    registry.schedule("report", "beat", cron=definition)
    return registry


def step_every_second(schedulers: list[Scheduler], clock: ManualClock, seconds: int) -> None:
    for _ in range(seconds):
        for scheduler in schedulers:
            scheduler.step()
        clock.advance(timedelta(seconds=1))


def test_while_two_releases_run_the_one_started_last_fires_every_tick_of_its_definition(
    queue: Queue, clock: ManualClock
) -> None:
    old, new = release("0 * * * * *"), release("30 * * * * *")
    old_scheduler = Scheduler(queue, old)
    old_scheduler.step()
    new_scheduler = Scheduler(queue, new)  # the rolling deploy starts it
    new_scheduler.step()

    step_every_second([old_scheduler, new_scheduler], clock, 4 * 60)

    (schedule,) = new.schedules()
    ticks = [START + timedelta(seconds=30) + k * MINUTE for k in range(4)]
    assert jobs_of(queue, schedule, ticks) == [True] * 4
    assert queue.stats("periodic").pending == 4
    assert queue.schedule_states().states[0].definition == "30 * * * * * (UTC)"


def test_a_definition_no_running_scheduler_fires_is_taken_over_once_overdue(
    queue: Queue, clock: ManualClock
) -> None:
    old, new = release("0 * * * * *"), release("30 * * * * *")
    new_scheduler = Scheduler(queue, new)
    new_scheduler.step()
    Scheduler(queue, old).step()  # an old release started once more, then gone

    step_every_second([new_scheduler], clock, 3 * 60)

    (schedule,) = new.schedules()
    (state,) = queue.schedule_states().states
    assert state.definition == "30 * * * * * (UTC)"
    assert jobs_of(queue, schedule, [START + timedelta(seconds=150)]) == [True]


def test_a_full_batch_of_schedules_another_release_fires_does_not_make_a_scheduler_spin(
    queue: Queue, clock: ManualClock
) -> None:
    old, new = release("0 * * * * *"), release("30 * * * * *")
    old.schedule("second", "beat", cron="0 * * * * *")
    new.schedule("second", "beat", cron="30 * * * * *")
    old_scheduler = Scheduler(queue, old, batch=1)
    old_scheduler.step()
    Scheduler(queue, new).step()
    clock.advance(timedelta(seconds=29))

    wait = old_scheduler.step()  # both are due within ahead, with the new definition

    assert wait == MAX_SLEEP_S
    definitions = {state.definition for state in queue.schedule_states().states}
    assert definitions == {"30 * * * * * (UTC)"}


def test_a_schedule_a_new_release_adds_fires_every_tick_while_the_old_release_runs(
    queue: Queue, clock: ManualClock
) -> None:
    old, new = release("0 * * * * *"), release("0 * * * * *")
    new.schedule("added", "beat", cron="30 * * * * *")
    old_scheduler = Scheduler(queue, old)
    old_scheduler.step()
    new_scheduler = Scheduler(queue, new)
    new_scheduler.step()

    step_every_second([old_scheduler, new_scheduler], clock, 4 * 60)

    added = next(s for s in new.schedules() if s.name == "added")
    ticks = [START + timedelta(seconds=30) + k * MINUTE for k in range(4)]
    assert jobs_of(queue, added, ticks) == [True] * 4


def test_a_schedule_no_running_release_declares_is_orphaned_once_its_tick_is_overdue(
    queue: Queue, clock: ManualClock
) -> None:
    old, new = release("0 * * * * *"), foundry.JobRegistry()
    old.schedule("removed", "beat", cron="30 * * * * *")
    new.job(name="beat", queue="periodic")(lambda: None)
    new.schedule("report", "beat", cron="0 * * * * *")
    Scheduler(queue, old).step()
    new_scheduler = Scheduler(queue, new)

    step_every_second([new_scheduler], clock, 61)
    states = {state.name: state for state in queue.schedule_states().states}

    removed = next(s for s in old.schedules() if s.name == "removed")
    assert states["removed"].orphaned
    assert jobs_of(queue, removed, [START + timedelta(seconds=30)]) == [False]
