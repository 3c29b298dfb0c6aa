"""Reply: the reply future that resumes its awaiting task inside the read that got the reply."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from foundry.adapters.redis.async_reply import Reply

_seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="none")


async def _awaited_in_a_task(reply: Reply) -> tuple[asyncio.Task[Any], list[str]]:
    steps: list[str] = []

    async def caller() -> Any:
        _seen.set("caller's")
        value = await reply
        steps.append(f"resumed in the {_seen.get()} context")
        return value

    task = asyncio.get_running_loop().create_task(caller())
    await asyncio.sleep(0)  # the task runs up to its await
    return task, steps


def test_wake_resumes_the_awaiting_task_before_wake_returns() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        reply = Reply(loop=loop)
        task, steps = await _awaited_in_a_task(reply)
        woken = asyncio.Event()

        def read() -> None:  # as a protocol's data_received runs: a loop callback
            reply.wake(b"OK")
            steps.append("wake returned")
            woken.set()

        loop.call_soon(read)
        await woken.wait()
        assert steps == ["resumed in the caller's context", "wake returned"]
        assert task.done()
        assert task.result() == b"OK"

    asyncio.run(scenario())


def test_wake_from_a_running_task_schedules_the_waiter_instead() -> None:
    async def scenario() -> None:
        reply = Reply(loop=asyncio.get_running_loop())
        task, steps = await _awaited_in_a_task(reply)
        reply.wake(7)  # this coroutine is a running task: the other cannot be entered now
        assert steps == []
        assert not task.done()
        assert await task == 7
        assert steps == ["resumed in the caller's context"]

    asyncio.run(scenario())


def test_set_result_and_set_exception_schedule_the_waiter_as_a_future_does() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        ok, failing = Reply(loop=loop), Reply(loop=loop)
        task, steps = await _awaited_in_a_task(ok)
        failed, _ = await _awaited_in_a_task(failing)
        ok.set_result("value")
        failing.set_exception(ConnectionError("lost"))
        assert steps == []
        assert await task == "value"
        with pytest.raises(ConnectionError, match="lost"):
            await failed

    asyncio.run(scenario())


def test_a_cancelled_caller_leaves_the_reply_cancelled_and_a_later_wake_is_dropped() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        reply = Reply(loop=loop)
        task, _ = await _awaited_in_a_task(reply)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert reply.cancelled()
        loop.call_soon(reply.wake, b"late")
        await asyncio.sleep(0)
        assert reply.cancelled()

    asyncio.run(scenario())


def test_a_timeout_around_the_await_cancels_the_wait() -> None:
    async def scenario() -> None:
        reply = Reply(loop=asyncio.get_running_loop())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await reply
        assert reply.cancelled()

    asyncio.run(scenario())


def test_other_callbacks_and_gather_see_the_result() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        first, second = Reply(loop=loop), Reply(loop=loop)
        heard: list[Any] = []
        first.add_done_callback(lambda done: heard.append(("kept", done.result())))
        first.add_done_callback(lambda done: heard.append(("plain", done.result())))
        gathered = asyncio.gather(first, second)
        loop.call_soon(first.wake, 1)
        loop.call_soon(second.wake, 2)
        assert list(await gathered) == [1, 2]
        assert sorted(heard) == [("kept", 1), ("plain", 1)]

    asyncio.run(scenario())


def test_a_removed_callback_is_not_called() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        reply = Reply(loop=loop)
        heard: list[Any] = []

        def callback(done: asyncio.Future[Any]) -> None:
            heard.append(done.result())

        reply.add_done_callback(callback)
        assert reply.remove_done_callback(callback) == 1
        loop.call_soon(reply.wake, 1)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert reply.result() == 1
        assert heard == []

    asyncio.run(scenario())
