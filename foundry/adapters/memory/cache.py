"""MemoryCache: the in-process CachePort. Bounded LRU, TTL from the Clock, thread-safe.

Values are stored encoded by the codec, so a read returns what Redis would (a copy, as JSON
data) and the two adapters pass one contract suite. Expiry is lazy (on access) plus a sweep of
everything expired at most once per ``sweep_every`` during writes. Single flight is across the
threads of this process only. The parts: ``cache_core.py`` (the state behind one mutex and
its counted primitives), ``cache_store.py`` (the ``CacheStore`` operations),
``cache_flight.py`` (the lock and single-flight primitives), ``cache_keys.py`` (the storage
keys).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from foundry.adapters.cache_effect import CacheEffect
from foundry.adapters.cache_lock import CacheLock, make_lock, restore_lock
from foundry.adapters.cache_support import positive_ms, tag_names, validate_key, validate_prefix
from foundry.adapters.codec import Codec
from foundry.adapters.memory.cache_core import MemoryCore
from foundry.adapters.memory.cache_keys import effect_key, lock_key, tagged_key
from foundry.adapters.memory.cache_store import MemoryStore
from foundry.domain import InvalidCacheValue
from foundry.ports.cache import CacheStats, Ttl
from foundry.ports.clock import Clock

log = logging.getLogger(__name__)


class MemoryTaggedCache(MemoryStore):
    """A view whose keys carry the current versions of its tags; ``flush`` bumps them."""

    def __init__(self, core: MemoryCore, names: tuple[str, ...]) -> None:
        super().__init__(core)
        self._names = names

    def _skey(self, key: str) -> str:
        validate_key(key)
        with self._c.mutex:
            versions = [(name, self._c.tags.version(name)) for name in self._names]
        return tagged_key(versions, key)

    def flush(self) -> None:
        """Invalidate every key written through any view sharing one of these tags."""
        with self._c.mutex:
            for name in self._names:
                self._c.tags.flush(name)


class MemoryCache(MemoryStore):
    """An in-process cache of at most ``max_entries`` values (least recently used evicted)."""

    def __init__(
        self,
        clock: Clock,
        codec: Codec | None = None,
        max_entries: int = 10_000,
        prefix: str = "foundry-cache",
        sweep_every: timedelta = timedelta(seconds=60),
    ) -> None:
        if max_entries < 1:
            raise InvalidCacheValue(f"max_entries must be at least 1, got {max_entries}")
        self.prefix = validate_prefix(prefix)
        sweep_ms = positive_ms(sweep_every, "sweep_every")
        super().__init__(MemoryCore(clock, codec or Codec(), max_entries, sweep_ms))

    def tags(self, *names: str) -> MemoryTaggedCache:
        """A view whose keys are invalidated by flushing any of ``names``."""
        return MemoryTaggedCache(self._c, tag_names(names))

    def lock(self, name: str, ttl: Ttl, *, timeout: Ttl = None) -> CacheLock:
        """A lock (not yet taken) that expires ``ttl`` after it is taken."""
        return make_lock(self.flights, name, lock_key(name), ttl, timeout)

    def restore_lock(
        self, name: str, owner: str, ttl: Ttl = None, *, timeout: Ttl = None
    ) -> CacheLock:
        """The lock ``name`` as held by ``owner`` (a ``Lock.owner``)."""
        skey = lock_key(name)
        return restore_lock(self.flights, name, skey, owner=owner, ttl=ttl, timeout=timeout)

    def idempotent(self, key: str, ttl: Ttl, *, fence: int = 0) -> CacheEffect:
        """The record of the effect ``key``, kept beside the locks (never evicted)."""
        return CacheEffect(self, key, effect_key(key), ttl, fence)

    def effect_step(self, skey: str, op: str, fence: int, ttl_ms: int) -> str:
        """One step of ``cache_effect.decide``, under the mutex."""
        with self._c.mutex:
            return self._c.holders.effect_step(skey, op, fence, ttl_ms, self._c.now())

    def clear(self) -> None:
        """Remove every value (locks and effect records stay: clearing data must not break
        exclusion nor repeat effects)."""
        removed = self._c.clear()
        log.info("cleared cache namespace %s (%s keys)", self.prefix, removed)

    def stats(self) -> CacheStats:
        """Hits, misses, writes, deletes and LRU evictions so far."""
        return self._c.stats()
