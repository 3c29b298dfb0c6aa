"""The value type that crosses the cache port: a namespace's statistics."""

from __future__ import annotations

import attrs


@attrs.frozen
class CacheStats:
    """Running totals for one cache namespace (fleet-wide on Redis)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    deletes: int = 0
    evictions: int = 0

    @property
    def hit_rate(self) -> float:
        """Hits over lookups, 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0
