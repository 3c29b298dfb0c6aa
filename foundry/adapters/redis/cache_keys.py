"""The Redis keys of one cache namespace, on one server or spread over a Redis Cluster.

On one server (or behind Sentinel) every key is ``<prefix>:<kind>:<name>``: ``v:<key>`` values,
``t:<digest>:<key>`` tagged values, ``tag:<name>`` tag versions, ``lock:<name>`` locks,
``effect:<key>`` effect records and ``<prefix>:stats`` the one counters hash.

On Redis Cluster a function may touch only keys of one slot, and a value's function also
counts a hit or a miss in the stats. So the namespace is cut in ``BUCKETS`` buckets, each under
its own hash tag: a key's records live in the bucket its name hashes to, beside that bucket's
own counters, ``<prefix>:{<prefix>#<bucket>}:<kind>:<name>`` and
``<prefix>:{<prefix>#<bucket>}:stats``. ``stats()`` adds up every bucket's counters; a batch
(``get_many``, ``set_many``, ``delete_many``) makes one function call per bucket it touches,
each atomic on its own. The tag versions all live under one tag,
``<prefix>:{<prefix>#tags}:tag:<name>``, so a view reads its tags in one ``MGET`` and a flush
bumps them in one write. A singleflight guard ``<prefix>:flight:<value key>`` carries its
value's tag, so it lands in the value's slot.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from foundry.domain import InvalidCacheKey

#: How many buckets a namespace is cut in on Redis Cluster (each one hash slot): enough to
#: spread a cache over any cluster's masters, few enough that ``stats()`` reads them all in
#: one pipelined round trip per master.
BUCKETS = 64

#: The kinds of record a namespace's keys start with, after ``<prefix>:``.
KINDS = ("v", "t", "tag", "lock", "flight", "effect", "stats")


def unambiguous_prefix(prefix: str) -> str:
    """``prefix`` unless some of its keys could be another namespace's.

    A namespace's keys are ``<prefix>:<kind>...``: the keys of ``app:v`` (``app:v:v:k``) would
    be values of ``app`` (its key ``v:k``), and clearing ``app`` would remove them. So no
    ``:``-separated part of a prefix after the first may be a kind (``app:v2`` is fine).
    """
    parts = prefix.split(":")
    for end in range(1, len(parts)):
        outer = ":".join(parts[:end])
        part = nested_kind(prefix, outer)
        if part is not None:
            raise InvalidCacheKey(
                prefix,
                f"CACHE_PREFIX must not contain the part {part!r} (one of {', '.join(KINDS)}): "
                f"its keys would be those of the namespace {outer!r}, whose clear() and tags "
                f"would reach them; rename that part, e.g. {outer}:{part}2",
            )
    return prefix


def nested_kind(prefix: str, outer: str) -> str | None:
    """The kind of the cache namespace ``outer``'s keys that keys starting ``<prefix>:``
    would be among (``app:v`` in ``app``: ``"v"``), or ``None``."""
    if not prefix.startswith(outer + ":"):
        return None
    part = prefix[len(outer) + 1 :].partition(":")[0]
    return part if part in KINDS else None


class CacheKeys:
    """The key names of namespace ``prefix``; ``spread`` (Redis Cluster) cuts it in buckets."""

    def __init__(self, prefix: str, *, spread: bool) -> None:
        self.prefix = unambiguous_prefix(prefix)
        self.spread = spread
        self._stats = f"{prefix}:stats"
        self._values = f"{prefix}:v:"
        self._tags = f"{prefix}:{{{prefix}#tags}}:tag:" if spread else f"{prefix}:tag:"

    def base(self, name: str) -> str:
        """The start of every key of the record ``name`` (its bucket's, on a cluster)."""
        if not self.spread:
            return self.prefix + ":"
        return f"{self.prefix}:{{{self.prefix}#{zlib.crc32(name.encode()) % BUCKETS}}}:"

    def value(self, key: str) -> str:
        """Where the value of ``key`` is stored."""
        if not self.spread:
            return self._values + key
        return f"{self.base(key)}v:{key}"

    def tagged(self, digest: str, key: str) -> str:
        """Where the value of ``key`` is stored under the tag versions ``digest``."""
        return f"{self.base(key)}t:{digest}:{key}"

    def tag(self, name: str) -> str:
        """The version counter of tag ``name``."""
        return self._tags + name

    def lock(self, name: str) -> str:
        """The lock ``name``."""
        return f"{self.base(name)}lock:{name}"

    def effect(self, key: str) -> str:
        """The record of the effect ``key``."""
        return f"{self.base(key)}effect:{key}"

    def stats_of(self, skey: str) -> str:
        """The counters hash in the slot of the stored key ``skey``."""
        if not self.spread:
            return self._stats
        start = skey.index("{")  # the first brace is the bucket's tag: a prefix has none
        return f"{self.prefix}:{skey[start : skey.index('}', start) + 1]}:stats"

    def all_stats(self) -> list[str]:
        """Every counters hash of the namespace."""
        if not self.spread:
            return [self._stats]
        return [f"{self.prefix}:{{{self.prefix}#{bucket}}}:stats" for bucket in range(BUCKETS)]

    def by_stats(self, skeys: Sequence[str]) -> dict[str, list[int]]:
        """The positions of ``skeys`` by the counters hash of their slot, in order."""
        if not self.spread:
            return {self._stats: list(range(len(skeys)))}
        groups: dict[str, list[int]] = {}
        for index, skey in enumerate(skeys):
            groups.setdefault(self.stats_of(skey), []).append(index)
        return groups

    def stored_patterns(self) -> list[str]:
        """SCAN patterns matching every stored value (plain and tagged), nothing else."""
        if not self.spread:
            return [f"{self.prefix}:[vt]:*"]
        tag = f"{self.prefix}:{{{self.prefix}#"
        return [f"{tag}{digits}}}:[vt]:*" for digits in ("[0-9]", "[0-9][0-9]")]
