"""Settings: the environment, read once, validated, frozen (and picklable, for pool children).

The variable names are the ones of the framework Foundry ports. An empty variable counts as
unset. A bad value raises ``ConfigurationError`` naming the variable and what it accepts.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from foundry.adapters.postgres import names as postgres
from foundry.adapters.redis.connection import RedisSettings, check_url, mask_url
from foundry.adapters.redis.durability import Durability
from foundry.domain import ConfigurationError, LeaseTiming

if TYPE_CHECKING:
    from foundry.adapters.postgres.config import PostgresSettings

T = TypeVar("T")

_PREFIX = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


def _database_mask(url: str | None) -> str:
    return "(unset)" if url is None else postgres.mask_url(url)


def _mask_url(url: str | None) -> str:
    """``url`` with the password in its user info replaced by stars."""
    return "None" if url is None else mask_url(url)


#: Where Redis is looked for when a Redis driver is chosen but no ``REDIS_URL`` is given.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Driver(enum.StrEnum):
    """Which backend a port uses."""

    MEMORY = "memory"
    REDIS = "redis"
    POSTGRES = "postgres"


def _as_driver(value: Driver | str) -> Driver:
    try:
        return Driver(str(value).lower())
    except ValueError:
        raise ConfigurationError(
            f"unknown driver {value!r}: use 'memory', 'redis' or 'postgres' (or a Driver)"
        ) from None


def _configured_redis(settings: Settings) -> Driver:
    return Driver.MEMORY if settings.redis_url is None else Driver.REDIS


@attrs.frozen
class Settings:
    """Everything Foundry reads from the environment, with the documented defaults.

    A driver left unset is Redis when a Redis URL is given and memory otherwise, so a producer
    configured for Redis never drops its jobs into a queue that lives only in its own process.
    """

    redis_url: str | None = attrs.field(default=None, repr=_mask_url)
    redis_db: int | None = None
    redis_password: str | None = attrs.field(default=None, repr=False)
    redis_pool_size: int = 16
    redis_connect_timeout: timedelta = timedelta(seconds=2)
    redis_socket_timeout: timedelta = timedelta(seconds=5)
    redis_cache_db: int | None = None
    redis_queue_db: int | None = None
    redis_wait_replicas: int = 0
    cache_driver: Driver = attrs.field(
        default=attrs.Factory(_configured_redis, takes_self=True), converter=_as_driver
    )
    cache_prefix: str = "foundry_cache"
    queue_driver: Driver = attrs.field(
        default=attrs.Factory(_configured_redis, takes_self=True), converter=_as_driver
    )
    queue_prefix: str = "foundry"
    queue_timeout: timedelta = timedelta(seconds=30)
    database_url: str | None = attrs.field(default=None, repr=_mask_url)
    database_pool_size: int = 10
    database_schema: str = postgres.DEFAULT_SCHEMA

    def __attrs_post_init__(self) -> None:
        for variable, driver in (
            ("QUEUE_DRIVER", self.queue_driver),
            ("CACHE_DRIVER", self.cache_driver),
        ):
            if driver is Driver.POSTGRES and self.database_url is None:
                raise ConfigurationError(
                    f"{variable}=postgres needs DATABASE_URL "
                    "(postgresql://user:password@host:5432/database)"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment (``os.environ`` by default)."""
        env = _Env(os.environ if environ is None else environ)
        default = cls()
        drivers = {
            "cache_driver": env.read("CACHE_DRIVER", _driver, None),
            "queue_driver": env.read("QUEUE_DRIVER", _driver, None),
        }
        return cls(
            **{name: driver for name, driver in drivers.items() if driver is not None},
            redis_url=env.read("REDIS_URL", _redis_url, None),
            redis_db=env.read("REDIS_DB", _db_number, None),
            redis_password=env.read("REDIS_PASSWORD", str, None),
            redis_pool_size=env.read("REDIS_POOL_SIZE", _pool_size, default.redis_pool_size),
            redis_connect_timeout=env.read(
                "REDIS_CONNECT_TIMEOUT", _seconds, default.redis_connect_timeout
            ),
            redis_socket_timeout=env.read(
                "REDIS_SOCKET_TIMEOUT", _seconds, default.redis_socket_timeout
            ),
            redis_cache_db=env.read("REDIS_CACHE_DB", _db_number, None),
            redis_queue_db=env.read("REDIS_QUEUE_DB", _db_number, None),
            redis_wait_replicas=env.read("REDIS_WAIT_REPLICAS", _replicas, 0),
            cache_prefix=env.read("CACHE_PREFIX", _prefix, default.cache_prefix),
            queue_prefix=env.read("QUEUE_PREFIX", _prefix, default.queue_prefix),
            queue_timeout=env.read("QUEUE_TIMEOUT", _seconds, default.queue_timeout),
            database_url=env.read("DATABASE_URL", _database_url, None),
            database_pool_size=env.read(
                "DATABASE_POOL_SIZE", _pool_size, default.database_pool_size
            ),
            database_schema=env.read("DATABASE_SCHEMA", _schema, default.database_schema),
        )

    def queue_timing(self) -> LeaseTiming:
        """The lease (``QUEUE_TIMEOUT``) and the timings that follow from it; the queue
        client's reply timeout is at most ``REDIS_SOCKET_TIMEOUT``."""
        return LeaseTiming(self.queue_timeout, self.redis_socket_timeout)

    def queue_redis(self) -> RedisSettings:
        """How the queue reaches Redis (``REDIS_QUEUE_DB`` overrides ``REDIS_DB``); its socket
        timeout is ``queue_timing().reply_timeout``."""
        timeout = self.queue_timing().reply_timeout
        return self._redis(self.redis_queue_db, "foundry-queue", timeout)

    def queue_durability(self) -> Durability:
        """How many replicas hold an enqueue, a completion or a failure before it returns
        (``REDIS_WAIT_REPLICAS``), waiting at most half the queue client's reply timeout."""
        return Durability(self.redis_wait_replicas, self.queue_timing().reply_timeout / 2)

    def cache_redis(self) -> RedisSettings:
        """How the cache reaches Redis (``REDIS_CACHE_DB`` overrides ``REDIS_DB``)."""
        return self._redis(self.redis_cache_db, "foundry-cache", self.redis_socket_timeout)

    def _redis(self, db: int | None, client_name: str, socket_timeout: timedelta) -> RedisSettings:
        return RedisSettings(
            url=self.redis_url or DEFAULT_REDIS_URL,
            db=self.redis_db if db is None else db,
            password=self.redis_password,
            pool_size=self.redis_pool_size,
            connect_timeout=self.redis_connect_timeout,
            socket_timeout=socket_timeout,
            client_name=client_name,
        )

    def postgres(self) -> PostgresSettings:
        """How the PostgreSQL adapters reach their database (``DATABASE_URL``, its pool size
        and Foundry's schema in it). Raises ``ConfigurationError`` when no URL is set."""
        if self.database_url is None:
            raise ConfigurationError(
                "DATABASE_URL is not set: use postgresql://user:password@host:5432/database"
            )
        # Imported here: a process that never uses PostgreSQL does not build its settings class.
        from foundry.adapters.postgres.config import PostgresSettings  # noqa: PLC0415

        return PostgresSettings(
            self.database_url,
            schema=self.database_schema,
            pool_size=self.database_pool_size,
        )

    def describe(self) -> dict[str, str]:
        """Each setting as its variable name and a printable value (the password hidden)."""
        values: dict[str, Any] = attrs.asdict(self, recurse=False)
        shown = {name.upper(): _show(value) for name, value in values.items()}
        if self.redis_password is not None:
            shown["REDIS_PASSWORD"] = "********"
        shown["REDIS_URL"] = _mask_url(self.redis_url or DEFAULT_REDIS_URL)
        shown["DATABASE_URL"] = _database_mask(self.database_url)
        return shown


class _Env:
    """Reads one variable at a time, turning parser complaints into ``ConfigurationError``."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def read(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as error:
            raise ConfigurationError(f"{name}={raw!r} is not valid: {error}") from None


def _show(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return str(value)


def _database_url(raw: str) -> str:
    postgres.check_url(raw)
    return raw


def _schema(raw: str) -> str:
    postgres.check_schema(raw)
    return raw


def _redis_url(raw: str) -> str:
    check_url(raw)
    return raw


def _integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _db_number(raw: str) -> int:
    number = _integer(raw)
    if number < 0:
        raise ValueError("use a database number, 0 or more (Redis has 0-15 by default)")
    return number


def _replicas(raw: str) -> int:
    number = _integer(raw)
    if not 0 <= number <= 100:
        raise ValueError("use a number of replicas from 0 (no waiting) to 100")
    return number


def _pool_size(raw: str) -> int:
    number = _integer(raw)
    if not 1 <= number <= 10_000:
        raise ValueError("use a number of connections from 1 to 10000")
    return number


def _seconds(raw: str) -> timedelta:
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds, like 30 or 2.5") from None
    if not 0 < seconds <= 86_400:
        raise ValueError("use a number of seconds greater than 0 and at most 86400")
    return timedelta(seconds=seconds)


def _driver(raw: str) -> Driver:
    try:
        return Driver(raw.lower())
    except ValueError:
        raise ValueError("use 'memory', 'redis' or 'postgres'") from None


def _prefix(raw: str) -> str:
    if _PREFIX.fullmatch(raw) is None:
        raise ValueError("use 1-64 letters, digits or '_.:-' (no spaces or braces)")
    return raw
