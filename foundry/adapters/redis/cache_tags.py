"""The versions of a tagged view's tags on Redis: ``TagVersions``.

Each tag's version is a counter at ``<prefix>:tag:<name>`` (``cache_keys.py``); a view's keys
fold in the digest of its tags' current versions, so a flush (an ``INCR``) makes every value
written under the old ones unreachable. A tag without a version (never used, or its key
evicted) is given a fresh, random one, so no value written under an earlier version is
reachable again.
"""

from __future__ import annotations

import hashlib
import secrets

import redis

from foundry.adapters.redis.cache_core import CacheCore
from foundry.adapters.redis.errors import cache_error
from foundry.domain import UndecodableValue

_FRESH_FLOOR = 2**40
_FRESH_SPAN = 2**62 - 2**40


def _fresh_version() -> int:
    """A tag version no value was written under: a tag's key starts (or, evicted under an
    ``allkeys-*`` policy, starts again) at a random point far above the 0, 1, 2... that
    counting flushes from 0 gave, and far below ``INCR``'s 2**63 limit."""
    return _FRESH_FLOOR + secrets.randbelow(_FRESH_SPAN)


def _version(name: str, key: str, raw: bytes) -> int:
    """A tag's stored version; ``UndecodableValue`` naming its key when another program wrote
    something else there."""
    try:
        return int(raw)
    except ValueError:
        raise UndecodableValue(
            key,
            f"the version of tag {name!r} is not an integer: not written by Foundry "
            "(deleting it makes the tag's values miss)",
        ) from None


class TagVersions:
    """The version counters of the tags ``names`` (sorted, validated) of one namespace."""

    def __init__(self, core: CacheCore, names: tuple[str, ...]) -> None:
        self._c = core
        self._names = names
        self._keys = [core.keys.tag(name) for name in names]

    def digest(self, label: str) -> str:
        """The digest of the tags' current versions (one ``MGET``); errors name ``label``."""
        versions = self._c.command(label, "MGET", *self._keys)
        if None in versions:
            versions = self._given(label)
        joined = "\x1f".join(
            f"{name}\x1e{_version(name, key, raw)}"
            for name, key, raw in zip(self._names, self._keys, versions, strict=True)
        )
        return hashlib.blake2b(joined.encode(), digest_size=12).hexdigest()

    def _given(self, label: str) -> list[bytes]:
        """The tags' versions, giving each tag without one a fresh one."""
        fresh = [_fresh_version() for _ in self._keys]
        try:
            pipe = self._c.client.pipeline(transaction=False)
            for tag_key, version in zip(self._keys, fresh, strict=True):
                pipe.set(tag_key, version, nx=True, get=True)  # the version it had, or nil
            replies: list[bytes | None] = pipe.execute()
        except redis.RedisError as error:
            raise cache_error(error, label) from error
        return [
            str(mine).encode() if held is None else held
            for held, mine in zip(replies, fresh, strict=True)
        ]

    def flush(self) -> None:
        """Bump every tag's version (one pipeline; O(1) in the values)."""
        label = ",".join(self._names)
        try:
            pipe = self._c.client.pipeline(transaction=False)
            for tag_key in self._keys:
                pipe.set(tag_key, _fresh_version(), nx=True)  # a missing one restarts nowhere old
                pipe.incr(tag_key)
            pipe.execute()
        except redis.ResponseError as error:
            if "not an integer" in str(error):
                self.digest(label)  # raises naming the tag whose version is not a number
            raise cache_error(error, label) from error
        except redis.RedisError as error:
            raise cache_error(error, label) from error
