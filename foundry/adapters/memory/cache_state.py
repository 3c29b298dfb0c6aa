"""The state one MemoryCache shares with its tagged views: a bounded LRU map, locks, tags."""

from __future__ import annotations

import threading
from collections import OrderedDict

import attrs

from foundry.adapters.codec import Codec
from foundry.ports.clock import Clock

#: A stored value: its encoded payload, and when it expires (ms since the epoch) or None.
Item = tuple[bytes, int | None]


class Entries:
    """Storage key -> item, least recently used first, at most ``max_entries``. Not locked."""

    def __init__(self, max_entries: int) -> None:
        self._items: OrderedDict[str, Item] = OrderedDict()
        self.max_entries = max_entries
        self.evictions = 0

    def live(self, skey: str, now: int) -> Item | None:
        """The item at ``skey`` unless absent or expired (an expired one is dropped)."""
        item = self._items.get(skey)
        if item is None:
            return None
        if item[1] is not None and item[1] <= now:
            del self._items[skey]
            return None
        self._items.move_to_end(skey)
        return item

    def put(self, skey: str, payload: bytes, expires: int | None) -> None:
        """Store an item as the most recently used, evicting the least recently used."""
        self._items[skey] = (payload, expires)
        self._items.move_to_end(skey)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
            self.evictions += 1

    def remove(self, skey: str, now: int) -> bool:
        """Drop ``skey``; whether it held a live item."""
        present = self.live(skey, now) is not None
        if present:
            del self._items[skey]
        return present

    def sweep(self, now: int) -> int:
        """Drop every expired item; how many."""
        dead = [k for k, (_, at) in self._items.items() if at is not None and at <= now]
        for skey in dead:
            del self._items[skey]
        return len(dead)

    def clear(self) -> None:
        """Drop everything."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@attrs.define
class Counters:
    """Running totals of one cache namespace."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    deletes: int = 0


@attrs.define
class Shared:
    """Everything behind one mutex: entries, lock holders, tag versions and counters."""

    clock: Clock
    codec: Codec
    entries: Entries
    sweep_ms: int
    next_sweep: int = 0
    mutex: threading.RLock = attrs.field(factory=threading.RLock)
    locks: dict[str, tuple[str, int]] = attrs.field(factory=dict)
    tags: OrderedDict[str, int] = attrs.field(factory=OrderedDict)
    #: The version of every tag not in ``tags``: the greatest version dropped from it.
    tag_floor: int = 0
    #: The greatest version ever given (a flush gives the next): versions only grow.
    tag_epoch: int = 0
    counters: Counters = attrs.field(factory=Counters)

    def tag_version(self, name: str) -> int:
        """The current version of tag ``name``."""
        version = self.tags.get(name)
        if version is None:
            return self.tag_floor
        self.tags.move_to_end(name)
        return version

    def flush_tag(self, name: str) -> None:
        """Give tag ``name`` a version no value was written under; keep at most as many tags
        as values, dropping the least recently used (its version becomes the floor, so
        values of the tags without one miss, and a flushed value never comes back)."""
        self.tag_epoch += 1
        self.tags[name] = self.tag_epoch
        self.tags.move_to_end(name)
        while len(self.tags) > self.entries.max_entries:
            _, dropped = self.tags.popitem(last=False)
            self.tag_floor = max(self.tag_floor, dropped)

    def sweep_if_due(self, now: int) -> None:
        """The periodic sweep: expired items and locks, at most once per ``sweep_ms``."""
        if now < self.next_sweep:
            return
        self.next_sweep = now + self.sweep_ms
        self.entries.sweep(now)
        for name in [n for n, (_, at) in self.locks.items() if at <= now]:
            del self.locks[name]
