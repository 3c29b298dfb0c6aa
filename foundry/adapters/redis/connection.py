"""One way to connect to Redis, shared by the queue and the cache adapters.

``REDIS_URL`` is a ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL of one server, or a
``redis+sentinel://`` (``rediss+sentinel://``) URL of a master that Sentinel monitors (see
``sentinel.py``), or a ``redis+cluster://`` (``rediss+cluster://``) URL of a Redis Cluster (see
``cluster.py``).

Every client gets an explicit retry policy (exponential backoff with jitter, bounded) on
connection errors and timeouts, socket timeouts, TCP keepalive and health checks. The retry is
safe because every write Foundry sends is idempotent under re-send (see the Lua scripts).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import attrs
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.driver_info import DriverInfo
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool

from foundry.adapters.redis import cluster
from foundry.adapters.redis.errors import refusal
from foundry.adapters.redis.runner import close_runners
from foundry.adapters.redis.tls import TlsConnection
from foundry.adapters.redis.url_hosts import SENTINEL_SCHEMES
from foundry.domain import ConfigurationError


@attrs.frozen
class RedisSettings:
    """How to reach one Redis database. ``rediss://`` URLs use TLS; ``redis+sentinel://``
    URLs reach the master Sentinel names."""

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
        try:
            check_url(value)
        except ValueError as error:
            raise ConfigurationError(f"REDIS_URL {mask_url(value)!r}: {error}") from None

    @socket_timeout.validator
    def _socket_timeout(self, _: attrs.Attribute[timedelta], value: timedelta) -> None:
        if value <= timedelta(0):
            raise ConfigurationError(f"REDIS_SOCKET_TIMEOUT must be positive, got {value}")

    @pool_size.validator
    def _pool_size(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ConfigurationError(f"REDIS_POOL_SIZE must be at least 1, got {value}")


def check_url(url: str) -> None:
    """Raise ``ValueError`` naming what redis-py would misread or choke on in ``url``: a
    database path that is not a number (it would silently use database 0), a bad port, a TLS
    option on a URL without TLS (redis-py would raise a ``TypeError`` at the first connection)."""
    _no_tls_options_without_tls(url)
    if url.startswith(SENTINEL_SCHEMES):
        from foundry.adapters.redis import sentinel  # noqa: PLC0415 - only for its URLs

        sentinel.parse(url)
        return
    if url.startswith(cluster.SCHEMES):
        cluster.parse(url)
        return
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            "use redis://host:port/db, rediss://host:port/db (TLS), unix://path, "
            "redis+sentinel://host:26379[,host:port...]/master/db (Sentinel) or "
            "redis+cluster://host:port[,host:port...] (Cluster)"
        )
    parts = urlsplit(url)
    if parts.scheme != "unix":
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("the port must be a number from 1 to 65535 (redis://host:6379/0)")
        database = unquote(parts.path).removeprefix("/")
        if database and not database.isdigit():
            raise ValueError(
                f"the database in the path must be a number (redis://host:6379/0), got {database!r}"
            )
    for value in parse_qs(parts.query).get("db", []):
        if not value.isdigit():
            raise ValueError(f"the query's db= must be a number, got {value!r}")


def _no_tls_options_without_tls(url: str) -> None:
    scheme = url.partition("://")[0]
    if scheme.startswith("rediss"):
        return
    given = sorted(name for name in parse_qs(url.partition("?")[2]) if name.startswith("ssl_"))
    if given:
        tls = scheme.replace("redis", "rediss", 1)
        raise ValueError(
            f"{given[0]}= is an option of TLS, which {scheme}:// does not use: use {tls}://"
            " (or leave the option out)"
        )


def mask_url(url: str) -> str:
    """``url`` with the passwords (user info, ``sentinel_password=``) replaced by stars."""
    parts = urlsplit(url)
    query = _SENTINEL_SECRET.sub(r"\1sentinel_password=********", parts.query)
    if parts.password is None:
        return urlunsplit(parts._replace(query=query))
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:********@{host}", query=query))


_SENTINEL_SECRET = re.compile(r"(^|&)sentinel_password=[^&]*")


_RETRY_OPTIONS: dict[str, Any] = {
    "supported_errors": (redis.ConnectionError, redis.TimeoutError, TimeoutError),
    "is_retryable": lambda error: refusal(error) is None,
}


def connection_retry(settings: RedisSettings) -> Retry:
    """The bounded, jittered retry every Foundry client uses; what no retry can fix (a refused
    password, a certificate that does not verify) is raised at once."""
    return Retry(*_retry_args(settings), **_RETRY_OPTIONS)


def _retry_args(settings: RedisSettings) -> tuple[ExponentialWithJitterBackoff, int]:
    backoff = ExponentialWithJitterBackoff(
        base=settings.backoff_base.total_seconds(), cap=settings.backoff_cap.total_seconds()
    )
    return backoff, settings.retries


def connect(settings: RedisSettings) -> redis.Redis:
    """A client (with its own pool) for ``settings``; connects lazily on first use."""
    options = _options(settings, connection_retry(settings))
    if settings.url.startswith(SENTINEL_SCHEMES):
        from foundry.adapters.redis import sentinel  # noqa: PLC0415

        return sentinel.connect(sentinel.parse(settings.url), options)
    if settings.url.startswith(cluster.SCHEMES):
        return cluster.connect(cluster.parse(settings.url), options)
    if _by_address(settings.url):
        options["connection_class"] = AddressConnection
    elif settings.url.startswith("rediss://"):
        options["connection_class"] = TlsConnection
    return redis.Redis.from_url(settings.url, **options)


def close(client: redis.Redis) -> None:
    """Close every connection ``client`` has open: its pool's (a cluster's, to each node; a
    Sentinel-managed master's, to the sentinels too) and the ones each thread's calls run on.
    Nothing is forgotten: its next call connects again."""
    close_runners(client)
    if cluster.is_cluster(client):
        cluster.close(client)
    else:
        client.close()


class AddressConnection(redis.Connection):
    """A TCP connection to a server named by its IP address, which it looks up as bytes: a str
    host makes ``socket.getaddrinfo`` import the ``idna`` codec (with ``stringprep`` and
    ``unicodedata``: ~5 M instructions of a worker's start) to encode it, to the same bytes."""

    def _connect(self) -> socket.socket:
        address = self.host
        self._host = address.encode("ascii")  # redis-py's own storage of ``host``
        try:
            sock: socket.socket = super()._connect()  # type: ignore[no-untyped-call]
        finally:
            self._host = address
        return sock


def _by_address(url: str) -> bool:
    """Whether ``url`` is a ``redis://`` URL naming its server by an IP address."""
    if not url.startswith("redis://"):
        return False
    try:
        ipaddress.ip_address(urlsplit(url).hostname or "")
    except ValueError:
        return False
    return True


def connect_async(settings: RedisSettings) -> redis.asyncio.Redis:
    """An asyncio client for ``settings``, with ``connect``'s timeouts and retry policy;
    connects lazily, in the event loop that first uses it."""
    retry = AsyncRetry(*_retry_args(settings), **_RETRY_OPTIONS)
    options = _options(settings, retry)
    if settings.url.startswith(SENTINEL_SCHEMES):
        from foundry.adapters.redis import sentinel  # noqa: PLC0415

        return sentinel.connect_async(sentinel.parse(settings.url), options)
    if settings.url.startswith(cluster.SCHEMES):
        return cluster.connect_async(cluster.parse(settings.url), options)
    if settings.url.startswith("rediss://"):
        from foundry.adapters.redis.async_tls import AsyncTlsConnection  # noqa: PLC0415

        options["connection_class"] = AsyncTlsConnection
    return redis.asyncio.Redis.from_url(settings.url, **options)


def _options(settings: RedisSettings, retry: object) -> dict[str, Any]:
    options: dict[str, Any] = {
        "max_connections": settings.pool_size,
        "socket_connect_timeout": settings.connect_timeout.total_seconds(),
        "socket_timeout": settings.socket_timeout.total_seconds(),
        "health_check_interval": settings.health_check_interval,
        "retry": retry,
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
        "client_name": settings.client_name,
        # The version CLIENT SETINFO reports: redis-py otherwise reads it from its installed
        # metadata, a scan of sys.path on a process's first connection (~2 ms of a startup).
        "driver_info": DriverInfo(lib_version=redis.__version__),
    }
    if not settings.url.startswith("unix://"):  # redis-py's unix socket refuses the option
        options["socket_keepalive"] = True
    if settings.db is not None:
        options["db"] = settings.db
    if settings.password is not None:
        options["password"] = settings.password
    return options


def describe(client: redis.Redis) -> str:
    """Where ``client`` connects, as a URL with any password masked (for messages)."""
    if cluster.is_cluster(client):
        return cluster.describe(client)
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    scheme = "rediss" if issubclass(pool.connection_class, redis.SSLConnection) else "redis"
    user = kwargs.get("username") or ""
    login = f"{user}:********@" if kwargs.get("password") else ""
    if isinstance(pool, SentinelConnectionPool):
        nodes = ",".join(
            "{host}:{port}".format_map(node.connection_pool.connection_kwargs)
            for node in pool.sentinel_manager.sentinels
        )
        where = f"{scheme}+sentinel://{login}{nodes}/{pool.service_name}"
    else:
        where = f"{scheme}://{login}{kwargs.get('host')}:{kwargs.get('port')}"
    return f"{where}/{kwargs.get('db', 0)}"
