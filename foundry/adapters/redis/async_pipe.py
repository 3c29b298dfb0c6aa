"""One asyncio connection to Redis as a pipe: calls are written as they come and their replies,
read by hiredis straight from the transport, are handed to the callers' futures in order;
and ``Pipes``, which keeps one open for a loop.

redis-py's asyncio connection reads each reply through a stream reader and four coroutine
layers, and arms a timeout per read: a third of an awaited dispatch's work. The pipe takes
over a connection redis-py opened (its handshake: AUTH, SELECT, CLIENT SETNAME, Sentinel's
master address, TLS) and reads it as a protocol instead. Calls written while replies are
awaited go together in one write at the loop's next turn, so 100 concurrent calls cost two
writes; a caller that is cancelled leaves its reply to be read and dropped, and the others'
calls alone. A call awaited alone on asyncio's own loop gets a ``Reply`` (``async_reply``),
which resumes its caller inside the read that brought the reply: one loop turn per round
trip instead of two.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from time import monotonic
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.exceptions import InvalidResponse

from foundry.adapters.redis.async_driver import parse_error, transport_of
from foundry.adapters.redis.async_reply import Reply
from foundry.domain import ConfigurationError


class Pipe(asyncio.Protocol):
    """Replies of one transport, in order, to the futures of the calls written on it.

    ``lost`` is set once the connection is gone (closed, reset, or expired by the owner's
    deadline): every reply still awaited fails with it, and nothing more is written.
    """

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, connection: Any
    ) -> None:
        self.loop = loop
        #: The redis-py connection that opened the transport (its methods are untyped).
        self.connection = connection
        self.fork = _forks[0]
        #: Whether calls get a ``Reply``: asyncio's own loops run a callback scheduled during
        #: a read only after another select, a turn a ``Reply`` saves; uvloop runs it in the
        #: same turn, where a plain future costs less.
        self.wakes = isinstance(loop, asyncio.BaseEventLoop)
        self.lost: Exception | None = None
        self._transport = transport
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=parse_error)
        #: The futures awaiting a reply, in the order their calls were written, each with
        #: when its reply is due (``time.monotonic``; 0: no deadline).
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._buffer: list[bytes] = []

    def send(self, packed: bytes, due: float = 0.0) -> asyncio.Future[Any]:
        """Write ``packed`` (one command) now, or with the other calls of this turn when
        replies are awaited; the future of its reply (an error reply as a value): a ``Reply``
        if it is the only one awaited on a loop where that saves a turn."""
        if self._waiting:
            future = self.loop.create_future()
            self._join(packed)
        else:
            future = Reply(loop=self.loop) if self.wakes else self.loop.create_future()
            self._transport.write(packed)
        self._waiting.append((future, due))
        return future

    def send_many(self, packed: list[bytes], due: float = 0.0) -> list[asyncio.Future[Any]]:
        """``send`` for several commands, in one write; their futures, in order."""
        futures = [self.loop.create_future() for _ in packed]
        if self._waiting:
            self._join(b"".join(packed))
        else:
            self._transport.write(b"".join(packed))
        self._waiting.extend((future, due) for future in futures)
        return futures

    def oldest_due(self) -> float | None:
        """When the oldest awaited reply is due (``None``: none is awaited, or no deadline)."""
        return self._waiting[0][1] or None if self._waiting else None

    def close(self, error: Exception) -> None:
        """Drop the connection at once; every reply still awaited fails with ``error``."""
        self._fail(error)
        self._transport.abort()

    def data_received(self, data: bytes) -> None:
        """Hand each complete reply to the oldest waiting future (dropped if its caller left);
        the last one of the read, if a ``Reply``, resumes its caller at once."""
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        reply = reader.gets()
        while reply is not False:
            future, _ = waiting.popleft()
            following = reader.gets()
            if following is False and type(future) is Reply:
                future.wake(reply)  # last: its caller may write or close the pipe meanwhile
            elif not future.done():
                future.set_result(reply)
            reply = following

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection closed: fail what is still awaited."""
        reason = f": {exc}" if exc is not None else ""
        self._fail(redis.ConnectionError(f"connection to Redis lost{reason}"))

    def _join(self, packed: bytes) -> None:
        """Write ``packed`` with the other calls of this turn, at the loop's next one."""
        if not self._buffer:
            self.loop.call_soon(self._flush)
        self._buffer.append(packed)

    def _flush(self) -> None:
        if self._buffer and self.lost is None:
            self._transport.write(b"".join(self._buffer))
        self._buffer.clear()

    def _fail(self, error: Exception) -> None:
        if self.lost is None:
            self.lost = error
        self._buffer.clear()
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)


#: Bumped in a forked child: a pipe belongs to the process that opened it.
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class Pipes:
    """The pipe of one client for the running loop and process: opened once for every caller
    that needs it, opened again (by the next caller) once lost, and its replies held to the
    client's socket timeout by one watchdog timer, re-armed only when it fires."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._pipe: Pipe | None = None
        #: The loop and the process (its fork generation) the pipe belongs to.
        self._owner: tuple[asyncio.AbstractEventLoop, int] | None = None
        self._opening: asyncio.Task[Pipe] | None = None
        #: The client's retry policy (a redis-py ``Retry``) and socket timeout (s).
        self._retry: Any = None
        self._timeout: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    def send(self, packed: bytes) -> tuple[Pipe, asyncio.Future[Any]] | None:
        """``packed`` sent on the open pipe, if this loop and process have one: the pipe and
        the future of the reply (``here``, ``due`` and ``Pipe.send`` in one call: the path of
        every call while the connection is up)."""
        pipe = self._pipe
        if pipe is None or pipe.lost is not None or pipe.fork != _forks[0]:
            return None
        loop = pipe.loop
        if loop is not asyncio.get_running_loop():
            return None
        timeout = self._timeout
        if timeout is None:
            return pipe, pipe.send(packed)
        if self._watchdog is None:
            self._watchdog = loop.call_later(timeout, self._check, loop)
        return pipe, pipe.send(packed, monotonic() + timeout)

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
        if pipe is not None and pipe.lost is None:
            return pipe
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_task(self._connect())
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    def due(self, pipe: Pipe) -> float:
        """When a reply to a call written now is due (0: never); arms the watchdog."""
        if self._timeout is None:
            return 0.0
        if self._watchdog is None:
            self._watchdog = pipe.loop.call_later(self._timeout, self._check, pipe.loop)
        return monotonic() + self._timeout

    async def close(self) -> None:
        """Close this loop's pipe (a later ``open`` opens another)."""
        if self._owner == _here() and self._pipe is not None:
            self._pipe.close(redis.ConnectionError("connection to Redis closed"))
            await self._pipe.connection.disconnect(nowait=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._pipe = self._owner = self._watchdog = None

    def _adopt(self) -> None:
        """Start over in this loop and process (another loop's pipe is left to it)."""
        pool = self._client.connection_pool
        self._retry = pool.connection_class(**pool.connection_kwargs).retry
        self._timeout = pool.connection_kwargs.get("socket_timeout")
        self._pipe = self._opening = self._watchdog = None
        self._owner = _here()

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
        pipe = Pipe(transport, asyncio.get_running_loop(), connection)
        transport.set_protocol(pipe)
        self._pipe = pipe
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
            self._watchdog = loop.call_later(due - now, self._check, loop)


def _here() -> tuple[asyncio.AbstractEventLoop, int]:
    return asyncio.get_running_loop(), _forks[0]
