"""One way to connect to PostgreSQL, shared by the queue, the cache and the migrations.

A ``psycopg_pool.ConnectionPool`` of autocommit connections: each port operation borrows one,
runs its statement (or its one short transaction) and gives it back. The pool opens lazily,
so building an adapter never blocks; the first operation on an unreachable server raises
``QueueUnavailable`` / ``CacheUnavailable`` with the server's own reason. A process forked
after a pool was made (a worker's child, a pre-forking web server's) gets a pool of its own
(``own``): never its parent's connections.
"""

from __future__ import annotations

import getpass
import os
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import AdaptersMap, Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import Format
from psycopg_pool import ConnectionPool, PoolTimeout

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.errors import MissingPrivileges, SchemaOutdated
from foundry.adapters.postgres.names import mask_url
from foundry.domain import ConfigurationError, FoundryError, QueueUnavailable

#: A pooled connection idle this long is checked (one empty statement) before it is lent, as
#: the Redis adapter's health check does: a server restart while a process idled costs it no
#: operation, and a connection in steady use pays nothing.
IDLE_CHECK = timedelta(seconds=15)


class _UtcLoader(Loader):
    """A timestamptz loader giving moments in UTC: psycopg's own give them in the session's
    TimeZone, which the server's or the role's settings choose, so the same instant would
    read differently (in the dashboard, the CLI, a result's times) from one setup to the next.
    It wraps the loader the default map holds (C-accelerated, and not subclassable)."""

    base: type[Loader]

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self._loader = self.base(oid, context)

    def load(self, data: Buffer) -> datetime:
        moment: datetime = self._loader.load(data)
        return moment.astimezone(UTC)


def _utc_times() -> AdaptersMap:
    """psycopg's adapters, with timestamptz read in UTC (``_UtcLoader``)."""
    adapters = AdaptersMap(psycopg.adapters)
    oid = psycopg.adapters.types["timestamptz"].oid
    for form in (Format.TEXT, Format.BINARY):
        base = psycopg.adapters.get_loader(oid, form)
        if base is not None:
            loader = type(f"Utc{base.__name__}", (_UtcLoader,), {"base": base, "format": form})
            adapters.register_loader(oid, loader)
    return adapters


#: The adapters of every connection Foundry opens (``context=``): moments come back in UTC.
UTC_TIMES = _utc_times()


def open_pool(
    settings: PostgresSettings, name: str | None = None, *, idle_check: timedelta = IDLE_CHECK
) -> ConnectionPool:
    """A pool of at most ``settings.pool_size`` autocommit connections to ``settings.url``;
    a connection idle for ``idle_check`` or longer is checked before it is lent.

    No connection is made yet: the pool opens on first use (``pooled``).
    """
    application = name or settings.application_name
    idle = _IdleCheck(idle_check.total_seconds())
    pool: ConnectionPool = ConnectionPool(
        settings.url,
        min_size=1,
        max_size=settings.pool_size,
        kwargs={
            "autocommit": True,
            "connect_timeout": max(1, round(settings.connect_timeout.total_seconds())),
            "application_name": application,
            "context": UTC_TIMES,
            "prepare_threshold": settings.prepare_threshold,
        },
        timeout=settings.connect_timeout.total_seconds(),
        name=application,
        open=False,
        configure=idle.used,
        reset=idle.used,
    )
    _IDLE_CHECKS[pool] = idle
    _MADE[pool] = (_forks[0], lambda: open_pool(settings, name, idle_check=idle_check))
    return pool


#: Bumped in a forked child: a pool belongs to the process that made it (a counter read per
#: operation, where ``os.getpid`` is a system call per operation).
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))
#: Each pool ``open_pool`` made: the process (its fork count) that made it, and how to make
#: another like it.
_MADE: weakref.WeakKeyDictionary[ConnectionPool, tuple[int, Callable[[], ConnectionPool]]] = (
    weakref.WeakKeyDictionary()
)
#: A pool made before this process was forked, and the one this process uses instead.
_STAND_INS: weakref.WeakKeyDictionary[ConnectionPool, tuple[int, ConnectionPool]] = (
    weakref.WeakKeyDictionary()
)
#: The inherited pools and connections a child set aside, kept referenced: collected, their
#: connections would end the parent's sessions on the sockets they share with it.
_SET_ASIDE: list[object] = []


def forks() -> int:
    """How many forks led to this process: what a connection made now belongs to."""
    return _forks[0]


def set_aside(inherited: object) -> None:
    """Keep ``inherited`` (a pool or connection made before this process was forked) from
    ever being used, closed or collected here: its sockets are its parent's."""
    _SET_ASIDE.append(inherited)


def own(pool: ConnectionPool) -> ConnectionPool:
    """``pool``, or in a process forked since it was made, a pool of this process's own
    like it (made on first use). An inherited pool's connections are its parent's sockets
    and its threads did not survive the fork: a child that borrowed one would talk on the
    parent's session (or wait for a connection that never comes)."""
    made = _MADE.get(pool)
    forks = _forks[0]
    if made is None or made[0] == forks:
        return pool
    stand_in = _STAND_INS.get(pool)
    if stand_in is None or stand_in[0] != forks:
        stand_in = (forks, made[1]())
        _STAND_INS[pool] = stand_in
        set_aside(pool)
    return stand_in[1]


class _IdleCheck:
    """When each pooled connection was last given back, and whether to check it before it is
    lent: when it idled ``after`` seconds or more, or was idle when another one was lost."""

    def __init__(self, after: float) -> None:
        self._after = after
        self._lost_at = float("-inf")
        self._used: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    def used(self, conn: psycopg.Connection[Any]) -> None:
        """Note ``conn`` made or given back now (the pool's ``configure`` and ``reset``)."""
        self._used[conn] = time.monotonic()

    def lost(self) -> None:
        """A connection was found lost: the server may have cut every one given back so far."""
        self._lost_at = time.monotonic()

    def works(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether ``conn`` needs no check, or answers an empty statement."""
        used = self._used.get(conn, float("-inf"))
        if used > self._lost_at and time.monotonic() - used < self._after:
            return True
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            self.lost()
            return False
        return True


_IDLE_CHECKS: weakref.WeakKeyDictionary[ConnectionPool, _IdleCheck] = weakref.WeakKeyDictionary()


def connect(settings: PostgresSettings, *, autocommit: bool = True) -> psycopg.Connection:
    """One connection outside any pool (migrations, LISTEN, checks); raises ``QueueUnavailable``
    with the server's reason when it cannot connect."""
    try:
        return psycopg.connect(
            settings.url,
            autocommit=autocommit,
            connect_timeout=max(1, round(settings.connect_timeout.total_seconds())),
            application_name=settings.application_name,
            context=UTC_TIMES,
            prepare_threshold=settings.prepare_threshold,
        )
    except psycopg.OperationalError as error:
        raise unreachable(settings, error) from error


def unreachable(
    settings: PostgresSettings,
    error: BaseException,
    kind: type[FoundryError] = QueueUnavailable,
) -> FoundryError:
    """The error to raise when PostgreSQL does not answer: names the URL and the reason."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return kind(
        f"PostgreSQL at {mask_url(settings.url)} is unreachable ({reason}); "
        "check DATABASE_URL and that the server runs"
    )


#: SQLSTATEs of a statement naming something Foundry's migrations create that is not there
#: (a schema, table, column, function or type): the schema was never migrated, or by an
#: older release.
_NOT_MIGRATED = frozenset({"3F000", "42P01", "42703", "42883", "42704"})


def unusable(settings: PostgresSettings, error: psycopg.Error) -> ConfigurationError | None:
    """What ``error`` says of Foundry's schema, if anything: ``SchemaOutdated`` ("run foundry
    migrate", with the server's reason) for a statement refused for lack of one of its
    objects, ``MissingPrivileges`` (with the GRANT statements) for one the role may not run,
    and a ``ConfigurationError`` naming ``DATABASE_PREPARED_STATEMENTS`` for a prepared
    statement another session made or never saw (a pooler in transaction mode between)."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if error.sqlstate in _PREPARED_ELSEWHERE:
        return ConfigurationError(
            f"PostgreSQL refused a statement ({reason}): a connection pooler in transaction "
            "mode (pgbouncer) hands each transaction another server session, where the "
            "statements psycopg prepared are not; set DATABASE_PREPARED_STATEMENTS=false"
        )
    if error.sqlstate == _FORBIDDEN:
        role = str(conninfo_to_dict(settings.url).get("user") or getpass.getuser())
        return MissingPrivileges(
            f"PostgreSQL refused a statement ({reason}): the role {role!r} may not use "
            f"Foundry's schema {settings.schema!r}: {grant_statements(settings.schema, role)}"
        )
    if error.sqlstate not in _NOT_MIGRATED:
        return None
    return SchemaOutdated(
        f"PostgreSQL refused a statement ({reason}): Foundry's schema {settings.schema!r} is "
        "not there or older than this Foundry needs; run foundry migrate"
    )


_FORBIDDEN = "42501"  # insufficient_privilege
#: duplicate_prepared_statement, invalid_sql_statement_name ("prepared statement ... does
#: not exist"): what a session switched under a connection says of its prepared statements.
_PREPARED_ELSEWHERE = frozenset({"42P05", "26000"})

#: The rights workers and producers need on Foundry's tables.
TABLE_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"


def grant_statements(schema: str, role: str) -> str:
    """The statements that give ``role`` what Foundry needs in ``schema``."""
    on = sql.Identifier(schema).as_string()
    to = sql.Identifier(role).as_string()
    return (
        f"GRANT USAGE ON SCHEMA {on} TO {to}; "
        f"GRANT {TABLE_RIGHTS} ON ALL TABLES IN SCHEMA {on} TO {to}; "
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {on} TO {to}"
    )


def aborted(error: psycopg.Error) -> bool:
    """Whether the server aborted ``error``'s statement for its transaction's sake (a
    serialization failure or deadlock, a lock or statement timeout): the connection is fine,
    and the transaction is the one to retry. psycopg files these under ``OperationalError``."""
    state = error.sqlstate or ""
    return state.startswith("40") or state in ("55P03", "57014")


@contextmanager
def refusals(
    settings: PostgresSettings,
    kind: type[FoundryError] = QueueUnavailable,
    *,
    callers: bool = False,
) -> Iterator[None]:
    """Raise ``kind`` for a lost server, ``SchemaOutdated`` for a schema not migrated. In the
    ``callers`` transaction (``connection=``), a statement ``aborted`` reaches them as raised."""
    try:
        yield
    except psycopg.OperationalError as error:
        if callers and aborted(error):
            raise
        raise unreachable(settings, error, kind) from error
    except psycopg.Error as error:
        missing = unusable(settings, error)
        if missing is None:
            raise
        raise missing from error


@contextmanager
def pooled(
    pool: ConnectionPool,
    settings: PostgresSettings,
    kind: type[FoundryError] = QueueUnavailable,
) -> Iterator[psycopg.Connection]:
    """Borrow a connection from ``pool`` (opening it on first use); a connection failure,
    then or while it is used, raises ``kind`` naming the server and the reason, and a
    statement that finds the schema not migrated ``SchemaOutdated``.

    A connection found lost has each borrower check the connection it takes before using it
    (a server restart cut them all), so the operations after this one get working ones.
    """
    pool = own(pool)
    try:
        if pool.closed:
            pool.open(wait=False)
        with _borrowed(pool) as conn, refusals(settings, kind):  # a PoolTimeout: below
            yield conn
    except PoolTimeout as error:
        raise _pool_timeout(settings, kind) from error
    except psycopg.OperationalError as error:  # taking the connection (PoolClosed)
        raise unreachable(settings, error, kind) from error


@contextmanager
def _borrowed(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """``pool.connection()``, lending a connection that may have been cut (long idle, or idle
    when another was found lost) only once it answered."""
    idle = _IDLE_CHECKS.get(pool)
    conn = _working(pool, idle)
    try:
        with conn:
            yield conn
    finally:
        if conn.broken and idle is not None:
            idle.lost()
        pool.putconn(conn)


def _working(pool: ConnectionPool, idle: _IdleCheck | None) -> psycopg.Connection:
    # Each borrower checks only the connection it takes (a check of every idle one at once
    # could stall one caller for as long as each takes to fail), at most once per slot.
    for _ in range(pool.max_size):
        conn = pool.getconn()
        if idle is None or idle.works(conn):
            return conn
        pool.putconn(conn)  # lost: the pool replaces it
    return pool.getconn()


def _pool_timeout(settings: PostgresSettings, kind: type[FoundryError]) -> FoundryError:
    # The pool hides why it has no connection; one direct attempt gives the server's reason.
    try:
        with connect(settings):
            pass
    except QueueUnavailable as direct:
        return kind(str(direct))
    # The server answers: every connection of the pool stayed in use.
    waited = settings.connect_timeout.total_seconds()
    return kind(
        f"all {settings.pool_size} pooled connections to PostgreSQL at "
        f"{mask_url(settings.url)} stayed in use for {waited:g} s: raise DATABASE_POOL_SIZE "
        f"(now {settings.pool_size}) to what this process's threads use at once"
    )
