"""The Redis cache's lock and single-flight primitives (``cache_remember.FlightBackend``).

Each is one call of a cache function: a lock is a string ``<expires_at_ms>:<token>`` at its
key, taken, extended, released or dropped by ``cache_lock`` (``lua/cache/lock.lua``), read by
``cache_get``.
"""

from __future__ import annotations

from typing import Any

from foundry.adapters.redis.cache_core import CacheCore, ms_arg


class RedisFlights:
    """Locks and ``remember``'s lookups and stores, over Redis keys of one namespace."""

    def __init__(self, core: CacheCore) -> None:
        self._c = core

    def flight_key(self, skey: str) -> str:
        """The lock guarding the computation of ``skey``."""
        return f"{self._c.prefix}:flight:{skey}"

    def flight_lookup(self, skey: str, label: str, count: bool) -> tuple[bool, Any]:
        """Whether ``skey`` is present and its value (counted as a hit or miss if ``count``)."""
        args = (self._c.now(), "1" if count else "0")
        raw = self._c.run("get", (skey, self._c.keys.stats_of(skey)), args, label)
        return (False, None) if raw is None else (True, self._c.payload(raw, label))

    def flight_store(self, skey: str, label: str, value: Any, ttl_ms: int | None) -> Any:
        """Encode and store ``value``; the value as a read gives it back."""
        payload = self._c.codec.encode_value(value)
        args = (self._c.now(), ms_arg(ttl_ms), payload, "set")
        self._c.run("set", (skey, self._c.keys.stats_of(skey)), args, label)
        return self._c.codec.decode_value(payload, label)

    def _lock(self, mode: str, skey: str, token: str, ttl: int) -> bool:
        args = (self._c.now(), mode, token, str(ttl))
        return bool(self._c.run("lock", (skey,), args, skey, resend=mode != "release"))

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
        raw = self._c.run("get", (skey, self._c.keys.stats_of(skey)), (self._c.now(), "0"), skey)
        return None if raw is None else bytes(raw).partition(b":")[2].decode(errors="replace")

    def wait_now_ms(self) -> int:
        """Now in ms on the clock waits are measured against (local wall clock by default)."""
        return self._c.wait_now_ms()
