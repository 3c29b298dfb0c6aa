"""What a memory cache and its tagged views share: ``MemoryCore``.

The clock and codec, and the state behind one mutex (values, lock holders and effect
records, tag versions, counts), with the primitives over the values that keep the counts and
run the periodic sweep. The callers hold ``mutex`` around a primitive and what it decides.
"""

from __future__ import annotations

import threading
from typing import Any

from foundry.adapters.cache_support import to_ms
from foundry.adapters.codec import Codec
from foundry.adapters.memory.cache_holders import Holders
from foundry.adapters.memory.cache_state import Counters, Entries, Item
from foundry.adapters.memory.cache_tags import TagVersions
from foundry.ports.cache import CacheStats
from foundry.ports.clock import Clock


class MemoryCore:
    """One namespace's state and its counted primitives (call them holding ``mutex``)."""

    def __init__(self, clock: Clock, codec: Codec, max_entries: int, sweep_ms: int) -> None:
        self.clock = clock
        self.codec = codec
        self.mutex = threading.RLock()
        self.entries = Entries(max_entries)
        self.holders = Holders()
        self.tags = TagVersions(max_entries)
        self._counters = Counters()
        self._sweep_ms = sweep_ms
        self._next_sweep = 0

    def now(self) -> int:
        """Now on the cache's clock, in ms."""
        return to_ms(self.clock.now())

    def decode(self, item: Item, label: str) -> Any:
        """The value of a stored item; ``UndecodableValue`` naming ``label``."""
        return self.codec.decode_value(item[0], label)

    def lookup(self, skey: str, now: int, count: bool) -> Item | None:
        """The live item at ``skey``, counted as a hit or a miss if ``count``."""
        item = self.entries.live(skey, now)
        if count:
            self.count_read(item is not None)
        return item

    def count_read(self, hit: bool) -> None:
        """Count a hit, or a miss."""
        if hit:
            self._counters.hits += 1
        else:
            self._counters.misses += 1

    def write(self, skey: str, payload: bytes, now: int, ms: int | None) -> None:
        """Store ``payload`` for ``ms`` (forever if ``None``), counted as a write."""
        self._sweep_if_due(now)
        self.place(skey, payload, now, ms)
        self._counters.writes += 1

    def store(self, skey: str, value: Any, ms: int | None) -> bytes:
        """Encode ``value`` and ``write`` it (taking the mutex); the payload."""
        payload = self.codec.encode_value(value)
        with self.mutex:
            self.write(skey, payload, self.now(), ms)
        return payload

    def place(self, skey: str, payload: bytes, now: int, ms: int | None) -> None:
        """Store ``payload`` for ``ms`` from ``now``, uncounted; a ttl of 0 removes it."""
        if ms == 0:
            self.entries.remove(skey, now)
        else:
            self.entries.put(skey, payload, None if ms is None else now + ms)

    def rewrite(self, skey: str, payload: bytes, expires: int | None) -> None:
        """Store ``payload`` expiring at ``expires`` (kept from the old item), counted."""
        self.entries.put(skey, payload, expires)
        self._counters.writes += 1

    def remove(self, skeys: list[str], now: int) -> int:
        """Drop the keys; how many held a live item (each counted as a delete)."""
        removed = sum(self.entries.remove(skey, now) for skey in skeys)
        self._counters.deletes += removed
        return removed

    def clear(self) -> int:
        """Drop every value (locks and effect records stay); how many there were."""
        with self.mutex:
            removed = len(self.entries)
            self.entries.clear()
        return removed

    def stats(self) -> CacheStats:
        """The counts so far, and the LRU's evictions."""
        with self.mutex:
            c = self._counters
            return CacheStats(c.hits, c.misses, c.writes, c.deletes, self.entries.evictions)

    def _sweep_if_due(self, now: int) -> None:
        """Expired values and holders, at most once per ``sweep_ms``."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_ms
        self.entries.sweep(now)
        self.holders.sweep(now)
