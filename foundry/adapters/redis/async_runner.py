"""The library's functions over a ``redis.asyncio`` client, pipelined on one connection.

A call made while nothing is on the wire is sent at once from its caller's task; calls made
while a write is on the wire wait in one batch and go together in the next write. Redis runs
them in order and the replies are read in order, so 100 concurrent dispatches cost about one
round trip, not 100. The runner sends only calls that are safe to re-send (``enqueue``,
``SADD``): a batch whose write or replies are lost is sent again under the connection's retry
policy, and a call Redis answered "Function not found" (restarted without persistence,
``FUNCTION FLUSH``) is sent again once the library is loaded, since it never ran. Error
replies are raised to their own caller only.

The connection is this runner's own (opened with the client's settings, outside its pool) and
belongs to the event loop and process that opened it: another loop or a forked child opens a
fresh one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.exceptions import ResponseError

from foundry.adapters.redis.runner import Arg, Packer, library, missing

#: One call waiting for the next write: its RESP bytes and its caller's future.
_Waiting = tuple[bytes, "asyncio.Future[Any]"]


def pack_command(args: Sequence[Arg]) -> bytes:
    """A plain command as RESP bytes."""
    data = [arg if isinstance(arg, bytes) else str(arg).encode() for arg in args]
    return b"".join([b"*%d\r\n" % len(data), *(b"$%d\r\n%s\r\n" % (len(d), d) for d in data)])


class AsyncFunctionRunner:
    """FCALLs (and plain commands) of one asyncio client; see the module's docstring."""

    #: Whether ``call`` sends ``REDIS_WAIT_REPLICAS``'s ``WAIT`` itself (on Cluster, behind the
    #: call on its master's connection); otherwise the queue sends it on this connection.
    waits_for_replicas = False

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.library = library()
        self._pack = Packer(self.library.function).pack
        self._waiting: list[_Waiting] = []
        #: The loop whose task is sending now (``None``: nothing is on the wire).
        self._sending: asyncio.AbstractEventLoop | None = None
        self._drains: set[asyncio.Task[Any]] = set()
        #: A redis-py asyncio ``Connection`` (its methods are untyped), and its loop and pid.
        self._connection: Any = None
        self._owner: tuple[asyncio.AbstractEventLoop, int] | None = None
        #: The client's socket timeout (s), applied to each exchange as a whole: the task on
        #: the wire and when its exchange is due, the watchdog timer (and its loop), and the
        #: task the watchdog cancelled.
        self._timeout: float | None = None
        self._deadline: tuple[asyncio.Task[Any], float] | None = None
        self._watchdog: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None
        self._expired: asyncio.Task[Any] | None = None

    async def call(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """FCALL ``name``; its reply (a Redis error reply raises ``ResponseError``)."""
        # ``_send``, inline: one coroutine less for every call.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((self._pack(name, keys, args), future))
        if self._sending is not loop:  # nothing is on the wire: this caller sends
            await self._send_now(loop)
        return await future

    async def call_many(
        self, calls: Sequence[tuple[str, Sequence[str], Sequence[Arg]]]
    ) -> list[Any]:
        """Several calls, replies in order; the first error reply is raised once all arrived."""
        replies = await asyncio.gather(
            *(self._send(self._pack(name, keys, args)) for name, keys, args in calls),
            return_exceptions=True,
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return list(replies)

    async def command(self, *args: Arg) -> Any:
        """One plain command (it must be safe to re-send), in the same pipeline as the calls."""
        return await self._send(pack_command(args))

    async def aclose(self) -> None:
        """Close the runner's connection (a later call opens a new one)."""
        connection, self._connection = self._connection, None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog[1].cancel()
        if connection is not None and self._owned_here():
            await connection.disconnect()

    async def _send(self, packed: bytes) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((packed, future))
        if self._sending is not loop:  # nothing is on the wire: this caller sends
            await self._send_now(loop)
        return await future

    async def _send_now(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send what waits from the caller's own task (an awaited dispatch switches no task);
        calls made meanwhile go to a drain task after it."""
        self._sending = loop
        batch, self._waiting = self._waiting, []
        try:
            await self._write(batch)
        except asyncio.CancelledError:
            # Replies may be left unread on the connection: drop it; the others' calls are
            # sent again (each is safe to re-send).
            await self._abandon()
            self._waiting[:0] = [item for item in batch if not item[1].done()]
            raise
        except Exception as error:
            _settle(batch, error)
        finally:
            if self._waiting:
                self._drains.add(loop.create_task(self._drain()))
            else:
                self._sending = None

    async def _drain(self) -> None:
        """Send what waits, one batch per write, until nothing does."""
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._write(batch)
                batch = []
        except BaseException as error:
            waiting, self._waiting = [*batch, *self._waiting], []
            _settle(waiting, error)
            if not isinstance(error, Exception):
                await self._abandon()
                raise
        finally:
            self._sending = None
            self._drains.discard(asyncio.current_task())

    async def _abandon(self) -> None:
        """Drop the connection at once (it may hold unread replies); the next call opens one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect(nowait=True)

    async def _write(self, batch: list[_Waiting]) -> None:
        conn = self._connection_here()

        async def drop(_: Exception) -> None:
            await conn.disconnect()

        replies = await conn.retry.call_with_retry(lambda: self._round_trip(conn, batch), drop)
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, ResponseError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _round_trip(self, conn: Any, batch: list[_Waiting]) -> list[Any]:
        # One deadline for the whole exchange, where redis-py would arm one per read and wrap
        # each write in a task of its own (``wait_for``); kept by one watchdog timer (see
        # ``_check``) rather than a timer armed and cancelled per exchange.
        task = asyncio.current_task()
        assert task is not None
        self._arm(task)
        try:
            packed = [item[0] for item in batch]
            replies = await self._exchange(conn, packed)
            if any(_is_missing(reply) for reply in replies):
                await conn.send_command("FUNCTION", "LOAD", "REPLACE", self.library.text)
                await conn.read_response()
                unloaded = [i for i, reply in enumerate(replies) if _is_missing(reply)]
                again = await self._exchange(conn, [packed[i] for i in unloaded])
                for index, reply in zip(unloaded, again, strict=True):
                    replies[index] = reply
            return replies
        except asyncio.CancelledError:
            if self._expired is not task:
                raise
            self._expired = None
            if task.uncancel() > 0:  # cancelled by its caller as well
                raise
            raise redis.TimeoutError(f"no reply from Redis within {self._timeout} s") from None
        finally:
            self._deadline = None

    def _arm(self, task: asyncio.Task[Any]) -> None:
        """Start the exchange's deadline; the watchdog is armed once per loop and re-arms
        itself while exchanges follow each other."""
        if self._timeout is None:
            return
        loop = task.get_loop()
        self._deadline = (task, loop.time() + self._timeout)
        if self._watchdog is None or self._watchdog[0] is not loop:
            self._watchdog = (loop, loop.call_at(self._deadline[1], self._check))

    def _check(self) -> None:
        """The watchdog: cancel the exchange on the wire if its deadline passed, else wait
        for the deadline of the one on the wire now (none: stop until the next exchange)."""
        loop = self._watchdog[0] if self._watchdog is not None else None
        self._watchdog = None
        if self._deadline is None or loop is None:
            return
        task, when = self._deadline
        if task.get_loop() is not loop:
            return
        if loop.time() >= when:
            self._deadline, self._expired = None, task
            task.cancel()
        else:
            self._watchdog = (loop, loop.call_at(when, self._check))

    @staticmethod
    async def _exchange(conn: Any, packed: list[bytes]) -> list[Any]:
        if not conn.is_connected and isinstance(conn, SentinelManagedConnection):
            # As in the sync runner: sending alone would dial the default address.
            conn.host, conn.port = await conn.connection_pool.get_master_address()
        await conn.send_packed_command([b"".join(packed)], check_health=False)
        replies: list[Any] = []
        for _ in packed:
            try:
                replies.append(await conn.read_response())
            except ResponseError as error:
                replies.append(error)
        return replies

    def _connection_here(self) -> Any:
        if self._connection is None or not self._owned_here():
            pool = self.client.connection_pool
            options = pool.connection_kwargs
            self._timeout = options.get("socket_timeout")
            self._connection = pool.connection_class(**{**options, "socket_timeout": None})
            self._owner = (asyncio.get_running_loop(), os.getpid())
        return self._connection

    def _owned_here(self) -> bool:
        return self._owner == (asyncio.get_running_loop(), os.getpid())


def _is_missing(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and missing(reply)


def _settle(waiting: list[_Waiting], error: BaseException) -> None:
    """Fail every call still awaited with ``error`` (cancel them for a cancellation)."""
    for _, future in waiting:
        if future.done():
            continue
        if isinstance(error, Exception):
            future.set_exception(error)
        else:
            future.cancel()
