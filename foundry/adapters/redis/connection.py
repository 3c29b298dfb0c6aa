"""One way to connect to Redis, shared by the queue and the cache adapters.

Every client gets an explicit retry policy (exponential backoff with jitter, bounded) on
connection errors and timeouts, socket timeouts, TCP keepalive and health checks. The retry is
safe because every write Foundry sends is idempotent under re-send (see the Lua scripts).
"""

from __future__ import annotations

from datetime import timedelta

import attrs
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from foundry.domain import ConfigurationError


@attrs.frozen
class RedisSettings:
    """How to reach one Redis database. ``rediss://`` URLs use TLS."""

    url: str = attrs.field(default="redis://127.0.0.1:6379/0")
    db: int | None = None
    password: str | None = None
    pool_size: int = attrs.field(default=16)
    connect_timeout: timedelta = timedelta(seconds=2)
    socket_timeout: timedelta = attrs.field(default=timedelta(seconds=5))
    retries: int = 6
    backoff_base: timedelta = timedelta(milliseconds=20)
    backoff_cap: timedelta = timedelta(seconds=1)
    health_check_interval: int = 15
    client_name: str = "foundry"

    @url.validator
    def _url(self, _: attrs.Attribute[str], value: str) -> None:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(
                f"REDIS_URL {value!r} must start with redis://, rediss:// (TLS) or unix://"
            )

    @socket_timeout.validator
    def _socket_timeout(self, _: attrs.Attribute[timedelta], value: timedelta) -> None:
        if value <= timedelta(0):
            raise ConfigurationError(f"REDIS_SOCKET_TIMEOUT must be positive, got {value}")

    @pool_size.validator
    def _pool_size(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ConfigurationError(f"REDIS_POOL_SIZE must be at least 1, got {value}")


def connection_retry(settings: RedisSettings) -> Retry:
    """The bounded, jittered retry every Foundry client uses."""
    backoff = ExponentialWithJitterBackoff(
        base=settings.backoff_base.total_seconds(), cap=settings.backoff_cap.total_seconds()
    )
    return Retry(
        backoff,
        settings.retries,
        supported_errors=(redis.ConnectionError, redis.TimeoutError, TimeoutError),
    )


def connect(settings: RedisSettings) -> redis.Redis:
    """A client (with its own pool) for ``settings``; connects lazily on first use."""
    options: dict[str, object] = {
        "max_connections": settings.pool_size,
        "socket_connect_timeout": settings.connect_timeout.total_seconds(),
        "socket_timeout": settings.socket_timeout.total_seconds(),
        "socket_keepalive": True,
        "health_check_interval": settings.health_check_interval,
        "retry": connection_retry(settings),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
        "client_name": settings.client_name,
    }
    if settings.db is not None:
        options["db"] = settings.db
    if settings.password is not None:
        options["password"] = settings.password
    return redis.Redis.from_url(settings.url, **options)
