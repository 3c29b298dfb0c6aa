"""The one way Foundry runs Lua on Redis: a Functions library, called by FCALL.

``Library`` is the text: ``lua/_head.lua`` (the table of every key and record), the queue's
and the cache's helpers, then each file of ``lua/queue/`` as the function
``<name>_<version>`` and each of ``lua/cache/`` as ``cache_<name>_<version>`` (with the
flags its header's ``-- Flags`` line names). A library runs
once when loaded, so its helpers are made once per Redis, not once per call. Its name,
``foundry_<version>`` (a hash of the text), lets two releases share one Redis during a deploy;
an older release's library stays until deleted (``FUNCTION DELETE``, see docs/architecture.md).

``FunctionRunner`` sends the calls of one client: packed here, on a connection of the calling
thread's own (opened with the client's settings, outside its pool, so a thread never waits
for the pool nor holds one of its slots; a forked child opens its own; ``close_runners``
closes them with the client), under that connection's retry policy. When Redis answers
"Function not found" (restarted without persistence, ``FUNCTION FLUSH``) the library is
loaded on that connection and the call sent again: it never ran. Driver errors are raised
as they are; each adapter translates them. With a ``Durability`` (``REDIS_WAIT_REPLICAS``),
a write holding a durable call carries a ``WAIT`` behind it and raises ``ReplicasBehind``
when too few replicas answered.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from redis.client import Pipeline
from redis.exceptions import ResponseError
from redis.sentinel import SentinelManagedConnection

from foundry.adapters.redis.durability import (
    DURABLE,
    Durability,
    WritesRefused,
    refused_for_now,
)
from foundry.adapters.redis.exchange import Exchange
from foundry.adapters.redis.following import FollowingPool

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

Arg = str | bytes | int
#: One function call: its name (``claim``, ``cache_get``), its keys and its arguments.
Call = tuple[str, Sequence[str], Sequence[Arg]]

#: A function's header line naming the flags it is registered with.
_FLAGS = re.compile(r"^-- Flags +([a-z\- ]+?)(?: \(|$)", re.MULTILINE)
_HELPERS = ("_head.lua", "_queue.lua", "_cache.lua")
#: What each family's functions run first: name their queue's keys, or read the clock.
_PROLOGUE = {"queue": "bind(KEYS)", "cache": "begin(ARGV)"}


def call(client: redis.Redis | Pipeline, *args: Arg) -> Any:
    """One plain command (redis-py leaves ``execute_command`` untyped; this is the one edge)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


class Library:
    """The library's text, its version, and the Redis name of each function."""

    def __init__(self) -> None:
        folder = _lua_folder()
        parts = [(folder / name).read_text() for name in _HELPERS]
        bodies: dict[str, tuple[str, str]] = {}
        for family, prefix in (("queue", ""), ("cache", "cache_")):
            for path in sorted((folder / family).iterdir(), key=lambda entry: entry.name):
                if path.name.endswith(".lua"):
                    bodies[prefix + path.name[:-4]] = (family, path.read_text())
        text = "\0".join([*parts, *(body for _, body in bodies.values())])
        self.version = hashlib.sha1(text.encode()).hexdigest()[:16]
        self.name = f"foundry_{self.version}"
        self.function = {name: f"{name}_{self.version}" for name in bodies}
        # Each function is also FN.<name>, so one function may run another's body (batch runs
        # enqueue's) in the same call.
        functions = [
            f"\nFN.{name} = function(KEYS, ARGV)\n{_PROLOGUE[family]}\n{body}\nend\n"
            f"{_registration(self.function[name], name, body)}\n"
            for name, (family, body) in bodies.items()
        ]
        self.text = "".join([f"#!lua name={self.name}\nlocal FN = {{}}\n", *parts, *functions])


def _registration(function: str, name: str, body: str) -> str:
    """Register ``FN.<name>`` as ``function``, with the flags its header's ``-- Flags`` line
    names (``no-writes``: Redis runs it while out of memory, where it refuses a function that
    may write)."""
    flags = _FLAGS.search(body)
    if flags is None:
        return f'redis.register_function("{function}", FN.{name})'
    named = ", ".join(f'"{flag}"' for flag in flags.group(1).split())
    return (
        f'redis.register_function{{function_name = "{function}", callback = FN.{name}, '
        f"flags = {{{named}}}}}"
    )


def _lua_folder() -> Path | Traversable:
    """The package's ``lua`` folder: where the package is files on disk, the path that
    ``importlib.resources`` gives, without importing it and its readers (with ``zipfile``:
    ~6 M instructions of a worker's start); else (a zip, say) ``importlib.resources``' view."""
    if __spec__.origin is not None and os.path.isfile(__spec__.origin):
        return Path(__spec__.origin).parent / "lua"
    from importlib import resources  # noqa: PLC0415

    return resources.files(__package__) / "lua"


@functools.cache
def library() -> Library:
    """The library of this release (read from the package once per process)."""
    return Library()


#: Texts shorter than this are kept packed (at most ``_SMALL_KEPT`` of them): the few
#: constants of the calls, up to the epoch candidate (16 characters); ids (22) are longer.
_SMALL = 17
_SMALL_KEPT = 512
#: Array and bulk length prefixes up to this, made once.
_KEPT = 1024
_COUNTS = tuple(b"*%d\r\n" % count for count in range(_KEPT))
_SIZES = tuple(b"$%d\r\n" % size for size in range(_KEPT))


def _bulk(arg: Arg) -> bytes:
    data = arg if isinstance(arg, bytes) else str(arg).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack_command(args: Sequence[Arg]) -> bytes:
    """A plain command as RESP bytes (the lengths' prefixes from the tables: a bytes %-format
    per argument was half of packing a read)."""
    pieces = [_COUNTS[len(args)] if len(args) < _KEPT else b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        size = len(data)
        pieces += (_SIZES[size] if size < _KEPT else b"$%d\r\n" % size, data, b"\r\n")
    return b"".join(pieces)


class Packer:
    """FCALLs of the library as RESP bytes, each function's and keys' head packed once."""

    def __init__(self, functions: dict[str, str]) -> None:
        self._function = functions
        #: By function, keys and the number of arguments: the array's count, FCALL, the
        #: function's name and the keys, packed.
        self._heads: dict[tuple[str, tuple[str, ...], int], bytes] = {}
        # The short texts most arguments are ("", "0", a clock's "", counts, the epoch
        # candidate), packed once: a dict hit where formatting a bulk string is a third of
        # packing a plain enqueue.
        self._small: dict[Arg, bytes] = {}

    def pack(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> bytes:
        """One ``FCALL`` of ``name`` with ``keys`` and ``args``, ready to send."""
        head = self._heads.get((name, keys if type(keys) is tuple else tuple(keys), len(args)))
        if head is None:
            head = self._head(name, keys, len(args))
        small = self._small
        pieces = [head]
        for arg in args:
            if type(arg) is bytes:
                data: bytes = arg
            else:
                # One lookup serves every kind: the table's keys are texts, which no int
                # equals, so only a kept text finds its bulk string (bytes are not hashed).
                bulk = small.get(arg)
                if bulk is not None:
                    pieces.append(bulk)
                    continue
                if type(arg) is str and len(arg) < _SMALL and len(small) < _SMALL_KEPT:
                    small[arg] = bulk = _bulk(arg)
                    pieces.append(bulk)
                    continue
                data = str(arg).encode()
            # The length's prefix from a table and the data joined once with the rest: a
            # bytes %-format per argument was a third of packing a plain enqueue.
            size = len(data)
            pieces += (_SIZES[size] if size < _KEPT else b"$%d\r\n" % size, data, b"\r\n")
        return b"".join(pieces)

    def _head(self, name: str, keys: Sequence[str], size: int) -> bytes:
        """The array's count, FCALL, the function's name and the keys, packed and kept."""
        count = 3 + len(keys) + size
        parts: list[Arg] = ["FCALL", self._function[name], len(keys), *keys]
        counted = _COUNTS[count] if count < _KEPT else b"*%d\r\n" % count
        head = self._heads[(name, tuple(keys), size)] = counted + b"".join(map(_bulk, parts))
        return head


def missing(error: ResponseError) -> bool:
    """Redis does not have the library (restarted without persistence, or FUNCTION FLUSH)."""
    return str(error).startswith("Function not found")


def _refused_for_now(conn: Any, error: ResponseError) -> None:
    """Raise ``WritesRefused`` (a ``ConnectionError``: the retry policy sends the call again,
    on ``conn`` opened anew) if ``error`` says the master refuses writes for now."""
    if refused_for_now(error):
        conn.disconnect()
        raise WritesRefused(error) from error


def _send(conn: Any, packed: bytes) -> None:
    """Send on ``conn``; a Sentinel-managed one asks the sentinels where the master is before it
    connects (sending alone would dial its default address, as only its pool's ``connect``
    asks them, and that one retries under the policy again, inside the call's own retries)."""
    if not conn.is_connected and isinstance(conn, SentinelManagedConnection):
        conn.host, conn.port = conn.connection_pool.get_master_address()
    conn.send_packed_command([packed])


#: Bumped in a forked child: a pinned connection belongs to the process that opened it (a
#: counter read per call, where ``os.getpid`` is a system call per call).
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class _Pinned(threading.local):
    """This thread's own connection, and the process (its fork count) that opened it."""

    fork = -1
    #: A redis-py ``Connection`` (TCP, TLS or unix socket; its methods are untyped).
    connection: Any = None
    exchange: Exchange


#: The runners over each client (by the client), which ``close_runners`` closes.
_runners: weakref.WeakKeyDictionary[Any, weakref.WeakSet[FunctionRunner]] = (
    weakref.WeakKeyDictionary()
)
# Reentrant: a connection collected unclosed closes its runners from the garbage collector,
# which may run while this thread registers one.
_registering = threading.RLock()


def close_runners(client: Any) -> None:
    """Close the connections every runner over ``client`` opened for its threads (which the
    client's pool never sees); a later call through any of them connects again."""
    with _registering:
        runners = list(_runners.get(client, ()))
    for runner in runners:
        runner.close()


class FunctionRunner:
    """Calls the library's functions for one client (see the module's docstring)."""

    #: Whether each call goes to the node of its keys (a cluster's runner), not one connection.
    routes_by_key = False

    def __init__(self, client: redis.Redis, durability: Durability | None = None) -> None:
        self.client = client
        self.durability = durability or Durability()
        wait = self.durability.wait_command()
        self._wait = None if wait is None else b"".join((b"*3\r\n", *map(_bulk, wait)))
        self.library = library()
        self._pinned = _Pinned()
        self._pack = Packer(self.library.function).pack
        pool = getattr(client, "connection_pool", None)  # a cluster's client has none
        self._following = pool if isinstance(pool, FollowingPool) else None
        #: Every thread's own connection (a thread's that ended is dropped with it).
        self._opened: weakref.WeakSet[Any] = weakref.WeakSet()
        with _registering:
            _runners.setdefault(client, weakref.WeakSet()).add(self)

    def close(self) -> None:
        """Close every thread's own connection; a thread's next call connects again."""
        with _registering:
            opened = list(self._opened)
        for connection in opened:
            connection.disconnect()

    def call(
        self, name: str, keys: Sequence[str], args: Sequence[Arg], *, resend: bool = True
    ) -> Any:
        """FCALL ``name``; its reply (a Redis error reply raises ``ResponseError``).

        A call that did not arrive whole is sent again (it never ran). With ``resend`` (every
        function that changes nothing the second time) a lost reply is re-sent too; without
        it, a lost reply raises the connection's error, since the call may have run.
        """
        if self._wait is not None and name in DURABLE:
            return self._write([(name, keys, args)], ())[0]
        conn = self._connection()
        packed = self._pack(name, keys, args)
        if resend:
            # The first attempt outside the retry policy, which a call that succeeds never
            # needs (its closures and frames were a twentieth of a dispatch's client work); a
            # failure is handed to the policy as its first, so it counts and retries as before.
            try:
                return self._round_trip(conn, packed)
            except Exception as error:  # the policy decides, as it would have
                failed = error
            return self._retried(conn, packed, failed)

        def drop(_: Exception) -> None:
            conn.disconnect()

        conn.retry.call_with_retry(lambda: self._send_fresh(conn, packed), drop)
        try:
            return self._reply(conn, packed)
        except (redis.ConnectionError, redis.TimeoutError):
            conn.disconnect()
            raise

    def call_packed(self, packed: bytes) -> Any:
        """``call`` of one re-sendable call packed by its caller (RESP bytes, e.g. a head the
        caller keeps per queue and its few own arguments), never with ``WAIT`` behind it: the
        caller checks ``takes_packed`` first."""
        conn = self._connection()
        try:
            return self._round_trip(conn, packed)
        except Exception as error:  # the policy decides, as in call()
            failed = error
        return self._retried(conn, packed, failed)

    @property
    def takes_packed(self) -> bool:
        """Whether ``call_packed`` may serve any call: no ``WAIT`` is due behind durable ones,
        and one connection serves every key (a cluster's runner routes each call by its
        keys)."""
        return self._wait is None and not self.routes_by_key

    def _retried(self, conn: Any, packed: bytes, first: Exception) -> Any:
        """``packed``'s reply under the connection's retry policy, ``first`` the error of the
        attempt already made (the policy sees it raised by its own first attempt)."""
        failed: list[Exception] = [first]

        def attempt() -> Any:
            if failed:
                raise failed.pop()
            return self._round_trip(conn, packed)

        return conn.retry.call_with_retry(attempt, lambda _: conn.disconnect())

    def call_many(
        self, calls: Sequence[Call], *, first: Sequence[Arg] = (), errors_in_place: bool = False
    ) -> list[Any]:
        """Several calls in one write, replies in order; each must be safe to re-send.

        ``first``, a plain command (a BLPOP), goes in front and its reply is dropped; it is not
        sent again if the calls must be. Redis runs commands in order, so a reply to the last
        call means every earlier one was applied. If Redis lacks the library it is loaded and
        every call sent again; another error reply is raised once every reply has been read,
        or with ``errors_in_place`` returned in its call's place (a ``ResponseError``), so
        calls on several queues each get their own answer (a master refusing writes for now
        is raised all the same: no call's own).
        """
        if len(calls) == 1 and not first:
            name, keys, args = calls[0]
            if not errors_in_place:
                return [self.call(name, keys, args)]
            try:
                return [self.call(name, keys, args)]
            except ResponseError as error:
                return [error]
        return self._write(calls, first, errors_in_place=errors_in_place)

    def _write(
        self, calls: Sequence[Call], first: Sequence[Arg], *, errors_in_place: bool = False
    ) -> list[Any]:
        """``call_many``'s write, with ``WAIT`` behind it when a call is durable."""
        conn = self._connection()
        packed = [self._pack(name, keys, args) for name, keys, args in calls]
        wait = self._wait if any(name in DURABLE for name, _, _ in calls) else None
        if wait is not None:
            packed.append(wait)
        head = [b"".join((b"*%d\r\n" % len(first), *map(_bulk, first)))] if first else []

        def send() -> list[Any]:
            sent = [*head, *packed]
            head.clear()
            skip = len(sent) - len(packed)
            return self._send_many(conn, sent, skip=skip, errors_in_place=errors_in_place)

        replies = list(conn.retry.call_with_retry(send, lambda _: conn.disconnect()))
        if wait is not None:
            acknowledged = replies.pop()
            if isinstance(acknowledged, ResponseError):  # no call's own, even in place
                raise acknowledged
            self.durability.check(acknowledged)
        return replies

    def read_many(self, packed: Sequence[bytes]) -> list[Any]:
        """Plain commands that change nothing (reads, or a MULTI block of reads), each packed
        by the caller (``pack_command``), in one write; their replies in order, read with
        hiredis, an error reply in its place (a ``ResponseError``, also inside an ``EXEC``'s).
        A lost connection sends them all again under its retry policy; one the server closed
        while idle (a restart, its ``timeout``) is opened again first, as redis-py's pool does
        for a connection it hands out, whatever the policy."""
        conn = self._connection()
        try:
            if conn.is_connected and conn.can_read(timeout=0):
                conn.disconnect()  # data not asked for: not a reply to these
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            conn.disconnect()  # closed by the server; the send connects again
        commands = list(packed)
        return list(
            conn.retry.call_with_retry(
                lambda: self._replies(conn, commands), lambda _: conn.disconnect()
            )
        )

    def load(self) -> list[str]:
        """Load the library unless Redis holds it already; the names of the other Foundry
        libraries Redis holds (other releases').

        Listing first spares Redis compiling the whole library at every worker's start
        (~100 KB of Lua, milliseconds of the server's time); a library's name is the hash of
        its text, so one listed under our name is ours.
        """
        try:
            listed = call(self.client, "FUNCTION", "LIST", "LIBRARYNAME", "foundry_*")
        except ResponseError:  # FUNCTION LIST refused: load, and nothing to report
            listed = None
        names = [lib[b"library_name"].decode() for lib in listed or ()]
        if self.library.name not in names:
            call(self.client, "FUNCTION", "LOAD", "REPLACE", self.library.text)
        return sorted(name for name in names if name != self.library.name)

    def _connection(self) -> Any:
        pinned = self._pinned
        if pinned.connection is None or pinned.fork != _forks[0]:
            # A forked child never reuses its parent's socket.
            pool = self.client.connection_pool
            pinned.connection = pool.connection_class(**pool.connection_kwargs)
            pinned.exchange = Exchange()
            pinned.fork = _forks[0]
            with _registering:
                self._opened.add(pinned.connection)
        elif self._following is not None and self._following.left_behind(pinned.connection):
            pinned.connection.disconnect()  # the next send asks the sentinels for the master
        return pinned.connection

    def _round_trip(self, conn: Any, packed: bytes) -> Any:
        fast = self._pinned.exchange
        if not fast.ready(conn):
            _send(conn, packed)
            return self._reply(conn, packed)
        try:
            return fast.exchange(conn, packed)
        except ResponseError as error:
            if not missing(error):
                _refused_for_now(conn, error)
                raise
        return self._load_and_resend(conn, packed)

    @staticmethod
    def _send_fresh(conn: Any, packed: bytes) -> None:
        # A connection the server closed (restart, idle timeout) would take this call and then
        # fail to answer, leaving us unsure whether it ran: reopen it first.
        if conn.is_connected and conn.can_read(timeout=0):
            conn.disconnect()
        _send(conn, packed)

    def _reply(self, conn: Any, packed: bytes) -> Any:
        try:
            return conn.read_response()
        except ResponseError as error:
            if not missing(error):
                _refused_for_now(conn, error)
                raise
            return self._load_and_resend(conn, packed)

    def _load_and_resend(self, conn: Any, packed: bytes) -> Any:
        """The server lost the library (a restart, a flush): load it and send ``packed`` again."""
        self._load_on(conn)
        conn.send_packed_command([packed])
        return conn.read_response()

    def _send_many(
        self, conn: Any, packed: list[bytes], skip: int = 0, *, errors_in_place: bool = False
    ) -> list[Any]:
        for attempt in (1, 2):
            replies = self._replies(conn, packed)
            errors = [reply for reply in replies if isinstance(reply, ResponseError)]
            replies, packed, skip = replies[skip:], packed[skip:], 0
            if not errors:
                return replies
            if attempt == 2 or not any(missing(error) for error in errors):
                for error in errors:
                    _refused_for_now(conn, error)
                if errors_in_place:
                    return replies
                raise errors[0]
            self._load_on(conn)  # then every call again: each is safe to re-send
        raise AssertionError("unreachable")

    def _replies(self, conn: Any, packed: list[bytes]) -> list[Any]:
        """Send ``packed`` in one write and read a reply to each, an error reply in its place
        (a lost connection raises)."""
        fast = self._pinned.exchange
        if fast.ready(conn):
            replies = fast.exchange_many(conn, b"".join(packed), len(packed))
            for reply in replies:
                if isinstance(reply, redis.ConnectionError):  # (a server still loading)
                    raise reply
            return replies
        _send(conn, b"".join(packed))
        replies = []
        for _ in packed:
            try:
                replies.append(conn.read_response())
            except ResponseError as error:
                replies.append(error)
        return replies

    def _load_on(self, conn: Any) -> None:
        # REPLACE: another process of this release may have loaded it since (same text).
        conn.send_command("FUNCTION", "LOAD", "REPLACE", self.library.text)
        try:
            conn.read_response()
        except ResponseError as error:
            # A master refusing writes for now (out of memory) refuses the load as any write:
            # the outage, retried, never a reply of the queue's own.
            _refused_for_now(conn, error)
            raise
