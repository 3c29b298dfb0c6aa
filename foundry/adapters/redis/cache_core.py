"""What a Redis cache and its tagged views share: ``CacheCore``.

The client, the Lua runner, the codec, the clock and the names of the keys; calling one cache
function (``lua/cache/``) or command with the driver's errors translated; reading the stored
strings (``<expires_at_ms>:<payload>``) back as values.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis

from foundry.adapters.cache_support import MAX_TTL_MS, to_ms, ttl_ms, validate_prefix
from foundry.adapters.codec import Codec
from foundry.adapters.redis.byte_replies import bytes_replies
from foundry.adapters.redis.cache_keys import CacheKeys
from foundry.adapters.redis.cluster import is_cluster
from foundry.adapters.redis.cluster_runner import function_runner
from foundry.adapters.redis.errors import cache_error
from foundry.adapters.redis.runner import call
from foundry.domain import UndecodableValue
from foundry.ports.cache import Ttl
from foundry.ports.clock import Clock

_MAX_TTL_S = MAX_TTL_MS // 1000


def ttl_arg(ttl: Ttl) -> str:
    """A ttl as the cache functions take it: whole ms, ``-1`` for forever."""
    # Whole seconds, the common ttl: nothing to round.
    if type(ttl) is int and 0 <= ttl <= _MAX_TTL_S:
        return str(ttl * 1000)
    return ms_arg(ttl_ms(ttl))


def ms_arg(ms: int | None) -> str:
    """A ttl in ms (``None`` for forever) as the cache functions take it."""
    return "-1" if ms is None else str(ms)


class CacheCore:
    """What a cache and its tagged views share: the client, runner, codec, clock, names."""

    def __init__(self, client: redis.Redis, prefix: str, codec: Codec, clock: Clock | None):
        self.client = bytes_replies(client, "the cache")
        self.prefix = validate_prefix(prefix)
        self.codec = codec
        self.clock = clock
        self.runner = function_runner(client)
        self.keys = CacheKeys(prefix, spread=is_cluster(client))

    def now(self) -> str:
        """Now as the functions' ``now`` argument: the clock's ms, or "" for Redis' ``TIME``."""
        return "" if self.clock is None else str(to_ms(self.clock.now()))

    def wait_now_ms(self) -> int:
        """Now in ms on the clock waits are measured against (local wall clock by default)."""
        clock = self.clock
        return time.time_ns() // 1_000_000 if clock is None else to_ms(clock.now())

    def run(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[str | bytes],
        label: str,
        *,
        resend: bool = True,
    ) -> Any:
        """The cache function ``name`` (``lua/cache/<name>.lua``); errors name ``label``.

        ``resend=False`` for the calls a second run would change (increment, pull, add, lock
        release): after a lost reply they raise ``CacheUnavailable`` instead.
        """
        try:
            return self.runner.call(f"cache_{name}", keys, args, resend=resend)
        except redis.RedisError as error:
            raise cache_error(error, label) from error

    def run_by_slot(
        self,
        name: str,
        skeys: Sequence[str],
        args: Sequence[str | bytes],
        label: str,
        per_key: Sequence[str | bytes] = (),
    ) -> list[Any]:
        """The batch function ``name`` (KEYS: the stats hash, then ``skeys``; ARGV: ``args``,
        then ``per_key``'s item for each key) once per slot of ``skeys`` (once on one
        server), all in one write; the replies, in ``keys.by_stats`` order. Each call must be
        safe to send again."""
        groups = self.keys.by_stats(skeys)
        calls = [
            (
                f"cache_{name}",
                (stats, *(skeys[i] for i in indexes)),
                (*args, *(per_key[i] for i in indexes)) if per_key else args,
            )
            for stats, indexes in groups.items()
        ]
        try:
            return self.runner.call_many(calls)
        except redis.RedisError as error:
            raise cache_error(error, label) from error

    def command(self, label: str, *args: str) -> Any:
        """A plain command through the client (its pool and retry), errors translated."""
        try:
            return call(self.client, *args)
        except redis.RedisError as error:
            raise cache_error(error, label) from error

    def payload(self, raw: bytes, label: str) -> Any:
        """The value of a stored string; ``UndecodableValue`` naming ``label``."""
        head, sep, body = raw.partition(b":")
        if not sep or not head.isdigit():
            raise UndecodableValue(label, "it has no expiry header: not written by Foundry")
        return self.codec.decode_value(body, label)

    def payloads(self, names: list[str], raws: list[bytes | None]) -> dict[str, Any]:
        """The decoded values of a batch; the hot loop of ``get_many``, kept flat."""
        found, blobs = [], []
        for name, raw in zip(names, raws, strict=True):
            if raw is None:
                continue
            head, sep, body = raw.partition(b":")
            if not (sep and head.isdigit()):
                self.payload(raw, name)  # raises UndecodableValue naming the key
            found.append(name)
            blobs.append(body)
        return dict(zip(found, self.codec.decode_values(blobs, found), strict=True))
