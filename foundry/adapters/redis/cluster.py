"""Redis Cluster: the ``redis+cluster://`` URL and the clients that route by hash slot.

``redis+cluster://[user:password@]host:port[,host:port...][?options]`` names one or more nodes
of the cluster to start from (port 6379 when left out); the client asks them for the slot map
and finds every other node itself. ``rediss+cluster://`` uses TLS to every node. A cluster has
only database 0, so a database in the path, other than ``/0``, is refused. The other options
are those of a ``redis://`` URL (``ssl_ca_certs=``, ...).

The clients are redis-py's ``RedisCluster`` (and its asyncio twin): each command goes to the
master of its key's slot, and a ``MOVED`` or ``ASK`` reply (a resharding, a failover) updates
the slot map and sends the command where it now belongs. Every queue function touches the keys
of one queue, all under the ``{queue}`` hash tag, so each is one slot's work
(``cluster_runner.py`` sends them); the cache spreads its keys over slots (``cache_keys.py``).
Each node's connections are a pool of at most ``REDIS_POOL_SIZE`` (a thread that finds every
one busy waits for one, at most the socket timeout, as on one server); the asyncio client's
node pools are redis-py's own (their cap refuses a call instead of making it wait, and its
concurrent calls would meet it).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import parse_qs, urlencode, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import BlockingConnectionPool, parse_url
from redis.exceptions import RedisClusterException, SlotNotCoveredError

from foundry.adapters.redis.errors import refused
from foundry.adapters.redis.tls import TlsConnection, not_spoken_in
from foundry.adapters.redis.url_hosts import host_list, unquoted
from foundry.domain import ConfigurationError, QueueUnavailable

if TYPE_CHECKING:
    import redis.asyncio

SCHEMES = ("redis+cluster://", "rediss+cluster://")
DEFAULT_PORT = 6379
_ASYNCIO_CLUSTER = "redis.asyncio.cluster"
#: The client options a cluster client takes from the plain client's (``connection._options``).
_TAKEN = ("socket_connect_timeout", "socket_timeout", "socket_keepalive", "client_name", "password")


class ClusterTarget(NamedTuple):
    """The nodes to start from and how to log in to every node (a named tuple: a fifth of an
    attrs class's cost to define, and every process that connects defines it)."""

    nodes: tuple[tuple[str, int], ...]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    #: The remaining query options, as in a ``redis://`` URL (``ssl_ca_certs=...``).
    options: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # without the password
        return (
            f"ClusterTarget(nodes={self.nodes!r}, tls={self.tls!r}, username={self.username!r}, "
            f"options={self.options!r})"
        )

    def where(self) -> str:
        """The nodes, for messages (no password)."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.nodes)
        return f"{'rediss' if self.tls else 'redis'}+cluster://{hosts}"


def parse(url: str) -> ClusterTarget:
    """The target a ``redis+cluster://`` URL names; ``ValueError`` saying what is wrong."""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")  # first: the query's values may hold a "/" (a path)
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    login = urlsplit(f"redis://{userinfo}@x") if userinfo else None
    options = {name: values[-1] for name, values in parse_qs(query).items()}
    database = options.pop("db", None) or path
    if database not in ("", "0"):
        raise ValueError(
            f"Redis Cluster has only database 0, got {database!r}: leave the database out "
            "(redis+cluster://host:6379,host:6380)"
        )
    return ClusterTarget(
        nodes=_hosts(hosts),
        tls=scheme == "rediss+cluster",
        username=unquoted(login.username if login else None),
        password=unquoted(login.password if login else None),
        options=tuple(options.items()),
    )


def _hosts(text: str) -> tuple[tuple[str, int], ...]:
    return host_list(
        text, DEFAULT_PORT, "cluster node", "redis+cluster://10.0.0.1:6379,10.0.0.2:6379"
    )


def connect(target: ClusterTarget, options: dict[str, Any]) -> redis.Redis:
    """A cluster client of ``target`` with the plain client's ``options`` (timeouts, client
    name; ``password`` overrides the URL's). Unlike a plain client it reads the slot map as it
    is made: a cluster that cannot be reached, or whose slots are not all served, raises
    ``QueueUnavailable`` here, and a refused login ``ConfigurationError``.

    Typed as ``redis.Redis``: it takes every command Foundry sends one (each routed by its
    key), and the adapters never ask it for a connection pool of its own (``is_cluster``)."""
    nodes = [ClusterNode(host, port) for host, port in target.nodes]  # type: ignore[no-untyped-call]
    chosen = _capped(cluster_options(target, options), options)
    if target.tls:
        chosen["connection_class"] = TlsConnection
    try:
        client = RedisCluster(startup_nodes=nodes, **chosen)
    except (RedisClusterException, redis.RedisError) as error:
        # Unlike a plain client, this one reads the slot map as it is made.
        driver = as_driver_error(error)
        raise refused(driver, target.where()) or QueueUnavailable(
            f"Redis Cluster at {target.where()} cannot be used: {error}; check REDIS_URL and "
            f"that its nodes run{_COVERAGE_FIX if _uncovered(error) else ''}"
        ) from error
    return cast(redis.Redis, client)


def connect_async(target: ClusterTarget, options: dict[str, Any]) -> redis.asyncio.Redis:
    """``connect`` for a ``redis.asyncio`` client."""
    from foundry.adapters.redis.async_cluster import AsyncClusterClient  # noqa: PLC0415

    return cast("redis.asyncio.Redis", AsyncClusterClient(target, options))


def close(client: redis.Redis) -> None:
    """Close the connections of a cluster ``client`` to every node, keeping what it knows of
    the cluster: its next command connects again (``RedisCluster.close`` forgets the node it
    starts from, and every later command fails)."""
    for node in cast(RedisCluster, client).get_nodes():  # type: ignore[no-untyped-call]
        if node.redis_connection is not None:
            node.redis_connection.close()


_COVERAGE_FIX = (
    ". Some slots have no master: bring back the master that served them (or fail over to "
    "its replica), or assign them with redis-cli --cluster fix <host:port>"
)


def _uncovered(error: BaseException) -> bool:
    return isinstance(error, SlotNotCoveredError) or "not covered" in str(error)


def as_driver_error(error: BaseException) -> redis.RedisError:
    """A cluster client's own exception (not a ``RedisError``: a cluster that cannot be
    reached, a slot no master serves) as the driver error the adapters translate: a refused
    login as ``AuthenticationError``, nodes that do not speak TLS as ``TlsNotSpoken``, the
    rest as ``ConnectionError`` (an outage)."""
    if isinstance(error, redis.RedisError):
        return error
    text = str(error)
    spoken = not_spoken_in(text)
    if spoken is not None:
        return spoken
    if "username-password" in text or "WRONGPASS" in text or "NOAUTH" in text:
        return redis.AuthenticationError(text)
    message = text + (_COVERAGE_FIX if _uncovered(error) else "")
    return redis.ConnectionError(message)


def scan_masters(client: redis.Redis, match: str, kind: str) -> tuple[list[bytes], list[str]]:
    """The keys of type ``kind`` matching ``match`` on each master of the cluster ``client``
    that answers a SCAN, and each master that did not (its address and error)."""
    found: list[bytes] = []
    unreached: list[str] = []
    for node in cast(RedisCluster, client).get_primaries():  # type: ignore[no-untyped-call]
        try:
            found += node.redis_connection.scan_iter(match=match, count=1000, _type=kind)
        except redis.RedisError as error:
            unreached.append(f"{node.name} ({error})")
    return found, unreached


def is_cluster(client: object) -> bool:
    """Whether ``client`` is a Redis Cluster client (sync or asyncio: none can exist before
    redis-py's asyncio cluster module is imported, which is left to those that use it)."""
    if isinstance(client, RedisCluster):
        return True
    asyncio_cluster = sys.modules.get(_ASYNCIO_CLUSTER)
    return asyncio_cluster is not None and isinstance(client, asyncio_cluster.RedisCluster)


def describe(client: object) -> str:
    """The nodes a cluster client started from, as a URL with any password masked."""
    if isinstance(client, RedisCluster):
        kwargs = client.nodes_manager.connection_kwargs
        nodes = ",".join(node.name for node in client.nodes_manager.startup_nodes.values())
    else:
        assert is_cluster(client)
        asynchronous = cast(Any, client)
        kwargs = asynchronous.connection_kwargs
        nodes = ",".join(node.name for node in asynchronous.nodes_manager.startup_nodes.values())
    scheme = "rediss" if kwargs.get("ssl") or "ssl_ca_certs" in kwargs else "redis"
    user = kwargs.get("username") or ""
    login = f"{user}:********@" if kwargs.get("password") else ""
    return f"{scheme}+cluster://{login}{nodes}"


def _capped(chosen: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The sync client's options with each node's pool capped at the plain client's
    ``max_connections``: a blocking pool, so a thread waits for a connection (at most the
    socket timeout) where redis-py's own would refuse it."""
    if "max_connections" not in options:
        return chosen
    return chosen | {
        "connection_pool_class": BlockingConnectionPool,
        "max_connections": options["max_connections"],
        "timeout": options.get("socket_timeout"),
    }


def cluster_options(target: ClusterTarget, options: dict[str, Any]) -> dict[str, Any]:
    """A cluster client's options (sync or asyncio): ``target``'s URL options and login, the
    plain client's ``options`` it takes; a database other than 0 is refused."""
    if options.get("db") not in (None, 0):
        raise ConfigurationError(
            f"REDIS_DB (or REDIS_QUEUE_DB / REDIS_CACHE_DB) is {options['db']}, but Redis "
            "Cluster has only database 0: unset it"
        )
    login = {"username": target.username, "password": target.password}
    taken = {name: value for name, value in options.items() if name in _TAKEN}
    chosen = {**_url_options(target), **{k: v for k, v in login.items() if v is not None}}
    # Sends that fail are retried by the cluster client, which also refreshes the slot map.
    return chosen | taken | {"require_full_coverage": True}


def _url_options(target: ClusterTarget) -> dict[str, Any]:
    """The query's options, parsed as redis-py parses those of a ``redis://`` URL."""
    scheme = "rediss" if target.tls else "redis"
    parsed: dict[str, Any] = parse_url(f"{scheme}://x/?{urlencode(target.options)}")  # type: ignore[no-untyped-call]
    parsed.pop("host", None)
    parsed.pop("db", None)
    if parsed.pop("connection_class", None) is not None:
        parsed["ssl"] = True
    return parsed
