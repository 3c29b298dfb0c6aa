"""The queue's Lua code: one Redis Functions library (scripts/_lib.lua's helpers, then each
scripts/<name>.lua as the function ``<name>_<version>``), called by FCALL.

A library is run once, when loaded (FUNCTION LOAD), so its helpers are made once per Redis; a
script (EVAL) runs its whole text, helpers included, on every call. Its name, ``foundry_<version>``
(a hash of the text), lets two releases share one Redis during a deploy; an old release's library
stays until deleted (``FUNCTION DELETE foundry_<version>``, see docs/architecture.md).

The hot path packs FCALL itself and reloads the library when Redis answers "Function not found"
(after a restart without persistence, or a ``FUNCTION FLUSH``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import ResponseError

SCRIPT_NAMES = (
    "enqueue",
    "claim",
    "renew",
    "complete",
    "fail",
    "release",
    "reap",
    "requeue_dead",
    "delete",
    "purge",
    "stats",
)

Arg = str | bytes | int


def call(client: redis.Redis | Pipeline, *args: Arg) -> Any:
    """One raw command (redis-py leaves ``execute_command`` untyped; this is the one edge)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _bulk(arg: Arg) -> bytes:
    """One RESP bulk string."""
    data = arg if isinstance(arg, bytes) else str(arg).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _command(args: Sequence[Arg]) -> bytes:
    """One RESP command."""
    return b"".join((b"*%d\r\n" % len(args), *map(_bulk, args)))


def _library(names: Sequence[str]) -> tuple[str, str]:
    """The library's version and text: _lib.lua, then one function per script.

    Every function first binds the key names _lib.lua's helpers use to the queue it was called
    for; the script's text is its body, ``KEYS`` and ``ARGV`` its arguments.
    """
    folder = resources.files("foundry.adapters.redis") / "scripts"
    lib = (folder / "_lib.lua").read_text()
    bodies = {name: (folder / f"{name}.lua").read_text() for name in names}
    version = hashlib.sha1("\0".join([lib, *bodies.values()]).encode()).hexdigest()[:16]
    parts = [f"#!lua name=foundry_{version}\n", lib]
    for name, body in bodies.items():
        parts.append(
            f'\nredis.register_function("{name}_{version}", function(KEYS, ARGV)\n'
            f"bind(KEYS)\n{body}\nend)\n"
        )
    return version, "".join(parts)


def _missing(error: ResponseError) -> bool:
    """Redis does not have the library (restarted without persistence, or FUNCTION FLUSH)."""
    return str(error).startswith("Function not found")


class Scripts:
    """Every queue script, by name: the library's text and each script's function name."""

    def __init__(self) -> None:
        self.version, self.library = _library(SCRIPT_NAMES)
        self.function = {name: f"{name}_{self.version}" for name in SCRIPT_NAMES}
        self._heads: dict[tuple[str, tuple[str, ...]], bytes] = {}
        self._local = threading.local()

    def run(self, client: redis.Redis, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """FCALL ``name``; if Redis lacks the library, load it and call again.

        The hot path: the command is packed here (the constant head once per script and key
        set) and sent on a connection pinned to this thread and process, skipping the pool and
        ``execute_command``'s per-call bookkeeping. The connection's own retry still applies: on
        a connection error it is dropped, reconnected and the script re-sent, which every
        script tolerates.
        """
        conn = self._pinned(client)
        packed = self._pack(name, keys, args)
        return conn.retry.call_with_retry(
            lambda: self._send(conn, name, packed),
            lambda _: conn.disconnect(),
        )

    def _pinned(self, client: redis.Redis) -> Any:
        pinned = getattr(self._local, "pinned", None)
        if pinned is None or pinned[0] != os.getpid() or pinned[1] is not client:
            # A forked child never reuses its parent's socket: the pid is part of the key.
            pinned = (os.getpid(), client, client.connection_pool.get_connection())
            self._local.pinned = pinned
        return pinned[2]

    def _pack(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> bytes:
        head = self._heads.get((name, tuple(keys)))
        if head is None:
            parts: list[Arg] = ["FCALL", self.function[name], len(keys), *keys]
            head = b"".join(map(_bulk, parts))
            self._heads[(name, tuple(keys))] = head
        count = 3 + len(keys) + len(args)
        # _bulk inlined: a batch of 1,000 jobs packs 7,000 arguments (a third faster).
        data = [arg if isinstance(arg, bytes) else str(arg).encode() for arg in args]
        bulks = [b"$%d\r\n%s\r\n" % (len(item), item) for item in data]
        return b"".join((b"*%d\r\n" % count, head, *bulks))

    def run_many(
        self,
        client: redis.Redis,
        calls: Sequence[tuple[str, Sequence[str], Sequence[Arg]]],
        *,
        first: Sequence[Arg] = (),
    ) -> list[Any]:
        """Several scripts in one write on the pinned connection, replies in order.

        ``first``, a plain command (a BLPOP), goes in front and its reply is dropped; it is not
        sent again if the scripts must be. Redis runs commands in order, so a reply to the last
        script means every earlier one was applied. If Redis lacks the library it is loaded
        and all scripts are re-sent (each tolerates a re-send); another error reply is raised
        once every reply has been read.
        """
        if len(calls) == 1 and not first:
            name, keys, args = calls[0]
            return [self.run(client, name, keys, args)]
        conn = self._pinned(client)
        packed = [self._pack(name, keys, args) for name, keys, args in calls]
        head = [_command(first)] if first else []

        def send() -> list[Any]:
            sent = [*head, *packed]
            head.clear()
            return self._send_many(conn, sent, skip=len(sent) - len(packed))

        return list(conn.retry.call_with_retry(send, lambda _: conn.disconnect()))

    def _send_many(self, conn: Any, packed: list[bytes], skip: int = 0) -> list[Any]:
        for attempt in (1, 2):
            conn.send_packed_command([b"".join(packed)])
            replies, errors = [], []
            for _ in packed:
                try:
                    replies.append(conn.read_response())
                except ResponseError as error:
                    replies.append(None)
                    errors.append(error)
            replies, packed, skip = replies[skip:], packed[skip:], 0
            if not errors:
                return replies
            if attempt == 2 or not all(_missing(error) for error in errors):
                raise errors[0]
            self._load_on(conn)
        raise AssertionError("unreachable")

    def _load_on(self, conn: Any) -> None:
        # REPLACE: another process of this release may have loaded it since (same text).
        conn.send_command("FUNCTION", "LOAD", "REPLACE", self.library)
        conn.read_response()

    def _send(self, conn: Any, name: str, packed: bytes) -> Any:
        conn.send_packed_command([packed])
        try:
            return conn.read_response()
        except ResponseError as error:
            if not _missing(error):
                raise
            self._load_on(conn)
            conn.send_packed_command([packed])
            return conn.read_response()

    def load_all(self, client: redis.Redis) -> list[str]:
        """Load the library (also before a pipeline, which cannot reload it midway); the
        names of the other Foundry libraries Redis holds (other releases'), in one trip."""
        pipe = client.pipeline(transaction=False)
        call(pipe, "FUNCTION", "LOAD", "REPLACE", self.library)
        call(pipe, "FUNCTION", "LIST", "LIBRARYNAME", "foundry_*")
        loaded, libraries = pipe.execute(raise_on_error=False)
        if isinstance(loaded, Exception):
            raise loaded
        if isinstance(libraries, Exception):  # FUNCTION LIST refused: nothing to report
            return []
        names = (lib[b"library_name"].decode() for lib in libraries)
        return sorted(name for name in names if name != f"foundry_{self.version}")

    def pipelined(
        self, client: redis.Redis, calls: Sequence[tuple[str, Sequence[str], Sequence[Arg]]]
    ) -> list[Any]:
        """Run several scripts in one round trip; reload the library and re-send all if Redis
        lacks it.

        Re-sending is safe because every script is idempotent under re-send. A single call
        takes the (cheaper) ``run`` path.
        """
        if len(calls) == 1:
            name, keys, args = calls[0]
            return [self.run(client, name, keys, args)]
        for attempt in (1, 2):
            pipe = client.pipeline(transaction=False)
            for name, keys, args in calls:
                call(pipe, "FCALL", self.function[name], len(keys), *keys, *args)
            try:
                return pipe.execute()
            except ResponseError as error:
                if attempt == 2 or not _missing(error):
                    raise
                self.load_all(client)
        raise AssertionError("unreachable")
