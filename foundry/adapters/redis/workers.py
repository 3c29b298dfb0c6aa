"""The worker registry on Redis: one string per worker plus an index by heartbeat expiry."""

from __future__ import annotations

from datetime import timedelta

from foundry.adapters.redis.core import RedisCore
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import worker_key, workers_key
from foundry.adapters.redis.records import ceil_ms, to_ms
from foundry.adapters.redis.runner import call
from foundry.ports.queue_types import WorkerInfo


class RedisWorkers(RedisCore):
    """``WorkerRegistry``: expiry follows the queue's clock (the server's, or the test's)."""

    def _clock_ms(self) -> int:
        if self._clock is not None:
            return to_ms(self._clock.now())
        seconds, micros = call(self._client, "TIME")
        return int(seconds) * 1000 + int(micros) // 1000

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """Publish ``info`` until now + ``ttl``."""
        ttl_ms = max(ceil_ms(ttl), 1)
        with guard("heartbeat"):
            expires = self._clock_ms() + ttl_ms
            pipe = self._client.pipeline(transaction=False)
            # The key outlives the index entry: the index (on the queue's clock) decides.
            key = worker_key(self._prefix, info.id)
            call(pipe, "SET", key, self._codec.encode(info), "PX", ttl_ms * 10)
            call(pipe, "ZADD", workers_key(self._prefix), expires, info.id)
            pipe.execute()

    def workers(self) -> list[WorkerInfo]:
        """Live workers, sorted by id; expired entries are dropped from the index."""
        index = workers_key(self._prefix)
        with guard("workers"):
            now = self._clock_ms()
            call(self._client, "ZREMRANGEBYSCORE", index, "-inf", now)
            ids = sorted(raw.decode() for raw in call(self._client, "ZRANGE", index, 0, -1))
            keys = [worker_key(self._prefix, worker_id) for worker_id in ids]
            values = call(self._client, "MGET", *keys) if keys else []
        return [self._codec.decode(value, WorkerInfo) for value in values if value is not None]

    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker at once."""
        with guard("forget_worker"):
            pipe = self._client.pipeline(transaction=False)
            call(pipe, "DEL", worker_key(self._prefix, worker_id))
            call(pipe, "ZREM", workers_key(self._prefix), worker_id)
            pipe.execute()
