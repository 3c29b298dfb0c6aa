"""The values of one memory cache namespace: a bounded LRU map, and the running counts."""

from __future__ import annotations

from collections import OrderedDict

import attrs

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
