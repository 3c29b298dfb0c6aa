"""What a PostgreSQL cache and its tagged views share: ``CacheCore``.

The pool, the statements (``cache_sql.py``), the codec, the clock and the prefix; running one
statement on a pooled connection, with the driver's errors translated; the sweep of expired
rows and the batched writes of read counts (``cache_reads.py``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors
from psycopg_pool import ConnectionPool

from foundry.adapters.cache_support import to_ms, validate_prefix
from foundry.adapters.codec import Codec
from foundry.adapters.postgres.cache_reads import reads_of
from foundry.adapters.postgres.cache_sql import CacheStatements
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import pooled, unusable
from foundry.domain import CacheError, CacheUnavailable, ConfigurationError, FoundryError
from foundry.ports.clock import Clock

log = logging.getLogger(__name__)

#: Stats rows per prefix: concurrent processes add to different rows.
STATS_SHARDS = 16

Params = dict[str, Any]


class CacheCore:
    """What a cache and its tagged views share: the pool, statements, codec, clock, prefix."""

    def __init__(
        self,
        pool: ConnectionPool,
        settings: PostgresSettings,
        prefix: str,
        *,
        codec: Codec,
        clock: Clock | None,
        sweep_ms: int,
        stats_ms: int,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.prefix = validate_prefix(prefix)
        self.codec = codec
        self.clock = clock
        self.sql = CacheStatements(settings.schema)
        self.sweep_ms = sweep_ms
        self.next_sweep = 0
        self.reads = reads_of(settings, self.prefix, self.sql["reads"], stats_ms, STATS_SHARDS)

    def params(self, **values: Any) -> Params:
        """The parameters every statement takes, plus ``values``."""
        now = None if self.clock is None else to_ms(self.clock.now())
        return {"prefix": self.prefix, "now": now, "shard": os.getpid() % STATS_SHARDS, **values}

    @contextmanager
    def connection(self, label: str) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection. A lost server raises ``CacheUnavailable``; a statement it
        refuses, a ``CacheError`` naming ``label`` (``ConfigurationError`` for missing tables)."""
        with pooled(self.pool, self.settings, CacheUnavailable) as conn:
            try:
                yield conn
            except psycopg.OperationalError:
                raise
            except psycopg.Error as error:
                raise _refused(error, label, self.settings) from error

    def rows(self, statement: str, params: Params, label: str) -> list[tuple[Any, ...]]:
        """The rows of one statement."""
        with self.connection(label) as conn:
            cursor = conn.execute(self.sql[statement], params, binary=True)
            return cursor.fetchall() if cursor.description else []

    def one(self, statement: str, label: str, **values: Any) -> tuple[Any, ...] | None:
        """The first row of one statement taking ``params(**values)``, if any."""
        rows = self.rows(statement, self.params(**values), label)
        return rows[0] if rows else None

    def wait_now_ms(self) -> int:
        """Now in ms on the clock waits are measured against (local wall clock by default)."""
        clock = self.clock
        return time.time_ns() // 1_000_000 if clock is None else to_ms(clock.now())

    def sweep_if_due(self) -> None:
        """Delete expired values and locks of this prefix, at most once per ``sweep_ms``; and
        write the reads' counts if they are due."""
        now = self.wait_now_ms()
        if self.reads.due(now):
            self.write_reads(quiet=True)
        if now < self.next_sweep:
            return
        self.next_sweep = now + self.sweep_ms
        self.rows("sweep", self.params(), self.prefix)

    def count_reads(self, hits: int, misses: int) -> None:
        """Count a read in memory, writing the counts when their interval has passed."""
        if self.reads.add(hits, misses, self.wait_now_ms()):
            self.write_reads(quiet=True)

    def write_reads(self, *, quiet: bool) -> None:
        """Add this process' counted reads to its stats row (one upsert). A failure keeps
        them for the next try, and is raised unless ``quiet`` (a read that succeeded)."""
        hits, misses = self.reads.take()
        if not hits and not misses:
            return
        try:
            self.rows("reads", self.params(hits=hits, misses=misses), self.prefix)
        except CacheError as error:
            self.reads.give_back(hits, misses, self.wait_now_ms())
            if not quiet:
                raise
            log.warning("could not write cache %s's read counts yet: %s", self.prefix, error)


def _refused(error: psycopg.Error, label: str, settings: PostgresSettings) -> FoundryError:
    if isinstance(error, errors.UndefinedTable):
        return ConfigurationError(
            f"the cache's tables are not in schema {settings.schema!r}: run foundry migrate"
        )
    forbidden = unusable(settings, error)
    if forbidden is not None:
        return forbidden
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return CacheError(f"PostgreSQL refused the cache operation on {label!r}: {reason}")
