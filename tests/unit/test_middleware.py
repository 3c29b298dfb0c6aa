"""Middleware hooks run in process: order, errors, metadata, parent events, the examples."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from foundry import (
    Dispatcher,
    ErrorInfo,
    InvalidJob,
    Job,
    JobCancelled,
    JobContext,
    JobOutcome,
    JobRegistry,
    Lease,
    Middleware,
    Outcome,
    PermanentFailure,
    TimeLimitExceeded,
    WorkerLost,
)
from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.hooks import Hooks
from foundry.application.schedules.scheduler import Scheduler
from foundry.contrib.capture import ErrorCapture
from foundry.contrib.timing import TimingMiddleware
from foundry.ports import ClaimRequest
from tests.log_support import foundry_messages

JOB = JobContext("j1", "send", "default", 2, {"tenant": "7"})
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Trace(Middleware):
    """Appends each call to a shared list, under its name."""

    def __init__(self, name: str, calls: list[str], fail_in: str = "") -> None:
        self.name, self.calls, self.fail_in = name, calls, fail_in

    def _call(self, hook: str, detail: str = "") -> None:
        self.calls.append(f"{self.name}.{hook}{detail}")
        if hook == self.fail_in:
            raise RuntimeError(f"{self.name} fails in {hook}")

    def before_job(self, job: JobContext) -> None:
        self._call("before")

    def on_error(self, job: JobContext, error: BaseException) -> None:
        self._call("on_error", f":{error}")

    def after_job(self, job: JobContext, outcome: JobOutcome) -> None:
        self._call("after", f":{'ok' if outcome.ok else outcome.error}")


def _hooks(*middlewares: Middleware) -> Hooks:
    hooks = Hooks()
    for middleware in middlewares:
        hooks.use(middleware)
    return hooks


def _run(hooks: Hooks, calls: list[str], error: BaseException | None = None) -> Any:
    def handler() -> str:
        calls.append("handler")
        if error is not None:
            raise error
        return "result"

    return hooks.run_job(JOB, handler)


def test_before_hooks_run_in_order_and_after_hooks_in_reverse_around_the_handler() -> None:
    calls: list[str] = []
    hooks = _hooks(Trace("a", calls), Trace("b", calls))

    result = _run(hooks, calls)

    assert result == "result"
    assert calls == ["a.before", "b.before", "handler", "b.after:ok", "a.after:ok"]


def test_a_failed_handler_runs_on_error_then_the_after_hooks_and_its_error_is_raised() -> None:
    calls: list[str] = []
    hooks = _hooks(Trace("a", calls), Trace("b", calls))

    with pytest.raises(ValueError, match="bad"):
        _run(hooks, calls, ValueError("bad"))

    assert calls == [
        "a.before",
        "b.before",
        "handler",
        "a.on_error:bad",
        "b.on_error:bad",
        "b.after:bad",
        "a.after:bad",
    ]


def test_a_before_hook_that_raises_skips_the_later_ones_and_the_handler() -> None:
    calls: list[str] = []
    hooks = _hooks(Trace("a", calls, fail_in="before"), Trace("b", calls))

    with pytest.raises(RuntimeError, match="a fails in before"):
        _run(hooks, calls)

    assert calls == [
        "a.before",
        "a.on_error:a fails in before",
        "b.on_error:a fails in before",
        "b.after:a fails in before",
        "a.after:a fails in before",
    ]


class GiveUp(Middleware):
    def on_error(self, job: JobContext, error: BaseException) -> None:
        raise PermanentFailure(f"gave up on {type(error).__name__}")


def test_an_on_error_hook_that_raises_replaces_the_error_for_the_next_hooks() -> None:
    calls: list[str] = []
    hooks = _hooks(GiveUp(), Trace("b", calls))

    with pytest.raises(PermanentFailure, match="gave up on ValueError"):
        _run(hooks, calls, ValueError("bad"))

    assert calls[-2:] == ["b.on_error:gave up on ValueError", "b.after:gave up on ValueError"]


def test_an_after_hook_that_raises_fails_a_successful_attempt_and_the_outer_hooks_see_it() -> None:
    calls: list[str] = []
    hooks = _hooks(Trace("a", calls), Trace("b", calls, fail_in="after"))

    with pytest.raises(RuntimeError, match="b fails in after"):
        _run(hooks, calls)

    assert calls[-2:] == ["b.after:ok", "a.after:b fails in after"]


def test_without_job_hooks_the_handler_is_called_as_it_is() -> None:
    hooks = _hooks(Middleware())

    assert hooks.run_job(JOB, lambda: 42) == 42


def test_use_refuses_what_is_not_a_middleware_naming_the_fix() -> None:
    registry = JobRegistry()

    with pytest.raises(TypeError, match="subclass Middleware"):
        registry.use(lambda job: None)  # type: ignore[arg-type]


class AsyncSession(Middleware):
    async def before_job(self, job: JobContext) -> None:  # type: ignore[override]
        pass


def test_use_refuses_an_async_hook_which_would_never_run() -> None:
    registry = JobRegistry()

    with pytest.raises(TypeError, match=r"AsyncSession\.before_job is async def.*plain def"):
        registry.use(AsyncSession())

    assert registry.hooks.run_job(JOB, lambda: 42) == 42  # nothing of it was registered


def test_a_method_named_like_a_hook_that_none_is_is_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Misspelt(Middleware):
        def before_jobs(self, job: JobContext) -> None: ...

        def after_job(self, job: JobContext, outcome: JobOutcome) -> None: ...

        def on_error_hook(self) -> None: ...

    JobRegistry().use(Misspelt())

    (message,) = foundry_messages(caplog)
    assert "Misspelt defines before_jobs, on_error_hook, which Foundry never calls" in message


class Tenant(Middleware):
    def __init__(self, value: str) -> None:
        self.value = value

    def on_dispatch(self, job: Job) -> Mapping[str, str]:
        return {"tenant": self.value, "job": job.name}


def _registry_with(*middlewares: Middleware) -> JobRegistry:
    registry = JobRegistry()
    for middleware in middlewares:
        registry.use(middleware)

    @registry.job(name="send")
    def send(to: str) -> None:
        pass

    return registry


def test_dispatch_hooks_add_metadata_later_ones_winning_on_the_same_key() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    dispatcher = Dispatcher(queue, _registry_with(Tenant("a"), Tenant("b")), clock)

    job_id = dispatcher.dispatch("send", {"to": "x"})
    (many_id,) = dispatcher.dispatch_many([("send", {"to": "y"})])

    for stored in (queue.get(job_id), queue.get(many_id)):
        assert stored is not None
        assert stored.job.metadata == {"tenant": "b", "job": "send"}


class Raising(Middleware):
    def on_dispatch(self, job: Job) -> None:
        raise RuntimeError("no trace context")


def test_a_dispatch_hook_that_raises_reaches_the_caller_and_nothing_is_enqueued() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    dispatcher = Dispatcher(queue, _registry_with(Raising()), clock)

    with pytest.raises(RuntimeError, match="no trace context"):
        dispatcher.dispatch("send", {"to": "x"})

    assert queue.stats("default").pending == 0


class Returning(Middleware):
    def __init__(self, metadata: object) -> None:
        self.metadata = metadata

    def on_dispatch(self, job: Job) -> Any:
        return self.metadata


@pytest.mark.parametrize(
    "metadata", ["trace-1", 5, ["tenant", "7"], {"tenant": 7}, {7: "tenant"}, {"tenant": None}]
)
def test_dispatch_metadata_that_is_not_a_dict_of_strings_is_refused_naming_the_hook(
    metadata: object,
) -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    dispatcher = Dispatcher(queue, _registry_with(Tenant("a"), Returning(metadata)), clock)

    with pytest.raises(InvalidJob, match=r"metadata.*Returning\.on_dispatch returned"):
        dispatcher.dispatch("send", {"to": "x"})
    with pytest.raises(InvalidJob, match=r"Returning\.on_dispatch"):
        dispatcher.dispatch_many([("send", {"to": "x"})])

    assert queue.stats("default").pending == 0


class Forked(Middleware):
    def __init__(self, calls: list[str], fail: bool = False) -> None:
        self.calls, self.fail = calls, fail

    def after_fork(self) -> None:
        self.calls.append("after_fork")
        if self.fail:
            raise OSError("database unreachable")


def test_a_failing_after_fork_hook_is_logged_and_the_next_ones_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    hooks = _hooks(Forked(calls, fail=True), Forked(calls))

    hooks.process_started()

    assert calls == ["after_fork", "after_fork"]
    assert foundry_messages(caplog, logging.ERROR) == [
        "middleware hook Forked.after_fork failed; the process carries on"
    ]


class Listener(Middleware):
    def __init__(self, calls: list[str], fail: bool = False) -> None:
        self.calls, self.fail = calls, fail

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        self.calls.append(f"finished {outcome.kind}")
        if self.fail:
            raise RuntimeError("dashboard down")


def test_parent_events_reach_every_listener_even_after_one_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    extra = Listener(calls)
    observers = _hooks(Listener(calls, fail=True), Middleware()).observer(extra)
    lease = Lease(Job("send"), "tok", 1, T0)

    observers.job_finished(lease, Outcome.completed(), 0.1)

    assert calls == ["finished completed", "finished completed"]
    assert foundry_messages(caplog, logging.ERROR) == [
        "Listener.job_finished failed (a pool event); ignored"
    ]


def test_the_timing_middleware_logs_each_attempt_with_its_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="foundry")
    hooks = _hooks(TimingMiddleware())

    hooks.run_job(JOB, lambda: None)
    with pytest.raises(KeyError):
        hooks.run_job(JOB, lambda: {}["missing"])

    done, failed = [r for r in caplog.records if r.name == "foundry.contrib.timing"]
    assert (done.levelno, failed.levelno) == (logging.INFO, logging.WARNING)
    assert done.getMessage().startswith("send (attempt 2) done in ")
    assert failed.getMessage().endswith(": KeyError")
    assert (failed.job_id, failed.attempt, failed.queue) == ("j1", 2, "default")  # type: ignore[attr-defined]
    assert failed.duration_ms >= 0  # type: ignore[attr-defined]


def test_error_capture_hands_each_failure_to_the_sink_with_the_job_tags() -> None:
    captured: list[tuple[str, Mapping[str, str]]] = []
    hooks = _hooks(ErrorCapture(lambda error, tags: captured.append((str(error), tags))))

    with pytest.raises(ValueError, match="invalid literal"):
        hooks.run_job(JOB, lambda: int("x"))
    hooks.run_job(JOB, lambda: None)

    assert captured == [
        (
            "invalid literal for int() with base 10: 'x'",
            {"job_id": "j1", "job_name": "send", "queue": "default", "attempt": "2"},
        )
    ]


def test_a_sink_that_raises_leaves_the_attempt_s_own_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(error: BaseException, tags: Mapping[str, str]) -> None:
        raise ConnectionError("sentry down")

    hooks = _hooks(ErrorCapture(broken))

    with pytest.raises(ValueError, match="invalid literal"):
        hooks.run_job(JOB, lambda: int("x"))

    assert "its error is not captured" in foundry_messages(caplog, logging.ERROR)[0]


class Gate(Middleware):
    def before_job(self, job: JobContext) -> None:
        raise PermissionError("tenant suspended")


def test_the_timing_middleware_inside_a_failing_before_hook_reports_no_run_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="foundry")
    hooks = _hooks(Gate(), TimingMiddleware())

    with pytest.raises(PermissionError):
        hooks.run_job(JOB, lambda: None)

    (failed,) = [r for r in caplog.records if r.name == "foundry.contrib.timing"]
    assert failed.levelno == logging.WARNING
    assert failed.duration_ms == 0  # type: ignore[attr-defined]
    assert failed.getMessage() == "send (attempt 2) failed before it started: PermissionError"


def test_error_capture_refuses_an_async_sink_whose_reports_would_never_be_sent() -> None:
    async def to_sentry(error: BaseException, tags: Mapping[str, str]) -> None:
        pass

    with pytest.raises(TypeError, match=r"sink .*to_sentry is async def.*plain function"):
        ErrorCapture(to_sentry)


def test_error_capture_leaves_out_the_stop_of_a_job_cancelled_while_it_ran() -> None:
    captured: list[str] = []
    hooks = _hooks(ErrorCapture(lambda error, tags: captured.append(type(error).__name__)))

    def cancelled() -> None:
        raise JobCancelled(JOB.job_id, "a cancel asked the running job to stop")

    def waited_on_a_cancelled_job() -> None:
        raise JobCancelled("another", "cancelled")

    for handler in (cancelled, waited_on_a_cancelled_job):
        with pytest.raises(JobCancelled):
            hooks.run_job(JOB, handler)

    assert captured == ["JobCancelled"]  # only the other job's: this attempt failed on it


class Stamp(Middleware):
    """Adds ``stamp`` to every job it sees dispatched; raises for ``refuse``."""

    def __init__(self, refuse: str = "") -> None:
        self.refuse = refuse

    def on_dispatch(self, job: Job) -> Mapping[str, str]:
        if job.name == self.refuse:
            raise RuntimeError(f"no {job.name} today")
        return {"stamp": job.name}


def _ticking(*middlewares: Middleware) -> tuple[MemoryQueue, ManualClock, JobRegistry]:
    """A registry with two every-minute schedules, and a memory queue a minute before they
    fire."""
    registry = JobRegistry()
    for name in ("beat", "pulse"):
        registry.job(name=name, queue="periodic")(lambda: None)
        registry.schedule(name, name, every=timedelta(minutes=1))
    for middleware in middlewares:
        registry.use(middleware)
    clock = ManualClock()
    return MemoryQueue(clock), clock, registry


def test_a_schedule_s_tick_goes_through_the_dispatch_hooks_as_a_dispatched_job_does() -> None:
    queue, clock, registry = _ticking(Stamp())
    scheduler = Scheduler(queue, registry)
    scheduler.step()

    clock.advance(timedelta(minutes=1))
    scheduler.step()

    [lease, _] = queue.claim(ClaimRequest(["periodic"], lease=timedelta(seconds=30), limit=2))
    assert lease.job.metadata["stamp"] == lease.job.name
    assert lease.job.metadata["schedule"] == lease.job.name


def test_a_dispatch_hook_that_raises_on_a_tick_skips_that_tick_loudly_and_not_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue, clock, registry = _ticking(Stamp(refuse="beat"))
    scheduler = Scheduler(queue, registry)
    scheduler.step()

    clock.advance(timedelta(minutes=1))
    scheduler.step()

    leases = queue.claim(ClaimRequest(["periodic"], lease=timedelta(seconds=30), limit=2))
    assert [lease.job.name for lease in leases] == ["pulse"]
    assert foundry_messages(caplog, logging.ERROR) == [
        "schedule beat: its job cannot be built (RuntimeError('no beat today')); tick skipped"
    ]


def test_error_capture_reports_from_the_parent_an_attempt_whose_child_was_killed() -> None:
    captured: list[tuple[str, Mapping[str, str]]] = []
    capture = ErrorCapture(lambda error, tags: captured.append((str(error), tags)))
    lease = Lease(Job("send", id="j9", timeout=timedelta(seconds=5)), "tok", 3, T0)
    oom = attrs.evolve(ErrorInfo.from_exception(WorkerLost(signal=9)), signal=9)
    hard = ErrorInfo.from_exception(TimeLimitExceeded(5.0))
    seen_in_child = ErrorInfo.from_exception(ValueError("boom"))

    capture.job_finished(lease, Outcome.retried(timedelta(seconds=1), oom), 1.0)
    capture.job_finished(lease, Outcome.dead("failed", hard), 5.0)
    capture.job_finished(lease, Outcome.dead("failed", seen_in_child), 0.1)
    capture.job_finished(lease, Outcome.completed(), 0.1)

    tags = {"job_id": "j9", "job_name": "send", "queue": "default", "attempt": "3"}
    assert captured == [(str(WorkerLost(signal=9)), tags), (str(TimeLimitExceeded(5.0)), tags)]
