"""RedisCache: the CachePort on Redis, shared by every process that uses one prefix.

Keys: ``<prefix>:v:<key>`` values, ``<prefix>:t:<digest>:<key>`` tagged values (the digest
folds in the current version of each tag), ``<prefix>:tag:<name>`` tag versions,
``<prefix>:lock:<name>`` and ``<prefix>:flight:...`` locks, ``<prefix>:stats`` the counters;
on Redis Cluster the namespace is cut in buckets, each with its own counters
(``cache_keys.py``). Each operation is one call of a function of Foundry's Lua library
(``lua/cache/``; a batch: one per bucket on a cluster); a tagged operation first reads its
tags' versions (one MGET, ``cache_tags.py``). Time is the given clock's, passed to every
function, or the Redis server's (``TIME``) when no clock is given. The parts:
``cache_core.py`` (what a cache and its views share: client, runner, codec, clock, keys),
``cache_store.py`` (the ``CacheStore`` operations), ``cache_flight.py`` (the lock and
single-flight primitives), ``cache_tags.py`` (tag versions), ``cache_stats.py`` (the counters).
"""

from __future__ import annotations

import logging

import redis

from foundry.adapters.cache_effect import CacheEffect
from foundry.adapters.cache_lock import CacheLock, make_lock, restore_lock
from foundry.adapters.cache_support import tag_names, validate_key, validate_keys
from foundry.adapters.codec import Codec
from foundry.adapters.redis.cache_core import CacheCore
from foundry.adapters.redis.cache_stats import read_stats
from foundry.adapters.redis.cache_store import RedisStore
from foundry.adapters.redis.cache_tags import TagVersions
from foundry.adapters.redis.errors import cache_error
from foundry.ports.cache import CacheStats, Ttl
from foundry.ports.clock import Clock

log = logging.getLogger(__name__)

_CLEAR_BATCH = 1000


class RedisTaggedCache(RedisStore):
    """A view whose Redis keys fold in its tags' current versions; ``flush`` bumps them."""

    def __init__(self, core: CacheCore, names: tuple[str, ...]) -> None:
        super().__init__(core)
        self._versions = TagVersions(core, names)

    def _skey(self, key: str) -> str:
        return self._c.keys.tagged(self._versions.digest(validate_key(key)), key)

    def _skeys(self, keys: list[str]) -> list[str]:
        checked = validate_keys(keys)
        digest = self._versions.digest(checked[0])
        return [self._c.keys.tagged(digest, key) for key in checked]

    def flush(self) -> None:
        """Invalidate every key written through any view sharing one of these tags (O(1))."""
        self._versions.flush()


class RedisCache(RedisStore):
    """A cache namespace ``prefix`` on Redis; build the client with ``connection.connect``."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "foundry-cache",
        codec: Codec | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(CacheCore(client, prefix, codec or Codec(), clock))

    def tags(self, *names: str) -> RedisTaggedCache:
        """A view whose keys are invalidated by flushing any of ``names``."""
        return RedisTaggedCache(self._c, tag_names(names))

    def lock(self, name: str, ttl: Ttl, *, timeout: Ttl = None) -> CacheLock:
        """A lock (not yet taken) that expires ``ttl`` after it is taken."""
        skey = self._c.keys.lock(validate_key(name, "lock name"))
        return make_lock(self.flights, name, skey, ttl, timeout)

    def restore_lock(
        self, name: str, owner: str, ttl: Ttl = None, *, timeout: Ttl = None
    ) -> CacheLock:
        """The lock ``name`` as held by ``owner`` (a ``Lock.owner``)."""
        skey = self._c.keys.lock(validate_key(name, "lock name"))
        return restore_lock(self.flights, name, skey, owner=owner, ttl=ttl, timeout=timeout)

    def idempotent(self, key: str, ttl: Ttl, *, fence: int = 0) -> CacheEffect:
        """The record of the effect ``key`` (``<prefix>:effect:<key>``), one function call
        (``cache_effect``) on entering and one on leaving."""
        skey = self._c.keys.effect(validate_key(key))
        return CacheEffect(self, key, skey, ttl, fence)

    def effect_step(self, skey: str, op: str, fence: int, ttl_ms: int) -> str:
        """One step of ``cache_effect.decide``, atomically in Lua."""
        args = (self._c.now(), op, str(fence), str(ttl_ms))
        return bytes(self._run("effect", (skey,), args, skey)).decode()

    def clear(self) -> None:
        """Remove every value of this namespace: SCAN + UNLINK in batches, never KEYS.

        Locks, effect records, tag versions and statistics stay.
        """
        try:
            removed = sum(map(self._unlink_matching, self._c.keys.stored_patterns()))
        except redis.RedisError as error:
            raise cache_error(error, self._c.prefix) from error
        log.info("cleared cache namespace %s (%s keys)", self._c.prefix, removed)

    def _unlink_matching(self, pattern: str) -> int:
        client, batch, removed = self._c.client, [], 0
        for key in client.scan_iter(match=pattern, count=_CLEAR_BATCH):
            batch.append(key)
            if len(batch) >= _CLEAR_BATCH:
                removed += client.unlink(*batch)
                batch.clear()
        return removed + (client.unlink(*batch) if batch else 0)

    def stats(self) -> CacheStats:
        """Hits, misses, writes and deletes of every process using this namespace
        (``cache_stats.py``); a stats key another program broke is a ``CacheError`` naming it.

        Evictions are 0: Foundry expects ``maxmemory-policy noeviction``.
        """
        return read_stats(self._c)
