"""The PostgreSQL cache's ``CacheStore`` operations: ``PostgresStore``.

Each operation is one statement (``cache_sql.py``) on a connection borrowed from the pool
(``cache_core.py``), over a key mapping its subclasses set (``cache.py``: plain keys, or keys
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
    validate_key,
    validate_keys,
    validate_step,
    value_map,
)
from foundry.adapters.postgres.cache_core import CacheCore
from foundry.adapters.postgres.cache_flight import PostgresFlights
from foundry.domain import CacheError
from foundry.ports.cache import Ttl

T = TypeVar("T")


class PostgresStore:
    """The CacheStore operations; views differ only in how a key maps to a stored key."""

    def __init__(self, core: CacheCore) -> None:
        self._c = core
        #: The lock and single-flight primitives (``remember``'s backend, and the locks').
        self.flights = PostgresFlights(core)

    def _skey(self, key: str) -> str:
        return ":" + validate_key(key)

    def _skeys(self, keys: list[str]) -> list[str]:
        return [":" + key for key in validate_keys(keys)]

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``, or ``default``. One statement (the read and its count)."""
        found, value = self.flights.flight_lookup(self._skey(key), key, True)
        return value if found else default

    def set(self, key: str, value: Any, ttl: Ttl = None) -> None:
        """Store ``value`` at ``key`` for ``ttl`` (forever if ``None``). One statement."""
        self._write("set", key, value, ttl)

    def add(self, key: str, value: Any, ttl: Ttl = None) -> bool:
        """Store only if ``key`` is absent (an upsert that replaces only an expired row)."""
        return self._write("add", key, value, ttl)

    def _write(self, mode: str, key: str, value: Any, ttl: Ttl) -> bool:
        skey, ms = self._skey(key), ttl_ms(ttl)
        payload = self._c.codec.encode_value(value)
        self._c.sweep_if_due()
        row = self._c.one(mode, key, key=skey, payload=payload, ttl=ms)
        return bool(row and row[0])

    def forever(self, key: str, value: Any) -> None:
        """Store without expiry."""
        self._write("set", key, value, None)

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value (not counted as a hit or miss; not decoded)."""
        return self._c.one("get", key, key=self._skey(key)) is not None

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        return self.delete_many([key]) == 1

    def pull(self, key: str, default: Any = None) -> Any:
        """Get and delete, atomically (one ``DELETE ... RETURNING``, in a transaction undone
        when the value cannot be decoded: ``UndecodableValue``, and the value is kept)."""
        c = self._c
        params = c.params(key=self._skey(key))
        with c.connection(key) as conn, conn.transaction():
            row = conn.execute(c.sql["pull"], params, binary=True).fetchone()
            return default if row is None else c.codec.decode_value(row[0], key)

    def touch(self, key: str, ttl: Ttl) -> bool:
        """Reset ``key``'s expiry to ``ttl`` from now; whether the key exists."""
        return self._c.one("touch", key, key=self._skey(key), ttl=ttl_ms(ttl)) is not None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that are present, in one statement."""
        names = key_list(keys, "get_many")
        if not names:
            return {}
        skeys = self._skeys(names)
        params = self._c.params(keys=skeys)
        stored = dict(self._c.rows("mget", params, names[0]))
        found = [
            (name, stored[skey]) for name, skey in zip(names, skeys, strict=True) if skey in stored
        ]
        self._c.count_reads(len(found), len(names) - len(found))
        values = self._c.codec.decode_values([blob for _, blob in found], [n for n, _ in found])
        return dict(zip([name for name, _ in found], values, strict=True))

    def set_many(self, values: Mapping[str, Any], ttl: Ttl = None) -> None:
        """Store every value for ``ttl`` in one statement; nothing if any input is invalid."""
        names, ms = list(value_map(values)), ttl_ms(ttl)
        if not names:
            return
        skeys = self._skeys(names)
        payloads = [self._c.codec.encode_value(values[k]) for k in names]
        self._c.sweep_if_due()
        self._c.rows("mset", self._c.params(keys=skeys, payloads=payloads, ttl=ms), names[0])

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys in one statement; how many held a live value."""
        names = key_list(keys, "delete_many")
        if not names:
            return 0
        row = self._c.one("mdel", names[0], keys=self._skeys(names))
        return int(row[0]) if row else 0

    def increment(self, key: str, by: int = 1) -> int:
        """Add ``by`` atomically (one upsert), creating the key at 0 and keeping its expiry."""
        skey, step = self._skey(key), validate_step(by)
        for _ in range(3):
            row = self._c.one("incr", key, key=skey, step=step)
            if row is not None:
                return int(row[0])
            # Refused: say why from the stored value (raises unless it changed meanwhile).
            found, current = self.flights.flight_lookup(skey, key, False)
            add_to_counter(key, current if found else 0, step)
        raise CacheError(f"counter {key!r} kept changing type while being incremented")

    def decrement(self, key: str, by: int = 1) -> int:
        """``increment(key, -by)``."""
        return self.increment(key, -validate_step(by))

    def remember(self, key: str, ttl: Ttl, compute: Callable[[], T], *, wait: Ttl = 10.0) -> T:
        """The value at ``key``, computed by one caller across every process on a miss."""
        flight = Flight(self._skey(key), key, ttl_ms(ttl), positive_ms(wait, "remember wait"))
        return remember(self.flights, flight, compute)
