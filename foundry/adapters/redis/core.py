"""What every part of the Redis queue shares: client, runner, keys, clock, codec, epochs."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import attrs
import redis
from loguru import logger

from foundry.adapters.codec import Codec
from foundry.adapters.redis.blobs import JobBlobs
from foundry.adapters.redis.connection import blocking_limit
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.health import RedisReport, inspect_redis, log_report
from foundry.adapters.redis.keys import QueueKeys, registry_key, validate_prefix
from foundry.adapters.redis.records import ceil_ms, to_ms
from foundry.adapters.redis.runner import Arg, FunctionRunner, call
from foundry.domain import MAX_PAYLOAD_BYTES, ConfigurationError
from foundry.ports.clock import Clock
from foundry.ports.queue_types import DeadLetterRetention


def request_id() -> str:
    """A fresh id for one admin script call, so its re-send returns the first reply."""
    return secrets.token_urlsafe(9)


class RedisCore:
    """State and helpers shared by the queue's operations (see ``RedisQueue``)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "foundry",
        clock: Clock | None = None,
        codec: Codec | None = None,
        retention: DeadLetterRetention | None = None,
        completed_ttl: timedelta = timedelta(hours=1),
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        if not 0 < max_payload_bytes <= MAX_PAYLOAD_BYTES:
            raise ConfigurationError(
                f"max_payload_bytes must be 1-{MAX_PAYLOAD_BYTES}, got {max_payload_bytes}"
            )
        if completed_ttl <= timedelta(0):
            raise ConfigurationError(f"completed_ttl must be positive, got {completed_ttl}")
        self._client = client
        self._block_limit_s = blocking_limit(client)
        self._prefix = validate_prefix(prefix)
        self._clock = clock
        self._codec = codec or Codec(max_payload_bytes)
        self._blobs = JobBlobs(self._codec)
        self._retention = retention or DeadLetterRetention()
        self._completed_ttl_ms = str(ceil_ms(completed_ttl))
        self._runner = FunctionRunner(client)
        self._keys: dict[str, QueueKeys] = {}
        self._registered: set[str] = set()
        self._epochs: dict[str, bytes] = {}
        self._epoch_candidate = secrets.token_hex(8)

    def _queue_keys(self, queue: str) -> QueueKeys:
        keys = self._keys.get(queue)
        if keys is None:
            keys = self._keys[queue] = QueueKeys.of(self._prefix, queue)
        return keys

    def _now(self) -> str:
        """``now`` for a script: the test's clock in ms, or "" (the script reads Redis TIME)."""
        return "" if self._clock is None else str(to_ms(self._clock.now()))

    def _retention_args(self) -> list[Arg]:
        age = self._retention.max_age
        return [self._retention.max_count or 0, 0 if age is None else max(ceil_ms(age), 1)]

    def _run(self, name: str, keys: QueueKeys, args: Sequence[Arg]) -> Any:
        return self._runner.call(name, keys.all, args)

    def _register(self, queue: str) -> None:
        call(self._client, "SADD", registry_key(self._prefix), queue)
        self._registered.add(queue)

    def _see_epoch(self, queue: str, epoch: bytes) -> None:
        """Compare the queue's epoch with the one seen before: a change means lost data."""
        known = self._epochs.get(queue)
        if known == epoch or (not epoch and known is None):
            return
        if known is not None:
            logger.critical(
                "Redis lost the data of queue {} (epoch {} is now {}): jobs stored before may be "
                "gone; enable appendonly and maxmemory-policy noeviction",
                queue,
                known.decode(),
                epoch.decode() or "missing",
            )
            self._registered.discard(queue)
        if epoch:
            self._epochs[queue] = epoch

    def _log_trimmed(self, queue: str, trimmed: int) -> None:
        if trimmed:
            logger.info(
                "dead letters of {} trimmed by retention: {} removed ({})",
                queue,
                trimmed,
                self._retention,
            )

    def check(self) -> RedisReport:
        """The startup self-check: Redis >= 7 (else ``ConfigurationError``), eviction policy and
        persistence reported, warnings logged; also loads every script."""
        report = inspect_redis(self._client)
        with guard("script load"):
            others = self._runner.load()
        if others:
            report = attrs.evolve(report, warnings=(*report.warnings, _other_releases(others)))
        log_report(report)
        return report


def _other_releases(names: list[str]) -> str:
    return (
        f"{len(names)} Foundry function librar{'y' if len(names) == 1 else 'ies'} of other "
        f"releases stay loaded ({', '.join(names)}); once no worker of that release runs, "
        "free it with FUNCTION DELETE <name> (a worker that still needs it loads it again)"
    )
