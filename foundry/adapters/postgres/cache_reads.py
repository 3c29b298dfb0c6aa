"""The hits and misses of one process, kept in memory and added to its stats row in batches.

A read then writes nothing: its counts join the row at most once per interval (checked at
each operation, on the cache's clock), at ``stats()``, and when Python exits. The cache
objects of one namespace in a process share their counts, so one built per request loses
none. What this costs: a process's reads reach the figures other processes see up to an
interval late, and a process that ends without exiting Python (killed, ``os._exit``) loses
its counts of the last interval, as does one whose server is gone when it exits (a warning
says so; a dropped database or schema, which took the counts' row with it, is no loss).
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading

import attrs
import psycopg
from psycopg import errors

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect
from foundry.domain import QueueUnavailable

log = logging.getLogger(__name__)
#: The server's refusal of a connection to a database that does not exist (dropped).
_NO_DATABASE = re.compile(r'FATAL:\s+database ".*" does not exist')


class ReadCounts:
    """Hits and misses not yet written, and when they are next due (ms on the cache's clock).

    Thread-safe. A forked child starts from nothing (``start_over``): its parent's counts are
    its parent's.
    """

    def __init__(self, every_ms: int) -> None:
        self._every_ms = every_ms
        self.start_over()

    def start_over(self) -> None:
        """No counts, and a new mutex (a forked child may inherit the old one held)."""
        self._mutex = threading.Lock()
        self._hits = self._misses = 0
        self._due: int | None = None

    def add(self, hits: int, misses: int, now_ms: int) -> bool:
        """Count a read's hits and misses; whether the counts are due to be written."""
        with self._mutex:
            self._hits += hits
            self._misses += misses
            if self._due is None:
                self._due = now_ms + self._every_ms
            return now_ms >= self._due

    def due(self, now_ms: int) -> bool:
        """Whether counts are waiting and their interval has passed."""
        with self._mutex:
            return self._due is not None and now_ms >= self._due

    def take(self) -> tuple[int, int]:
        """The counts waiting to be written, leaving none."""
        with self._mutex:
            taken, self._hits, self._misses, self._due = (self._hits, self._misses), 0, 0, None
            return taken

    def give_back(self, hits: int, misses: int, now_ms: int) -> None:
        """Counts taken but not written (the statement failed): they wait for the next try."""
        self.add(hits, misses, now_ms)


@attrs.frozen
class _Namespace:
    """Where one namespace's read counts go: its database, statement and prefix."""

    settings: PostgresSettings
    statement: str
    prefix: str
    shards: int


#: This process' read counts per namespace, shared by every cache object of it (one built per
#: request counts as well), and written when Python exits.
_READS: dict[tuple[str, str, str], tuple[_Namespace, ReadCounts]] = {}
_READS_MUTEX = threading.Lock()


def _forked() -> None:
    """In a forked child: no counts yet, and mutexes no thread of the parent can hold."""
    global _READS_MUTEX  # noqa: PLW0603 - the parent's may be inherited held
    _READS_MUTEX = threading.Lock()
    for _, reads in _READS.values():
        reads.start_over()


os.register_at_fork(after_in_child=_forked)


def reads_of(
    settings: PostgresSettings, prefix: str, statement: str, every_ms: int, shards: int
) -> ReadCounts:
    """The read counts of the namespace ``prefix`` in ``settings``' database and schema (the
    first cache object of it sets their interval); ``statement`` writes them to one of
    ``shards`` stats rows."""
    with _READS_MUTEX:
        key = (settings.url, settings.schema, prefix)
        if key not in _READS:
            namespace = _Namespace(settings, statement, prefix, shards)
            _READS[key] = (namespace, ReadCounts(every_ms))
        return _READS[key][1]


@atexit.register
def _write_reads_at_exit() -> None:
    """At interpreter exit: every namespace's counts not written yet, each on a connection of
    its own (the app may have closed its pool already), if the server answers."""
    for namespace, reads in list(_READS.values()):
        hits, misses = reads.take()
        if hits or misses:
            _write_last(namespace, hits, misses)


def _write_last(namespace: _Namespace, hits: int, misses: int) -> None:
    params = {"prefix": namespace.prefix, "shard": os.getpid() % namespace.shards}
    try:
        with connect(namespace.settings) as conn:
            conn.execute(namespace.statement, {**params, "hits": hits, "misses": misses})
    except Exception as error:  # exiting: nothing to retry, and nobody to raise to
        if _gone(error):
            return  # the namespace's stats went with their database or schema: none are lost
        log.warning(
            "cache %s's last %s read counts are lost: %s", namespace.prefix, hits + misses, error
        )


def _gone(error: BaseException) -> bool:
    """Whether ``error`` says the database, schema or table the counts go to was dropped (a
    connection refused as such carries no SQLSTATE: its message says it)."""
    cause = error.__cause__ if isinstance(error, QueueUnavailable) else error
    if isinstance(cause, errors.UndefinedTable | errors.InvalidSchemaName):
        return True
    return (
        isinstance(cause, psycopg.OperationalError) and _NO_DATABASE.search(str(cause)) is not None
    )
