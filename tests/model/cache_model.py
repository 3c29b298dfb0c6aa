"""The pure model of one cache namespace: a dict of (view, key) -> (value, expiry in ms)."""

from __future__ import annotations

from typing import Any

import attrs

#: A view is the sorted tuple of its tag names; () is the untagged cache.
View = tuple[str, ...]

MISSING = "<missing>"


@attrs.define
class CacheModel:
    """What every cache adapter must agree with, step by step."""

    now: int = 0
    entries: dict[tuple[View, str], tuple[Any, int | None]] = attrs.field(factory=dict)
    hits: int = 0
    misses: int = 0
    writes: int = 0
    deletes: int = 0

    def live(self, view: View, key: str) -> tuple[bool, Any]:
        """Whether (view, key) holds an unexpired value, and the value."""
        entry = self.entries.get((view, key))
        if entry is None or (entry[1] is not None and entry[1] <= self.now):
            self.entries.pop((view, key), None)
            return False, None
        return True, entry[0]

    def get(self, view: View, key: str) -> Any:
        """A counted lookup."""
        found, value = self.live(view, key)
        self.hits += found
        self.misses += not found
        return value if found else MISSING

    def set(self, view: View, key: str, value: Any, ttl: int | None) -> None:
        """Store (a 0 ms ttl stores nothing visible)."""
        self.writes += 1
        expiry = None if ttl is None else self.now + ttl
        self.entries[(view, key)] = (value, expiry)

    def add(self, view: View, key: str, value: Any, ttl: int | None) -> bool:
        """Store if absent."""
        if self.live(view, key)[0]:
            return False
        self.set(view, key, value, ttl)
        return True

    def delete(self, view: View, key: str) -> bool:
        """Remove; whether it was live."""
        found, _ = self.live(view, key)
        self.entries.pop((view, key), None)
        self.deletes += found
        return found

    def touch(self, view: View, key: str, ttl: int | None) -> bool:
        """New expiry from now, if live."""
        found, value = self.live(view, key)
        if found:
            self.entries[(view, key)] = (value, None if ttl is None else self.now + ttl)
        return found

    def increment(self, view: View, key: str, by: int) -> int | None:
        """The new count, or None when the stored value is not an integer (then no change)."""
        found, value = self.live(view, key)
        if found and (isinstance(value, bool) or not isinstance(value, int)):
            return None
        expiry = self.entries[(view, key)][1] if found else None
        result = (value if found else 0) + by
        self.entries[(view, key)] = (result, expiry)
        self.writes += 1
        return result

    def flush(self, tag: str) -> None:
        """Forget every entry of a view carrying ``tag``."""
        for view, key in [vk for vk in self.entries if tag in vk[0]]:
            del self.entries[(view, key)]

    def clear(self) -> None:
        """Forget everything."""
        self.entries.clear()
