"""The PostgreSQL cache's shared parts and its ``CacheStore`` operations.

``CacheCore`` is what a cache and its tagged views share: the pool, the statements, the codec,
the clock and the prefix. ``PostgresStore`` is every ``CacheStore`` operation, each one
statement (``cache_sql.py``) on a connection borrowed from the pool, over a key mapping its
subclasses set (``cache.py``: plain keys, or keys folding in their tags' versions).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg_pool import ConnectionPool

from foundry.adapters.cache_lock import Flight, remember
from foundry.adapters.cache_support import (
    add_to_counter,
    key_list,
    positive_ms,
    to_ms,
    ttl_ms,
    validate_key,
    validate_keys,
    validate_prefix,
    validate_step,
    value_map,
)
from foundry.adapters.codec import Codec
from foundry.adapters.postgres.cache_reads import reads_of
from foundry.adapters.postgres.cache_sql import CacheStatements
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import pooled, unusable
from foundry.domain import CacheError, CacheUnavailable, ConfigurationError, FoundryError
from foundry.ports.cache import Ttl
from foundry.ports.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")

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


class PostgresStore:
    """The CacheStore operations; views differ only in how a key maps to a stored key."""

    def __init__(self, core: CacheCore) -> None:
        self._c = core

    def _skey(self, key: str) -> str:
        return ":" + validate_key(key)

    def _skeys(self, keys: list[str]) -> list[str]:
        return [":" + key for key in validate_keys(keys)]

    def _one(self, statement: str, label: str, **values: Any) -> tuple[Any, ...] | None:
        rows = self._c.rows(statement, self._c.params(**values), label)
        return rows[0] if rows else None

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``, or ``default``. One statement (the read and its count)."""
        found, value = self.flight_lookup(self._skey(key), key, True)
        return value if found else default

    def set(self, key: str, value: Any, ttl: Ttl = None) -> None:
        """Store ``value`` at ``key`` for ``ttl`` (forever if ``None``). One statement."""
        self._write("set", key, value, ttl)

    def add(self, key: str, value: Any, ttl: Ttl = None) -> bool:
        """Store only if ``key`` is absent (an upsert that replaces only an expired row)."""
        return self._write("add", key, value, ttl)

    def _write(self, mode: str, key: str, value: Any, ttl: Ttl) -> bool:
        skey, ms = self._skey(key), ttl_ms(ttl)
        payload = self._c.codec.encode_value(value)
        self._c.sweep_if_due()
        row = self._one(mode, key, key=skey, payload=payload, ttl=ms)
        return bool(row and row[0])

    def forever(self, key: str, value: Any) -> None:
        """Store without expiry."""
        self._write("set", key, value, None)

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value (not counted as a hit or miss)."""
        return self.flight_lookup(self._skey(key), key, False)[0]

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        return self.delete_many([key]) == 1

    def pull(self, key: str, default: Any = None) -> Any:
        """Get and delete, atomically (one ``DELETE ... RETURNING``)."""
        row = self._one("pull", key, key=self._skey(key))
        return default if row is None else self._c.codec.decode_value(row[0], key)

    def touch(self, key: str, ttl: Ttl) -> bool:
        """Reset ``key``'s expiry to ``ttl`` from now; whether the key exists."""
        return self._one("touch", key, key=self._skey(key), ttl=ttl_ms(ttl)) is not None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that are present, in one statement."""
        names = key_list(keys, "get_many")
        if not names:
            return {}
        skeys = self._skeys(names)
        params = self._c.params(keys=skeys)
        stored = dict(self._c.rows("mget", params, names[0]))
        found = [
            (name, stored[skey]) for name, skey in zip(names, skeys, strict=True) if skey in stored
        ]
        self._c.count_reads(len(found), len(names) - len(found))
        values = self._c.codec.decode_values([blob for _, blob in found], [n for n, _ in found])
        return dict(zip([name for name, _ in found], values, strict=True))

    def set_many(self, values: Mapping[str, Any], ttl: Ttl = None) -> None:
        """Store every value for ``ttl`` in one statement; nothing if any input is invalid."""
        names, ms = list(value_map(values)), ttl_ms(ttl)
        if not names:
            return
        skeys = self._skeys(names)
        payloads = [self._c.codec.encode_value(values[k]) for k in names]
        self._c.sweep_if_due()
        self._c.rows("mset", self._c.params(keys=skeys, payloads=payloads, ttl=ms), names[0])

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys in one statement; how many held a live value."""
        names = key_list(keys, "delete_many")
        if not names:
            return 0
        row = self._one("mdel", names[0], keys=self._skeys(names))
        return int(row[0]) if row else 0

    def increment(self, key: str, by: int = 1) -> int:
        """Add ``by`` atomically (one upsert), creating the key at 0 and keeping its expiry."""
        skey, step = self._skey(key), validate_step(by)
        for _ in range(3):
            row = self._one("incr", key, key=skey, step=step)
            if row is not None:
                return int(row[0])
            # Refused: say why from the stored value (raises unless it changed meanwhile).
            found, current = self.flight_lookup(skey, key, False)
            add_to_counter(key, current if found else 0, step)
        raise CacheError(f"counter {key!r} kept changing type while being incremented")

    def decrement(self, key: str, by: int = 1) -> int:
        """``increment(key, -by)``."""
        return self.increment(key, -validate_step(by))

    def remember(self, key: str, ttl: Ttl, compute: Callable[[], T], *, wait: Ttl = 10.0) -> T:
        """The value at ``key``, computed by one caller across every process on a miss."""
        flight = Flight(self._skey(key), key, ttl_ms(ttl), positive_ms(wait, "remember wait"))
        return remember(self, flight, compute)

    # -- the lock and single-flight backend ---------------------------------------------------

    def flight_key(self, skey: str) -> str:
        """The lock guarding the computation of ``skey``."""
        return "flight:" + skey

    def flight_lookup(self, skey: str, label: str, count: bool) -> tuple[bool, Any]:
        """Whether ``skey`` is present and its value (counted as a hit or miss if ``count``)."""
        row = self._one("get", label, key=skey)
        if count:
            hit = int(row is not None)
            self._c.count_reads(hit, 1 - hit)
        return (False, None) if row is None else (True, self._c.codec.decode_value(row[0], label))

    def flight_store(self, skey: str, label: str, value: Any, ttl_ms: int | None) -> Any:
        """Encode and store ``value``; the value as a read gives it back."""
        payload = self._c.codec.encode_value(value)
        self._one("set", label, key=skey, payload=payload, ttl=ttl_ms)
        return self._c.codec.decode_value(payload, label)

    def _lock(self, statement: str, skey: str, token: str, ttl: int | None = None) -> bool:
        return self._one(statement, skey, name=skey, holder=token, ttl=ttl) is not None

    def lock_acquire(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Take the lock if free, expired or already ``token``'s (one upsert)."""
        return self._lock("acquire", skey, token, ttl_ms)

    def lock_release(self, skey: str, token: str) -> bool:
        """Drop the lock if ``token`` holds it (compare and delete, one statement)."""
        return self._lock("release", skey, token)

    def lock_extend(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Hold for ``ttl_ms`` more from now if ``token`` holds it."""
        return self._lock("extend", skey, token, ttl_ms)

    def lock_holder(self, skey: str) -> str | None:
        """The token holding the lock, unless it expired."""
        row = self._one("holder", skey, name=skey)
        return None if row is None else str(row[0])

    def wait_now_ms(self) -> int:
        """Now in ms on the clock waits are measured against."""
        return self._c.wait_now_ms()
