"""MemoryCache: the in-process CachePort. Bounded LRU, TTL from the Clock, thread-safe.

Values are stored encoded by the codec, so a read returns what Redis would (a copy, as JSON
data) and the two adapters pass one contract suite. Expiry is lazy (on access) plus a sweep of
everything expired at most once per ``sweep_every`` during writes. Single flight is across the
threads of this process only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from foundry.adapters.cache_effect import CacheEffect, step_in
from foundry.adapters.cache_lock import CacheLock, make_lock, restore_lock
from foundry.adapters.cache_remember import Flight, remember
from foundry.adapters.cache_support import (
    add_to_counter,
    key_list,
    positive_ms,
    tag_names,
    to_ms,
    ttl_ms,
    validate_key,
    validate_prefix,
    validate_step,
    value_map,
)
from foundry.adapters.codec import Codec
from foundry.adapters.memory.cache_state import Entries, Item, Shared
from foundry.domain import InvalidCacheValue
from foundry.ports.cache import CacheStats, Ttl
from foundry.ports.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")

_SEP = "\x1f"


def _lock_key(name: str) -> str:
    return "lock" + _SEP + validate_key(name, "lock name")


def _expiry(now: int, ms: int | None) -> int | None:
    return None if ms is None else now + ms


class _MemoryStore:
    """The CacheStore operations over storage keys; views differ only in ``_skey``."""

    def __init__(self, shared: Shared) -> None:
        self._s = shared

    def _skey(self, key: str) -> str:
        return "v" + _SEP + validate_key(key)

    def _now(self) -> int:
        return to_ms(self._s.clock.now())

    def _decode(self, item: Item, key: str) -> Any:
        return self._s.codec.decode_value(item[0], key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``, or ``default``."""
        found, value = self.flight_lookup(self._skey(key), key, True)
        return value if found else default

    def set(self, key: str, value: Any, ttl: Ttl = None) -> None:
        """Store ``value`` at ``key`` for ``ttl`` (forever if ``None``)."""
        skey, ms = self._skey(key), ttl_ms(ttl)
        self._store(skey, value, ms)

    def add(self, key: str, value: Any, ttl: Ttl = None) -> bool:
        """Store only if ``key`` is absent; whether it stored."""
        skey, ms, payload = self._skey(key), ttl_ms(ttl), self._s.codec.encode_value(value)
        with self._s.mutex:
            now = self._now()
            if self._s.entries.live(skey, now) is not None:
                return False
            self._write(skey, payload, now, ms)
            return True

    def forever(self, key: str, value: Any) -> None:
        """Store without expiry."""
        self.set(key, value, None)

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value (not counted as a hit or miss)."""
        skey = self._skey(key)
        with self._s.mutex:
            return self._s.entries.live(skey, self._now()) is not None

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        return self.delete_many([key]) == 1

    def pull(self, key: str, default: Any = None) -> Any:
        """Get and delete, atomically."""
        skey = self._skey(key)
        with self._s.mutex:
            item = self._lookup(skey, self._now(), True)
            if item is None:
                return default
            self._s.entries.remove(skey, self._now())
            self._s.counters.deletes += 1
        return self._decode(item, key)

    def touch(self, key: str, ttl: Ttl) -> bool:
        """Reset ``key``'s expiry to ``ttl`` from now; whether the key exists."""
        skey, ms = self._skey(key), ttl_ms(ttl)
        with self._s.mutex:
            now = self._now()
            item = self._s.entries.live(skey, now)
            if item is None:
                return False
            self._place(skey, item[0], now, ms)
            return True

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that are present."""
        pairs = [(key, self._skey(key)) for key in key_list(keys, "get_many")]
        with self._s.mutex:
            now = self._now()
            items = [(key, self._lookup(skey, now, True)) for key, skey in pairs]
        return {key: self._decode(item, key) for key, item in items if item is not None}

    def set_many(self, values: Mapping[str, Any], ttl: Ttl = None) -> None:
        """Store every value for ``ttl``; nothing is written if any key or value is invalid."""
        ms = ttl_ms(ttl)
        pairs = value_map(values).items()
        encoded = [(self._skey(k), self._s.codec.encode_value(v)) for k, v in pairs]
        with self._s.mutex:
            now = self._now()
            for skey, payload in encoded:
                self._write(skey, payload, now, ms)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys; how many were there."""
        skeys = [self._skey(key) for key in key_list(keys, "delete_many")]
        with self._s.mutex:
            now = self._now()
            removed = sum(self._s.entries.remove(skey, now) for skey in skeys)
            self._s.counters.deletes += removed
            return removed

    def increment(self, key: str, by: int = 1) -> int:
        """Add ``by`` atomically, creating the key at 0 and keeping its expiry."""
        skey, step = self._skey(key), validate_step(by)
        with self._s.mutex:
            now = self._now()
            item = self._s.entries.live(skey, now)
            current = 0 if item is None else self._decode(item, key)
            result = add_to_counter(key, current, step)
            expires = None if item is None else item[1]
            self._s.entries.put(skey, self._s.codec.encode_value(result), expires)
            self._s.counters.writes += 1
            return result

    def decrement(self, key: str, by: int = 1) -> int:
        """``increment(key, -by)``."""
        return self.increment(key, -validate_step(by))

    def remember(self, key: str, ttl: Ttl, compute: Callable[[], T], *, wait: Ttl = 10.0) -> T:
        """The value at ``key``, computed once (across this process' threads) on a miss."""
        flight = Flight(self._skey(key), key, ttl_ms(ttl), positive_ms(wait, "remember wait"))
        return remember(self, flight, compute)

    # -- primitives (also the lock and single-flight backend) ---------------------------------

    def _lookup(self, skey: str, now: int, count: bool) -> Item | None:
        item = self._s.entries.live(skey, now)
        if count and item is None:
            self._s.counters.misses += 1
        elif count:
            self._s.counters.hits += 1
        return item

    def _write(self, skey: str, payload: bytes, now: int, ms: int | None) -> None:
        self._s.sweep_if_due(now)
        self._place(skey, payload, now, ms)
        self._s.counters.writes += 1

    def _place(self, skey: str, payload: bytes, now: int, ms: int | None) -> None:
        if ms == 0:
            self._s.entries.remove(skey, now)
        else:
            self._s.entries.put(skey, payload, _expiry(now, ms))

    def flight_key(self, skey: str) -> str:
        """The lock guarding the computation of ``skey``."""
        return "flight" + _SEP + skey

    def flight_lookup(self, skey: str, label: str, count: bool) -> tuple[bool, Any]:
        """Whether ``skey`` is present and its value."""
        with self._s.mutex:
            item = self._lookup(skey, self._now(), count)
        return (False, None) if item is None else (True, self._decode(item, label))

    def _store(self, skey: str, value: Any, ttl_ms: int | None) -> bytes:
        payload = self._s.codec.encode_value(value)
        with self._s.mutex:
            self._write(skey, payload, self._now(), ttl_ms)
        return payload

    def flight_store(self, skey: str, label: str, value: Any, ttl_ms: int | None) -> Any:
        """Encode and store ``value``; the value as a read gives it back."""
        return self._s.codec.decode_value(self._store(skey, value, ttl_ms), label)

    def lock_acquire(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Take the lock if free, expired or already ``token``'s."""
        with self._s.mutex:
            now = self._now()
            if self.lock_holder(skey) not in (None, token):
                return False
            self._s.locks[skey] = (token, now + ttl_ms)
            return True

    def lock_release(self, skey: str, token: str) -> bool:
        """Drop the lock if ``token`` holds it."""
        with self._s.mutex:
            if self.lock_holder(skey) != token:
                return False
            del self._s.locks[skey]
            return True

    def lock_extend(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Hold for ``ttl_ms`` more from now if ``token`` holds it."""
        with self._s.mutex:
            if self.lock_holder(skey) != token:
                return False
            self._s.locks[skey] = (token, self._now() + ttl_ms)
            return True

    def lock_force_release(self, skey: str) -> None:
        """Drop the lock whoever holds it."""
        with self._s.mutex:
            self._s.locks.pop(skey, None)

    def lock_holder(self, skey: str) -> str | None:
        """The token holding the lock, unless it expired."""
        with self._s.mutex:
            held = self._s.locks.get(skey)
            if held is None or held[1] <= self._now():
                return None
            return held[0]

    def wait_now_ms(self) -> int:
        """Now on the cache's clock, in ms."""
        return self._now()


class MemoryTaggedCache(_MemoryStore):
    """A view whose keys carry the current versions of its tags; ``flush`` bumps them."""

    def __init__(self, shared: Shared, names: tuple[str, ...]) -> None:
        super().__init__(shared)
        self._names = names

    def _skey(self, key: str) -> str:
        validate_key(key)
        with self._s.mutex:
            versions = [f"{name}\x1e{self._s.tag_version(name)}" for name in self._names]
        return "t" + _SEP + _SEP.join(versions) + _SEP + key

    def flush(self) -> None:
        """Invalidate every key written through any view sharing one of these tags."""
        with self._s.mutex:
            for name in self._names:
                self._s.flush_tag(name)


class MemoryCache(_MemoryStore):
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
        super().__init__(Shared(clock, codec or Codec(), Entries(max_entries), sweep_ms))

    def tags(self, *names: str) -> MemoryTaggedCache:
        """A view whose keys are invalidated by flushing any of ``names``."""
        return MemoryTaggedCache(self._s, tag_names(names))

    def lock(self, name: str, ttl: Ttl, *, timeout: Ttl = None) -> CacheLock:
        """A lock (not yet taken) that expires ``ttl`` after it is taken."""
        return make_lock(self, name, _lock_key(name), ttl, timeout)

    def restore_lock(
        self, name: str, owner: str, ttl: Ttl = None, *, timeout: Ttl = None
    ) -> CacheLock:
        """The lock ``name`` as held by ``owner`` (a ``Lock.owner``)."""
        return restore_lock(self, name, _lock_key(name), owner=owner, ttl=ttl, timeout=timeout)

    def idempotent(self, key: str, ttl: Ttl, *, fence: int = 0) -> CacheEffect:
        """The record of the effect ``key``, kept beside the locks (never evicted)."""
        return CacheEffect(self, key, "effect" + _SEP + validate_key(key), ttl, fence)

    def effect_step(self, skey: str, op: str, fence: int, ttl_ms: int) -> str:
        """One step of ``cache_effect.decide``, under the mutex."""
        with self._s.mutex:
            return step_in(self._s.locks, skey, op, fence, ttl_ms=ttl_ms, now=self._now())

    def clear(self) -> None:
        """Remove every value (locks and effect records stay: clearing data must not break
        exclusion nor repeat effects)."""
        with self._s.mutex:
            removed = len(self._s.entries)
            self._s.entries.clear()
        log.info("cleared cache namespace %s (%s keys)", self.prefix, removed)

    def stats(self) -> CacheStats:
        """Hits, misses, writes, deletes and LRU evictions so far."""
        with self._s.mutex:
            c = self._s.counters
            return CacheStats(c.hits, c.misses, c.writes, c.deletes, self._s.entries.evictions)
