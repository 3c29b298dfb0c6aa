"""The pool child's event loop for ``async def`` handlers, without a pool."""

from __future__ import annotations

import asyncio

import pytest

from foundry.application.errors import SoftTimeLimitExceeded
from foundry.application.pool.coroutines import ChildLoop
from tests.log_support import foundry_messages


async def loop_of_this_run() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_every_run_of_one_child_loop_uses_the_same_event_loop() -> None:
    child = ChildLoop()

    first, second = child.run(loop_of_this_run(), 0), child.run(loop_of_this_run(), 5.0)

    assert first is second
    assert not first.is_running()


def test_the_soft_limit_cancels_the_handler_which_may_clean_up() -> None:
    seen: list[str] = []

    async def overruns() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    with pytest.raises(SoftTimeLimitExceeded) as raised:
        ChildLoop().run(overruns(), 0.05)

    assert seen == ["cancelled"]
    assert raised.value.seconds == 0.05


def test_a_timeout_error_of_the_handlers_own_is_not_the_soft_limit() -> None:
    async def times_out() -> None:
        async with asyncio.timeout(0):
            await asyncio.sleep(1)

    with pytest.raises(TimeoutError) as raised:
        ChildLoop().run(times_out(), 30.0)

    assert not isinstance(raised.value, SoftTimeLimitExceeded)


def test_a_handler_that_returns_before_the_soft_limit_gives_its_value() -> None:
    async def quick(value: int) -> int:
        await asyncio.sleep(0)
        return value * 2

    assert ChildLoop().run(quick(21), 30.0) == 42


def test_a_stop_cancels_the_running_handler_which_fails_with_the_stops_error() -> None:
    child = ChildLoop()
    seen: list[str] = []

    class Stopped(Exception):
        pass

    async def runs_until_stopped() -> None:
        asyncio.get_running_loop().call_later(0.01, child.stop, Stopped("asked to stop"))
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    with pytest.raises(Stopped, match="asked to stop"):
        child.run(runs_until_stopped(), 30.0)

    assert seen == ["cancelled"]
    assert child.run(loop_of_this_run(), 0) is not None  # the loop serves the next job


def test_a_stop_with_no_handler_running_says_so() -> None:
    child = ChildLoop()

    assert child.stop(RuntimeError("nothing to stop")) is False
    child.run(loop_of_this_run(), 0)
    assert child.stop(RuntimeError("nothing to stop")) is False


def test_a_task_an_earlier_handler_left_that_raises_system_exit_does_not_fail_the_next_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    child = ChildLoop()

    async def leaves_a_task() -> int:
        async def exits() -> None:
            await asyncio.sleep(0)
            raise SystemExit(9)

        asyncio.get_running_loop().create_task(exits())
        return 1

    async def next_job() -> int:
        await asyncio.sleep(0.01)
        return 2

    assert child.run(leaves_a_task(), 0) == 1
    assert child.run(next_job(), 0) == 2
    assert any("left behind" in message for message in foundry_messages(caplog))


def test_a_handler_raising_system_exit_itself_still_fails() -> None:
    async def exits() -> None:
        await asyncio.sleep(0)
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        ChildLoop().run(exits(), 0)
