"""The library's functions over a ``redis.asyncio`` client, pipelined on one connection.

Calls made while a write is on the wire (or in the same turn of the event loop) wait in one
batch and go together in the next write; Redis runs them in order and the replies are read in
order, so 100 concurrent dispatches cost about one round trip, not 100. The runner sends only
calls that are safe to re-send (``enqueue``, ``SADD``): a batch whose write or replies are lost
is sent again under the connection's retry policy, and a call Redis answered "Function not
found" (restarted without persistence, ``FUNCTION FLUSH``) is sent again once the library is
loaded, since it never ran. Error replies are raised to their own caller only.

The connection is this runner's own (opened with the client's settings, outside its pool) and
belongs to the event loop and process that opened it: another loop or a forked child opens a
fresh one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import redis.asyncio
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

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.library = library()
        self._pack = Packer(self.library.function).pack
        self._waiting: list[_Waiting] = []
        self._sender: asyncio.Task[None] | None = None
        #: A redis-py asyncio ``Connection`` (its methods are untyped), and its loop and pid.
        self._connection: Any = None
        self._owner: tuple[asyncio.AbstractEventLoop, int] | None = None

    async def call(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """FCALL ``name``; its reply (a Redis error reply raises ``ResponseError``)."""
        return await self._send(self._pack(name, keys, args))

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
        if connection is not None and self._owned_here():
            await connection.disconnect()

    async def _send(self, packed: bytes) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((packed, future))
        if self._sender is None or self._sender.get_loop() is not loop:
            self._sender = loop.create_task(self._drain())
        return await future

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
            for _, future in waiting:
                if future.done():
                    continue
                if isinstance(error, Exception):
                    future.set_exception(error)
                else:
                    future.cancel()
            if not isinstance(error, Exception):
                raise
        finally:
            if self._sender is asyncio.current_task():
                self._sender = None

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
        replies = await self._exchange(conn, [packed for packed, _ in batch])
        unloaded = [i for i, reply in enumerate(replies) if _is_missing(reply)]
        if unloaded:
            await conn.send_command("FUNCTION", "LOAD", "REPLACE", self.library.text)
            await conn.read_response()
            again = await self._exchange(conn, [batch[i][0] for i in unloaded])
            for index, reply in zip(unloaded, again, strict=True):
                replies[index] = reply
        return replies

    @staticmethod
    async def _exchange(conn: Any, packed: list[bytes]) -> list[Any]:
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
            self._connection = pool.connection_class(**pool.connection_kwargs)
            self._owner = (asyncio.get_running_loop(), os.getpid())
        return self._connection

    def _owned_here(self) -> bool:
        return self._owner == (asyncio.get_running_loop(), os.getpid())


def _is_missing(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and missing(reply)
