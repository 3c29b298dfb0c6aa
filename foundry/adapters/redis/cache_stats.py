"""The Redis cache's statistics: ``read_stats`` adds up the counters hashes of a namespace
(one, or one per bucket on a cluster: ``cache_keys.py``) in one pipelined read.

The functions count with ``HINCRBY`` and drop a count that a broken hash refuses, so a stats
key another program wrote never fails a value's call; reading it says what is wrong. Fields
that are not Foundry's counters are left out (they count nothing of ours, and reading them
must not fail); a counter that is not an integer, or a key of another type, is a
``CacheError`` naming the key and the fix.
"""

from __future__ import annotations

import redis

from foundry.adapters.redis.cache_core import CacheCore
from foundry.adapters.redis.errors import cache_error
from foundry.domain import CacheError
from foundry.ports.cache import CacheStats

#: The counters the cache functions write, as they name them in the hash.
COUNTERS = ("hits", "misses", "writes", "deletes")
_FIELDS = {name.encode(): name for name in COUNTERS}


def read_stats(core: CacheCore) -> CacheStats:
    """The namespace's counters, added up over its counters hashes."""
    keys = core.keys.all_stats()
    try:
        pipe = core.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        replies = pipe.execute(raise_on_error=False)
    except redis.RedisError as error:
        raise cache_error(error, core.prefix) from error
    totals = dict.fromkeys(COUNTERS, 0)
    for key, reply in zip(keys, replies, strict=True):
        for name, count in _counts(key, reply).items():
            totals[name] += count
    return CacheStats(**totals)


def _counts(key: str, reply: object) -> dict[str, int]:
    """Our counters in one hash's ``HGETALL`` reply (or its error)."""
    if isinstance(reply, redis.ResponseError) and "WRONGTYPE" in str(reply):
        raise _broken(key, "it is not a hash")
    if isinstance(reply, redis.RedisError):
        raise cache_error(reply, key) from reply
    assert isinstance(reply, dict)
    counts = {}
    for field, value in reply.items():
        name = _FIELDS.get(bytes(field))
        if name is None:
            continue
        try:
            counts[name] = int(value)
        except ValueError:
            raise _broken(key, f"its {name!r} is {bytes(value)[:40]!r}, not an integer") from None
    return counts


def _broken(key: str, what: str) -> CacheError:
    return CacheError(
        f"the cache statistics at {key!r} were not written by Foundry ({what}): the cache "
        f"works but drops the counts the key refuses. Delete the key (DEL {key}) to count "
        "again from 0 (the cache's values are not affected); if another program owns it, give "
        "the cache another CACHE_PREFIX"
    )
