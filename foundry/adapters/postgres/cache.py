"""PostgresCache: the CachePort on PostgreSQL, shared by every process that uses one prefix.

Rows of UNLOGGED tables in Foundry's schema (``migrations/0002_cache.sql``), keyed by the
prefix: values under ``"<scope>:<key>"`` (scope '' for plain keys, a digest of the tags'
versions for a tagged view's), locks, remember() computations and effect records by name, tag
versions, and stats rows. Each operation is one statement on a pooled autocommit connection
(``cache_sql.py``); a tagged operation first reads its tags' versions (one more), an effect
step is one short transaction. Time is the given clock's, passed to every statement, or the
server's ``statement_timestamp()`` when no clock is given. Expired rows are invisible at once
and deleted by a sweep that a write runs at most once a minute per process.

What the tables being UNLOGGED costs: a crash of the server (not a clean restart) empties them,
and a standby does not have them.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from psycopg_pool import ConnectionPool

from foundry.adapters.cache_effect import DELETE, CacheEffect, decide
from foundry.adapters.cache_lock import CacheLock, make_lock, restore_lock
from foundry.adapters.cache_support import positive_ms, tag_names, validate_key, validate_keys
from foundry.adapters.codec import Codec
from foundry.adapters.postgres.cache_core import CacheCore
from foundry.adapters.postgres.cache_store import PostgresStore
from foundry.adapters.postgres.config import PostgresSettings
from foundry.ports.cache import CacheStats, Ttl
from foundry.ports.clock import Clock

log = logging.getLogger(__name__)


class PostgresTaggedCache(PostgresStore):
    """A view whose stored keys fold in its tags' current versions; ``flush`` bumps them."""

    def __init__(self, core: CacheCore, names: tuple[str, ...]) -> None:
        super().__init__(core)
        self._names = names

    def _scope(self, label: str) -> str:
        rows = self._c.rows("versions", self._c.params(names=list(self._names)), label)
        versions = dict(rows)
        joined = "\x1f".join(f"{name}\x1e{int(versions.get(name, 0))}" for name in self._names)
        return hashlib.blake2b(joined.encode(), digest_size=12).hexdigest() + ":"

    def _skey(self, key: str) -> str:
        return self._scope(validate_key(key)) + key

    def _skeys(self, keys: list[str]) -> list[str]:
        checked = validate_keys(keys)
        scope = self._scope(checked[0])
        return [scope + key for key in checked]

    def flush(self) -> None:
        """Invalidate every key written through any view sharing one of these tags (one
        upsert; the old rows stay until they expire, or until ``clear``)."""
        self._c.rows("flush", self._c.params(names=list(self._names)), ",".join(self._names))


class PostgresCache(PostgresStore):
    """A cache namespace ``prefix`` on PostgreSQL, through ``pool`` (``connection.open_pool``).

    The schema must be migrated (``foundry migrate``); until it is, every operation raises a
    ``ConfigurationError`` saying so.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        settings: PostgresSettings,
        prefix: str = "foundry-cache",
        *,
        codec: Codec | None = None,
        clock: Clock | None = None,
        sweep_every: timedelta = timedelta(seconds=60),
        stats_every: timedelta = timedelta(seconds=1),
    ) -> None:
        super().__init__(
            CacheCore(
                pool,
                settings,
                prefix,
                codec=codec or Codec(),
                clock=clock,
                sweep_ms=positive_ms(sweep_every, "sweep_every"),
                stats_ms=positive_ms(stats_every, "stats_every"),
            )
        )

    def tags(self, *names: str) -> PostgresTaggedCache:
        """A view whose keys are invalidated by flushing any of ``names``."""
        return PostgresTaggedCache(self._c, tag_names(names))

    def lock(self, name: str, ttl: Ttl, *, timeout: Ttl = None) -> CacheLock:
        """A lock (not yet taken) that expires ``ttl`` after it is taken."""
        skey = "lock:" + validate_key(name, "lock name")
        return make_lock(self.flights, name, skey, ttl, timeout)

    def restore_lock(
        self, name: str, owner: str, ttl: Ttl = None, *, timeout: Ttl = None
    ) -> CacheLock:
        """The lock ``name`` as held by ``owner`` (a ``Lock.owner``)."""
        skey = "lock:" + validate_key(name, "lock name")
        return restore_lock(self.flights, name, skey, owner=owner, ttl=ttl, timeout=timeout)

    def idempotent(self, key: str, ttl: Ttl, *, fence: int = 0) -> CacheEffect:
        """The record of the effect ``key``: one short transaction on entering and one on
        leaving."""
        return CacheEffect(self, key, "effect:" + validate_key(key), ttl, fence)

    def effect_step(self, skey: str, op: str, fence: int, ttl_ms: int) -> str:
        """One step of ``cache_effect.decide``, in a transaction holding an advisory lock on
        the record (so two attempts' steps on one record run one after the other)."""
        c = self._c
        params = c.params(name=skey, ttl=ttl_ms)
        with c.connection(skey) as conn, conn.transaction():
            conn.execute(c.sql["guard"], params)
            row = conn.execute(c.sql["holder"], params).fetchone()
            reply, record = decide(None if row is None else str(row[0]), op, fence)
            if record == DELETE:
                conn.execute(c.sql["drop_record"], params)
            elif record is not None:
                conn.execute(c.sql["put_record"], {**params, "holder": record})
        return reply

    def clear(self) -> None:
        """Remove every value of this namespace (one ``DELETE``). Locks, effect records, tag
        versions and statistics stay."""
        c = self._c
        with c.connection(c.prefix) as conn:
            removed = conn.execute(c.sql["clear"], c.params()).rowcount
        log.info("cleared cache namespace %s (%s keys)", c.prefix, removed)

    def stats(self) -> CacheStats:
        """Hits, misses, writes and deletes of every process using this namespace.

        Evictions are 0: rows leave only by expiry, delete or clear. This process' reads are
        all in; another's, up to ``stats_every`` late.
        """
        self._c.write_reads(quiet=False)
        row = self._c.rows("stats", self._c.params(), self._c.prefix)[0]
        hits, misses, writes, deletes = (int(n) for n in row)
        return CacheStats(hits, misses, writes, deletes)
