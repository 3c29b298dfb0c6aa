"""The Redis cache's ``CacheStore`` operations: ``RedisStore``.

Each operation is one call of a function of the Lua library (``lua/cache/``) through the
shared ``CacheCore`` (``cache_core.py``), over a key mapping its subclasses set (``cache.py``:
plain keys, or keys folding in their tags' versions); lookups and ``remember`` go through the
lock and single-flight primitives (``cache_flight.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import redis

from foundry.adapters.cache_remember import Flight, remember
from foundry.adapters.cache_support import (
    key_list,
    positive_ms,
    ttl_ms,
    validate_key,
    validate_keys,
    validate_step,
    value_map,
)
from foundry.adapters.redis.cache_core import CacheCore, ttl_arg
from foundry.adapters.redis.cache_flight import RedisFlights
from foundry.adapters.redis.errors import cache_error
from foundry.ports.cache import Ttl

T = TypeVar("T")


class RedisStore:
    """The CacheStore operations; views differ only in how a key maps to a Redis key."""

    def __init__(self, core: CacheCore) -> None:
        self._c = core
        self._run = core.run
        #: The lock and single-flight primitives (``remember``'s backend, and the locks').
        self.flights = RedisFlights(core)

    def _skey(self, key: str) -> str:
        return self._c.keys.value(validate_key(key))

    def _skeys(self, keys: list[str]) -> list[str]:
        value = self._c.keys.value
        return [value(key) for key in validate_keys(keys)]

    def _stats(self, skey: str) -> str:
        return self._c.keys.stats_of(skey)

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``, or ``default``. One round trip."""
        # get and set written out (run's and _write's frames were a tenth of a set's client
        # work); errors are translated as run translates them.
        c, skey = self._c, self._skey(key)
        try:
            raw = c.runner.call("cache_get", (skey, c.keys.stats_of(skey)), (c.now(), "1"))
        except redis.RedisError as error:
            raise cache_error(error, key) from error
        return default if raw is None else c.payload(raw, key)

    def set(self, key: str, value: Any, ttl: Ttl = None) -> None:
        """Store ``value`` at ``key`` for ``ttl`` (forever if ``None``). One round trip."""
        c, skey = self._c, self._skey(key)
        args = (c.now(), ttl_arg(ttl), c.codec.encode_value(value), "set")
        try:
            c.runner.call("cache_set", (skey, c.keys.stats_of(skey)), args)
        except redis.RedisError as error:
            raise cache_error(error, key) from error

    def add(self, key: str, value: Any, ttl: Ttl = None) -> bool:
        """Store only if ``key`` is absent, atomically; whether it stored."""
        return self._write("add", key, value, ttl)

    def _write(self, mode: str, key: str, value: Any, ttl: Ttl) -> bool:
        skey, ms = self._skey(key), ttl_arg(ttl)
        payload = self._c.codec.encode_value(value)
        args = (self._c.now(), ms, payload, mode)
        keys = (skey, self._stats(skey))
        return bool(self._run("set", keys, args, key, resend=mode == "set"))

    def forever(self, key: str, value: Any) -> None:
        """Store without expiry."""
        self._write("set", key, value, None)

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value (not counted as a hit or miss)."""
        skey = self._skey(key)
        raw = self._run("get", (skey, self._stats(skey)), (self._c.now(), "0"), key)
        return raw is not None

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        return self.delete_many([key]) == 1

    def pull(self, key: str, default: Any = None) -> Any:
        """Get and delete, atomically: read and decode, then delete only if the key still
        holds what was decoded (else decode what it holds now, and try again). A value that
        cannot be decoded is kept (``UndecodableValue``). Two round trips."""
        skey = self._skey(key)
        keys = (skey, self._stats(skey))
        reply = self._run("pull", keys, (self._c.now(),), key)
        while reply is not None:
            value = self._c.payload(reply, key)
            deleted = self._run("pull", keys, (self._c.now(), reply), key, resend=False)
            if deleted == 1:
                return value
            reply = deleted
        return default

    def touch(self, key: str, ttl: Ttl) -> bool:
        """Reset ``key``'s expiry to ``ttl`` from now; whether the key exists."""
        skey, ms = self._skey(key), ttl_arg(ttl)
        return bool(self._run("touch", (skey,), (self._c.now(), ms), key))

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that are present, in one round trip."""
        names = key_list(keys, "get_many")
        if not names:
            return {}
        skeys = self._skeys(names)
        groups = self._c.keys.by_stats(skeys)
        replies = self._c.run_by_slot("mget", skeys, (self._c.now(),), names[0])
        raws: list[bytes | None] = [None] * len(names)
        for indexes, found in zip(groups.values(), replies, strict=True):
            for index, raw in zip(indexes, found, strict=True):
                raws[index] = raw
        return self._c.payloads(names, raws)

    def set_many(self, values: Mapping[str, Any], ttl: Ttl = None) -> None:
        """Store every value for ``ttl`` in one round trip; nothing if any input is invalid."""
        names, ms = list(value_map(values)), ttl_arg(ttl)
        if not names:
            return
        skeys = self._skeys(names)
        payloads = [self._c.codec.encode_value(values[k]) for k in names]
        args = (self._c.now(), ms)
        self._c.run_by_slot("mset", skeys, args, names[0], per_key=payloads)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys in one round trip; how many were there."""
        names = key_list(keys, "delete_many")
        if not names:
            return 0
        replies = self._c.run_by_slot("del", self._skeys(names), (self._c.now(),), names[0])
        return sum(int(reply) for reply in replies)

    def increment(self, key: str, by: int = 1) -> int:
        """Add ``by`` atomically (Lua), creating the key at 0 and keeping its expiry."""
        skey, step = self._skey(key), validate_step(by)
        args = (self._c.now(), str(step))
        return int(self._run("incr", (skey, self._stats(skey)), args, key, resend=False))

    def decrement(self, key: str, by: int = 1) -> int:
        """``increment(key, -by)``."""
        return self.increment(key, -validate_step(by))

    def remember(self, key: str, ttl: Ttl, compute: Callable[[], T], *, wait: Ttl = 10.0) -> T:
        """The value at ``key``, computed by one caller across every process on a miss."""
        flight = Flight(self._skey(key), key, ttl_ms(ttl), positive_ms(wait, "remember wait"))
        return remember(self.flights, flight, compute)
