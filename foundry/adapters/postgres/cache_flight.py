"""The PostgreSQL cache's lock and single-flight primitives (``cache_remember.FlightBackend``).

Each is one statement of ``cache_sql.py``: a lock is a row of the locks table named by its
stored key, taken by an upsert that replaces only an expired row (or its holder's own), and
released or extended only by its holder.
"""

from __future__ import annotations

from typing import Any

from foundry.adapters.postgres.cache_core import CacheCore


class PostgresFlights:
    """Locks and ``remember``'s lookups and stores, over stored keys of one namespace."""

    def __init__(self, core: CacheCore) -> None:
        self._c = core

    def flight_key(self, skey: str) -> str:
        """The lock guarding the computation of ``skey``."""
        return "flight:" + skey

    def flight_lookup(self, skey: str, label: str, count: bool) -> tuple[bool, Any]:
        """Whether ``skey`` is present and its value (counted as a hit or miss if ``count``)."""
        row = self._c.one("get", label, key=skey)
        if count:
            hit = int(row is not None)
            self._c.count_reads(hit, 1 - hit)
        return (False, None) if row is None else (True, self._c.codec.decode_value(row[0], label))

    def flight_store(self, skey: str, label: str, value: Any, ttl_ms: int | None) -> Any:
        """Encode and store ``value``; the value as a read gives it back."""
        payload = self._c.codec.encode_value(value)
        self._c.one("set", label, key=skey, payload=payload, ttl=ttl_ms)
        return self._c.codec.decode_value(payload, label)

    def _lock(self, statement: str, skey: str, token: str, ttl: int | None = None) -> bool:
        return self._c.one(statement, skey, name=skey, holder=token, ttl=ttl) is not None

    def lock_acquire(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Take the lock if free, expired or already ``token``'s (one upsert)."""
        return self._lock("acquire", skey, token, ttl_ms)

    def lock_release(self, skey: str, token: str) -> bool:
        """Drop the lock if ``token`` holds it (compare and delete, one statement)."""
        return self._lock("release", skey, token)

    def lock_extend(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Hold for ``ttl_ms`` more from now if ``token`` holds it."""
        return self._lock("extend", skey, token, ttl_ms)

    def lock_force_release(self, skey: str) -> None:
        """Drop the lock whoever holds it (one ``DELETE``)."""
        self._c.one("force_release", skey, name=skey)

    def lock_holder(self, skey: str) -> str | None:
        """The token holding the lock, unless it expired."""
        row = self._c.one("holder", skey, name=skey)
        return None if row is None else str(row[0])

    def wait_now_ms(self) -> int:
        """Now in ms on the clock waits are measured against."""
        return self._c.wait_now_ms()
