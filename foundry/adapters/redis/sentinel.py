"""Redis behind Sentinel: the ``redis+sentinel://`` URL and a client that follows the master.

``redis+sentinel://[user:password@]host:port[,host:port...]/master[/db][?options]`` names the
sentinels to ask (port 26379 when left out) and the master they monitor; ``rediss+sentinel://``
uses TLS to the sentinels and to the master. The user and password are the master's (as in a
``redis://`` URL); ``sentinel_username=`` and ``sentinel_password=`` in the query are the
sentinels' own, when they require one. The other options are those of a ``redis://`` URL
(``ssl_ca_certs=``, ...).

The client is redis-py's Sentinel-managed client: every new connection asks the sentinels
where the master is, and a connection to a master that was demoted is dropped and opened again
(redis-py raises a ``ConnectionError`` that the client's retry policy handles). Its pool
(``FollowingPool``) also asks them again while in use, at most every ``FOLLOW_S``, and drops the
connections left on a server they no longer name. A name no sentinel monitors, or a password a
sentinel refuses, is ``SentinelRefused``: no retry fixes it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import attrs
import redis
import redis.asyncio
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.asyncio.sentinel import SentinelManagedSSLConnection as AsyncManagedSSLConnection
from redis.connection import parse_url
from redis.sentinel import MasterNotFoundError, Sentinel

from foundry.adapters.redis.async_tls import AsyncChecked
from foundry.adapters.redis.async_tls import checked_class as async_checked_class
from foundry.adapters.redis.errors import SentinelRefused, refusal
from foundry.adapters.redis.following import FOLLOW_S, FollowingPool, next_ask
from foundry.adapters.redis.tls import (
    SentinelTlsConnection,
    TlsNotSpoken,
    checked_class,
    not_spoken_in,
)
from foundry.adapters.redis.url_hosts import SENTINEL_SCHEMES, host_list, unquoted

SCHEMES = SENTINEL_SCHEMES
DEFAULT_PORT = 26379
#: Query options meant for the sentinels, not for the master.
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


@attrs.frozen
class SentinelTarget:
    """Where the sentinels are, which master to ask them for, and how to log in to each."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = attrs.field(default=None, repr=False)
    #: The remaining query options, as in a ``redis://`` URL (``ssl_ca_certs=...``).
    options: tuple[tuple[str, str], ...] = ()

    def where(self) -> str:
        """The sentinels and the master, for messages (no password)."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"{'rediss' if self.tls else 'redis'}+sentinel://{hosts}/{self.master}/{self.db}"


def parse(url: str) -> SentinelTarget:
    """The target a ``redis+sentinel://`` URL names; ``ValueError`` saying what is wrong."""
    scheme, _, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    path, _, query = path.partition("?")
    userinfo, _, hosts = netloc.rpartition("@")
    login = urlsplit(f"redis://{userinfo}@x") if userinfo else None
    master, _, db = path.partition("/")
    if not master:
        raise ValueError(
            "name the master the sentinels monitor: redis+sentinel://host:26379/mymaster"
        )
    if db and not db.isdigit():
        raise ValueError(f"the database after the master name must be a number, got {db!r}")
    options = {name: values[-1] for name, values in parse_qs(query).items()}
    return SentinelTarget(
        sentinels=_hosts(hosts),
        master=master,
        db=int(db or options.pop("db", "0")),
        tls=scheme == "rediss+sentinel",
        username=unquoted(login.username if login else None),
        password=unquoted(login.password if login else None),
        sentinel_username=options.pop("sentinel_username", None),
        sentinel_password=options.pop("sentinel_password", None),
        options=tuple(options.items()),
    )


def _hosts(text: str) -> tuple[tuple[str, int], ...]:
    return host_list(
        text, DEFAULT_PORT, "sentinel", "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster"
    )


class AsyncSentinelTlsConnection(AsyncChecked, AsyncManagedSSLConnection):
    """redis-py's asyncio TLS connection to a Sentinel-managed master, its failed handshake
    said (``tls.py``)."""


class _TlsRefused(redis.RedisError):
    """A sentinel that does not speak TLS, as an error redis-py's search for the master does
    not catch: it would ask every other sentinel, each as long, and say none answered."""


def _refused_tls(error: redis.ConnectionError) -> _TlsRefused | None:
    """The ``_TlsRefused`` that ``error`` tells of, if any."""
    spoken = not_spoken_in(str(error))
    return None if spoken is None else _TlsRefused(str(spoken))


class _SentinelClient(redis.Redis):
    """A client of one sentinel (see ``_TlsRefused``), its TLS handshake checked."""

    def __init__(self, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        pool = self.connection_pool
        pool.connection_class = checked_class(pool.connection_class)

    def sentinel_masters(self) -> Any:
        try:
            return super().sentinel_masters()
        except redis.ConnectionError as error:
            refused = _refused_tls(error)
            if refused is None:
                raise
            raise refused from error


class _AsyncSentinelClient(redis.asyncio.Redis):
    """``_SentinelClient`` for ``redis.asyncio``."""

    def __init__(self, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(host=host, port=port, **kwargs)
        pool = self.connection_pool
        pool.connection_class = async_checked_class(pool.connection_class)

    async def sentinel_masters(self) -> Any:
        try:
            return await super().sentinel_masters()
        except redis.ConnectionError as error:
            refused = _refused_tls(error)
            if refused is None:
                raise
            raise refused from error


class _Sentinel(Sentinel):
    """redis-py's Sentinel, which says why no master was found when no retry can help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sentinels = [
            _SentinelClient(**_address(client), **self.sentinel_kwargs) for client in self.sentinels
        ]

    def discover_master(self, service_name: str) -> Any:
        try:
            return super().discover_master(service_name)
        except _TlsRefused as error:
            raise TlsNotSpoken(str(error)) from error
        except MasterNotFoundError as error:
            answers = [_answer(sentinel.sentinel_masters) for sentinel in self.sentinels]
            found = _refusal(service_name, answers) or _not_found(service_name, self, answers)
            raise found from error


class _AsyncSentinel(AsyncSentinel):
    """``_Sentinel`` for ``redis.asyncio`` clients; its clients of the sentinels are made
    again in each event loop that asks (an asyncio connection serves only its own loop, and
    the queue's runner opens its connections per loop too)."""

    _loop: asyncio.AbstractEventLoop | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._made_again()

    def _made_again(self) -> None:
        self.sentinels = [
            _AsyncSentinelClient(**_address(client), **self.sentinel_kwargs)
            for client in self.sentinels
        ]

    async def discover_master(self, service_name: str) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            self._made_again()
        self._loop = loop
        try:
            return await super().discover_master(service_name)
        except _TlsRefused as error:
            raise TlsNotSpoken(str(error)) from error
        except MasterNotFoundError as error:
            answers = [
                await _answer_async(sentinel.sentinel_masters) for sentinel in self.sentinels
            ]
            found = _refusal(service_name, answers) or _not_found(service_name, self, answers)
            raise found from error


class AsyncFollowingPool(AsyncSentinelPool):
    """``FollowingPool`` for ``redis.asyncio`` clients."""

    follow_s = FOLLOW_S
    _next_ask = -math.inf

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connection of the pool, after asking the sentinels if it is time to."""
        await self.master_address_now()
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]

    async def master_address_now(self) -> Any:
        """``FollowingPool.master_address_now``, awaited."""
        started = time.monotonic()
        if started >= self._next_ask:
            with suppress(redis.ConnectionError, redis.TimeoutError):
                await self.get_master_address()  # type: ignore[no-untyped-call]
            self._next_ask = next_ask(started, self.follow_s)
        return self.master_address

    async def left_behind(self, connection: Any) -> bool:
        """``FollowingPool.left_behind``, awaited."""
        if not connection.is_connected:
            return False
        address = await self.master_address_now()
        return address is not None and (connection.host, connection.port) != tuple(address)


def _address(client: Any) -> dict[str, Any]:
    """The host and port of a sentinel's client (sync or asyncio)."""
    kwargs = client.connection_pool.connection_kwargs
    return {"host": kwargs["host"], "port": kwargs["port"]}


def _answer(ask: Callable[[], Any]) -> Any:
    try:
        return ask()
    except redis.RedisError as error:
        return error


async def _answer_async(ask: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await ask()
    except redis.RedisError as error:
        return error


def _not_found(name: str, sentinel: Sentinel | AsyncSentinel, answers: list[Any]) -> Exception:
    """redis-py's ``MasterNotFoundError``, its text naming each sentinel and what it answered
    (redis-py's own names each sentinel by its client's repr: a kilobyte of settings each)."""
    said = []
    for client, answer in zip(sentinel.sentinels, answers, strict=True):
        where = "{host}:{port}".format_map(_address(client))
        if isinstance(answer, Exception):
            said.append(f"{where}: {answer}")
        else:
            said.append(f"{where}: sees it down, or without enough sentinels to agree")
    return MasterNotFoundError(f"No master found for {name!r} ({'; '.join(said)})")


def _refusal(name: str, answers: list[Any]) -> SentinelRefused | None:
    """From each sentinel's ``SENTINEL MASTERS`` answer (or error): an unknown master name or
    a refused login; ``None`` if the sentinels are down, or know the master but see it down
    (a failover may be under way)."""
    monitored: set[str] = set()
    answered = False
    plain = None  # a server that does not know the SENTINEL command
    for answer in answers:
        if isinstance(answer, Exception):
            if refusal(answer) == "auth":
                return SentinelRefused(
                    f"a sentinel refused the login ({answer}): set sentinel_password= (and "
                    "sentinel_username=) in REDIS_URL's query"
                )
            if "unknown command" in str(answer):
                plain = answer
            continue
        answered = True
        monitored.update(answer)
    if not answered and plain is not None:
        return SentinelRefused(
            f"a host in REDIS_URL is a Redis server, not a Sentinel ({plain}): name the "
            "sentinels' ports (26379 by default), or use redis://host:6379/0 for one server"
        )
    if not answered or name in monitored:
        return None
    known = ", ".join(sorted(monitored)) or "none"
    return SentinelRefused(
        f"no sentinel monitors a master named {name!r} (they monitor: {known}); fix the "
        "name in REDIS_URL (redis+sentinel://host:26379/<master>)"
    )


def connect(target: SentinelTarget, options: dict[str, Any]) -> redis.Redis:
    """A client of ``target``'s master with ``options`` (the plain client's: pool size,
    timeouts, retry, client name; ``db`` and ``password`` override the URL's)."""
    master = _master_options(target, options)
    sentinel = _Sentinel(target.sentinels, sentinel_kwargs=_sentinel_options(target, master))
    if target.tls:
        master["connection_class"] = SentinelTlsConnection
    return sentinel.master_for(  # type: ignore[no-any-return]
        target.master, connection_pool_class=FollowingPool, **master
    )


def connect_async(target: SentinelTarget, options: dict[str, Any]) -> redis.asyncio.Redis:
    """``connect`` for a ``redis.asyncio`` client."""
    master = _master_options(target, options)
    on_sentinels = _sentinel_options(target, master)
    sentinel = _AsyncSentinel(target.sentinels, sentinel_kwargs=on_sentinels)
    if target.tls:
        master["connection_class"] = AsyncSentinelTlsConnection
    return sentinel.master_for(  # type: ignore[no-any-return]
        target.master, connection_pool_class=AsyncFollowingPool, **master
    )


def _master_options(target: SentinelTarget, options: dict[str, Any]) -> dict[str, Any]:
    login = {"username": target.username, "password": target.password, "db": target.db}
    master = {**_url_options(target), **{k: v for k, v in login.items() if v is not None}}
    return master | options


def _sentinel_options(target: SentinelTarget, master: dict[str, Any]) -> dict[str, Any]:
    """The sentinels' own connections: the master's timeouts and TLS, their own login.

    No retry: discovery moves on to the next sentinel, and the master's connection retries
    the whole discovery under its policy."""
    login = {"username": target.sentinel_username, "password": target.sentinel_password}
    return {
        **{name: value for name, value in master.items() if name.startswith(("socket_", "ssl"))},
        **{name: value for name, value in login.items() if value is not None},
    }


def _url_options(target: SentinelTarget) -> dict[str, Any]:
    """The query's options, parsed as redis-py parses those of a ``redis://`` URL."""
    scheme = "rediss" if target.tls else "redis"
    parsed: dict[str, Any] = parse_url(f"{scheme}://x/?{urlencode(target.options)}")  # type: ignore[no-untyped-call]
    parsed.pop("host", None)
    if parsed.pop("connection_class", None) is not None:
        parsed["ssl"] = True
    return parsed
