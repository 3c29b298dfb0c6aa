"""How the asyncio pipe fails: a reply later than the client's socket timeout, or a write the
connection refuses, fails its caller and drops the pipe; the watchdog that keeps the timeout
schedules nothing on the event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis

from foundry.adapters.redis.async_pipe import SocketPipe
from foundry.adapters.redis.async_pipes import Pipes
from foundry.adapters.redis.async_runner import pack_command
from foundry.adapters.redis.connection import RedisSettings, connect_async
from tests.backends import unique_prefix

pytestmark = pytest.mark.redis


class _TimerCountingLoop(asyncio.SelectorEventLoop):
    """The stock selector loop, counting the timers scheduled on it."""

    timers = 0

    def call_at(
        self, when: float, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        self.timers += 1
        return super().call_at(when, callback, *args, context=context)


async def _sent(pipes: Pipes, *args: str) -> Any:
    future = pipes.send(pack_command(args))
    assert future is not None
    return await future


def test_a_reply_later_than_the_socket_timeout_fails_its_caller_and_drops_the_pipe(
    redis_url: str,
) -> None:
    settings = RedisSettings(url=redis_url, socket_timeout=timedelta(milliseconds=200))

    async def main() -> tuple[Exception | None, bool, Any]:
        pipes = Pipes(connect_async(settings))
        pipe = await pipes.open()
        with pytest.raises(redis.TimeoutError, match=r"no reply from Redis within 0\.2 s"):
            await _sent(pipes, "BLPOP", unique_prefix("never"), "0")
        reopened = await pipes.open()
        reply = await _sent(pipes, "PING")
        await pipes.close()
        return pipe.lost, reopened is pipe, reply

    lost, same, reply = asyncio.run(main())

    assert isinstance(lost, redis.TimeoutError)
    assert (same, reply) == (False, b"PONG")


def test_replies_awaited_under_the_socket_timeout_schedule_no_timer_on_the_loop(
    redis_url: str,
) -> None:
    loop = _TimerCountingLoop()

    async def main() -> tuple[list[Any], int]:
        pipes = Pipes(connect_async(RedisSettings(url=redis_url)))  # a 5 s socket timeout
        await pipes.open()
        before = loop.timers
        replies = [await _sent(pipes, "PING") for _ in range(3)]
        replies += await asyncio.gather(*(_sent(pipes, "PING") for _ in range(3)))
        scheduled = loop.timers - before
        await pipes.close()
        return replies, scheduled

    try:
        replies, scheduled = loop.run_until_complete(main())
    finally:
        loop.close()

    assert replies == [b"PONG"] * 6
    assert scheduled == 0


def test_a_write_the_connection_refuses_fails_its_caller_and_drops_the_pipe(redis_url: str) -> None:
    async def main() -> tuple[list[Any], bool, Any]:
        pipes = Pipes(connect_async(RedisSettings(url=redis_url)))
        pipe = await pipes.open()
        assert isinstance(pipe, SocketPipe)
        pipe._socket.shutdown(socket.SHUT_WR)  # every write on it fails from now on
        # Sent in this step, before the loop reads Redis's end of the connection.
        refused = await asyncio.gather(pipes.send(pack_command(["PING"])), return_exceptions=True)
        reopened = await pipes.open()
        reply = await _sent(pipes, "PING")
        await pipes.close()
        return refused, reopened is pipe, reply

    refused, same, reply = asyncio.run(main())

    assert [type(error) for error in refused] == [redis.ConnectionError]
    assert "connection to Redis lost: [Errno 32] Broken pipe" in str(refused[0])
    assert (same, reply) == (False, b"PONG")
