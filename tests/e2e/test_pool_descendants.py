"""A real prefork pool on the memory backend, with handlers whose descendants outlive them,
holding every descriptor the pool's child had (its pipe to the parent among them)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import stat
import struct
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from foundry.adapters.clock import SystemClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.context import JobContext
from foundry.application.dispatcher import Dispatcher
from foundry.application.middleware import JobOutcome, Middleware
from foundry.application.pool import Pool, processes
from foundry.application.pool.config import PoolConfig
from foundry.application.registry import JobRegistry
from foundry.domain import JobState, RetryPolicy
from foundry.ports import Lease, QueuePort
from tests.backends import unique_prefix

registry = JobRegistry()
ONCE = RetryPolicy(max_attempts=1)


class ForksAfterJob(Middleware):
    """Forks without exec after the job ``forks_after_job``: both copies return from the hook
    (the forked one after 0.2 s), as a careless middleware might."""

    def after_job(self, job: JobContext, outcome: JobOutcome) -> None:
        if job.name == "forks_after_job" and os.fork() == 0:
            time.sleep(0.2)


registry.use(ForksAfterJob())


@registry.job(name="forks_after_job", retry=ONCE)
def forks_after_job() -> str:
    return "returned"


@registry.job(name="pid")
def pid() -> int:
    """This process's pid, after 50 ms."""
    time.sleep(0.05)
    return os.getpid()


@registry.job(name="add")
def add(a: int, b: int) -> int:
    return a + b


@registry.job(name="daemonizes_then_dies", retry=ONCE, timeout=timedelta(seconds=2))
def daemonizes_then_dies(pid_file: str) -> None:
    """Forks a daemon (a session of its own, out of the child's process group) that holds the
    child's descriptors for 5 s; the child then ends with status 3."""
    ready_r, ready_w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        Path(pid_file).write_text(str(os.getpid()))
        os.write(ready_w, b"x")
        time.sleep(5)
        os._exit(0)
    os.read(ready_r, 1)
    os._exit(3)


@registry.job(name="daemon_outlives_the_test", retry=ONCE, timeout=timedelta(seconds=2))
def daemon_outlives_the_test(pid_file: str) -> None:
    """Forks a daemon that holds the child's descriptors until the test kills it; the child
    then ends with status 3."""
    ready_r, ready_w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        Path(pid_file).write_text(str(os.getpid()))
        os.write(ready_w, b"x")
        time.sleep(600)
        os._exit(0)
    os.read(ready_r, 1)
    os._exit(3)


@registry.job(name="writes_on_its_pipe", retry=ONCE, timeout=timedelta(seconds=30))
def writes_on_its_pipe(prefix: str) -> int:
    """Writes ``prefix`` (hex; a frame's start, not the rest) on every socket it holds (its pipe to
    the parent among them), as a process a handler started with its descriptors might; then
    sleeps past the test's patience."""
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                os.write(int(name), bytes.fromhex(prefix))
    time.sleep(25)
    return 1


@registry.job(name="starts_a_frame_it_never_ends", retry=ONCE, timeout=timedelta(seconds=30))
def starts_a_frame_it_never_ends(marker: str) -> None:
    """Writes the start of a 1000-byte frame on every Unix socket it holds (its pipe to the
    parent among them; not a connection to Redis), as a process a handler started might; then
    says so in ``marker`` and sleeps past the test's patience."""
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            held = socket.socket(fileno=int(name))
            unix = held.family == socket.AF_UNIX
            held.detach()
            if unix:
                os.write(int(name), struct.pack("!i", 1000) + b"x")
    Path(marker).write_text("written")
    time.sleep(25)


@registry.job(name="waits_for", timeout=timedelta(seconds=30))
def waits_for(path: str) -> None:
    """Returns once ``path`` exists (at most 20 s)."""
    for _ in range(2000):
        if Path(path).exists():
            return
        time.sleep(0.01)


class Ends:
    """The jobs in the order they ended (a ``PoolObserver``)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def job_started(self, lease: Lease, child_pid: int, started_at: Any) -> None:
        """Not needed here."""

    def job_finished(self, lease: Lease, outcome: Any, runtime_s: float) -> None:
        self.ids.append(lease.job_id)

    def child_recycled(self, child_pid: int, reason: str) -> None:
        """Not needed here."""

    def leases_renewed(self, kept: int, lost: int) -> None:
        """Not needed here."""


@registry.job(name="joins_the_parents_group", retry=ONCE, timeout=timedelta(seconds=1))
def joins_the_parents_group() -> None:
    """Moves the child into its parent's process group, then sleeps past its hard limit."""
    os.setpgid(0, os.getpgid(os.getppid()))
    time.sleep(20)


def _sleep_once_running(running: Any) -> None:
    running.set()
    time.sleep(30)


@registry.job(name="terminates_its_own_process", retry=ONCE, timeout=timedelta(seconds=10))
def terminates_its_own_process() -> int:
    """Starts a process with ``multiprocessing`` and ends it with ``terminate()`` (SIGTERM),
    as ``multiprocessing.Pool.__exit__`` does with its workers; its exit code."""
    context = multiprocessing.get_context("fork")
    running = context.Event()
    helper = context.Process(target=_sleep_once_running, args=(running,))
    helper.start()
    running.wait(5)  # (a signal in the moment after fork, before Python's own set-up, is lost
    # to any Python signal handler the process inherits)
    helper.terminate()
    helper.join(5)
    return helper.exitcode if helper.exitcode is not None else 0


def _apps_own_term(signum: int, frame: Any) -> None:
    """A SIGTERM handler an app installs in each child."""


@registry.job(name="sigterm_is_the_apps")
def sigterm_is_the_apps() -> bool:
    return signal.getsignal(signal.SIGTERM) is _apps_own_term


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue(SystemClock())


@pytest.fixture
def dispatcher(queue: MemoryQueue) -> Dispatcher:
    return Dispatcher(queue, registry, SystemClock())


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def any_queue(request: pytest.FixtureRequest) -> Iterator[QueuePort]:
    if request.param == "memory":
        yield MemoryQueue(SystemClock())
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisQueue(client, prefix=unique_prefix("descendants"))
    client.close()


def run(queue: QueuePort, **options: Any) -> int:
    config = PoolConfig(burst=True, idle_wait=timedelta(milliseconds=50), **options)
    return Pool(queue, registry, config, clock=SystemClock(), workers=queue).run()


def _kill(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_child_whose_daemon_holds_its_descriptors_is_seen_to_exit_at_once(
    queue: MemoryQueue, dispatcher: Dispatcher, tmp_path: Path
) -> None:
    pid_file = tmp_path / "daemon.pid"
    job_id = dispatcher.dispatch("daemonizes_then_dies", {"pid_file": str(pid_file)})
    ok_id = dispatcher.dispatch("add", {"a": 1, "b": 2})

    try:
        code = run(queue, concurrency=1)
    finally:
        _kill(pid_file)

    record, ok = queue.get(job_id), queue.get(ok_id)
    assert record is not None
    assert ok is not None
    assert (code, record.state, ok.result) == (0, JobState.DEAD, 3)
    (error,) = record.errors
    assert (error.type, error.exit_code) == ("foundry.application.errors.WorkerLost", 3)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("thread", ["main", "other"])  # SIGCHLD, or the loop's timed turns
def test_without_pidfds_a_child_whose_daemon_holds_its_descriptors_is_seen_to_exit(
    any_queue: QueuePort,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    thread: str,
) -> None:
    monkeypatch.setattr(processes, "_pidfd_works", lambda: False)  # macOS, Linux before 5.3
    queue, dispatcher = any_queue, Dispatcher(any_queue, registry, SystemClock())
    pid_file = tmp_path / "daemon.pid"
    job_id = dispatcher.dispatch("daemon_outlives_the_test", {"pid_file": str(pid_file)})
    ok_id = dispatcher.dispatch("add", {"a": 1, "b": 2})
    codes: list[int] = []

    try:
        if thread == "main":
            codes.append(run(queue, concurrency=1))
        else:
            other = threading.Thread(target=lambda: codes.append(run(queue, concurrency=1)))
            other.start()
            other.join()
    finally:
        _kill(pid_file)
    (code,) = codes

    record, ok = queue.get(job_id), queue.get(ok_id)
    assert record is not None
    assert ok is not None
    assert (code, record.state, ok.result) == (0, JobState.DEAD, 3)
    (error,) = record.errors
    assert (error.type, error.exit_code) == ("foundry.application.errors.WorkerLost", 3)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(struct.pack("!i", 0x7FFFFFFF) + b"x", id="a-length-past-the-limit"),
        pytest.param(struct.pack("!i", 1000) + b"x", id="a-frame-that-never-ends"),
        pytest.param(b"\x00\x00", id="half-a-length"),
    ],
)
def test_a_frame_a_foreign_writer_starts_but_never_ends_kills_that_child_not_the_pool(
    queue: MemoryQueue, dispatcher: Dispatcher, prefix: bytes
) -> None:
    job_id = dispatcher.dispatch("writes_on_its_pipe", {"prefix": prefix.hex()})
    ok_id = dispatcher.dispatch("add", {"a": 1, "b": 2})

    code = run(queue, concurrency=1)

    record, ok = queue.get(job_id), queue.get(ok_id)
    assert record is not None
    assert ok is not None
    assert (code, record.state, ok.result) == (0, JobState.DEAD, 3)
    assert record.errors[0].type == "foundry.application.errors.WorkerLost"


@pytest.mark.timeout(60)
def test_a_frame_that_does_not_come_whole_holds_up_no_other_childs_jobs(
    any_queue: QueuePort, tmp_path: Path
) -> None:
    queue, dispatcher = any_queue, Dispatcher(any_queue, registry, SystemClock())
    marker = tmp_path / "written"
    slow = dispatcher.dispatch("starts_a_frame_it_never_ends", {"marker": str(marker)})
    first = dispatcher.dispatch("waits_for", {"path": str(marker)})  # in the other child
    others = dispatcher.dispatch_many([("add", {"a": n, "b": 1}) for n in range(20)])
    ends = Ends()
    # Jobs for idle children only: each of the others needs the parent to read a reply.
    config = PoolConfig(burst=True, concurrency=2, prefetch_window=timedelta(0))

    code = Pool(queue, registry, config, clock=SystemClock(), workers=queue, observer=ends).run()

    record = queue.get(slow)
    assert record is not None
    assert (code, record.state) == (0, JobState.DEAD)
    assert record.errors[0].type == "foundry.application.errors.WorkerLost"
    assert [queue.get(i).result for i in others] == [n + 1 for n in range(20)]  # type: ignore[union-attr]
    # Every other job ended while the parent waited for the rest of that frame (its deadline
    # killed the child only after them), not after it.
    assert ends.ids[-1] == slow
    assert sorted(ends.ids) == sorted([slow, first, *others])


def test_a_copy_a_middleware_forked_after_the_job_never_answers_nor_takes_tasks(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    forker = dispatcher.dispatch("forks_after_job")
    pids = [dispatcher.dispatch("pid") for _ in range(20)]

    code = run(queue, concurrency=1)

    record = queue.get(forker)
    assert record is not None
    assert (code, record.state, record.result) == (0, JobState.COMPLETED, "returned")
    ran_on = {queue.get(job_id).result for job_id in pids}  # type: ignore[union-attr]
    assert len(ran_on) == 1, ran_on  # the pool's child alone


@pytest.mark.timeout(15)
def test_a_child_that_left_its_process_group_is_still_killed_at_its_hard_limit(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    job_id = dispatcher.dispatch("joins_the_parents_group")
    ok_id = dispatcher.dispatch("add", {"a": 1, "b": 2})

    code = run(queue, concurrency=1, term_grace=timedelta(milliseconds=200))

    record, ok = queue.get(job_id), queue.get(ok_id)
    assert record is not None
    assert ok is not None
    assert (code, record.state, ok.result) == (0, JobState.DEAD, 3)
    assert record.errors[0].type == "foundry.application.errors.TimeLimitExceeded"


def test_a_process_a_handler_starts_still_ends_on_its_sigterm(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    job_id = dispatcher.dispatch("terminates_its_own_process")

    run(queue, concurrency=1)

    record = queue.get(job_id)
    assert record is not None
    assert (record.state, record.result) == (JobState.COMPLETED, -signal.SIGTERM)


def test_a_sigterm_handler_the_app_installs_at_child_start_is_kept(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    job_id = dispatcher.dispatch("sigterm_is_the_apps")
    config = PoolConfig(burst=True, idle_wait=timedelta(milliseconds=50), concurrency=1)

    def child_init() -> None:
        signal.signal(signal.SIGTERM, _apps_own_term)

    Pool(queue, registry, config, clock=SystemClock(), child_init=child_init).run()

    record = queue.get(job_id)
    assert record is not None
    assert record.result is True
