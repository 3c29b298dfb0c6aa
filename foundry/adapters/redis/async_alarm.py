"""``call_at``: a callback handed to its event loop at a given time by one daemon thread of
the process, in place of a loop timer.

asyncio's selector loops work out their select's timeout from their timer heap at every turn:
while a timer waits on the loop, each turn reads the clock twice more and walks the heap, about
4,000 instructions per awaited call (a thirtieth of a dispatch). The pipes' watchdog waits as
long as replies are awaited; set here, it costs the loop nothing until it rings (once per
socket timeout at most), and then one turn. The thread starts at the first alarm and sleeps
until the earliest is due. A forked child starts over with no alarm and no thread (its own
starts at its first alarm): the parent's thread, and the lock it may have held, stay behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import threading
from collections.abc import Callable
from time import monotonic
from typing import Any

log = logging.getLogger(__name__)


class Alarm:
    """A callback that runs in its loop once due, unless ``cancel`` came first."""

    __slots__ = ("_args", "_callback", "_loop", "cancelled")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        callback: Callable[..., object],
        args: tuple[Any, ...],
    ) -> None:
        self._loop = loop
        self._callback = callback
        self._args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback; the alarm (its loop, callback and arguments) is let go now,
        not when it would have been due."""
        self.cancelled = True
        _clock.drop(self)

    def ring(self) -> None:
        """Hand the callback to its loop (from the alarm thread); a closed loop drops it."""
        if self.cancelled:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: nothing there waits any more
            self._loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        if not self.cancelled:
            self._callback(*self._args)


def call_at(
    when: float, loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: Any
) -> Alarm:
    """``callback(*args)`` run in ``loop`` at ``when`` (``time.monotonic``) or just after,
    unless the returned alarm is cancelled first."""
    alarm = Alarm(loop, callback, args)
    _clock.set(when, alarm)
    return alarm


class _Clock:
    """The alarms of this process, rung by one daemon thread started at the first."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._started = False

    def set(self, when: float, alarm: Alarm) -> None:
        with self._changed:
            heapq.heappush(self._due, (when, next(self._order), alarm))
            if not self._started:
                self._started = True
                name = "foundry-redis-alarm"
                threading.Thread(target=self._run, name=name, daemon=True).start()
            elif self._due[0][2] is alarm:
                self._changed.notify()  # earlier than the one the thread sleeps to

    def drop(self, alarm: Alarm) -> None:
        """Take ``alarm`` out (the thread may wake at its time and find nothing due)."""
        with self._changed:
            kept = [entry for entry in self._due if entry[2] is not alarm]
            if len(kept) != len(self._due):
                heapq.heapify(kept)
                self._due = kept

    def _run(self) -> None:
        with self._changed:
            while True:
                delay = self._due[0][0] - monotonic() if self._due else None
                if delay is None or delay > 0:
                    self._changed.wait(delay)
                    continue
                alarm = heapq.heappop(self._due)[2]
                try:
                    alarm.ring()
                except Exception:  # the thread rings every other alarm: it must go on
                    log.exception("a Redis watchdog alarm could not be handed to its loop")


def _start_over() -> None:
    """In a forked child: no alarm and no thread (the parent's lock may have been held)."""
    global _clock  # noqa: PLW0603  # replaced once per fork, read at every call_at
    _clock = _Clock()


_clock = _Clock()
os.register_at_fork(after_in_child=_start_over)
