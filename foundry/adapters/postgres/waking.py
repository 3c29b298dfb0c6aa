"""Wake-ups: LISTEN on one of the schema's channels, which the transitions NOTIFY (delivered
when their transaction commits): ``foundry_<schema>`` when jobs become ready (blocked
claims), ``foundry_<schema>_ended`` when a job someone waits for ends (``wait``).

One listening connection per channel and adapter, opened on first use. One waiting thread
reads it at a time and counts what it reads; the others wait on a condition for the count to
move. A wake-up only says "look again": a lost or early one costs one round trip, never a
job, and every wait looks again after ``poll`` at the latest (the fallback if a connection
drops).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, forks, set_aside

log = logging.getLogger("foundry.postgres")


def channel(schema: str, suffix: str = "") -> str:
    """A NOTIFY channel of a schema's queue (see the ``wake`` and ``ended`` functions)."""
    return f"foundry_{schema}{suffix}"


class Waker:
    """Blocks a caller until a NOTIFY on one channel, or at most a poll interval.

    Use: ``since = waker.mark()`` before looking (claim, get), then ``waker.wait(since, s)``
    if there was nothing: a notification sent after ``mark`` ends the wait.
    """

    def __init__(
        self, settings: PostgresSettings, name: str, poll: timedelta = timedelta(seconds=1)
    ) -> None:
        self._settings = settings
        self._channel = name
        self._poll = poll.total_seconds()
        self._cond = threading.Condition()
        self._seen = 0
        self._reading = False
        self._conn: psycopg.Connection[Any] | None = None
        self._forks = forks()  # the process whose connection and condition these are

    def mark(self) -> int:
        """Start listening (if not yet) and say how many wake-ups were read so far."""
        self._adopt()
        with self._cond:
            if not self._reading:
                self._listening()
            return self._seen

    def wait(self, since: int, seconds: float) -> None:
        """Return once a wake-up after ``since`` is read, or after ``min(seconds, poll)``."""
        give_up = time.monotonic() + min(seconds, self._poll)
        self._adopt()
        with self._cond:
            while self._seen == since:
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    return
                if self._reading:
                    self._cond.wait(remaining)
                else:
                    self._read(remaining)

    def close(self) -> None:
        """Close the listening connection (the next ``mark`` opens it again)."""
        self._adopt()
        with self._cond:
            self._drop()

    def _adopt(self) -> None:
        """In a process forked since this waker last listened, start over: the inherited
        connection is its parent's socket (set aside, never used nor closed), and a thread
        of the parent may have held the condition or been reading."""
        if self._forks == forks():
            return
        if self._conn is not None:
            set_aside(self._conn)
        self._conn, self._reading, self._cond = None, False, threading.Condition()
        self._forks = forks()

    def _read(self, seconds: float) -> None:
        """Read the connection for up to ``seconds`` (the condition is held on entry/exit)."""
        self._reading = True
        conn = self._listening()
        self._cond.release()
        got = 0
        try:
            got = sum(1 for _ in conn.notifies(timeout=seconds, stop_after=1))
        except psycopg.Error as error:
            log.warning("the %s wake-up connection failed (%s); polling", self._channel, error)
            time.sleep(seconds)
        finally:
            self._cond.acquire()
            self._reading = False
        if conn.closed:
            self._conn = None
        self._seen += got
        self._cond.notify_all()

    def _listening(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = connect(self._settings)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None and not self._reading:
            try:
                self._conn.close()
            finally:
                self._conn = None
