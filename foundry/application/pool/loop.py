"""The pool's event loop: child messages, child exits and timers, fed to the supervisor.

It owns the selector, the signal handlers and the real workforce (forked children); every
decision about them is the ``Supervisor``'s.

Exit codes of ``Pool.run``:

* ``0``: stopped cleanly (a warm stop, or burst mode found the queues drained). Jobs still
  running when the grace period ran out were killed and released, not lost.
* ``1``: the pool failed (children kept dying at start-up, or an unexpected error); running
  jobs were killed and released where the queue could be reached.
* ``130``: stopped cold (a second SIGINT/SIGTERM, a SIGQUIT, or ``request_stop(cold=True)``):
  running jobs were killed at once and released, attempts not spent.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from random import Random
from types import FrameType
from typing import Protocol

from foundry.application.outcome import PoolObserver
from foundry.application.pool.child_claims import (
    CLAIM_FAILED,
    CLAIMED,
    decode_claim_failed,
    decode_claimed,
)
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.heartbeat import Heartbeat
from foundry.application.pool.processes import Child, ProcessWorkforce
from foundry.application.pool.supervisor import Supervisor
from foundry.application.pool.wire import (
    PROGRESS,
    READY,
    SKIPPED,
    BadFrame,
    decode_progress,
    decode_reply,
    decode_skipped,
)
from foundry.application.registry import JobRegistry
from foundry.ports import Clock, QueuePort, WorkerRegistry

log = logging.getLogger(__name__)

__all__ = ["Pool"]

#: The loop wakes at least this often (seconds), whatever its timers say.
MAX_SLEEP_S = 1.0
_PIPE, _EXIT, _WAKE = "pipe", "exit", "wake"
#: At most this many frames are read from a child's pipe once it has exited (it leaves a
#: reply, a skip and a few progress reports at most).
_FRAMES_AT_EXIT = 64


class Timer(Protocol):
    """A duty the parent runs between pool events (the scheduler): it must be short, and it
    must not start a thread or fork (children are forked from this process at any time)."""

    def next_wake(self) -> float:
        """When (``time.monotonic()``) ``tick`` next has something to do."""
        ...

    def tick(self, now: float) -> None:
        """Do what is due at ``now``; never raise."""
        ...


class Pool:
    """Runs jobs from ``config.queues`` in ``config.concurrency`` forked children.

    Construct it after the handlers are imported (children inherit them at fork). ``run``
    blocks until the pool stops and returns an exit code (see the module docstring).
    SIGTERM/SIGINT start a warm stop; a second one is cold. SIGHUP starts a warm stop, never a
    cold one (a closed terminal must not kill running jobs); SIGQUIT (Ctrl-\\ in a terminal) a
    cold one.
    """

    def __init__(
        self,
        queue: QueuePort,
        registry: JobRegistry,
        config: PoolConfig,
        *,
        clock: Clock,
        workers: WorkerRegistry | None = None,
        child_init: Callable[[], None] | None = None,
        observer: PoolObserver | None = None,
        rng: Random | None = None,
        timers: Sequence[Timer] = (),
    ) -> None:
        self.config = config
        self._timers = tuple(timers)
        self._selector = selectors.DefaultSelector()
        # The exits and the wake-up alone: a sleep through the children's answers.
        self._calm = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._workforce = ProcessWorkforce(
            registry,
            child_init=child_init,
            max_rss=config.max_rss_bytes,
            inherited=self._parent_fds,
            on_spawn=self._watch,
            nice=config.child_nice,
            queue=queue if queue.claims_from_forks else None,
        )
        heartbeat = Heartbeat(
            workers, clock, config.queues, config.concurrency, config.heartbeat_every
        )
        self.supervisor = Supervisor(
            queue,
            registry,
            config,
            self._workforce,
            clock=clock,
            heartbeat=heartbeat,
            observer=observer,
            rng=rng,
        )
        self._signals = 0
        # Without pidfds a child's exit sentinel is a pipe a process it forked may hold open:
        # its exit is then also looked for on SIGCHLD (off the main thread, where no signal
        # handler can be installed: on the loop's timed turns).
        self._looks_for_exits = not self._workforce.pidfds
        self._child_signalled = False
        self._sigchld = False  # whether SIGCHLD is this loop's
        self._partial: dict[int, Child] = {}  # children whose pipe holds a frame read in part

    @property
    def worker_id(self) -> str:
        """This pool's id in the worker registry."""
        return self.supervisor.heartbeat.id

    def request_stop(self, cold: bool = False) -> None:
        """Stop claiming and let running jobs finish within ``grace`` (``cold``: kill them now).

        Safe to call from a signal handler or another thread.
        """
        self.supervisor.stopping.request(cold=cold)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"s")

    def run(self) -> int:
        """Run until stopped; the exit code."""
        restore = self._install_signals()
        sup = self.supervisor
        log.info(
            "pool %s starting: queues %s, %s children",
            self.worker_id,
            ",".join(self.config.queues),
            self.config.concurrency,
        )
        try:
            sup.start()
            sup.first_claims_first(time.monotonic())
            self._loop()
        except Exception:
            log.exception("the pool failed; stopping cold")
            sup.abort(time.monotonic())
        finally:
            self._workforce.close(self.config.term_grace.total_seconds() + 1.0)
            sup.heartbeat.forget()
            restore()
            self._selector.close()
            self._calm.close()
            self._wake_r.close()
            self._wake_w.close()
        return self._exit_code()

    def _loop(self) -> None:
        sup = self.supervisor
        wake_at = 0.0  # when the last sleep was due to end, had no event come first
        woken = False  # whether events ended that sleep
        # The time is read again after each step that may write: a write can block for long
        # (one waiting for lagging replicas), and the supervisor renews between its writes.
        while True:
            now = time.monotonic()
            early = woken and now < wake_at  # no timed duty is due yet (events set none sooner)
            sup.tick(now, early=early)
            if self._looks_for_exits or self._partial:
                self._watch_children(now, early=early)
            if sup.finished:
                return
            if self._timers and not early and not sup.stopping.requested:
                sup.run_timers(timer.tick for timer in self._timers)
            sup.fill(time.monotonic())
            events = self._selector.select(0)
            woken = False
            if not events:  # a quiet moment: write what waits, claim, then sleep
                sup.quiet(time.monotonic(), filled=True)
                now = time.monotonic()
                wake_at = self._next_wake(now)
                events = self._sleep(now, wake_at)
                woken = bool(events)
            if len(events) > 1:
                events.sort(key=lambda event: event[0].data[0] != _PIPE)  # results before deaths
            for key, _ in events:
                self._handle(key.data)
            if sup.settler.full:
                sup.settler.flush()

    def _sleep(self, now: float, wake_at: float) -> list[tuple[selectors.SelectorKey, int]]:
        """Sleep until ``wake_at`` or an event; the events. While no child's answer is due
        before a later moment (``Supervisor.read_by``), answers do not end the sleep: they
        are read together when it ends."""
        read_by = now if self._partial else self.supervisor.read_by(now)
        if read_by <= now:
            return self._selector.select(max(min(wake_at - now, MAX_SLEEP_S), 0.0))
        self._calm.select(max(min(wake_at, read_by) - now, 0.0))
        return self._selector.select(0)

    def _handle(self, data: tuple[str, int, Child | None]) -> None:
        kind, slot, child = data
        if kind == _WAKE:
            self._wake_r.recv(4096)
        elif child is not None and self._workforce.children.get(slot) is child:
            if kind == _PIPE:
                self._read(slot, child)
            else:
                self._exited(slot, child)

    def _read(self, slot: int, child: Child) -> bool:
        try:
            frame = child.conn.read_frame()
        except BadFrame as error:
            self._garbled(slot, child, error)
            return False
        except (EOFError, OSError):
            with contextlib.suppress(KeyError, ValueError):  # the exit sentinel reports it
                self._selector.unregister(child.conn)
            return False
        if frame is None:  # its rest comes later (by its deadline: _drop_overdue_frames)
            self._partial[slot] = child
            return False
        if self._partial:
            self._partial.pop(slot, None)
        now = time.monotonic()
        try:
            deliver = self._event_of(frame)
        except Exception as error:  # no frame its child wrote: something else wrote on the pipe
            self._garbled(slot, child, error)
            return False
        deliver(slot, now)
        return True

    def _event_of(self, frame: bytes) -> Callable[[int, float], None]:
        """The supervisor's call (slot, now) for a child's ``frame``; raises for a frame no
        child wrote."""
        sup = self.supervisor
        if frame == READY:
            return sup.child_ready
        kind = frame[:1]
        if kind == PROGRESS:
            token, progress = decode_progress(frame)
            return lambda slot, _: sup.child_progress(slot, token, progress)
        if kind == SKIPPED:
            task, token = decode_skipped(frame)
            return lambda slot, now: sup.child_skipped(slot, task, token, now)
        if kind == CLAIMED:
            leases, started = decode_claimed(frame)
            return lambda slot, now: sup.child_claimed(slot, leases, started, now)
        if kind == CLAIM_FAILED:
            error = decode_claim_failed(frame)
            return lambda slot, now: sup.child_claim_failed(slot, error, now)
        reply = decode_reply(frame)
        return lambda slot, now: sup.child_replied(slot, reply, now)

    def _drop_overdue_frames(self, now: float) -> None:
        """A frame not whole by its deadline was not its child's: that child is killed."""
        for slot, child in list(self._partial.items()):
            if child.conn.closed or self._workforce.children.get(slot) is not child:
                del self._partial[slot]
                continue
            error = child.conn.overdue(now)
            if error is not None:
                self._garbled(slot, child, error)

    def _garbled(self, slot: int, child: Child, error: Exception) -> None:
        """Stop reading a pipe that carried a frame its child did not write (what follows
        cannot be trusted, and may never end); the supervisor kills the child."""
        if self._partial:
            self._partial.pop(slot, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(child.conn)
        child.conn.close()
        self.supervisor.child_garbled(slot, error)

    def _exited(self, slot: int, child: Child) -> None:
        # Bounded: a process the child forked may hold its pipe and write on it without end.
        for _ in range(_FRAMES_AT_EXIT):
            if not (_has_frame(child) and self._read(slot, child)):
                break
        exitcode = self._workforce.exitcode(slot)
        for watched in (child.conn, child.process.sentinel):
            with contextlib.suppress(KeyError, ValueError, OSError):  # OSError: closed, garbled
                self._selector.unregister(watched)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._calm.unregister(child.process.sentinel)
        child.conn.close()
        if self._partial:
            self._partial.pop(slot, None)
        self.supervisor.child_exited(slot, exitcode, time.monotonic())

    def _next_wake(self, now: float) -> float:
        """When the supervisor, a timer or a frame read in part next has something due."""
        wake_at = self.supervisor.next_wake(now)
        for timer in self._timers:
            wake_at = min(wake_at, timer.next_wake())
        for child in self._partial.values():
            wake_at = min(wake_at, child.conn.frame_deadline)
        return wake_at

    def _watch_children(self, now: float, *, early: bool) -> None:
        """What the exit sentinels and the selector do not report: the exits a pipe sentinel
        hides (no pidfds), and frames not whole by their deadline."""
        due = self._child_signalled or not (self._sigchld or early)  # no SIGCHLD: timed turns
        if self._looks_for_exits and due:
            self._look_for_exits()
        if self._partial:
            self._drop_overdue_frames(now)

    def _look_for_exits(self) -> None:
        """Read the exits of children whose pipe sentinels did not report them."""
        self._child_signalled = False
        for slot, child in self._workforce.exited():
            if self._workforce.children.get(slot) is child:
                self._exited(slot, child)

    def _watch(self, slot: int, child: Child) -> None:
        self._selector.register(child.conn, selectors.EVENT_READ, (_PIPE, slot, child))
        self._selector.register(child.process.sentinel, selectors.EVENT_READ, (_EXIT, slot, child))
        self._calm.register(child.process.sentinel, selectors.EVENT_READ, (_EXIT, slot, child))

    def _watch_wake(self) -> None:
        for selector in (self._selector, self._calm):
            selector.register(self._wake_r, selectors.EVENT_READ, (_WAKE, -1, None))

    def _parent_fds(self) -> list[int]:
        fds = [self._selector.fileno(), self._calm.fileno(), self._wake_r.fileno()]
        fds.append(self._wake_w.fileno())
        children = self._workforce.children.values()
        return fds + [child.conn.fileno() for child in children if not child.conn.closed]

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            log.debug("pool not on the main thread: stop it with request_stop()")
            self._watch_wake()
            return lambda: None
        self._wake_w.setblocking(False)
        self._watch_wake()
        old_fd = signal.set_wakeup_fd(self._wake_w.fileno())
        old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        old[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        old[signal.SIGQUIT] = signal.signal(signal.SIGQUIT, self._on_quit)
        if self._looks_for_exits:  # its wake-up byte ends the loop's sleep
            old[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, self._on_child)
            signal.siginterrupt(signal.SIGCHLD, False)  # a blocking call it lands in goes on
            self._sigchld = True

        def restore() -> None:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in old.items():
                signal.signal(sig, handler)

        return restore

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # No logging here: the signal may have interrupted a log call holding loguru's lock.
        self._signals += 1
        self.supervisor.stopping.request(cold=self._signals > 1)

    def _on_hangup(self, signum: int, frame: FrameType | None) -> None:
        # A closed terminal (or a process manager) hangs up: stop warm, as on SIGTERM, and
        # leave the next SIGTERM or SIGINT warm too (only a second one of those is cold).
        self.supervisor.stopping.request(cold=False)

    def _on_quit(self, signum: int, frame: FrameType | None) -> None:
        # Ctrl-\ asks to quit now: stop cold (jobs killed and released, attempts unspent),
        # never die with the jobs' leases left to lapse.
        self.supervisor.stopping.request(cold=True)

    def _on_child(self, signum: int, frame: FrameType | None) -> None:
        self._child_signalled = True

    def _exit_code(self) -> int:
        sup = self.supervisor
        if sup.exit_code is not None:
            return sup.exit_code
        return 130 if sup.stopping.cold else 0


def _has_frame(child: Child) -> bool:
    try:
        return child.conn.poll()
    except (EOFError, OSError):
        return False
