"""The worker registry on Redis: one string per worker plus an index by heartbeat expiry.

Expiry follows the queue's clock (the server's, or the test's). Written by the client, outside
any queue's slot.
"""

from __future__ import annotations

from datetime import timedelta

import redis

from foundry.adapters.codec import Codec
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import KeyLayout
from foundry.adapters.redis.records import ceil_ms
from foundry.adapters.redis.runner import call
from foundry.ports.queue_types import WorkerInfo


class RedisWorkers:
    """``WorkerRegistry`` over a client, the key layout and the queue's clock."""

    def __init__(
        self, client: redis.Redis, keys: KeyLayout, clock: QueueClock, codec: Codec
    ) -> None:
        self._client = client
        self._keys = keys
        self._clock = clock
        self._codec = codec

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """Publish ``info`` until now + ``ttl``."""
        ttl_ms = max(ceil_ms(ttl), 1)
        with guard("heartbeat"):
            expires = self._clock.read(self._client) + ttl_ms
            pipe = self._client.pipeline(transaction=False)
            # The key outlives the index entry: the index (on the queue's clock) decides.
            key = self._keys.worker(info.id)
            call(pipe, "SET", key, self._codec.encode_worker(info), "PX", ttl_ms * 10)
            call(pipe, "ZADD", self._keys.workers, expires, info.id)
            pipe.execute()

    def workers(self) -> list[WorkerInfo]:
        """Live workers, sorted by id; expired entries are dropped from the index."""
        index = self._keys.workers
        with guard("workers"):
            now = self._clock.read(self._client)
            call(self._client, "ZREMRANGEBYSCORE", index, "-inf", now)
            ids = sorted(raw.decode() for raw in call(self._client, "ZRANGE", index, 0, -1))
            keys = [self._keys.worker(worker_id) for worker_id in ids]
            values = call(self._client, "MGET", *keys) if keys else []
        return [self._codec.decode(value, WorkerInfo) for value in values if value is not None]

    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker at once."""
        with guard("forget_worker"):
            pipe = self._client.pipeline(transaction=False)
            call(pipe, "DEL", self._keys.worker(worker_id))
            call(pipe, "ZREM", self._keys.workers, worker_id)
            pipe.execute()
