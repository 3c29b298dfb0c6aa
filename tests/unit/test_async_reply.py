"""wake: a reply future's result that resumes its awaiting task inside the read that got it."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from foundry.adapters.redis.async_reply import wake

_seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="none")


async def _awaited_in_a_task(reply: asyncio.Future[Any]) -> tuple[asyncio.Task[Any], list[str]]:
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
        reply = loop.create_future()
        task, steps = await _awaited_in_a_task(reply)
        woken = asyncio.Event()

        def read() -> None:  # as a pipe's read runs: a loop callback
            wake(reply, b"OK")
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
        reply = asyncio.get_running_loop().create_future()
        task, steps = await _awaited_in_a_task(reply)
        wake(reply, 7)  # this coroutine is a running task: the other cannot be entered now
        assert steps == []
        assert not task.done()
        assert await task == 7
        assert steps == ["resumed in the caller's context"]

    asyncio.run(scenario())


def test_a_future_nobody_awaits_gets_its_result() -> None:
    async def scenario() -> None:
        reply = asyncio.get_running_loop().create_future()
        wake(reply, "value")
        assert reply.result() == "value"

    asyncio.run(scenario())


def test_a_cancelled_caller_leaves_the_reply_cancelled_and_resumes_once() -> None:
    async def scenario() -> None:
        reply = asyncio.get_running_loop().create_future()
        task, steps = await _awaited_in_a_task(reply)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert reply.cancelled()
        assert steps == []

    asyncio.run(scenario())


def test_a_timeout_around_the_await_cancels_the_wait() -> None:
    async def scenario() -> None:
        reply = asyncio.get_running_loop().create_future()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await reply
        assert reply.cancelled()

    asyncio.run(scenario())


def test_several_callbacks_and_gather_see_the_result() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()
        heard: list[Any] = []
        first.add_done_callback(lambda done: heard.append(("one", done.result())))
        first.add_done_callback(lambda done: heard.append(("two", done.result())))
        gathered = asyncio.gather(first, second)
        loop.call_soon(wake, first, 1)
        loop.call_soon(wake, second, 2)
        assert list(await gathered) == [1, 2]
        assert sorted(heard) == [("one", 1), ("two", 1)]

    asyncio.run(scenario())


def test_a_removed_callback_is_not_called() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        heard: list[Any] = []

        def callback(done: asyncio.Future[Any]) -> None:
            heard.append(done.result())

        reply.add_done_callback(callback)
        assert reply.remove_done_callback(callback) == 1
        loop.call_soon(wake, reply, 1)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert reply.result() == 1
        assert heard == []

    asyncio.run(scenario())


def test_the_one_callback_runs_once_inside_wake() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        heard: list[Any] = []
        reply.add_done_callback(lambda done: heard.append(done.result()))
        done = asyncio.Event()

        def read() -> None:
            wake(reply, 3)
            heard.append("wake returned")
            done.set()

        loop.call_soon(read)
        await done.wait()
        await asyncio.sleep(0)
        assert heard == [3, "wake returned"]

    asyncio.run(scenario())
