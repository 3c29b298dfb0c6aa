"""The library's functions over a ``redis.asyncio`` client, pipelined on one connection.

Each call is written as soon as it is made (with the other calls of the same loop turn, while
replies are awaited: see ``async_pipe``), and its reply comes back in order, so 100 concurrent
dispatches cost about one round trip, not 100. The runner sends only calls that are safe to
re-send (``enqueue``, ``batch``, ``cancel``, reads, ``SADD``): a call whose connection is lost
before its reply is sent again under the connection's retry policy, and a call Redis answered
"Function not found" (restarted without persistence, ``FUNCTION FLUSH``) is sent again once the
library is loaded, since it never ran. Error replies are raised to their own caller only.

The client's socket timeout applies to each reply: one watchdog (an alarm rung by a thread of
the process, set again only when it rings) drops the connection when the oldest awaited reply
is late, and the calls awaiting it are sent again (or fail, once the retries are spent, with
``redis.TimeoutError``).

The connection is this runner's own (opened with the client's settings, outside its pool) and
belongs to the event loop and process that opened it: another loop or a forked child opens a
fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.exceptions import ReadOnlyError, ResponseError

from foundry.adapters.redis.async_pipe import Pipe
from foundry.adapters.redis.async_pipes import Pipes
from foundry.adapters.redis.durability import WritesRefused, refused_for_now
from foundry.adapters.redis.runner import Arg, Packer, library, missing, pack_command

_RETRIED = (redis.ConnectionError, redis.TimeoutError)


class AsyncFunctionRunner:
    """FCALLs (and plain commands) of one asyncio client; see the module's docstring."""

    #: Whether ``call`` sends ``REDIS_WAIT_REPLICAS``'s ``WAIT`` itself (on Cluster, behind the
    #: call on its master's connection); otherwise the queue sends it on this connection.
    waits_for_replicas = False

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.library = library()
        self._pack = Packer(self.library.function).pack
        self._load = pack_command(["FUNCTION", "LOAD", "REPLACE", self.library.text])
        self._pipes = Pipes(client, self._settle)
        #: ``slots``: the loop they serve, and its free connections of the client's pool.
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def call(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Awaitable[Any]:
        """FCALL ``name``; its reply (a Redis error reply raises ``ResponseError``): the open
        pipe's future itself, awaited with no coroutine between (an error reply or a lost
        connection is ``_settle``'s), else ``_resent``, which sends under the retry policy."""
        packed = self._pack(name, keys, args)
        return self._pipes.send(packed) or self._resent(packed)

    async def call_many(
        self,
        calls: Sequence[tuple[str, Sequence[str], Sequence[Arg]]],
        *,
        errors_in_place: bool = False,
    ) -> list[Any]:
        """Several calls in one write, replies in order; the first error reply is raised once
        all arrived, or with ``errors_in_place`` returned in its call's place."""
        replies = await self._retried([self._pack(name, keys, args) for name, keys, args in calls])
        if not errors_in_place:
            for reply in replies:
                _raised(reply)
        return replies

    def command(self, *args: Arg) -> Awaitable[Any]:
        """One plain command (it must be safe to re-send), in the same pipe as the calls and
        sent as ``call`` sends them."""
        packed = pack_command(args)
        return self._pipes.send(packed) or self._resent(packed)

    def slots(self) -> asyncio.Semaphore:
        """The running loop's count of the connections of the client's pool (a cluster's:
        of each node's) still free: a command that takes one (a blocking one, or any on a
        cluster) holds a slot, so those beyond the pool wait for their turn instead of
        failing with redis-py's "Too many connections"."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(_pool_size(self.client)))
        return self._slots[1]

    async def aclose(self) -> None:
        """Close the runner's connection (a later call opens a new one)."""
        await self._pipes.close()

    async def _resent(self, packed: bytes) -> Any:
        """One call's reply, sent under the retry policy; an error reply is raised."""
        return _raised((await self._retried([packed]))[0])

    def _settle(
        self, pipe: Pipe, future: asyncio.Future[Any], packed: bytes, error: Exception
    ) -> None:
        """A call's error reply or lost connection: raised to its caller, or the call sent
        again (its connection lost, its function missing, its master demoted) by a task
        whose outcome becomes the future's (a caller that leaves cancels it)."""
        again = isinstance(error, _RETRIED) or (
            isinstance(error, ResponseError)
            and (missing(error) or _demoted(pipe, error) or refused_for_now(error))
        )
        if not again:
            future.set_exception(error)
            return
        resending = pipe.loop.create_task(self._resent(packed))
        resending.add_done_callback(partial(_handed_on, future))
        future.add_done_callback(partial(_left, resending))

    async def _retried(self, packed: list[bytes]) -> list[Any]:
        """The replies to ``packed`` (error replies as values), sent under the connection's
        retry policy; the library is loaded first where Redis lacks it."""

        async def attempt() -> list[Any]:
            pipe = await self._pipes.open()
            replies = await self._exchange(pipe, packed)
            unloaded = [i for i, reply in enumerate(replies) if _is_missing(reply)]
            if unloaded:
                _raised((await self._exchange(pipe, [self._load]))[0])
                again = await self._exchange(pipe, [packed[i] for i in unloaded])
                for index, reply in zip(unloaded, again, strict=True):
                    replies[index] = reply
            if any(_demoted(pipe, reply) for reply in replies):
                error = redis.ConnectionError("the master Redis was demoted to a replica")
                pipe.close(error)
                raise error
            for reply in replies:
                if refused_for_now(reply):
                    refused = WritesRefused(reply)
                    pipe.close(refused)
                    raise refused
            return replies

        replies: list[Any] = await self._pipes.retry().call_with_retry(attempt, _nothing)
        return replies

    async def _exchange(self, pipe: Pipe, packed: list[bytes]) -> list[Any]:
        """Write every call in one write; their replies, in order."""
        futures = pipe.send_many(packed, self._pipes.due(pipe))
        return list(await asyncio.gather(*futures))


def _pool_size(client: redis.asyncio.Redis) -> int:
    """How many connections ``client``'s pool opens at most (a cluster's: per node)."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        return int(pool.max_connections)
    kwargs = client.nodes_manager.connection_kwargs  # type: ignore[attr-defined]
    return int(kwargs.get("max_connections", 100))


def _handed_on(future: asyncio.Future[Any], resending: asyncio.Task[Any]) -> None:
    """The outcome of a call sent again, to the future its caller awaits."""
    if resending.cancelled():
        future.cancel()
        return
    error = resending.exception()
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(resending.result())


def _left(resending: asyncio.Task[Any], future: asyncio.Future[Any]) -> None:
    """A caller that left (cancelled) no longer needs its call sent again."""
    if future.cancelled():
        resending.cancel()


async def _nothing(_: Exception) -> None:
    """A failed attempt needs no clean-up: its pipe is lost, and the next one opens anew."""


def _demoted(pipe: Pipe, reply: Any) -> bool:
    """A write refused by a master that Sentinel demoted (its sentinels are asked again)."""
    connection = pipe.connection
    return (
        isinstance(reply, ReadOnlyError)
        and isinstance(connection, SentinelManagedConnection)
        and bool(connection.connection_pool.is_master)
    )


def _is_missing(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and missing(reply)


def _raised(reply: Any) -> Any:
    """``reply``, or raised if it is an error reply."""
    if isinstance(reply, ResponseError):
        raise reply
    return reply
