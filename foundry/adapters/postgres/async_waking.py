"""The asyncio queue's wake-ups: one LISTEN connection on the ``ended`` channel for every wait
of one event loop, read by one task that counts what it reads and wakes the waits.

A wake-up only says "look again": every wait looks again after ``poll`` at the latest, which
is also the fallback while the connection is down (the next wait opens it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

log = logging.getLogger("foundry.postgres")

Listen = Callable[[], Awaitable["psycopg.AsyncConnection[Any]"]]


class AsyncWaker:
    """Use: ``since = await waker.mark()`` before looking (``get``), then
    ``await waker.wait(since, seconds)`` if the job has not ended: a notification read after
    ``mark`` ends the wait. ``listen`` opens a connection that listens on the channel."""

    def __init__(self, listen: Listen, poll: float) -> None:
        self._listen = listen
        self._poll = poll
        self._seen = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening = asyncio.Lock()
        self._woken = asyncio.Event()
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def mark(self) -> int:
        """Listen (if not yet, on this loop) and say how many wake-ups were read so far."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # another loop: the old one's connection is not usable
            finish(self._conn)
            self._loop, self._conn, self._reader = loop, None, None
            self._opening, self._woken = asyncio.Lock(), asyncio.Event()
        async with self._opening:
            if self._reader is None or self._reader.done():
                self._conn = await self._listen()
                self._reader = loop.create_task(self._read(self._conn))
        return self._seen

    async def wait(self, since: int, seconds: float) -> None:
        """Return once a wake-up after ``since`` is read, or after ``min(seconds, poll)``."""
        if self._seen > since:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), min(seconds, self._poll))

    async def close(self) -> None:
        """Stop reading and close the connection (the next ``mark`` opens it again)."""
        reader, conn = self._reader, self._conn
        self._reader = self._conn = None
        if reader is not None and self._loop is asyncio.get_running_loop():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if conn is not None and not conn.closed:
            await conn.close()

    async def _read(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            async for _ in conn.notifies():
                self._seen += 1
                woken, self._woken = self._woken, asyncio.Event()
                woken.set()
        except psycopg.Error as error:
            log.warning("stopped listening for ended jobs, waits poll until it resumes: %s", error)
            await conn.close()


def finish(conn: psycopg.AsyncConnection[Any] | None) -> None:
    """Close ``conn`` without its event loop (another loop's, likely closed by now): libpq
    ends the session at once, so neither the server nor the garbage collector keeps it."""
    if conn is not None and not conn.closed:
        conn.pgconn.finish()
