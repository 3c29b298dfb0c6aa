"""call_at: callbacks handed to their event loops when due by a thread of the process, not by
a timer of the loop."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import weakref
from time import monotonic

from foundry.adapters.redis.async_alarm import call_at

#: How long a test waits for an alarm due at once before it calls it lost (no speed measured).
LOST = 10


async def _rung_at(when: float) -> list[int]:
    """The threads in which an alarm for ``when`` ran its callback (awaited until it did)."""
    rung = asyncio.Event()
    threads: list[int] = []

    def callback() -> None:
        threads.append(threading.get_ident())
        rung.set()

    call_at(when, asyncio.get_running_loop(), callback)
    async with asyncio.timeout(LOST):
        await rung.wait()
    return threads


def test_an_alarm_runs_its_callback_in_its_loop_once_due() -> None:
    assert asyncio.run(_rung_at(monotonic())) == [threading.get_ident()]


def test_an_alarm_due_sooner_than_the_one_awaited_rings_first() -> None:
    async def scenario() -> list[int]:
        later = call_at(monotonic() + 3600, asyncio.get_running_loop(), print, "never")
        threads = await _rung_at(monotonic())
        later.cancel()
        return threads

    assert asyncio.run(scenario()) == [threading.get_ident()]


def test_a_cancelled_alarm_does_not_run_its_callback() -> None:
    seen: list[str] = []

    async def scenario() -> None:
        cancelled = call_at(monotonic(), asyncio.get_running_loop(), seen.append, "cancelled")
        cancelled.cancel()
        await _rung_at(monotonic())  # due after it: rung after it

    asyncio.run(scenario())

    assert seen == []


def test_a_cancelled_alarm_lets_go_of_its_callback_at_once() -> None:
    class Owner:
        def ring(self) -> None: ...

    async def scenario() -> weakref.ref[Owner]:
        owner = Owner()
        alarm = call_at(monotonic() + 3600, asyncio.get_running_loop(), owner.ring)
        alarm.cancel()
        return weakref.ref(owner)

    owned = asyncio.run(scenario())
    gc.collect()

    assert owned() is None


def test_an_alarm_of_a_closed_loop_is_dropped_and_the_others_still_ring() -> None:
    closed = asyncio.new_event_loop()
    call_at(monotonic(), closed, print, "never")
    closed.close()

    assert asyncio.run(_rung_at(monotonic())) == [threading.get_ident()]


def test_a_forked_child_rings_its_alarms_on_a_thread_of_its_own() -> None:
    asyncio.run(_rung_at(monotonic()))  # the parent's alarm thread runs
    child = os.fork()
    if child == 0:  # pragma: no cover  # the child's outcome is its exit status
        code = 1
        try:
            asyncio.run(_rung_at(monotonic()))
            code = 0
        finally:
            os._exit(code)

    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
