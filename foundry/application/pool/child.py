"""A pool child: set itself up after fork, then run the tasks its parent sends, one by one.

The parent may send a task while the child runs the one before it: the child finds it in the
pipe and starts it as soon as it has answered, if its start-by time (shared memory, see
``watchdog``) has not passed and its memory after the job before it is within the pool's
limit; else it answers ``SKIPPED`` without starting it. Before it runs a task it writes the
task's number (plus one) in that memory, which tells the parent it started.

A child touches the queue only for a claim its parent asks it to make (``child_claims``: an
idle pool's blocking claim), whose first job it may run itself. It answers each task with the
handler's result or an ``ErrorInfo``; a handler that kills the process is the parent's to
notice. A copy of the child that a handler (or a middleware's job hook) forked without exec
never answers: it exits at once when the handler, or the hooks around it, return or raise in
it, without touching the pipe.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import mmap
import os
import random
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from time import monotonic, perf_counter
from types import CoroutineType, FrameType
from typing import Any

from foundry.application.chains import needs_previous
from foundry.application.context import JobContext, set_current, set_progress_sink
from foundry.application.errors import SoftTimeLimitExceeded
from foundry.application.pool.child_claims import CLAIM, claim_for_pool, encode_claimed
from foundry.application.pool.coroutines import ChildLoop
from foundry.application.pool.watchdog import (
    set_fence,
    set_started,
    start_by,
    start_watchdog,
    terminating,
)
from foundry.application.pool.wire import (
    READY,
    STOP,
    FrameReader,
    Sender,
    Task,
    decode_task,
    encode_progress,
    encode_reply,
    encode_skipped,
    task_of,
)
from foundry.application.registry import Handler, JobRegistry
from foundry.domain import ErrorInfo, JobCancelled, Progress
from foundry.ports import Lease, QueuePort

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: A handler's progress reports reach the parent at most this often (seconds).
REPORT_EVERY_S = 0.25
_OWN = (signal.SIGALRM, signal.SIGUSR2)  # the soft limit's and a cancel's
_RESET = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGPIPE")


def child_main(
    conn: Sender,
    *,
    registry: JobRegistry,
    parent_pid: int,
    inherited: list[int],
    child_init: Callable[[], None] | None,
    max_rss: int | None,
    fence: mmap.mmap | None = None,
    nice: int = 0,
    queue: QueuePort | None = None,
) -> None:
    """The child's whole life: set up (the middleware's ``after_fork`` last), report ready,
    serve tasks until told to stop, run the ``before_exit`` hooks. ``max_rss``: the memory
    (bytes) after a job past which the child starts no other (the parent replaces it);
    ``queue``: the queue it claims from when the parent asks it to (``child_claims``).

    The death signal, the watchdog and the lower priority come after the ready report, while
    the parent claims the first job: starting a thread waits until the thread has run, and at
    a lower priority every wait for a core is longer on a busy machine. The watchdog looks at
    its deadline only every ``WATCH_EVERY_S`` anyway. The death signal's ``prctl`` is loaded
    by the parent before it forks (``libc_prctl``).
    """
    after_fork(parent_pid, inherited)
    _stop_signals_are_the_parents(fence)  # before the app's set-up, whose own handlers win
    if child_init is not None:
        child_init()
    registry.hooks.process_started()
    runner = Runner(registry, max_rss, queue)
    conn.send_bytes(READY)
    die_with_parent(parent_pid)
    if fence is not None:
        start_watchdog(fence, runner.is_busy, runner.tell_claimed)
    if nice:
        with contextlib.suppress(OSError):  # raising one's own nice value needs no privilege
            os.nice(nice)
    runner.serve(conn, fence)
    registry.hooks.process_stopping()


def after_fork(parent_pid: int, inherited: list[int]) -> None:
    """Become an independent, well-behaved child of ``parent_pid``."""
    signal.set_wakeup_fd(-1)  # the parent's wake-up pipe is not ours to write to
    for name in _RESET:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for fd in inherited:
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError):  # own group: a time limit kills grandchildren too
        os.setpgid(0, 0)
    if os.getppid() != parent_pid:  # the parent is gone already
        os._exit(1)
    random.seed()


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the parent dies (Linux), or exit now if it is already gone."""
    if sys.platform.startswith("linux"):
        prctl = libc_prctl()
        if prctl is None:
            log.warning("prctl(PR_SET_PDEATHSIG) is unavailable; children may outlive the pool")
        else:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the kernel could be told
        os._exit(1)


@functools.cache
def libc_prctl() -> Callable[..., int] | None:
    """The C library's ``prctl`` (Linux; ``None`` where it cannot be had).

    The pool's parent loads it before it forks, so children inherit it: ``ctypes`` costs
    millions of instructions to import, which each child would otherwise spend while the
    parent's first claim is out, the two contending for the cores, each child also copying
    every page its import writes to (memory it shares with the parent).
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # noqa: PLC0415 - only the pool needs it

    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


class Runner:
    """Runs tasks in this process, with the soft time limit armed around each handler
    (``async def`` handlers on the child's event loop, see ``coroutines``)."""

    def __init__(
        self, registry: JobRegistry, max_rss: int | None, queue: QueuePort | None = None
    ) -> None:
        self._registry = registry
        self._queue = queue
        self._hooks = registry.hooks
        self._armed = 0.0
        self._busy = False
        self._stoppable: str | None = None  # the running handler's job id, while it runs
        self._token = ""  # the running job's lease token, for its progress reports
        self._reported_at = 0.0
        self._write: Callable[[bytes], None] | None = None
        # The main thread and the watchdog both write frames: the leases of a claim whose
        # first job runs here are told before any other frame, or by the watchdog.
        self._lock = threading.Lock()
        self._untold: tuple[list[Lease], float] | None = None  # and when the first started
        self._rss = _rss_reader() if max_rss is not None else None
        self._max_rss = max_rss
        self._over = False  # its memory passed max_rss: it starts no other task
        self._pid = os.getpid()  # the pool's child: any other pid is a copy a handler forked
        self._worker = f"{socket.gethostname()}:{self._pid}"
        self._loop = ChildLoop()  # for async def handlers
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.signal(signal.SIGUSR2, self._on_stop)

    def serve(self, conn: Sender, fence: mmap.mmap | None = None) -> None:
        """Answer tasks until the parent says stop or goes away; a task whose start-by time
        in ``fence`` has passed, or that follows a job after which this process was over its
        memory limit, is answered ``SKIPPED``, not started."""
        receive, send = FrameReader(conn.fileno()).read, self._send
        self._write = conn.send_bytes
        set_progress_sink(self._report)
        number = 0  # the tasks received so far: the parent numbers them the same way
        while True:
            try:
                frame = receive()
            except (EOFError, OSError):
                return
            if frame == STOP:
                return
            if frame[:1] == CLAIM:
                claimed = self._claim(frame, send)
                if claimed is None:
                    continue
                leases, fence_at = claimed
                if fence is not None:  # the parent's fence for it comes once it is told
                    set_fence(fence, fence_at)
                    set_started(fence, number + 1)
                with self._lock:
                    self._untold = leases, monotonic()
                if len(leases) > 1:  # the others are for idle children: they go at once
                    self.tell_claimed()
                send(self.run(task_of(leases[0])))
                number += 1
                continue
            task = decode_task(frame)
            if fence is None:
                send(self.run(task))
            elif self._over or monotonic() >= start_by(fence, number):
                send(encode_skipped(number, task[6]))
            else:
                set_started(fence, number + 1)
                send(self.run(task))
            number += 1

    def _claim(
        self, frame: bytes, send: Callable[[bytes], None]
    ) -> tuple[list[Lease], float] | None:
        """The pool's claim, asked of this child; its leases when it runs the first now (see
        ``child_claims``)."""
        if self._queue is None:
            raise RuntimeError("the pool asked a child with no queue to claim")
        return claim_for_pool(self._queue, frame, self._runs_here, send)

    def _runs_here(self, lease: Lease) -> bool:
        """Whether this child may start a job it claimed without its parent: not held ahead
        (its start is reported first), not waiting for a previous job's result (the parent
        reads it), with a handler here, and this process within its memory limit."""
        job = lease.job
        return (
            not lease.ahead
            and not self._over
            and job.name in self._registry
            and not needs_previous(job)
        )

    def run(self, task: Task) -> bytes:
        """Run one task; the reply frame."""
        job_id, name, payload, attempt, queue, soft, token, metadata, fence = task
        started = perf_counter()
        self._token, self._reported_at = token, 0.0
        self._busy = True
        context = JobContext(job_id, name, queue, attempt, metadata, fence)
        set_current(context)
        self._own_signals()
        self._stoppable = job_id
        try:
            try:
                ok, value = (
                    True,
                    self._hooks.run_job(context, lambda: self._call(name, payload, soft)),
                )
            finally:
                self._stoppable = None
        except BaseException as error:  # SystemExit too: a handler must not end the child
            _exit_if_forked(self._pid, error)  # forked by a hook, after the handler
            ok, value = False, self._describe(error, attempt)
        _exit_if_forked(self._pid, None)
        set_current(None)
        self._busy = False
        runtime = perf_counter() - started
        rss = self._rss() if self._rss else 0
        self._over = self._max_rss is not None and rss > self._max_rss  # as recycle_reason
        return encode_reply(ok, value, runtime, rss, pid=self._pid, token=token, ended=monotonic())

    def _own_signals(self) -> None:
        """Take SIGALRM (the soft limit) and SIGUSR2 (a cancel) back if an earlier handler
        installed handlers of its own (an alarm-based timeout library does), and unblock them
        if it blocked them: else the next job's limit or cancel would call theirs and never
        reach it, or reach it only once the handler's blocking call returned (the signal then
        goes to the watchdog thread). (A look-up each while they are ours, and one system
        call.)"""
        if signal.getsignal(signal.SIGALRM) != self._on_alarm:
            signal.signal(signal.SIGALRM, self._on_alarm)
        if signal.getsignal(signal.SIGUSR2) != self._on_stop:
            signal.signal(signal.SIGUSR2, self._on_stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _OWN)

    def is_busy(self) -> bool:
        """Whether a handler is running now (read by the watchdog thread)."""
        return self._busy

    def _call(self, name: str, payload: dict[str, Any], soft: float) -> Any:
        """The handler's result; a copy of this process that the handler forked ends here."""
        try:
            result = self._timed(self._registry.get(name), payload, soft)
        except BaseException as error:
            _exit_if_forked(self._pid, error)
            raise
        _exit_if_forked(self._pid, None)
        return result

    def _timed(self, handler: Handler, payload: dict[str, Any], soft: float) -> Any:
        if handler.is_async:
            return self._loop.run(handler(**payload), soft)
        if not soft:
            return self._awaited(handler(**payload), soft)
        self._armed = soft
        signal.setitimer(signal.ITIMER_REAL, soft)
        try:
            result = handler(**payload)
        finally:
            self._armed = 0.0
            signal.setitimer(signal.ITIMER_REAL, 0)
        return self._awaited(result, soft)

    def _awaited(self, result: Any, soft: float) -> Any:
        """A coroutine that a plain function returned (a sync decorator around an ``async
        def``), run on this child's loop as the ``async def`` would be; any other result as
        it is."""
        return self._loop.run(result, soft) if type(result) is CoroutineType else result

    def _report(self, progress: Progress) -> None:
        """Send a progress report of the running job, at most every ``REPORT_EVERY_S`` (a
        report of 1 always goes); never from a copy of this process a handler forked."""
        now = perf_counter()
        if self._write is None or not self._busy or os.getpid() != self._pid:
            return
        if now - self._reported_at < REPORT_EVERY_S and progress.fraction < 1:
            return
        self._reported_at = now
        self._send(encode_progress(self._token, progress))

    def _send(self, frame: bytes) -> None:
        """Write ``frame`` to the parent, after the leases it has not been told of."""
        with self._lock:
            self._tell()
            assert self._write is not None
            self._write(frame)

    def tell_claimed(self) -> None:
        """Tell the parent the leases of this child's claim if it has not been (the watchdog
        calls it while a job runs)."""
        with self._lock:
            self._tell()

    def _tell(self) -> None:
        untold, self._untold = self._untold, None
        if untold is not None and self._write is not None:
            self._write(encode_claimed(*untold))

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        job_id, self._stoppable = self._stoppable, None
        if job_id is None:
            return
        stop = JobCancelled(job_id, "a cancel asked the running job to stop")
        if not self._loop.stop(stop):  # an async handler's task is cancelled on its loop
            raise stop

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        seconds, self._armed = self._armed, 0.0
        if seconds:
            raise SoftTimeLimitExceeded(seconds)

    def _describe(self, error: BaseException, attempt: int) -> ErrorInfo:
        return ErrorInfo.from_exception(
            error, traceback=traceback.format_exc(), attempt=attempt, worker=self._worker
        )


def _stop_signals_are_the_parents(fence: mmap.mmap | None) -> None:
    """Handle SIGTERM (with ``fence``) and SIGHUP so that only the parent stops this child
    (see ``_on_term``)."""
    me = os.getpid()
    if fence is not None:
        signal.signal(signal.SIGTERM, functools.partial(_on_term, fence, me))
    signal.signal(signal.SIGHUP, functools.partial(_on_hangup, me))


def _on_hangup(child_pid: int, signum: int, frame: FrameType | None) -> None:
    """Ignore a hang-up in the pool's child: the parent, told too, stops warm. (A handler, not
    ``SIG_IGN``, which a program a handler executes would inherit; a process forked from the
    child, ``multiprocessing``'s among them, dies of it as by default.)"""
    if os.getpid() != child_pid:
        _die_of(signum)


def _on_term(fence: mmap.mmap, child_pid: int, signum: int, frame: FrameType | None) -> None:
    """Die of this SIGTERM if the parent sent it (a hard time limit), or if this process is
    not the pool's child but one forked from it (``multiprocessing.Process.terminate`` ends
    its processes so); else ignore it: a service manager that stops every process of the
    worker at once (systemd's default) must not kill the running job; the parent, stopping
    warm, lets it finish."""
    if terminating(fence) or os.getpid() != child_pid:
        _die_of(signum)


def _die_of(signum: int) -> None:
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _exit_if_forked(child_pid: int, error: BaseException | None) -> None:
    """End this process now if it is a copy of the child that a handler forked: it must never
    answer on the child's pipe nor read its next task. Status 0 if the handler returned in it,
    else 1 (or what ``sys.exit`` asked for)."""
    if os.getpid() == child_pid:
        return
    status = 0 if error is None else 1
    if isinstance(error, SystemExit) and isinstance(error.code, int):
        status = error.code
    os._exit(status)


def _rss_reader() -> Callable[[], int]:
    import psutil  # noqa: PLC0415 - only with --max-memory-per-child; ~15 ms at every start

    process = psutil.Process()
    return lambda: int(process.memory_info().rss)
