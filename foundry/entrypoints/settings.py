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
from typing import TYPE_CHECKING, Any, cast

import attrs

from foundry.adapters.postgres import names as postgres
from foundry.adapters.redis.cache_keys import nested_kind, unambiguous_prefix
from foundry.adapters.redis.connection import RedisSettings, check_url, mask_url
from foundry.adapters.redis.durability import Durability
from foundry.domain import ConfigurationError, InvalidCacheKey, LeaseTiming
from foundry.domain.durations import duration

if TYPE_CHECKING:
    from foundry.adapters.postgres.config import PostgresSettings

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


def _checked(check: Callable[[Any], None]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator running ``check``: its ``ValueError`` becomes a ``ConfigurationError``
    naming the setting's variable, with the value shown as the field shows it (masked)."""

    def validate(settings: Any, field: attrs.Attribute[Any], value: Any) -> None:
        try:
            check(value)
        except ValueError as error:
            shown = _shown(field, value)
            raise ConfigurationError(
                f"{field.name.upper()}={shown} is not valid: {error}"
            ) from None

    return validate


def _shown(field: attrs.Attribute[Any], value: object) -> str:
    """``value`` as the field shows it, masked; a secret, or a URL too broken to mask (it
    might hold a password), is not shown."""
    if field.repr is False:
        return "(hidden)"
    if callable(field.repr) and isinstance(value, str):
        try:
            return str(field.repr(value))
        except ValueError:
            return "(not shown: it cannot be read as a URL)"
    if isinstance(value, timedelta):  # in seconds, as the variable is written
        return f"{value.total_seconds():g}"
    return repr(value)


def _as_timedelta(value: timedelta | float) -> timedelta:
    """Seconds as a ``timedelta``; anything else is left for the field's check to refuse."""
    period = duration(value)
    return cast("timedelta", value) if period is None else period


def _as_driver(value: Driver | str) -> Driver:
    """A driver's name as a ``Driver``; anything else is left for the field's check."""
    try:
        return Driver(str(value).lower())
    except ValueError:
        return cast("Driver", value)


def _optional(check: Callable[[Any], None]) -> Callable[[Any], None]:
    return lambda value: None if value is None else check(value)


def _text(value: object, hint: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string: {hint}")
    return value


def _driver(value: object) -> None:
    if not isinstance(value, Driver):
        raise ValueError("use 'memory', 'redis' or 'postgres' (or a Driver)")


def _redis_url(value: object) -> None:
    check_url(_text(value, "redis://host:port/db"))


def _database_url(value: object) -> None:
    postgres.check_url(_text(value, "postgresql://user:password@host:5432/database"))


def _schema(value: object) -> None:
    postgres.check_schema(_text(value, "a schema name like foundry"))


def _password(value: object) -> None:
    _text(value, "the password Redis expects")


def _prefix(value: object) -> None:
    if _PREFIX.fullmatch(_text(value, "like app or app:jobs")) is None:
        raise ValueError("use 1-64 letters, digits or '_.:-' (no spaces or braces)")


def _whole(value: object, low: int, high: int | None, hint: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("expected a whole number")
    if value < low or (high is not None and value > high):
        raise ValueError(hint)


def _db_number(value: object) -> None:
    _whole(value, 0, None, "use a database number, 0 or more (Redis has 0-15 by default)")


def _replicas(value: object) -> None:
    _whole(value, 0, 100, "use a number of replicas from 0 (no waiting) to 100")


def _pool_size(value: object) -> None:
    _whole(value, 1, 10_000, "use a number of connections from 1 to 10000")


def _flag(value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")


def _timeout(value: object) -> None:
    if not isinstance(value, timedelta):
        raise ValueError("expected a number of seconds, like 30 or 2.5, or a timedelta")
    if not timedelta(0) < value <= timedelta(days=1):
        raise ValueError("use a number of seconds greater than 0 and at most 86400")


#: How a URL given to ``connect`` says it is a Redis one (``redis+sentinel://`` and the like).
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+", "rediss+")


def _configured_redis(settings: Settings) -> Driver:
    return Driver.MEMORY if settings.redis_url is None else Driver.REDIS


@attrs.frozen
class Settings:
    """Everything Foundry reads from the environment, with the documented defaults; each
    value is checked when the settings are made (from the environment or in code), and a
    bad one raises ``ConfigurationError`` naming its variable and what it accepts. Durations
    take a ``timedelta`` or seconds.

    A driver left unset is Redis when a Redis URL is given and memory otherwise, so a producer
    configured for Redis never drops its jobs into a queue that lives only in its own process.
    """

    redis_url: str | None = attrs.field(
        default=None, repr=_mask_url, validator=_checked(_optional(_redis_url))
    )
    redis_db: int | None = attrs.field(default=None, validator=_checked(_optional(_db_number)))
    redis_password: str | None = attrs.field(
        default=None, repr=False, validator=_checked(_optional(_password))
    )
    redis_pool_size: int = attrs.field(default=16, validator=_checked(_pool_size))
    redis_connect_timeout: timedelta = attrs.field(
        default=timedelta(seconds=2), converter=_as_timedelta, validator=_checked(_timeout)
    )
    redis_socket_timeout: timedelta = attrs.field(
        default=timedelta(seconds=5), converter=_as_timedelta, validator=_checked(_timeout)
    )
    redis_cache_db: int | None = attrs.field(
        default=None, validator=_checked(_optional(_db_number))
    )
    redis_queue_db: int | None = attrs.field(
        default=None, validator=_checked(_optional(_db_number))
    )
    redis_wait_replicas: int = attrs.field(default=0, validator=_checked(_replicas))
    cache_driver: Driver = attrs.field(
        default=attrs.Factory(_configured_redis, takes_self=True),
        converter=_as_driver,
        validator=_checked(_driver),
    )
    cache_prefix: str = attrs.field(default="foundry_cache", validator=_checked(_prefix))
    queue_driver: Driver = attrs.field(
        default=attrs.Factory(_configured_redis, takes_self=True),
        converter=_as_driver,
        validator=_checked(_driver),
    )
    queue_prefix: str = attrs.field(default="foundry", validator=_checked(_prefix))
    queue_timeout: timedelta = attrs.field(
        default=timedelta(seconds=30), converter=_as_timedelta, validator=_checked(_timeout)
    )
    database_url: str | None = attrs.field(
        default=None, repr=_database_mask, validator=_checked(_optional(_database_url))
    )
    database_pool_size: int = attrs.field(default=10, validator=_checked(_pool_size))
    database_schema: str = attrs.field(default=postgres.DEFAULT_SCHEMA, validator=_checked(_schema))
    database_prepared_statements: bool = attrs.field(default=True, validator=_checked(_flag))

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
        if self.cache_driver is Driver.REDIS:
            self._check_redis_cache_prefix()

    def _check_redis_cache_prefix(self) -> None:
        """A Redis cache's keys must not take in another namespace's: the cache's ``clear()``
        would delete them (a queue's jobs, too)."""
        try:
            unambiguous_prefix(self.cache_prefix)
        except InvalidCacheKey as error:
            raise ConfigurationError(str(error).partition(": ")[2]) from None
        kind = nested_kind(self.queue_prefix, self.cache_prefix)
        if self.queue_driver is Driver.REDIS and kind is not None:
            raise ConfigurationError(
                f"QUEUE_PREFIX={self.queue_prefix} puts the queue's keys among the cache's "
                f"{kind!r} keys (CACHE_PREFIX={self.cache_prefix}): the cache's clear() would "
                f"delete jobs; use a QUEUE_PREFIX outside them, e.g. {self.cache_prefix}:jobs"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment (``os.environ`` by default)."""
        source = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in attrs.fields(cls):
            variable = field.name.upper()
            raw = source.get(variable, "").strip()
            if raw:
                values[field.name] = _parsed(variable, raw, _PARSERS.get(field.name, str))
        return cls(**values)  # type: ignore[arg-type] # each value is checked there

    @classmethod
    def variables(cls) -> list[str]:
        """The names of the variables ``from_env`` reads, in order."""
        return [field.name.upper() for field in attrs.fields(cls)]

    @classmethod
    def over_env(cls, given: Mapping[str, object], where: str) -> Settings:
        """The environment's settings with ``given`` (a framework's settings, variable names
        as keys) over them. Raises ``ConfigurationError`` naming ``where`` for a key that is no
        variable: a misspelt one would leave the environment's value in force, unsaid."""
        if not isinstance(given, Mapping):
            raise ConfigurationError(
                f"{where} must be a dict of settings, like {{'REDIS_URL': "
                f"'redis://127.0.0.1:6379/0'}}, not a {type(given).__name__}"
            )
        unknown = sorted(set(given) - set(cls.variables()))
        if unknown:
            raise ConfigurationError(
                f"{where} has no setting named {', '.join(unknown)}: use "
                f"{', '.join(cls.variables())}"
            )
        return cls.from_env({**os.environ, **{key: str(value) for key, value in given.items()}})

    def on(self, url: str) -> Settings:
        """These settings with the queue and the cache on ``url``: a Redis URL (any form
        ``REDIS_URL`` takes), a PostgreSQL URL, or ``memory://`` (in this process)."""
        if url.startswith(("postgresql://", "postgres://")):
            return attrs.evolve(
                self, database_url=url, queue_driver=Driver.POSTGRES, cache_driver=Driver.POSTGRES
            )
        if url == "memory://":
            return attrs.evolve(self, queue_driver=Driver.MEMORY, cache_driver=Driver.MEMORY)
        if not url.startswith(_REDIS_SCHEMES):
            given = f"a {url.partition('://')[0]}:// URL" if "://" in url else "no URL scheme"
            raise ConfigurationError(  # the URL itself is not shown: it may hold a password
                "connect() takes a Redis URL (redis://, rediss://, unix://, redis+sentinel://, "
                f"redis+cluster://), a postgresql:// URL or memory://; got {given}"
            )
        return attrs.evolve(
            self, redis_url=url, queue_driver=Driver.REDIS, cache_driver=Driver.REDIS
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
        """How the PostgreSQL adapters reach their database (``DATABASE_URL``, its pool size,
        Foundry's schema in it and whether statements are prepared). Raises
        ``ConfigurationError`` when no URL is set."""
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
            prepared_statements=self.database_prepared_statements,
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


def _parsed(variable: str, raw: str, parse: Callable[[str], object]) -> object:
    try:
        return parse(raw)
    except ValueError as error:
        raise ConfigurationError(f"{variable}={raw!r} is not valid: {error}") from None


def _show(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return str(value)


def _integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _boolean(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError("expected true or false")


def _seconds(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds, like 30 or 2.5") from None


#: How a variable's text becomes the value its field checks (the rest are taken as text).
_PARSERS: dict[str, Callable[[str], object]] = {
    "redis_db": _integer,
    "redis_pool_size": _integer,
    "redis_connect_timeout": _seconds,
    "redis_socket_timeout": _seconds,
    "redis_cache_db": _integer,
    "redis_queue_db": _integer,
    "redis_wait_replicas": _integer,
    "queue_timeout": _seconds,
    "database_pool_size": _integer,
    "database_prepared_statements": _boolean,
}
