"""The memory cache's lock and single-flight primitives (``cache_remember.FlightBackend``).

Each is atomic under the namespace's mutex: a lock is a holder of its storage key
(``cache_holders.py``), taken only when free, expired or already the taker's.
"""

from __future__ import annotations

from typing import Any

from foundry.adapters.memory import cache_keys
from foundry.adapters.memory.cache_core import MemoryCore


class MemoryFlights:
    """Locks and ``remember``'s lookups and stores, over storage keys of one namespace."""

    def __init__(self, core: MemoryCore) -> None:
        self._c = core

    def flight_key(self, skey: str) -> str:
        """The lock guarding the computation of ``skey``."""
        return cache_keys.flight_key(skey)

    def flight_lookup(self, skey: str, label: str, count: bool) -> tuple[bool, Any]:
        """Whether ``skey`` is present and its value (counted as a hit or miss if ``count``)."""
        with self._c.mutex:
            item = self._c.lookup(skey, self._c.now(), count)
        return (False, None) if item is None else (True, self._c.decode(item, label))

    def flight_store(self, skey: str, label: str, value: Any, ttl_ms: int | None) -> Any:
        """Encode and store ``value``; the value as a read gives it back."""
        return self._c.codec.decode_value(self._c.store(skey, value, ttl_ms), label)

    def lock_acquire(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Take the lock if free, expired or already ``token``'s."""
        with self._c.mutex:
            now = self._c.now()
            if self._c.holders.holder(skey, now) not in (None, token):
                return False
            self._c.holders.hold(skey, token, now + ttl_ms)
            return True

    def lock_release(self, skey: str, token: str) -> bool:
        """Drop the lock if ``token`` holds it."""
        with self._c.mutex:
            if self._c.holders.holder(skey, self._c.now()) != token:
                return False
            self._c.holders.drop(skey)
            return True

    def lock_extend(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Hold for ``ttl_ms`` more from now if ``token`` holds it."""
        with self._c.mutex:
            now = self._c.now()
            if self._c.holders.holder(skey, now) != token:
                return False
            self._c.holders.hold(skey, token, now + ttl_ms)
            return True

    def lock_force_release(self, skey: str) -> None:
        """Drop the lock whoever holds it."""
        with self._c.mutex:
            self._c.holders.drop(skey)

    def lock_holder(self, skey: str) -> str | None:
        """The token holding the lock, unless it expired."""
        with self._c.mutex:
            return self._c.holders.holder(skey, self._c.now())

    def wait_now_ms(self) -> int:
        """Now on the cache's clock, in ms."""
        return self._c.now()
