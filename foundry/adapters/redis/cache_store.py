"""The Redis cache's shared parts and its ``CacheStore`` operations.

``CacheCore`` is what a cache and its tagged views share: the client, the Lua runner, the codec,
the clock and the names of the keys. ``RedisStore`` is every ``CacheStore`` operation, each one
call of a function of the Lua library (``lua/cache/``), over a key mapping its subclasses set
(``cache.py``: plain keys, or keys folding in their tags' versions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import redis

from foundry.adapters.cache_remember import Flight, remember
from foundry.adapters.cache_support import (
    MAX_TTL_MS,
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
from foundry.adapters.redis.byte_replies import bytes_replies
from foundry.adapters.redis.cache_keys import CacheKeys
from foundry.adapters.redis.cluster import is_cluster
from foundry.adapters.redis.cluster_runner import function_runner
from foundry.adapters.redis.errors import cache_error
from foundry.adapters.redis.runner import call
from foundry.domain import UndecodableValue
from foundry.ports.cache import Ttl
from foundry.ports.clock import Clock

T = TypeVar("T")

_MAX_TTL_S = MAX_TTL_MS // 1000


def _ttl_arg(ttl: Ttl) -> str:
    # Whole seconds, the common ttl: nothing to round.
    if type(ttl) is int and 0 <= ttl <= _MAX_TTL_S:
        return str(ttl * 1000)
    ms = ttl_ms(ttl)
    return "-1" if ms is None else str(ms)


class CacheCore:
    """What a cache and its tagged views share: the client, runner, codec, clock, names."""

    def __init__(self, client: redis.Redis, prefix: str, codec: Codec, clock: Clock | None):
        self.client = bytes_replies(client, "the cache")
        self.prefix = validate_prefix(prefix)
        self.codec = codec
        self.clock = clock
        self.runner = function_runner(client)
        self.keys = CacheKeys(prefix, spread=is_cluster(client))

    def now(self) -> str:
        return "" if self.clock is None else str(to_ms(self.clock.now()))

    def run(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[str | bytes],
        label: str,
        *,
        resend: bool = True,
    ) -> Any:
        """The cache function ``name`` (``lua/cache/<name>.lua``); errors name ``label``.

        ``resend=False`` for the calls a second run would change (increment, pull, add, lock
        release): after a lost reply they raise ``CacheUnavailable`` instead.
        """
        try:
            return self.runner.call(f"cache_{name}", keys, args, resend=resend)
        except redis.RedisError as error:
            raise cache_error(error, label) from error

    def run_by_slot(
        self,
        name: str,
        skeys: Sequence[str],
        args: Sequence[str | bytes],
        label: str,
        per_key: Sequence[str | bytes] = (),
    ) -> list[Any]:
        """The batch function ``name`` (KEYS: the stats hash, then ``skeys``; ARGV: ``args``,
        then ``per_key``'s item for each key) once per slot of ``skeys`` (once on one
        server), all in one write; the replies, in ``keys.by_stats`` order. Each call must be
        safe to send again."""
        groups = self.keys.by_stats(skeys)
        calls = [
            (
                f"cache_{name}",
                (stats, *(skeys[i] for i in indexes)),
                (*args, *(per_key[i] for i in indexes)) if per_key else args,
            )
            for stats, indexes in groups.items()
        ]
        try:
            return self.runner.call_many(calls)
        except redis.RedisError as error:
            raise cache_error(error, label) from error

    def command(self, label: str, *args: str) -> Any:
        """A plain command through the client (its pool and retry), errors translated."""
        try:
            return call(self.client, *args)
        except redis.RedisError as error:
            raise cache_error(error, label) from error

    def payload(self, raw: bytes, label: str) -> Any:
        head, sep, body = raw.partition(b":")
        if not sep or not head.isdigit():
            raise UndecodableValue(label, "it has no expiry header: not written by Foundry")
        return self.codec.decode_value(body, label)

    def payloads(self, names: list[str], raws: list[bytes | None]) -> dict[str, Any]:
        """The decoded values of a batch; the hot loop of ``get_many``, kept flat."""
        found, blobs = [], []
        for name, raw in zip(names, raws, strict=True):
            if raw is None:
                continue
            head, sep, body = raw.partition(b":")
            if not (sep and head.isdigit()):
                self.payload(raw, name)  # raises UndecodableValue naming the key
            found.append(name)
            blobs.append(body)
        return dict(zip(found, self.codec.decode_values(blobs, found), strict=True))


class RedisStore:
    """The CacheStore operations; views differ only in how a key maps to a Redis key."""

    def __init__(self, core: CacheCore) -> None:
        self._c = core
        self._run = core.run

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
        args = (c.now(), _ttl_arg(ttl), c.codec.encode_value(value), "set")
        try:
            c.runner.call("cache_set", (skey, c.keys.stats_of(skey)), args)
        except redis.RedisError as error:
            raise cache_error(error, key) from error

    def add(self, key: str, value: Any, ttl: Ttl = None) -> bool:
        """Store only if ``key`` is absent, atomically; whether it stored."""
        return self._write("add", key, value, ttl)

    def _write(self, mode: str, key: str, value: Any, ttl: Ttl) -> bool:
        skey, ttl_arg = self._skey(key), _ttl_arg(ttl)
        payload = self._c.codec.encode_value(value)
        args = (self._c.now(), ttl_arg, payload, mode)
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
        """Get and delete, atomically."""
        skey = self._skey(key)
        keys = (skey, self._stats(skey))
        raw = self._run("pull", keys, (self._c.now(),), key, resend=False)
        return default if raw is None else self._c.payload(raw, key)

    def touch(self, key: str, ttl: Ttl) -> bool:
        """Reset ``key``'s expiry to ``ttl`` from now; whether the key exists."""
        skey, ttl_arg = self._skey(key), _ttl_arg(ttl)
        return bool(self._run("touch", (skey,), (self._c.now(), ttl_arg), key))

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
        names, ttl_arg = list(value_map(values)), _ttl_arg(ttl)
        if not names:
            return
        skeys = self._skeys(names)
        payloads = [self._c.codec.encode_value(values[k]) for k in names]
        args = (self._c.now(), ttl_arg)
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
        return remember(self, flight, compute)

    # -- the lock and single-flight backend ---------------------------------------------------

    def flight_key(self, skey: str) -> str:
        """The lock guarding the computation of ``skey``."""
        return f"{self._c.prefix}:flight:{skey}"

    def flight_lookup(self, skey: str, label: str, count: bool) -> tuple[bool, Any]:
        """Whether ``skey`` is present and its value."""
        args = (self._c.now(), "1" if count else "0")
        raw = self._run("get", (skey, self._stats(skey)), args, label)
        return (False, None) if raw is None else (True, self._c.payload(raw, label))

    def flight_store(self, skey: str, label: str, value: Any, ttl_ms: int | None) -> Any:
        """Encode and store ``value``; the value as a read gives it back."""
        payload = self._c.codec.encode_value(value)
        args = (self._c.now(), "-1" if ttl_ms is None else str(ttl_ms), payload, "set")
        self._run("set", (skey, self._stats(skey)), args, label)
        return self._c.codec.decode_value(payload, label)

    def _lock(self, mode: str, skey: str, token: str, ttl: int) -> bool:
        args = (self._c.now(), mode, token, str(ttl))
        return bool(self._run("lock", (skey,), args, skey, resend=mode != "release"))

    def lock_acquire(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Take the lock if free, expired or already ``token``'s."""
        return self._lock("acquire", skey, token, ttl_ms)

    def lock_release(self, skey: str, token: str) -> bool:
        """Drop the lock if ``token`` holds it (compare and delete, in Lua)."""
        return self._lock("release", skey, token, 0)

    def lock_extend(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Hold for ``ttl_ms`` more from now if ``token`` holds it."""
        return self._lock("extend", skey, token, ttl_ms)

    def lock_force_release(self, skey: str) -> None:
        """Drop the lock whoever holds it (safe to re-send: a second drop finds it gone)."""
        self._lock("force", skey, "", 0)

    def lock_holder(self, skey: str) -> str | None:
        """The token holding the lock, unless it expired."""
        raw = self._run("get", (skey, self._stats(skey)), (self._c.now(), "0"), skey)
        return None if raw is None else bytes(raw).partition(b":")[2].decode()

    def wait_now_ms(self) -> int:
        """Now in ms on the clock waits are measured against (local wall clock by default)."""
        clock = self._c.clock
        return time.time_ns() // 1_000_000 if clock is None else to_ms(clock.now())
