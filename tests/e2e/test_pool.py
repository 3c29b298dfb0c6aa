"""A real prefork pool on the memory backend: handlers that return, raise, exit and overrun."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import stat
import struct
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from foundry.adapters.clock import SystemClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.dispatcher import Dispatcher
from foundry.application.outcome import Outcome, OutcomeKind
from foundry.application.pool import Pool
from foundry.application.pool.config import PoolConfig
from foundry.application.registry import JobRegistry
from foundry.domain import MAX_RESULT_BYTES, JobState, RetryPolicy
from foundry.ports import Lease, WorkerInfo
from tests.log_support import foundry_messages

registry = JobRegistry()
ONCE = RetryPolicy(max_attempts=1)


@registry.job(name="add")
def add(a: int, b: int) -> int:
    return a + b


@registry.job(
    name="slow", retry=ONCE, timeout=timedelta(seconds=20), soft_timeout=timedelta(milliseconds=200)
)
def slow(seconds: float) -> None:
    time.sleep(seconds)


@registry.job(name="stuck", retry=ONCE, timeout=timedelta(milliseconds=300))
def stuck() -> None:
    time.sleep(30)


@registry.job(name="nap")
def nap() -> None:
    time.sleep(0.005)


@registry.job(name="unpicklable", retry=ONCE)
def unpicklable() -> Any:
    return lambda: None


@registry.job(name="not_json")
def not_json() -> Any:
    return 1j


@registry.job(name="raw_bytes")
def raw_bytes() -> Any:
    return b"\x00\xff"  # would read back as base85 text


@registry.job(name="too_large")
def too_large() -> Any:
    return "x" * MAX_RESULT_BYTES  # and two quotes: over the limit


@registry.job(name="huge")
def huge() -> Any:
    return "x" * 100_000_000  # the parent reads its reply frame in many pieces


@registry.job(name="not_a_number")
def not_a_number() -> Any:
    return {"ratio": float("nan")}  # would read back as None


class Weird(Exception):
    def __init__(self) -> None:
        super().__init__("weird")
        self.handle = open(os.devnull)  # noqa: SIM115 - an attribute that cannot pickle

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle Weird")


@registry.job(name="weird", retry=ONCE)
def weird() -> None:
    raise Weird


class ExitsOnArrival:
    """A result that pickles, but whose unpickling in the parent raises ``SystemExit``."""

    def __reduce__(self) -> Any:
        return (sys.exit, (5,))


class InterruptsWhenPickled:
    """A result whose pickling raises ``KeyboardInterrupt`` (no ``Exception``)."""

    def __reduce__(self) -> Any:
        raise KeyboardInterrupt


class Unprintable(Exception):
    def __str__(self) -> str:
        raise KeyboardInterrupt


@registry.job(name="exits_on_arrival", retry=ONCE)
def exits_on_arrival() -> Any:
    return ExitsOnArrival()


@registry.job(name="interrupts_when_pickled", retry=ONCE)
def interrupts_when_pickled() -> Any:
    return InterruptsWhenPickled()


@registry.job(name="unprintable", retry=ONCE)
def unprintable() -> None:
    raise Unprintable


@registry.job(name="garbles_its_pipe", retry=ONCE)
def garbles_its_pipe() -> int:
    """Writes a frame no child writes on every socket it holds (its pipe to the parent among
    them), as a process a handler started with its descriptors inherited might. A socket
    whose peer is gone answers EPIPE instead of killing the child with SIGPIPE before it
    reached its pipe."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                os.write(int(name), struct.pack("!i", 3) + b"xyz")
    time.sleep(30)
    return 1


@registry.job(name="takes_the_alarm")
def takes_the_alarm() -> None:
    """Installs a SIGALRM handler of its own, as an alarm-based timeout library does."""
    signal.signal(signal.SIGALRM, lambda *_: None)


@registry.job(name="blocks_the_alarm")
def blocks_the_alarm() -> None:
    """Blocks SIGALRM and SIGUSR2 in its thread, and leaves them blocked."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGUSR2})


@registry.job(name="exits", retry=ONCE)
def exits(code: int) -> None:
    sys.exit(code)


@registry.job(name="vanishes", retry=ONCE)
def vanishes(code: int) -> None:
    os._exit(code)


@registry.job(name="kills_itself", retry=ONCE)
def kills_itself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@registry.job(name="pid")
def pid() -> int:
    return os.getpid()


@registry.job(name="niceness")
def niceness() -> int:
    return os.nice(0)


class Seen:
    """Records the pool's events and the worker registry as seen mid-run."""

    def __init__(self, queue: MemoryQueue) -> None:
        self.queue = queue
        self.started: list[int] = []
        self.outcomes: Counter[OutcomeKind] = Counter()
        self.finished: list[str] = []  # the job names, in the order they ended
        self.workers: list[WorkerInfo] = []

    def job_started(self, lease: Lease, child_pid: int, started_at: Any) -> None:
        self.started.append(child_pid)

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        self.outcomes[outcome.kind] += 1
        self.finished.append(lease.job.name)
        self.workers = self.queue.workers()

    def child_recycled(self, child_pid: int, reason: str) -> None:
        """Not needed here."""

    def leases_renewed(self, kept: int, lost: int) -> None:
        """Not needed here."""


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue(SystemClock())


@pytest.fixture
def dispatcher(queue: MemoryQueue) -> Dispatcher:
    return Dispatcher(queue, registry, SystemClock())


def run(queue: MemoryQueue, observer: Seen | None = None, **options: Any) -> int:
    config = PoolConfig(burst=True, idle_wait=timedelta(milliseconds=50), **options)
    pool = Pool(queue, registry, config, clock=SystemClock(), workers=queue, observer=observer)
    return pool.run()


def test_a_burst_pool_drains_dispatched_jobs_and_keeps_their_results(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    ids = dispatcher.dispatch_many([("add", {"a": n, "b": 1}) for n in range(50)])
    seen = Seen(queue)

    code = run(queue, seen)

    assert code == 0
    assert [queue.get(job_id).result for job_id in ids] == [n + 1 for n in range(50)]  # type: ignore[union-attr]
    assert seen.outcomes == Counter({OutcomeKind.COMPLETED: 50})
    assert len(seen.started) == 50


def test_the_pool_publishes_its_heartbeat_while_running_and_forgets_it_on_exit(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    dispatcher.dispatch("add", {"a": 1, "b": 2})
    seen = Seen(queue)

    run(queue, seen)

    (info,) = seen.workers
    assert (info.pid, info.queues, info.concurrency) == (os.getpid(), ("default",), 2)
    assert queue.workers() == []


def test_a_soft_time_limit_raises_inside_the_handler(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    job_id = dispatcher.dispatch("slow", {"seconds": 10})

    run(queue)

    record = queue.get(job_id)
    assert record is not None
    assert record.state is JobState.DEAD
    assert record.errors[0].type == "foundry.application.errors.SoftTimeLimitExceeded"


def test_a_soft_time_limit_holds_after_an_earlier_handler_took_sigalrm_on_that_child(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    dispatcher.dispatch("takes_the_alarm")
    job_id = dispatcher.dispatch("slow", {"seconds": 10})

    run(queue, concurrency=1)

    record = queue.get(job_id)
    assert record is not None
    assert record.errors[0].type == "foundry.application.errors.SoftTimeLimitExceeded"


def test_a_soft_time_limit_interrupts_a_sleep_after_an_earlier_handler_blocked_sigalrm(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    dispatcher.dispatch("blocks_the_alarm")
    job_id = dispatcher.dispatch("slow", {"seconds": 10})
    started = time.monotonic()

    run(queue, concurrency=1)

    record = queue.get(job_id)
    assert record is not None
    assert record.errors[0].type == "foundry.application.errors.SoftTimeLimitExceeded"
    assert time.monotonic() - started < 8  # not after its 10 s sleep


def test_a_hard_time_limit_ends_a_job_while_the_other_child_keeps_answering(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    stuck_id = dispatcher.dispatch("stuck")
    dispatcher.dispatch_many([("nap", None)] * 400)  # a reply every few ms, for seconds
    seen = Seen(queue)

    run(queue, seen)

    record = queue.get(stuck_id)
    assert record is not None
    assert record.state is JobState.DEAD
    assert record.errors[0].type == "foundry.application.errors.TimeLimitExceeded"
    assert "nap" in seen.finished[seen.finished.index("stuck") :]  # not after the naps ran out


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("unpicklable", "function"),
        ("not_json", "complex"),
        ("raw_bytes", "bytes"),
        ("not_a_number", "dict"),
        ("too_large", "str"),
        ("huge", "str"),
    ],
)
def test_a_result_that_cannot_be_stored_fails_the_attempt_naming_its_type(
    queue: MemoryQueue, dispatcher: Dispatcher, name: str, kind: str
) -> None:
    job_id = dispatcher.dispatch(name)
    ok_id = dispatcher.dispatch("add", {"a": 1, "b": 2})

    run(queue)

    record, ok = queue.get(job_id), queue.get(ok_id)
    assert record is not None
    assert ok is not None
    assert (record.state, record.result) == (JobState.DEAD, None)
    (error,) = record.errors
    assert error.type == "foundry.domain.errors.InvalidResult"
    assert f"of type {kind}" in error.message
    assert "return JSON data" in error.message
    assert (ok.state, ok.result) == (JobState.COMPLETED, 3)


def test_an_unpicklable_exception_is_recorded_by_its_description(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    job_id = dispatcher.dispatch("weird")

    run(queue)

    record = queue.get(job_id)
    assert record is not None
    assert (record.errors[0].type, record.errors[0].message) == (f"{__name__}.Weird", "weird")


@pytest.mark.parametrize(
    ("name", "kind", "cause"),
    [
        ("exits_on_arrival", "unknown", "SystemExit: 5"),
        ("interrupts_when_pickled", "InterruptsWhenPickled", "KeyboardInterrupt"),
    ],
)
def test_a_result_whose_pickling_raises_a_base_exception_fails_its_attempt_not_a_process(
    queue: MemoryQueue, dispatcher: Dispatcher, name: str, kind: str, cause: str
) -> None:
    job_id = dispatcher.dispatch(name)
    ok_id = dispatcher.dispatch("add", {"a": 1, "b": 2})

    code = run(queue, concurrency=1)

    record, ok = queue.get(job_id), queue.get(ok_id)
    assert record is not None
    assert ok is not None
    assert (code, record.state, ok.result) == (0, JobState.DEAD, 3)
    (error,) = record.errors
    assert error.type == "foundry.domain.errors.InvalidResult"
    assert f"of type {kind}" in error.message
    assert f"it cannot cross to the worker's parent: {cause}" in error.message


def test_an_exception_whose_str_raises_a_base_exception_is_recorded_as_unprintable(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    job_id = dispatcher.dispatch("unprintable")

    run(queue, concurrency=1)

    record = queue.get(job_id)
    assert record is not None
    (error,) = record.errors
    assert (error.type, error.message) == (
        f"{__name__}.Unprintable",
        "<unprintable Unprintable: KeyboardInterrupt>",
    )


def test_a_frame_its_child_did_not_write_kills_that_child_not_the_pool(
    queue: MemoryQueue, dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = dispatcher.dispatch("garbles_its_pipe")
    ok_id = dispatcher.dispatch("add", {"a": 1, "b": 2})

    code = run(queue, concurrency=1)

    record, ok = queue.get(job_id), queue.get(ok_id)
    assert record is not None
    assert ok is not None
    assert (code, record.state, ok.result) == (0, JobState.DEAD, 3)
    assert record.errors[0].type == "foundry.application.errors.WorkerLost"
    assert any("carried a frame it did not write" in m for m in foundry_messages(caplog))


def test_sys_exit_in_a_handler_fails_the_attempt_and_keeps_the_child(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    failing = dispatcher.dispatch("exits", {"code": 3})
    after = [dispatcher.dispatch("pid") for _ in range(3)]

    run(queue, concurrency=1)

    record = queue.get(failing)
    assert record is not None
    assert record.errors[0].type == "SystemExit"
    assert len({queue.get(job_id).result for job_id in after}) == 1  # type: ignore[union-attr]


def test_a_handler_that_ends_its_process_fails_with_worker_lost_and_its_exit_code(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    job_id = dispatcher.dispatch("vanishes", {"code": 7})
    after = dispatcher.dispatch("add", {"a": 1, "b": 1})

    run(queue, concurrency=1)

    record = queue.get(job_id)
    assert record is not None
    assert record.state is JobState.DEAD
    assert (record.errors[0].type, record.errors[0].exit_code) == (
        "foundry.application.errors.WorkerLost",
        7,
    )
    assert queue.get(after).state is JobState.COMPLETED  # type: ignore[union-attr]


@pytest.mark.timeout(60)
def test_a_burst_pool_whose_last_job_killed_its_child_stops_without_waiting_out_idle_wait(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    ok_id = dispatcher.dispatch("add", {"a": 1, "b": 2})
    job_id = dispatcher.dispatch("kills_itself")
    hour = timedelta(hours=1)  # an idle claim that waited would outlast the test's timeout
    config = PoolConfig(burst=True, concurrency=2, idle_wait=hour, heartbeat_every=hour)

    code = Pool(queue, registry, config, clock=SystemClock(), workers=queue).run()

    record = queue.get(job_id)
    assert record is not None
    assert (code, record.state, queue.get(ok_id).result) == (0, JobState.DEAD, 3)  # type: ignore[union-attr]
    assert record.errors[0].signal == signal.SIGKILL


def test_child_init_runs_once_in_every_child(
    queue: MemoryQueue, dispatcher: Dispatcher, tmp_path: Path
) -> None:
    marker = tmp_path / "inits"
    dispatcher.dispatch_many([("pid", {}) for _ in range(10)])
    config = PoolConfig(burst=True, idle_wait=timedelta(milliseconds=50), max_tasks_per_child=4)

    def child_init() -> None:
        with marker.open("a") as out:
            out.write(f"{os.getpid()}\n")

    Pool(queue, registry, config, clock=SystemClock(), child_init=child_init).run()

    inits = marker.read_text().split()
    assert len(inits) == len(set(inits)) >= 3
    assert os.getpid() not in map(int, inits)


def test_max_tasks_per_child_recycles_children(queue: MemoryQueue, dispatcher: Dispatcher) -> None:
    ids = dispatcher.dispatch_many([("pid", {}) for _ in range(6)])

    run(queue, concurrency=1, max_tasks_per_child=2)

    pids = [queue.get(job_id).result for job_id in ids]  # type: ignore[union-attr]
    assert [pids.count(p) for p in dict.fromkeys(pids)] == [2, 2, 2]


@pytest.mark.parametrize("child_nice", [0, 7])
def test_children_run_child_nice_steps_below_the_parent(
    queue: MemoryQueue, dispatcher: Dispatcher, child_nice: int
) -> None:
    job_id = dispatcher.dispatch("niceness")

    assert run(queue, child_nice=child_nice) == 0

    record = queue.get(job_id)
    assert record is not None
    assert record.result == min(os.nice(0) + child_nice, 19)


def test_children_that_keep_dying_before_they_are_ready_stop_the_pool_naming_where_to_look(
    queue: MemoryQueue, dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = dispatcher.dispatch("add", {"a": 1, "b": 2})
    config = PoolConfig(burst=True, idle_wait=timedelta(milliseconds=50))

    def child_init() -> None:
        os._exit(4)

    code = Pool(queue, registry, config, clock=SystemClock(), child_init=child_init).run()

    assert code != 0
    assert queue.get(job_id).state is JobState.READY  # type: ignore[union-attr]
    [stopped] = [r.getMessage() for r in caplog.records if "in a row died" in r.getMessage()]
    assert "(exit code 4)" in stopped
    assert "after_fork" in stopped


@registry.job(name="wait_for_renewal")
def wait_for_renewal(fd: int) -> bool:
    """Runs until the pool renewed its lease after a renew that raised (a byte on ``fd``)."""
    ready, _, _ = select.select([fd], [], [], 30.0)
    return bool(ready)


class RenewRaisesOnce(MemoryQueue):
    """A memory queue whose first renew raises what no adapter raises on purpose (a reply that
    could not be decoded, an adapter's bug); the next one writes a byte to ``renewed``."""

    def __init__(self, renewed: int) -> None:
        super().__init__(SystemClock())
        self.renews = 0
        self._renewed = renewed

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        self.renews += 1
        if self.renews == 1:
            raise ValueError("one reply could not be decoded (test)")
        if self.renews == 2:
            os.write(self._renewed, b"!")
        return super().renew(leases, duration)


def test_a_renew_that_raises_unexpectedly_does_not_stop_the_pool() -> None:
    read, write = os.pipe()
    try:
        queue = RenewRaisesOnce(write)
        job_id = Dispatcher(queue, registry, SystemClock()).dispatch(
            "wait_for_renewal", {"fd": read}
        )

        code = run(queue, cancel_check=timedelta(milliseconds=20))

        record = queue.get(job_id)
        assert record is not None
        assert (code, record.state, record.result) == (0, JobState.COMPLETED, True)
    finally:
        os.close(read)
        os.close(write)
