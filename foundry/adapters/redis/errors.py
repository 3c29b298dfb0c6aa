"""Driver errors become ours at the adapters' edge: the queue's ``QueueUnavailable`` and the
cache's ``CacheError`` family, chained.

The adapters raise and do not log: whoever retries (the worker pool) logs an outage once when
it starts and once when it ends.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import AskError, MovedError
from redis.sentinel import MasterNotFoundError

from foundry.adapters.redis.durability import ReplicasBehind, WritesRefused, out_of_memory
from foundry.adapters.redis.tls import refused_by_server
from foundry.domain import (
    CacheError,
    CacheUnavailable,
    ConfigurationError,
    InvalidCacheValue,
    QueueUnavailable,
    UndecodableValue,
    WriteNotReplicated,
)

#: A refused connection, by kind: what failed and how to fix it.
_REFUSALS = {
    "auth": "authentication failed for {where} ({error}): set REDIS_PASSWORD or the URL's "
    "password (redis://:password@host:6379/0; user:password@ for an ACL user)",
    "tls": "TLS certificate verification failed for {where} ({error}): pass the CA that signed "
    "the server's certificate with rediss://host:6379/0?ssl_ca_certs=/path/to/ca.pem",
    "sentinel": "{where}: {error}",
    "no tls": "{error}",
    "tls refused": "{error}",
    "tls alert": "{where} refused this client over TLS ({error}): if it asks for a client "
    "certificate (tls-auth-clients), pass one its CA signed with ssl_certfile=/path/client.pem"
    "&ssl_keyfile=/path/client.key in the rediss:// URL; else allow TLSv1.2 or TLSv1.3 on it "
    "(tls-protocols)",
    "db": "the database number for {where} is one the server does not have ({error}): use a "
    "number below its `databases` setting (16 by default), in REDIS_URL or REDIS_DB",
    "cluster": "{where} is not a Redis Cluster ({error}): use redis://host:6379/0 for a single "
    "server, or redis+sentinel:// for one Sentinel watches",
    "cluster node": "{where} is a node of a Redis Cluster, which sends the keys of other nodes "
    "elsewhere ({error}): use redis+cluster://host:port[,host:port...]",
    "unknown command": "{where} does not know a command Foundry sends ({error}): it is a "
    "Sentinel (use redis+sentinel://host:26379[,host:port...]/<master name>) or a Redis "
    "older than 7.0 (upgrade it)",
}


class SentinelRefused(MasterNotFoundError):
    """The sentinels' answer no retry changes (an unknown master name, a refused login); the
    message names the fix."""


def refusal(error: BaseException) -> str | None:
    """``"auth"``, ``"tls"``, ``"sentinel"``, ``"db"``, ``"cluster"``, ``"cluster node"``,
    ``"unknown command"``, ``"no tls"``, ``"tls refused"`` or ``"tls alert"`` for a connection
    no retry can fix (a refused password, a certificate that does not verify, a master no
    sentinel knows, a database number past the server's, a cluster URL naming a server not in
    cluster mode, a plain URL naming a cluster's node or a server that is no Redis 7 data
    server, a TLS URL naming a port without TLS, a TLS server refusing this client), ``None``
    for anything else (an outage may pass)."""
    if isinstance(error, SentinelRefused):
        return "sentinel"
    text = str(error)
    if isinstance(error, redis.AuthenticationError) or text.startswith(("NOAUTH", "WRONGPASS")):
        return "auth"
    if isinstance(error, MovedError | AskError):  # a client that does not follow them
        return "cluster node"
    kind = next((kind for kind, said in _SAID.items() if said(text)), None)
    if kind is not None:
        return kind
    return _tls_refusal(error, text)


def _tls_refusal(error: BaseException, text: str) -> str | None:
    """``"tls"`` for a certificate that does not verify, ``"tls alert"`` for a TLS server's
    refusal read after the handshake (the connection did not say it), else ``None``."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return "tls"
    return "tls alert" if refused_by_server(error) else None


#: The refusals told by their text alone, by kind.
_SAID: dict[str, Callable[[str], bool]] = {
    "db": lambda text: text.startswith("DB index is out of range"),
    "cluster": lambda text: "Cluster mode is not enabled" in text,
    "unknown command": lambda text: text.startswith("unknown command"),
    "no tls": lambda text: "the server did not speak TLS on" in text,  # tls.not_spoken
    "tls refused": lambda text: "refused the TLS handshake" in text,  # tls.refused_tls
}


def refused(error: BaseException, where: str = "Redis") -> ConfigurationError | None:
    """The configuration error a refused connection is (naming ``where`` and the fix)."""
    kind = refusal(error)
    if kind is None:
        return None
    return ConfigurationError(_REFUSALS[kind].format(where=where, error=error))


@contextmanager
def guard(what: str, job_id: str | None = None) -> Iterator[None]:
    """Translate Redis errors raised inside into ``QueueUnavailable`` (or, for a refused
    password or certificate, ``ConfigurationError``), chained."""
    try:
        yield
    except redis.RedisError as error:
        raise translated(what, error, job_id) from error


def translated(
    what: str, error: redis.RedisError, job_id: str | None = None
) -> QueueUnavailable | ConfigurationError | TypeError:
    """``guard``'s error for ``error``, for the hot paths that catch it themselves (a
    generator context manager costs a few percent of a single enqueue). redis-py's
    ``DataError`` is an argument it cannot send (a list for an id): a ``TypeError``, not an
    outage to retry."""
    if isinstance(error, redis.DataError):
        return TypeError(f"{what} got an argument Redis cannot take: {error}")
    if isinstance(error, WritesRefused):
        return QueueUnavailable(
            f"Redis refused {what} after bounded retries: {error}", job_id=job_id
        )
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return refused(error) or QueueUnavailable(
            f"Redis unreachable during {what} after bounded retries ({error}); "
            "check REDIS_URL and the server, then retry (writes are idempotent)",
            job_id=job_id,
        )
    if isinstance(error, ReplicasBehind):
        return WriteNotReplicated(
            f"Redis took {what} on the master, but it is {error}", job_id=job_id
        )
    if out_of_memory(error):  # a plain command's (a function's is retried as WritesRefused)
        return QueueUnavailable(f"Redis refused {what}: {WritesRefused(error)}", job_id=job_id)
    return refused(error) or QueueUnavailable(f"Redis refused {what}: {error}", job_id=job_id)


def cache_error(error: redis.RedisError, label: str) -> CacheError | ConfigurationError:
    """Our error for a driver error met while working on the key (or lock) ``label``."""
    refusing = refused(error)
    if refusing is not None:
        return refusing
    if isinstance(error, WritesRefused) or out_of_memory(error):
        return CacheUnavailable(_writes_refused(error, label))
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return CacheUnavailable(
            f"Redis cannot be reached ({error}) while working on {label!r}; "
            "check REDIS_URL and that redis-server is up (the operation may or may not have "
            "been applied)"
        )
    return _error_reply(str(error), label)


def _error_reply(text: str, label: str) -> CacheError:
    """Our error for a cache function's (or command's) error reply ``text`` on ``label``."""
    if "NOTINT" in text:
        return InvalidCacheValue(
            f"cannot increment {label!r}: it holds a value that is not an integer; "
            "delete it or use another key for the counter"
        )
    if "OVERFLOW" in text:
        return InvalidCacheValue(f"counter {label!r} would leave ±(2**53 - 1) (exact range)")
    if "UNDECODABLE" in text or "WRONGTYPE" in text:
        return UndecodableValue(label, f"it was not written by Foundry's cache ({text})")
    return CacheError(f"Redis refused the cache operation on {label!r}: {text}")


def _writes_refused(error: redis.RedisError, label: str) -> str:
    """Why Redis refused a cache call on ``label`` before running it (a function's refusal
    was sent again under the retry policy, a plain command's was not), and the fix."""
    reply = error.__cause__ if isinstance(error, WritesRefused) else error
    if not out_of_memory(reply):
        return f"Redis refused the cache operation on {label!r} for now: {error}"
    return (
        f"Redis is out of memory ({reply}): its used memory is above maxmemory and its "
        f"policy (noeviction) refuses writes, so the cache operation on {label!r} did not "
        "run. Raise maxmemory (CONFIG SET maxmemory, and in redis.conf) or free memory "
        "(shorter TTLs, fewer keys); an evicting policy would drop the cache's held locks "
        "and effect records too, and on the queue's Redis its jobs"
    )
