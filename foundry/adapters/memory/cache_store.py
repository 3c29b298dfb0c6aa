"""The memory cache's ``CacheStore`` operations: ``MemoryStore``.

Each operation runs under the namespace's mutex over the counted primitives of
``cache_core.py``, on a key mapping its subclasses set (``cache.py``: plain keys, or keys
folding in their tags' versions); lookups and ``remember`` go through the lock and
single-flight primitives (``cache_flight.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from foundry.adapters.cache_remember import Flight, remember
from foundry.adapters.cache_support import (
    add_to_counter,
    key_list,
    positive_ms,
    ttl_ms,
    validate_step,
    value_map,
)
from foundry.adapters.memory.cache_core import MemoryCore
from foundry.adapters.memory.cache_flight import MemoryFlights
from foundry.adapters.memory.cache_keys import value_key
from foundry.ports.cache import Ttl

T = TypeVar("T")


class MemoryStore:
    """The CacheStore operations; views differ only in how a key maps to a storage key."""

    def __init__(self, core: MemoryCore) -> None:
        self._c = core
        #: The lock and single-flight primitives (``remember``'s backend, and the locks').
        self.flights = MemoryFlights(core)

    def _skey(self, key: str) -> str:
        return value_key(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``, or ``default``."""
        found, value = self.flights.flight_lookup(self._skey(key), key, True)
        return value if found else default

    def set(self, key: str, value: Any, ttl: Ttl = None) -> None:
        """Store ``value`` at ``key`` for ``ttl`` (forever if ``None``)."""
        skey, ms = self._skey(key), ttl_ms(ttl)
        self._c.store(skey, value, ms)

    def add(self, key: str, value: Any, ttl: Ttl = None) -> bool:
        """Store only if ``key`` is absent; whether it stored."""
        skey, ms, payload = self._skey(key), ttl_ms(ttl), self._c.codec.encode_value(value)
        with self._c.mutex:
            now = self._c.now()
            if self._c.entries.live(skey, now) is not None:
                return False
            self._c.write(skey, payload, now, ms)
            return True

    def forever(self, key: str, value: Any) -> None:
        """Store without expiry."""
        self.set(key, value, None)

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value (not counted as a hit or miss)."""
        skey = self._skey(key)
        with self._c.mutex:
            return self._c.entries.live(skey, self._c.now()) is not None

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        return self.delete_many([key]) == 1

    def pull(self, key: str, default: Any = None) -> Any:
        """Get and delete, atomically; an undecodable value is kept (``UndecodableValue``)."""
        skey = self._skey(key)
        with self._c.mutex:
            now = self._c.now()
            item = self._c.entries.live(skey, now)
            value = None if item is None else self._c.decode(item, key)
            self._c.count_read(item is not None)
            if item is None:
                return default
            self._c.remove([skey], now)
        return value

    def touch(self, key: str, ttl: Ttl) -> bool:
        """Reset ``key``'s expiry to ``ttl`` from now; whether the key exists."""
        skey, ms = self._skey(key), ttl_ms(ttl)
        with self._c.mutex:
            now = self._c.now()
            item = self._c.entries.live(skey, now)
            if item is None:
                return False
            self._c.place(skey, item[0], now, ms)
            return True

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that are present."""
        pairs = [(key, self._skey(key)) for key in key_list(keys, "get_many")]
        with self._c.mutex:
            now = self._c.now()
            items = [(key, self._c.lookup(skey, now, True)) for key, skey in pairs]
        return {key: self._c.decode(item, key) for key, item in items if item is not None}

    def set_many(self, values: Mapping[str, Any], ttl: Ttl = None) -> None:
        """Store every value for ``ttl``; nothing is written if any key or value is invalid."""
        ms = ttl_ms(ttl)
        pairs = value_map(values).items()
        encoded = [(self._skey(k), self._c.codec.encode_value(v)) for k, v in pairs]
        with self._c.mutex:
            now = self._c.now()
            for skey, payload in encoded:
                self._c.write(skey, payload, now, ms)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys; how many were there."""
        skeys = [self._skey(key) for key in key_list(keys, "delete_many")]
        with self._c.mutex:
            return self._c.remove(skeys, self._c.now())

    def increment(self, key: str, by: int = 1) -> int:
        """Add ``by`` atomically, creating the key at 0 and keeping its expiry."""
        skey, step = self._skey(key), validate_step(by)
        with self._c.mutex:
            item = self._c.entries.live(skey, self._c.now())
            current = 0 if item is None else self._c.decode(item, key)
            result = add_to_counter(key, current, step)
            expires = None if item is None else item[1]
            self._c.rewrite(skey, self._c.codec.encode_value(result), expires)
            return result

    def decrement(self, key: str, by: int = 1) -> int:
        """``increment(key, -by)``."""
        return self.increment(key, -validate_step(by))

    def remember(self, key: str, ttl: Ttl, compute: Callable[[], T], *, wait: Ttl = 10.0) -> T:
        """The value at ``key``, computed once (across this process' threads) on a miss."""
        flight = Flight(self._skey(key), key, ttl_ms(ttl), positive_ms(wait, "remember wait"))
        return remember(self.flights, flight, compute)
