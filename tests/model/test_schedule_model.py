"""The schedulers' state machine: N schedulers (1-5) over one backend on a fake clock, with
random clock advances, steps, slow schedulers whose firings arrive late, crashes (a read
never sent, a scheduler replaced), pauses and resumes.

The reference model keeps, per schedule, the first unfired tick and whether it is paused,
and fires by enumerating the recurrence's ticks (not through ``CatchUp.plan``); a tick within
``AHEAD`` of now fires early, as a job delayed until the tick. Invariants: the ticks with a job
are exactly the model's (every tick once, or as the catch-up policy says), never twice (no
job beyond them), never early (a job is claimable from its tick on, not before), and a step
never asks to sleep past the moment the next tick is due to be fired.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import foundry
from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.schedules.scheduler import MAX_SLEEP_S, Scheduler
from foundry.domain import CatchUp, CatchUpMode, PeriodicSchedule
from foundry.ports import Firing
from tests.backends import Queue

QUEUE = "periodic"
AHEAD = timedelta(seconds=1)
MODEL_SETTINGS = settings(max_examples=100, stateful_step_count=40, deadline=None)
advances = st.sampled_from([0.001, 0.5, 1, 7, 16.999, 17, 30, 59, 61, 119, 400])


def app() -> foundry.JobRegistry:
    registry = foundry.JobRegistry()

    @registry.job(name="beat", queue=QUEUE)
    def beat(n: int = 0) -> None:
        return None

    registry.schedule("minutely", beat, every=60, payload={"n": 1})
    registry.schedule("often", beat, every=17, catch_up=CatchUp(mode="all", cap=3))
    registry.schedule("quarter", beat, every=0.25, payload={"n": 4})  # several ticks a step
    registry.schedule(
        "berlin",
        beat,
        cron="*/2 * * * *",
        tz="Europe/Berlin",
        catch_up=CatchUp(mode="none", grace=timedelta(seconds=30)),
    )
    return registry


@attrs.define
class ModelSchedule:
    """What the backend should hold for one schedule."""

    due_from: datetime
    paused: bool = False
    fired: set[datetime] = attrs.Factory(set)


def expected_fire(schedule: PeriodicSchedule, due_from: datetime, now: datetime) -> list[datetime]:
    """The ticks the policy fires, by enumerating every tick in [due_from, now]."""
    ticks, tick = [], due_from
    while tick <= now:
        ticks.append(tick)
        tick = schedule.recurrence.next_after(tick)
    if not ticks:
        return []
    policy = schedule.catch_up
    if policy.mode is CatchUpMode.ALL:
        return ticks[-policy.cap :]
    if policy.mode is CatchUpMode.NONE and now - ticks[-1] > policy.grace:
        return []
    return ticks[-1:]


class ScheduleMachine(RuleBasedStateMachine):
    """Several schedulers, one backend, one model."""

    def __init__(self) -> None:
        super().__init__()
        # Near Berlin's spring-forward (2030-03-31 01:00 UTC): the cron crosses the gap.
        self.clock = ManualClock(datetime(2030, 3, 31, 0, 50, tzinfo=UTC))
        self.queue = self.make_queue(self.clock)
        self.registry = app()
        self.schedules = {s.name: s for s in self.registry.schedules()}
        self.schedulers: list[Scheduler] = []
        self.reads: dict[int, tuple[list[Firing], dict[str, datetime]]] = {}
        self.model: dict[str, ModelSchedule] = {}

    def make_queue(self, clock: ManualClock) -> Queue:
        return MemoryQueue(clock)

    # -- the model --------------------------------------------------------------------------

    def model_step(self, now: datetime) -> None:
        """A complete step at ``now``: what every due, unpaused schedule fires."""
        for name, schedule in self.schedules.items():
            state = self.model.get(name)
            if state is None:
                state = self.model[name] = ModelSchedule(schedule.recurrence.next_after(now))
            if not state.paused and state.due_from <= now + AHEAD:
                self.fire(name, state.due_from, now)

    def longest_wait(self, now: datetime) -> float:
        """How long a scheduler may sleep after a complete step: until an unpaused schedule's
        next tick comes within ``AHEAD`` (at once if one has), ``MAX_SLEEP_S`` at most."""
        untils = [state.due_from - AHEAD - now for state in self.model.values() if not state.paused]
        return min([MAX_SLEEP_S, *(max(until.total_seconds(), 0.0) for until in untils)])

    def fire(self, name: str, due_from: datetime, now: datetime) -> None:
        """The model's step of one schedule read at ``now`` (a tick ahead fires at its time)."""
        schedule, state = self.schedules[name], self.model[name]
        at = max(now, due_from)
        state.fired.update(expected_fire(schedule, due_from, at))
        state.due_from = schedule.recurrence.next_after(at)

    # -- rules ------------------------------------------------------------------------------

    @rule(count=st.integers(1, 5))
    @precondition(lambda self: not self.schedulers)
    def start(self, count: int) -> None:
        self.schedulers = [Scheduler(self.queue, self.registry, ahead=AHEAD) for _ in range(count)]

    @rule(seconds=advances)
    def advance(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    @rule(data=st.data())
    @precondition(lambda self: self.schedulers)
    def step(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.schedulers) - 1))
        wait = self.schedulers[index].step()
        self.model_step(self.clock.now())
        assert wait <= self.longest_wait(self.clock.now()) + 0.001  # Redis keeps whole ms

    @rule(data=st.data())
    @precondition(lambda self: self.schedulers and self.model)
    def read(self, data: st.DataObject) -> None:
        """A slow scheduler reads what is due and plans; its firings are sent later."""
        index = data.draw(st.integers(0, len(self.schedulers) - 1))
        poll = self.queue.poll([QUEUE], 100, AHEAD)
        firings, _, _ = self.schedulers[index]._plan(poll.due, poll.now)
        expected = {f.name: poll.now for f in firings}
        self.reads[index] = (firings, expected)

    @rule(data=st.data())
    @precondition(lambda self: self.reads)
    def send(self, data: st.DataObject) -> None:
        index = data.draw(st.sampled_from(sorted(self.reads)))
        firings, read_at = self.reads.pop(index)
        answers = self.queue.fire(firings)
        for firing, answer in zip(firings, answers, strict=True):
            state = self.model[firing.name]
            applies = not state.paused and state.due_from == firing.due_from
            assert answer.applied == applies
            if applies:
                self.fire(firing.name, firing.due_from, read_at[firing.name])
                assert state.due_from == firing.next_at

    @rule(data=st.data())
    @precondition(lambda self: self.schedulers)
    def crash(self, data: st.DataObject) -> None:
        """A scheduler dies (a read it never sent is lost) and a fresh one takes its place."""
        index = data.draw(st.integers(0, len(self.schedulers) - 1))
        self.reads.pop(index, None)
        self.schedulers[index] = Scheduler(self.queue, self.registry, ahead=AHEAD)

    @rule(name=st.sampled_from(["minutely", "often", "berlin"]))
    @precondition(lambda self: self.model)
    def pause(self, name: str) -> None:
        assert self.queue.pause_schedule(QUEUE, name)
        self.model[name].paused = True

    @rule(name=st.sampled_from(["minutely", "often", "berlin"]))
    @precondition(lambda self: self.model)
    def resume(self, name: str) -> None:
        next_at = self.schedules[name].first_tick(self.clock.now())
        resumed = self.queue.resume_schedule(QUEUE, name, next_at)
        assert resumed is self.model[name].paused  # False: stored, and left as it is
        if self.model[name].paused:  # an active one keeps the tick it has yet to fire
            self.model[name].due_from = next_at
        self.model[name].paused = False

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def every_expected_tick_has_exactly_one_job_and_no_other_job_exists(self) -> None:
        total = 0
        for name, state in self.model.items():
            schedule = self.schedules[name]
            for tick in state.fired:
                record = self.queue.get(schedule.job_id(tick), QUEUE)
                assert record is not None, f"{name}: tick {tick} did not fire"
                assert record.job.created_at is not None
                assert record.job.created_at <= self.clock.now()
                claimable_from = record.run_at or record.enqueued_at  # Redis: None when ready
                assert claimable_from >= tick, "claimable before its tick"
                assert tick - record.job.created_at <= AHEAD, "enqueued too early"
            total += len(state.fired)
        assert self.queue.stats(QUEUE).pending == total, "a tick fired twice or unexpectedly"

    @invariant()
    def the_backend_waits_for_the_models_next_tick(self) -> None:
        states = {state.name: state for state in self.queue.schedule_states().states}
        for name, state in self.model.items():
            assert states[name].paused == state.paused
            assert states[name].next_at == (None if state.paused else state.due_from)


TestMemorySchedulers = ScheduleMachine.TestCase
TestMemorySchedulers.settings = MODEL_SETTINGS


@pytest.mark.redis
def test_redis_schedules_match_the_model(redis_url: str) -> None:
    class RedisScheduleMachine(ScheduleMachine):
        def make_queue(self, clock: ManualClock) -> Queue:
            self.client = redis.Redis.from_url(redis_url)
            return RedisQueue(self.client, prefix=f"s{secrets.token_hex(6)}", clock=clock)

        def teardown(self) -> None:
            self.client.close()

    run_state_machine_as_test(RedisScheduleMachine, settings=MODEL_SETTINGS)
