"""The Lua scripts: loaded from scripts/*.lua (each prefixed with the part of _lib.lua it uses),
run by EVALSHA.

``execute_command("EVALSHA", ...)`` is measurably cheaper than redis-py ``Script`` objects, so
the hot path calls it directly and reloads the script on ``NOSCRIPT`` (after a restart or a
``SCRIPT FLUSH``).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError, ResponseError

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


# A helper of _lib.lua: its leading comment lines and its ``local function``, up to the next one.
_HELPER = re.compile(r"^(?:--.*\n)*local function (\w+)\(", re.MULTILINE)
_COMMENT_LINE = re.compile(r"^\s*--.*$", re.MULTILINE)


def _source(name: str) -> str:
    folder = resources.files("adapters.redis") / "scripts"
    return assemble((folder / "_lib.lua").read_text(), (folder / f"{name}.lua").read_text())


def assemble(lib: str, body: str) -> str:
    """``body`` after the library's preamble and the helpers it names, directly or through
    another helper, in library order.

    Redis runs a script's whole text on every call, and each ``local function`` costs a closure
    per call (about 0.13 us each), so the helpers a script never names are left out. Names in
    whole-line comments do not count; one in a trailing comment only costs its closure.
    """
    starts = [match.start() for match in _HELPER.finditer(lib)]
    names = [match.group(1) for match in _HELPER.finditer(lib)]
    chunks = [lib[a:b] for a, b in zip(starts, [*starts[1:], len(lib)], strict=True)]
    helpers = dict(zip(names, chunks, strict=True))
    wanted: set[str] = set()
    pending = [body]
    while pending:
        text = _COMMENT_LINE.sub("", pending.pop())
        for helper, chunk in helpers.items():
            if helper not in wanted and re.search(rf"\b{helper}\b", text):
                wanted.add(helper)
                pending.append(chunk)
    used = "".join(chunk for helper, chunk in helpers.items() if helper in wanted)
    return lib[: starts[0]] + used + "\n" + body


class Scripts:
    """Every queue script, by name, with its SHA1."""

    def __init__(self) -> None:
        self.source = {name: _source(name) for name in SCRIPT_NAMES}
        self.sha = {
            name: hashlib.sha1(src.encode()).hexdigest() for name, src in self.source.items()
        }
        self._heads: dict[tuple[str, tuple[str, ...]], bytes] = {}
        self._local = threading.local()

    def run(self, client: redis.Redis, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """EVALSHA ``name``; on NOSCRIPT load it and run it again.

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
            parts: list[Arg] = ["EVALSHA", self.sha[name], len(keys), *keys]
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
        script means every earlier one was applied. On ``NOSCRIPT`` every script is loaded and
        all are re-sent (each script tolerates a re-send); another error reply is raised once
        every reply has been read.
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
            if attempt == 2 or not all(isinstance(e, NoScriptError) for e in errors):
                raise errors[0]
            self._load_on(conn)
        raise AssertionError("unreachable")

    def _load_on(self, conn: Any) -> None:
        for source in self.source.values():
            conn.send_command("SCRIPT", "LOAD", source)
            conn.read_response()

    def _send(self, conn: Any, name: str, packed: bytes) -> Any:
        conn.send_packed_command([packed])
        try:
            return conn.read_response()
        except NoScriptError:
            conn.send_command("SCRIPT", "LOAD", self.source[name])
            conn.read_response()
            conn.send_packed_command([packed])
            return conn.read_response()

    def load_all(self, client: redis.Redis) -> None:
        """Load every script (before a pipeline, which cannot reload one midway), in one trip."""
        pipe = client.pipeline(transaction=False)
        for source in self.source.values():
            call(pipe, "SCRIPT", "LOAD", source)
        pipe.execute()

    def pipelined(
        self, client: redis.Redis, calls: Sequence[tuple[str, Sequence[str], Sequence[Arg]]]
    ) -> list[Any]:
        """Run several scripts in one round trip; reload and re-send all on NOSCRIPT.

        Re-sending is safe because every script is idempotent under re-send. A single call
        takes the (cheaper) ``run`` path.
        """
        if len(calls) == 1:
            name, keys, args = calls[0]
            return [self.run(client, name, keys, args)]
        for attempt in (1, 2):
            pipe = client.pipeline(transaction=False)
            for name, keys, args in calls:
                call(pipe, "EVALSHA", self.sha[name], len(keys), *keys, *args)
            try:
                return pipe.execute()
            except NoScriptError:
                if attempt == 2:
                    raise
                self.load_all(client)
        raise AssertionError("unreachable")
