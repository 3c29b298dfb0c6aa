"""The cache's Lua scripts (scripts/cache_*.lua, each after cache_prelude.lua), run by EVALSHA.

Every cache operation is one script call: the value, its expiry check against the clock and
the fleet-wide statistics counter are one round trip. Driver errors are translated here.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

from foundry.domain import CacheError, CacheUnavailable, InvalidCacheValue, UndecodableValue

NAMES = ("get", "mget", "set", "mset", "del", "pull", "touch", "incr", "lock")

Arg = str | bytes


def _source(name: str) -> str:
    folder = resources.files("foundry.adapters.redis") / "scripts"
    prelude = (folder / "cache_prelude.lua").read_text()
    return prelude + "\n" + (folder / f"cache_{name}.lua").read_text()


def translate(error: redis.RedisError, label: str) -> CacheError:
    """Our error for a driver error met while working on the key (or lock) ``label``."""
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return CacheUnavailable(
            f"Redis cannot be reached ({error}) while working on {label!r}; "
            "check REDIS_URL and that redis-server is up (the operation may or may not have "
            "been applied)"
        )
    text = str(error)
    if "NOTINT" in text:
        return InvalidCacheValue(
            f"cannot increment {label!r}: it holds a value that is not an integer; "
            "delete it or use another key for the counter"
        )
    if "OVERFLOW" in text:
        return InvalidCacheValue(f"counter {label!r} would leave ±(2**53 - 1) (exact range)")
    if "UNDECODABLE" in text or "WRONGTYPE" in text:
        return UndecodableValue(label, f"it was not written by Foundry's cache ({text})")
    return CacheError(f"Redis refused the cache operation on {label!r}: {text}")


class _Pinned(threading.local):
    """This thread's own connection, and the process that opened it."""

    pid = 0
    #: A redis-py ``Connection`` (TCP, TLS or unix socket; its methods are untyped).
    connection: Any = None


class CacheScripts:
    """Every cache script, with its SHA1, bound to one client.

    Scripts run on a connection pinned to the calling thread (opened with the client's own
    settings, so with its retry policy, timeouts and keepalive), which skips the pool's
    per-call checkout. Cost: one connection per thread (per process) that uses the cache.

    Re-sending is decided per call: sending is always retried (a command that did not
    arrive whole never ran); a lost reply is retried only for ``resend=True`` calls, whose
    second run changes nothing. The others (``increment``, ``pull``, ``add``, lock release)
    raise ``CacheUnavailable`` instead of counting twice or losing a pulled value.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._execute: Callable[..., Any] = client.execute_command
        self._pinned = _Pinned()
        self._source = {name: _source(name) for name in NAMES}
        self._sha = {
            name: hashlib.sha1(text.encode()).hexdigest() for name, text in self._source.items()
        }

    def run(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[Arg],
        label: str,
        *,
        resend: bool = True,
    ) -> Any:
        """EVALSHA ``name`` (loading it on NOSCRIPT); errors become ours, naming ``label``."""
        command = ("EVALSHA", self._sha[name], len(keys), *keys, *args)
        try:
            try:
                return self._send(command, resend)
            except NoScriptError:
                self._execute("SCRIPT", "LOAD", self._source[name])
                return self._send(command, resend)
        except redis.RedisError as error:
            raise translate(error, label) from error

    def _send(self, command: tuple[Any, ...], resend: bool) -> Any:
        connection = self._connection()
        retry, drop = connection.retry, lambda _: connection.disconnect()
        if resend:
            return retry.call_with_retry(lambda: self._round_trip(connection, command), drop)
        retry.call_with_retry(lambda: self._send_fresh(connection, command), drop)
        try:
            return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            raise

    @staticmethod
    def _send_fresh(connection: Any, command: tuple[Any, ...]) -> None:
        # A connection the server closed (restart, idle timeout) would take this command and
        # then fail to answer, leaving us unsure whether it ran: reopen it first.
        if connection.is_connected and connection.can_read(timeout=0):
            connection.disconnect()
        connection.send_command(*command)

    @staticmethod
    def _round_trip(connection: Any, command: tuple[Any, ...]) -> Any:
        connection.send_command(*command)
        return connection.read_response()

    def _connection(self) -> Any:
        pinned = self._pinned
        if pinned.connection is None or pinned.pid != os.getpid():
            pool = self._client.connection_pool
            pinned.connection = pool.connection_class(**pool.connection_kwargs)
            pinned.pid = os.getpid()
        return pinned.connection

    def call(self, label: str, command: str, *args: Any) -> Any:
        """A plain command through the client (its pool and retry), errors translated."""
        try:
            return self._execute(command, *args)
        except redis.RedisError as error:
            raise translate(error, label) from error
