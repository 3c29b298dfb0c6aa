"""What every part of the PostgreSQL queue shares: its pool, statements, clock and codec."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import pooled
from foundry.adapters.postgres.rows import RowCodec
from foundry.adapters.postgres.statements import Statements
from foundry.ports import Clock, DeadLetterRetention


class Database:
    """One schema of one database, reached through a pool, with one notion of now."""

    def __init__(
        self,
        pool: ConnectionPool,
        settings: PostgresSettings,
        rows: RowCodec,
        clock: Clock | None,
        *,
        retention: DeadLetterRetention | None = None,
        keep: timedelta = timedelta(hours=1),
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.rows = rows
        self.clock = clock
        self.sql = Statements(settings.schema)
        self.retention = retention or DeadLetterRetention()
        self.keep = keep

    @property
    def policy(self) -> dict[str, Any]:
        """What a call that may end jobs needs: how long ended records are kept, and the
        dead letters' retention."""
        return end_policy(self.keep, self.retention)

    @contextmanager
    def conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection; ``QueueUnavailable`` when the server is not there."""
        with pooled(self.pool, self.settings) as conn:
            yield conn

    def now(self) -> datetime | None:
        """The injected clock's time, or ``None``: the server's, read inside the statement."""
        return None if self.clock is None else self.clock.now()

    def now_on(self, conn: psycopg.Connection[Any]) -> datetime:
        """The time, as a value: the clock's, or the server's (one round trip)."""
        if self.clock is not None:
            return self.clock.now()
        row = conn.execute(self.sql["now"], {"now": None}).fetchone()
        assert row is not None
        moment: datetime = row[0]
        return moment


def end_policy(keep: timedelta, retention: DeadLetterRetention) -> dict[str, Any]:
    """The ``keep``, ``max_dead`` and ``dead_age`` arguments of the functions that end jobs."""
    return {"keep": keep, "max_dead": retention.max_count, "dead_age": retention.max_age}
