"""``Pipes``: the one pipe (``async_pipe``) of a client for the running loop and process,
opened again once lost, its replies held to the client's socket timeout by a watchdog (an
``async_alarm``, not a loop timer: the stock loop pays for a timer at every turn). Behind
Sentinel, the pipe is dropped once the sentinels name another master (asked at most every
``FOLLOW_S``), so a failover that leaves the old master running does not keep it taking
writes.

A pipe belongs to the loop that opened it, and is closed when that loop is shut down
(``async_loop_end``): a process that runs a loop per request (``asyncio.run``,
``async_to_sync`` under WSGI) holds no connection of a loop that ended. A loop closed without
that step has its pipe's connection ended when the next loop opens one."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator
from functools import partial
from time import monotonic
from typing import Any

import redis
import redis.asyncio

from foundry.adapters.redis.async_alarm import Alarm, call_at
from foundry.adapters.redis.async_driver import transport_of
from foundry.adapters.redis.async_loop_end import at_loop_end
from foundry.adapters.redis.async_pipe import Pipe, Settle, forks, open_pipe, raised
from foundry.adapters.redis.sentinel import AsyncFollowingPool
from foundry.domain import ConfigurationError


class Pipes:
    """The pipe of one client for the running loop and process: opened once for every caller
    that needs it, opened again (by the next caller) once lost, and its replies held to the
    client's socket timeout by one watchdog alarm, set again only when it rings."""

    def __init__(self, client: redis.asyncio.Redis, settle: Settle = raised) -> None:
        self._client = client
        #: What becomes of a call's error reply or lost connection (``Pipe.send``).
        self._settle = settle
        self._pipe: Pipe | None = None
        #: The loop and the process (its fork generation) the pipe belongs to.
        self._owner: tuple[asyncio.AbstractEventLoop, int] | None = None
        self._opening: asyncio.Task[Pipe] | None = None
        #: The pipes of this process's other loops, still open, each closed when its loop is
        #: shut down (``_endings``: the generators that run that) or taken up again in it.
        self._left: dict[asyncio.AbstractEventLoop, Pipe] = {}
        self._endings: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}
        #: The client's retry policy (a redis-py ``Retry``) and socket timeout (s).
        self._retry: Any = None
        self._timeout: float | None = None
        self._watchdog: Alarm | None = None
        pool = getattr(client, "connection_pool", None)
        self._following = pool if isinstance(pool, AsyncFollowingPool) else None
        #: When (monotonic s) to ask the sentinels again if the pipe's server is the master.
        self._follow_at = 0.0 if self._following is not None else math.inf

    def send(self, packed: bytes) -> asyncio.Future[Any] | None:
        """``packed`` sent on the open pipe, if this loop and process have one: the future of
        its reply (``Pipe.send``; ``here`` and ``due`` in one call: the path of every call
        while the connection is up)."""
        pipe = self._pipe
        if pipe is None or pipe.lost is not None or pipe.fork != forks[0]:
            return None
        loop = pipe.loop
        if loop is not asyncio.get_running_loop():
            return None
        now = monotonic()
        if now >= self._follow_at:
            return None  # the sentinels are due to be asked: ``open`` does
        timeout = self._timeout
        if timeout is None:
            return pipe.send(packed)
        due = now + timeout
        if self._watchdog is None:
            self._watchdog = call_at(due, loop, self._check, loop)
        return pipe.send(packed, due)

    def retry(self) -> Any:
        """The client's retry policy (a redis-py ``Retry``: its methods are untyped)."""
        if self._owner != _here():
            self._adopt()
        return self._retry

    async def open(self) -> Pipe:
        """The open pipe, opened first if there is none (once, however many callers wait)."""
        if self._owner != _here():
            self._adopt()
        pipe = self._pipe
        if pipe is not None and pipe.lost is None and monotonic() >= self._follow_at:
            await self._follow(pipe)
        if pipe is not None and pipe.lost is None:
            return pipe
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_task(self._connect())
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    async def _follow(self, pipe: Pipe) -> None:
        """Drop ``pipe`` if the sentinels name another master than its server."""
        following = self._following
        if following is None:
            return
        self._follow_at = monotonic() + following.follow_s
        if await following.left_behind(pipe.connection):
            pipe.close(redis.ConnectionError("the sentinels name another master"))

    def due(self, pipe: Pipe) -> float:
        """When a reply to a call written now is due (0: never); sets the watchdog."""
        if self._timeout is None:
            return 0.0
        due = monotonic() + self._timeout
        if self._watchdog is None:
            self._watchdog = call_at(due, pipe.loop, self._check, pipe.loop)
        return due

    async def close(self) -> None:
        """Close this loop's pipe (a later ``open`` opens another)."""
        if self._owner == _here() and self._pipe is not None:
            self._pipe.close(redis.ConnectionError("connection to Redis closed"))
            await self._pipe.connection.disconnect(nowait=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._pipe = self._owner = self._watchdog = None

    def _adopt(self) -> None:
        """Start over in this loop and process: another loop's pipe is left to it (closed
        when it is shut down), this loop's own taken up again."""
        self._leave()
        pool = self._client.connection_pool
        self._retry = pool.connection_class(**pool.connection_kwargs).retry
        self._timeout = pool.connection_kwargs.get("socket_timeout")
        self._opening = self._watchdog = None
        self._owner = _here()
        self._pipe = self._left.pop(self._owner[0], None)

    def _leave(self) -> None:
        """Leave the pipe in use to its loop; end the connections of loops closed without
        being shut down (nothing of theirs ran: ``Pipe.abandon``). A forked child leaves its
        parent's pipes alone."""
        pipe, owner = self._pipe, self._owner
        if pipe is not None and owner is not None and pipe.fork == forks[0]:
            self._left[owner[0]] = pipe
        for loop in list(self._left):  # list(): taken whole, whatever another thread does
            if loop.is_closed() and (left := self._left.pop(loop, None)) is not None:
                left.abandon()
        for loop in list(self._endings):
            if loop.is_closed():
                self._endings.pop(loop, None)

    async def _loop_ends(self, loop: asyncio.AbstractEventLoop) -> None:
        """``loop`` is shut down: close its pipe (in use, or left to it), and the idle
        connections of the client's pool (a blocking command's) and, behind Sentinel, of
        the sentinels' clients (that found the master), which only it can use."""
        self._endings.pop(loop, None)
        left = self._left.pop(loop, None)
        if left is not None:
            left.close(redis.ConnectionError("its event loop was shut down"))
            await left.connection.disconnect(nowait=True)
        if self._owner == _here():
            await self.close()
        pool = self._client.connection_pool
        manager = getattr(pool, "sentinel_manager", None)
        sentinels = [client.connection_pool for client in manager.sentinels] if manager else []
        for idle in (pool, *sentinels):
            await idle.disconnect(inuse_connections=False)

    async def _connect(self) -> Pipe:
        """A new pipe: redis-py connects and shakes hands (within the socket timeout), then
        the pipe reads the transport in place of redis-py's stream reader."""
        old, self._pipe = self._pipe, None
        if old is not None:
            await old.connection.disconnect(nowait=True)
        pool = self._client.connection_pool
        options = {**pool.connection_kwargs, "socket_timeout": None}
        connection: Any = pool.connection_class(**options)
        try:
            async with asyncio.timeout(self._timeout):
                await connection.connect()
        except TimeoutError:
            await connection.disconnect(nowait=True)
            raise redis.TimeoutError(f"no handshake from Redis within {self._timeout} s") from None
        try:
            transport = transport_of(connection)
        except ConfigurationError:
            await connection.disconnect(nowait=True)
            raise
        loop = asyncio.get_running_loop()
        pipe = open_pipe(transport, loop, connection, self._settle)
        self._pipe = pipe
        if loop not in self._endings:
            self._endings[loop] = await at_loop_end(partial(self._loop_ends, loop))
        return pipe

    def _opened(self, task: asyncio.Task[Pipe]) -> None:
        self._opening = None
        if not task.cancelled():
            task.exception()  # each waiter got it: not "never retrieved"

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        """The watchdog: drop the pipe if its oldest awaited reply is late (its callers send
        again), else wait until that reply is due (none awaited: stop until the next call)."""
        self._watchdog = None
        pipe = self._pipe
        if pipe is None or pipe.loop is not loop:
            return
        due = pipe.oldest_due()
        if due is None:
            return
        now = monotonic()
        if now >= due:
            pipe.close(redis.TimeoutError(f"no reply from Redis within {self._timeout} s"))
        else:
            self._watchdog = call_at(due, loop, self._check, loop)


def _here() -> tuple[asyncio.AbstractEventLoop, int]:
    return asyncio.get_running_loop(), forks[0]
